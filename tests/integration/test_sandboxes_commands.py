"""test_sandboxes_commands.py: commands in a running sandbox: exit codes,
stdout and stderr apart, env (sandbox and command, the command wins), cwd,
argv or cmd, stdin (given, or written later and closed), timeouts,
background executions with output polling, signals, PTYs with resize, the
output cap, binary output, refused input and packages without network."""
import json
import threading
import time

import sbx_util as su
from sbx_util import call


class CommandsTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox({"env": {"SBX_ONLY": "from-sandbox",
                                             "SHARED": "from-sandbox"}})

    def test_exit_codes_and_result_shape(self):
        res = self.sh(self.sid, "true")
        self.assertEqual(res["exitCode"], 0)
        self.assertEqual(res["status"], "ok")
        self.assertIs(res["truncated"], False)
        self.assertTrue(res["execution_id"].startswith("exe_"), res)
        self.assertIsInstance(res["duration_ms"], (int, float))
        self.assertGreaterEqual(res["duration_ms"], 0)
        self.assertEqual((res["stdout"], res["stderr"]), ("", ""))
        for code in (1, 3, 42, 255):
            with self.subTest(code=code):
                res = self.sh(self.sid, f"exit {code}")
                self.assertEqual(res["exitCode"], code, res)
                self.assertEqual(res["status"], "error", res)
        # The record of a finished execution.
        r = call("GET", f"/sandboxes/{self.sid}/commands/{res['execution_id']}")
        self.assertEqual(r.status, 200, r)
        rec = r.json
        self.assertEqual(rec["execution_id"], res["execution_id"])
        self.assertEqual(rec["sandbox_id"], self.sid)
        self.assertEqual(rec["status"], "error")
        self.assertEqual(rec["exitCode"], 255)
        self.assertIs(rec["truncated"], False)
        # A process killed by a signal: 128 + n and the signal's name.
        res = self.sh(self.sid, ["sh", "-c", "kill -9 $$"])
        self.assertEqual(res["exitCode"], 137, res)
        self.assertEqual(res["status"], "error", res)
        self.assertIn("signal", res)

    def test_stdout_and_stderr_apart(self):
        res = self.sh(self.sid, "echo out1; echo err1 >&2; echo out2; "
                                "echo err2 >&2; exit 5")
        self.assertEqual(res["stdout"], "out1\nout2\n")
        self.assertEqual(res["stderr"], "err1\nerr2\n")
        self.assertEqual(res["exitCode"], 5)

    def test_env_of_sandbox_and_command(self):
        out = self.ok(self.sid, 'printf "%s|%s|%s|%s" "$SBX_ONLY" "$SHARED" '
                      '"$CMD_ONLY" "$HOME"',
                      env={"SHARED": "from-command", "CMD_ONLY": "cmd"})
        self.assertEqual(out, "from-sandbox|from-command|cmd|/workspace")
        # The command's env does not stick to the sandbox.
        out = self.ok(self.sid, 'printf "%s|%s" "$SHARED" "${CMD_ONLY-unset}"')
        self.assertEqual(out, "from-sandbox|unset")
        # Values with any characters arrive as they are.
        odd = "a b\n'\"$(x)`;\\ é"
        out = self.ok(self.sid, ["printenv", "ODD"], env={"ODD": odd})
        self.assertEqual(out, odd + "\n")
        for env in ({"1X": "a"}, {"X": 1}, "X=1", {"X-Y": "a"}):
            with self.subTest(env=env):
                r = self.run_raw(self.sid, "true", env=env)
                self.assertError(r, 400, "invalid_argument", "env")

    def test_cwd(self):
        self.ok(self.sid, "mkdir -p /workspace/cwd-test/sub")
        self.assertEqual(self.ok(self.sid, "pwd"), "/workspace\n")
        self.assertEqual(self.ok(self.sid, "pwd", cwd="/workspace/cwd-test/sub"),
                         "/workspace/cwd-test/sub\n")
        self.assertEqual(self.ok(self.sid, ["pwd"], cwd="/tmp"), "/tmp\n")
        r = self.run_raw(self.sid, "pwd", cwd="relative/dir")
        self.assertError(r, 400, "invalid_argument", "cwd")
        r = self.run_raw(self.sid, "pwd", cwd=5)
        self.assertError(r, 400, "invalid_argument", "cwd")
        r = self.run_raw(self.sid, "pwd", cwd="/workspace/does-not-exist")
        err = self.assertError(r, 400, "invalid_argument")
        self.assertIn("chdir", err["message"])

    def test_argv_and_cmd(self):
        out = self.ok(self.sid, ["printf", "%s|", "a b", "c;d", "$HOME", "*"])
        self.assertEqual(out, "a b|c;d|$HOME|*|")
        self.assertEqual(self.ok(self.sid, "echo a b | tr a-z A-Z"), "A B\n")
        self.assertEqual(self.ok(self.sid, ["/usr/bin/echo", "abs"]), "abs\n")
        r = call("POST", f"/sandboxes/{self.sid}/commands",
                 {"cmd": "true", "argv": ["true"]})
        self.assertError(r, 400, "invalid_argument", "cmd")
        r = call("POST", f"/sandboxes/{self.sid}/commands", {})
        self.assertError(r, 400, "invalid_argument", "cmd")
        for argv in ([], [1], "true", [None], {"a": "b"}):
            with self.subTest(argv=argv):
                r = call("POST", f"/sandboxes/{self.sid}/commands",
                         {"argv": argv})
                self.assertError(r, 400, "invalid_argument", "argv")
        r = call("POST", f"/sandboxes/{self.sid}/commands", {"cmd": 5})
        self.assertError(r, 400, "invalid_argument", "cmd")
        r = call("POST", f"/sandboxes/{self.sid}/commands", b"{nope",
                 extra={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")

    def test_missing_binary(self):
        for argv in (["/no/such/binary"], ["no-such-binary-xyz"]):
            with self.subTest(argv=argv):
                r = self.run_raw(self.sid, argv)
                err = self.assertError(r, 400, "invalid_argument")
                self.assertIn("execve", err["message"])
        # Through the shell it is the shell's own 127.
        res = self.sh(self.sid, "no-such-binary-xyz")
        self.assertEqual(res["exitCode"], 127, res)
        self.assertIn("not found", res["stderr"])
        # The sandbox still works.
        self.assertEqual(self.ok(self.sid, "echo fine"), "fine\n")

    def test_stdin(self):
        data = "hello\nworld é\n"
        self.assertEqual(self.ok(self.sid, "cat", stdin=data), data)
        self.assertEqual(self.ok(self.sid, ["wc", "-l"], stdin="a\nb\nc\n"),
                         "3\n")
        # Without stdin, a reader sees end of file at once.
        self.assertEqual(self.ok(self.sid, "cat; echo done", timeout=10),
                         "done\n")
        big = "x" * 200000 + "\n"
        self.assertEqual(self.ok(self.sid, ["wc", "-c"], stdin=big),
                         f"{len(big)}\n")
        r = self.run_raw(self.sid, "cat", stdin=5)
        self.assertError(r, 400, "invalid_argument", "stdin")

    def test_timeout(self):
        res = self.sh(self.sid, ["sleep", "30"], timeout=1)
        self.assertEqual(res["status"], "timeout", res)
        self.assertNotEqual(res["exitCode"], 0, res)
        # Everything the command started ended with it.
        res = self.sh(self.sid, "sleep 41 & sleep 42", timeout=1)
        self.assertEqual(res["status"], "timeout", res)
        self.assertNotIn("sleep 4", self.ok(self.sid, ["ps", "ax"]))
        for bad in (0, -1, "5", 1.5, 10 ** 9):
            with self.subTest(timeout=bad):
                r = call("POST", f"/sandboxes/{self.sid}/commands",
                         {"cmd": "true", "timeout": bad})
                self.assertError(r, 400, "invalid_argument", "timeout")

    def test_background_with_stdin_written_later(self):
        exe = self.background(self.sid, "cat", stdin_open=True)
        r = call("GET", f"/sandboxes/{self.sid}/commands/{exe}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "running")
        r = self.stdin(self.sid, exe, "first line\n")
        self.assertEqual(r.status, 204, r)
        st = self.collect(self.sid, exe, lambda s: "first" in s["stdout"])
        self.assertEqual(st["stdout"], "first line\n")
        self.assertIsNone(st["result"])
        r = self.stdin(self.sid, exe, "second line\n")
        self.assertEqual(r.status, 204, r)
        r = self.stdin(self.sid, exe, eof=True)
        self.assertEqual(r.status, 204, r)
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["stdout"], "first line\nsecond line\n")
        self.assertEqual(st["result"]["data"]["exitCode"], 0, st)
        self.assertEqual(st["result"]["data"]["status"], "ok", st)
        self.assertIs(st["result"]["data"]["truncated"], False)
        self.assertIn("duration", st["result"])
        types = [e["type"] for e in st["events"]]
        self.assertEqual(types[0], "status", types)
        self.assertEqual(types[-1], "result", types)
        ids = [e["id"] for e in st["events"]]
        self.assertEqual(len(ids), len(set(ids)))
        r = call("GET", f"/sandboxes/{self.sid}/commands/{exe}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["exitCode"]), ("ok", 0))
        # Over: stdin is refused now.
        r = self.stdin(self.sid, exe, "late\n")
        self.assertError(r, 409, "conflict")
        # stdin and eof in one request.
        exe = self.background(self.sid, ["wc", "-c"], stdin_open=True)
        r = self.stdin(self.sid, exe, "12345", eof=True)
        self.assertEqual(r.status, 204, r)
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["stdout"], "5\n")

    def test_stdin_closed_when_not_kept_open(self):
        exe = self.background(self.sid, ["sleep", "20"])
        r = self.stdin(self.sid, exe, "x")
        self.assertError(r, 409, "conflict")
        call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
             {"signal": "KILL"})
        self.wait_result(self.sid, exe)

    def test_output_polling_pages(self):
        exe = self.background(self.sid, "for i in 1 2 3; do echo line$i; "
                                         "sleep 0.2; done")
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["stdout"], "line1\nline2\nline3\n")
        r = self.output_page(self.sid, exe)
        self.assertEqual(r.status, 200, r)
        doc = r.json
        events = doc["events"]
        self.assertEqual(doc["next"], events[-1]["id"])
        # after= gives only what follows.
        r = self.output_page(self.sid, exe, events[0]["id"])
        self.assertEqual(r.json["events"], events[1:])
        r = self.output_page(self.sid, exe, doc["next"])
        self.assertEqual(r.json["events"], [])
        self.assertEqual(r.json["next"], doc["next"])
        r = call("GET", f"/sandboxes/{self.sid}/commands/{exe}/output"
                        "?after=abc")
        self.assertError(r, 400, "invalid_argument", "after")

    def test_signal_term_to_background_sleep(self):
        exe = self.background(self.sid, ["sleep", "300"])
        time.sleep(0.3)
        r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
                 {"signal": "TERM"})
        self.assertEqual(r.status, 204, r)
        st = self.wait_result(self.sid, exe)
        data = st["result"]["data"]
        self.assertEqual(data["exitCode"], 128 + 15, data)
        self.assertEqual(data["status"], "error", data)
        # SIGKILL is "killed".
        exe = self.background(self.sid, ["sleep", "300"])
        r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
                 {"signal": "SIGKILL"})
        self.assertEqual(r.status, 204, r)
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["result"]["data"]["status"], "killed", st)
        # A finished execution cannot be signalled; bad names are refused.
        r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
                 {"signal": "TERM"})
        self.assertError(r, 409, "conflict")
        for sig in ("FOO", "", 9, None):
            with self.subTest(signal=sig):
                r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
                         {"signal": sig})
                self.assertError(r, 400, "invalid_argument", "signal")

    def test_pty(self):
        res = self.sh(self.sid, "tty", pty=True)
        self.assertEqual(res["exitCode"], 0, res)
        self.assertRegex(res["stdout"].strip(), r"^/dev/pts/\d+$")
        res = self.sh(self.sid, "stty size", pty=True, cols=100, rows=30)
        self.assertEqual(res["stdout"].strip(), "30 100", res)
        # Without a PTY there is no terminal.
        res = self.sh(self.sid, "tty")
        self.assertNotEqual(res["exitCode"], 0, res)
        for field, val in (("cols", 0), ("rows", 5000), ("cols", "80")):
            with self.subTest(field=field, val=val):
                r = self.run_raw(self.sid, "true", pty=True, **{field: val})
                self.assertError(r, 400, "invalid_argument", field)

    def test_pty_resize(self):
        exe = self.background(self.sid, ["sh"], pty=True, stdin_open=True,
                              cols=80, rows=24)
        self.assertEqual(self.stdin(self.sid, exe, "stty size\n").status, 204)
        st = self.collect(self.sid, exe, lambda s: "24 80" in s["stdout"])
        self.assertIn("24 80", st["stdout"])
        r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/resize",
                 {"cols": 132, "rows": 43})
        self.assertEqual(r.status, 204, r)
        for body in ({"cols": 0, "rows": 10}, {"cols": 10}, {"rows": "x"}):
            with self.subTest(body=body):
                r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/resize",
                         body)
                self.assertError(r, 400, "invalid_argument")
        self.assertEqual(self.stdin(self.sid, exe, "stty size\n").status, 204)
        st = self.collect(self.sid, exe, lambda s: "43 132" in s["stdout"])
        self.assertIn("43 132", st["stdout"])
        self.assertEqual(self.stdin(self.sid, exe, "exit 7\n").status, 204)
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["result"]["data"]["exitCode"], 7, st)
        # Resize of an execution without a PTY: conflict.
        exe = self.background(self.sid, ["sleep", "20"])
        r = call("POST", f"/sandboxes/{self.sid}/commands/{exe}/resize",
                 {"cols": 100, "rows": 40})
        self.assertError(r, 409, "conflict")
        call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
             {"signal": "KILL"})

    def test_output_cap(self):
        res = self.sh(self.sid, "yes | head -c 5000000", timeout=60)
        self.assertIs(res["truncated"], True, {k: v for k, v in res.items()
                                               if k != "stdout"})
        self.assertEqual(res["status"], "output_limit")
        self.assertLessEqual(len(res["stdout"].encode()), su.OUTPUT_MAX)
        self.assertGreater(len(res["stdout"]), su.OUTPUT_MAX // 2)
        self.assertTrue(set(res["stdout"]) <= {"y", "\n"})
        # stdout and stderr share the cap.
        res = self.sh(self.sid, "head -c 800000 /dev/zero | tr '\\0' a; "
                                "head -c 800000 /dev/zero | tr '\\0' b >&2",
                      timeout=60)
        self.assertIs(res["truncated"], True)
        self.assertLessEqual(len(res["stdout"]) + len(res["stderr"]),
                             su.OUTPUT_MAX)
        # In the background the events stop at the cap as well.
        exe = self.background(self.sid, "yes | head -c 5000000")
        st = self.wait_result(self.sid, exe, timeout=60)
        self.assertIs(st["result"]["data"]["truncated"], True)
        self.assertEqual(st["result"]["data"]["status"], "output_limit")
        self.assertLessEqual(len(st["stdout"]), su.OUTPUT_MAX)
        # Under the cap nothing is lost.
        res = self.sh(self.sid, "yes | head -c 500000")
        self.assertIs(res["truncated"], False)
        self.assertEqual(len(res["stdout"]), 500000)

    def test_binary_output_keeps_json_valid(self):
        res = self.sh(self.sid, r"printf 'a\000b\377\376c\300\200d'; "
                                r"printf 'e\000\001\033[0m' >&2")
        self.assertEqual(res["exitCode"], 0)
        for ch in "abcd":
            self.assertIn(ch, res["stdout"])
        self.assertLess(res["stdout"].index("a"), res["stdout"].index("d"))
        self.assertIn("e", res["stderr"])
        # Random bytes: still one valid JSON document.
        r = self.run_raw(self.sid, "head -c 200000 /dev/urandom")
        self.assertEqual(r.status, 200, r)
        doc = json.loads(r.body.decode("utf-8"))
        self.assertEqual(doc["status"], "ok")
        self.assertGreater(len(doc["stdout"]), 1000)
        # The same through the background output.
        exe = self.background(self.sid, r"printf 'x\000y\377z'; "
                                        "head -c 50000 /dev/urandom")
        st = self.wait_result(self.sid, exe)
        self.assertTrue(st["stdout"].startswith("x"), st["stdout"][:20])
        r = self.output_page(self.sid, exe)
        json.loads(r.body.decode("utf-8"))

    def test_utf8_never_split(self):
        # Two-byte characters written in odd-sized pieces: no character is
        # cut at a chunk edge (no replacement characters appear).
        prog = ("import os,time\n"
                "b = ('é€😀' * 20000).encode()\n"
                "for i in range(0, len(b), 4097):\n"
                "    os.write(1, b[i:i + 4097])\n")
        res = self.sh(self.sid, ["python3", "-c", prog])
        self.assertEqual(res["exitCode"], 0, res["stderr"])
        self.assertEqual(res["stdout"], "é€😀" * 20000)
        exe = self.background(self.sid, ["python3", "-c", prog])
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["stdout"], "é€😀" * 20000)

    def test_concurrent_commands(self):
        results = {}
        lock = threading.Lock()

        def one(i):
            r = self.run_raw(self.sid, f"sleep 0.3; echo n{i}")
            with lock:
                results[i] = r

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(len(results), 8)
        for i, r in results.items():
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["stdout"], f"n{i}\n")

    def test_packages_need_network(self):
        r = call("POST", f"/sandboxes/{self.sid}/packages",
                 {"manager": "pip", "packages": ["six"]})
        err = self.assertError(r, 409, "conflict")
        self.assertIn("network", err["message"])
        for body, field in (({"manager": "apt", "packages": ["x"]}, "manager"),
                            ({"packages": ["x"]}, "manager"),
                            ({"manager": "pip", "packages": []}, "packages"),
                            ({"manager": "pip", "packages": "six"}, "packages"),
                            ({"manager": "npm", "packages": ["-g"]}, "packages"),
                            ({"manager": "pip",
                              "packages": ["six; rm -rf /"]}, "packages"),
                            ({"manager": "pip", "packages": [3]}, "packages")):
            with self.subTest(body=body):
                r = call("POST", f"/sandboxes/{self.sid}/packages", body)
                self.assertError(r, 400, "invalid_argument", field)
