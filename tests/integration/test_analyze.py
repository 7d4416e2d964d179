"""test_analyze.py: POST /analyze-execution-needs as a table: requests to
run code in several natural languages (English, French, Spanish, German,
Italian, Portuguese) with the code inline after a colon, in backticks, as
the rest of the sentence, or fenced, and messages that show code or talk
about it without asking for a run. Each row is one subtest: the expected
requiresExecution, suggestedLanguage and codeSnippet."""
import sbx_util as su
from sbx_util import call

HELLO = "print('Hello, World!')"

# (message, requiresExecution, suggestedLanguage, codeSnippet); a snippet
# of None with requiresExecution False means no code was found.
RUN = [
    ("Can you run this Python code for me: print('Hello, World!')",
     True, "python", HELLO),
    ("Can you run this for me: print('Hello, World!')", True, "python", HELLO),
    ("Please run: print('Hello, World!')", True, "python", HELLO),
    ("Run this: print('Hello, World!')", True, "python", HELLO),
    ("run print('Hello, World!') for me", True, "python", HELLO),
    ("Could you execute print(2 ** 10)?", True, "python", "print(2 ** 10)"),
    ("Execute `print(sum(range(10)))` please", True, "python",
     "print(sum(range(10)))"),
    ("Please evaluate `1 + 2 * 3`", True, "python", "1 + 2 * 3"),
    ("What is the output of `print(len('abc'))`?", True, "python",
     "print(len('abc'))"),
    ("what does this output: print([x * x for x in range(4)])", True,
     "python", "print([x * x for x in range(4)])"),
    ("Can you run this JavaScript: console.log(6 * 7)", True, "javascript",
     "console.log(6 * 7)"),
    ("Run this JS code: console.log([1, 2].map(x => x + 1))", True,
     "javascript", "console.log([1, 2].map(x => x + 1))"),
    ("Run `console.log('hi')` in node", True, "javascript",
     "console.log('hi')"),
    ("Please run this bash command: echo hello", True, "bash", "echo hello"),
    ("run this in the shell: ls -la /tmp", True, "bash", "ls -la /tmp"),
    ("Execute `uname -a`", True, "bash", "uname -a"),
    ("Can you run this Python code for me?\n```python\nprint(1)\n```",
     True, "python", "print(1)\n"),
    ("Run it:\n```js\nconsole.log(1)\n```", True, "javascript",
     "console.log(1)\n"),
    ("Try this: print('try')", True, "python", "print('try')"),
    ("Test this `print(0)`", True, "python", "print(0)"),
    ("Calculate this for me: print(355 / 113)", True, "python",
     "print(355 / 113)"),
    ("Compute `sum([1, 2, 3])`", True, "python", "sum([1, 2, 3])"),
    # French
    ("Peux-tu exécuter ce code Python : print('Bonjour')", True, "python",
     "print('Bonjour')"),
    ("Exécute ce code : print(40 + 2)", True, "python", "print(40 + 2)"),
    ("Lance `console.log('salut')`", True, "javascript",
     "console.log('salut')"),
    ("Quel est le résultat de `print(7 * 6)` ?", True, "python",
     "print(7 * 6)"),
    # Spanish
    ("¿Puedes ejecutar este código Python: print('Hola')?", True, "python",
     "print('Hola')"),
    ("Ejecuta esto: console.log('hola')", True, "javascript",
     "console.log('hola')"),
    ("Corre este comando de bash: echo hola", True, "bash", "echo hola"),
    ("¿Cuál es la salida de `print(3 ** 3)`?", True, "python",
     "print(3 ** 3)"),
    # German
    ("Kannst du diesen Python-Code ausführen: print('Hallo')", True,
     "python", "print('Hallo')"),
    ("Führe bitte aus: print(1 + 1)", True, "python", "print(1 + 1)"),
    ("Bitte `echo hallo` ausführen", True, "bash", "echo hallo"),
    ("Berechne `print(2 ** 16)`", True, "python", "print(2 ** 16)"),
    # Italian
    ("Puoi eseguire questo codice Python: print('Ciao')", True, "python",
     "print('Ciao')"),
    ("Esegui `console.log('ciao')`", True, "javascript",
     "console.log('ciao')"),
    ("Calcola: print(10 // 3)", True, "python", "print(10 // 3)"),
    # Portuguese
    ("Você pode executar este código Python: print('Olá')", True, "python",
     "print('Olá')"),
    ("Executa isto: console.log('olá')", True, "javascript",
     "console.log('olá')"),
    ("Rode este comando bash: echo oi", True, "bash", "echo oi"),
    ("Qual é a saída de `print(9 % 4)`?", True, "python", "print(9 % 4)"),
]

NO_RUN = [
    ("Tell me about the history of Rome, please.", None),
    ("I like turtles and sunny days.", None),
    ("", None),
    ("Can you run this for me?", None),
    ("Run the tests: they fail on Tuesdays", None),
    ("Please run faster next time.", None),
    ("Here is my config:\n```foobarlang\nkey = value\n```\nLooks right?",
     "key = value\n"),
    ("I wrote `x = 1` in my notes yesterday.", "x = 1"),
    ("How does Python's print function work?", None),
    ("Explique-moi la récursivité, s'il te plaît.", None),
]


class AnalyzeTableTest(su.SbxCase):
    def analyze(self, message):
        r = call("POST", "/analyze-execution-needs", {"message": message})
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual(set(doc), {"requiresExecution", "suggestedLanguage",
                                    "codeSnippet"}, doc)
        return doc

    def test_table_has_enough_rows(self):
        self.assertGreaterEqual(len(RUN), 40)

    def test_requests_to_run(self):
        for message, needs, lang, snippet in RUN:
            with self.subTest(message=message):
                doc = self.analyze(message)
                self.assertEqual(
                    (doc["requiresExecution"], doc["suggestedLanguage"],
                     doc["codeSnippet"]), (needs, lang, snippet), doc)

    def test_no_request_to_run(self):
        for message, snippet in NO_RUN:
            with self.subTest(message=message):
                doc = self.analyze(message)
                self.assertIs(doc["requiresExecution"], False, doc)
                self.assertEqual(doc["codeSnippet"], snippet, doc)
