// tests/sdk/code_interpreter.test.mjs: the official E2B code interpreter
// SDK (npm package @e2b/code-interpreter, unpatched) against sandpipe,
// configured only by E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL
// (tests/integration/test_e2b_sdk.py sets them to the test stack).
// Sandbox.create() asks for E2B's code-interpreter-v1, sandpipe's
// code-interpreter template; runCode goes to port 49999's routes on the
// one origin. State kept between runs, a chart as PNG, errors with their
// traceback, stdout while the code still runs, contexts (create, list,
// restart, remove), JavaScript, the execution count. Every wait is bounded.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from '@e2b/code-interpreter'

for (const v of ['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL'])
  assert.ok(process.env[v], `${v} must be set`)

let sbx
async function sandbox() {
  if (!sbx) sbx = await Sandbox.create({ timeoutMs: 300_000 })
  return sbx
}
after(async () => {
  if (sbx) await sbx.kill().catch(() => {})
})

test('runCode keeps state and gives the last expression as the main result', async () => {
  const s = await sandbox()
  const a = await s.runCode('x = 20\nx + 1', { timeoutMs: 60_000 })
  assert.equal(a.error, undefined)
  assert.equal(a.text, '21')
  assert.equal(a.results.length, 1)
  assert.equal(a.results[0].isMainResult, true)
  const b = await s.runCode('x * 2')
  assert.equal(b.text, '40')
  assert.ok(b.executionCount > a.executionCount, `${a.executionCount} then ${b.executionCount}`)
  const str = await s.runCode("'héllo ' + 'wörld'")
  assert.equal(str.text, 'héllo wörld')
})

test('stdout reaches onStdout while the code still runs', async () => {
  const s = await sandbox()
  const marker = `/tmp/go-${Date.now()}`
  // The code prints, then waits for a file that only the callback makes:
  // it goes on only if its first line arrived while it ran.
  const code = [
    'import os, sys, time',
    'print("first", flush=True)',
    `t = time.time()`,
    `while not os.path.exists(${JSON.stringify(marker)}) and time.time() - t < 30:`,
    '    time.sleep(0.05)',
    `print("second" if os.path.exists(${JSON.stringify(marker)}) else "timed out")`,
  ].join('\n')
  const seen = []
  const exec = await s.runCode(code, {
    timeoutMs: 60_000,
    onStdout: (m) => {
      seen.push(m.line)
      if (m.line.includes('first')) s.files.write(marker, 'go').catch(() => {})
    },
    onStderr: (m) => seen.push(`stderr: ${m.line}`),
  })
  assert.equal(exec.error, undefined)
  // Chunks as they were written (print's text and its line end may come
  // apart); their text is the program's output.
  assert.equal(exec.logs.stdout.join(''), 'first\nsecond\n')
  assert.ok(seen.some((l) => l.includes('first')), JSON.stringify(seen))
  assert.ok(seen.some((l) => l.includes('second')), JSON.stringify(seen))
})

test('a matplotlib chart comes back as a PNG', async () => {
  const s = await sandbox()
  const exec = await s.runCode([
    'import matplotlib',
    'import matplotlib.pyplot as plt',
    'plt.figure(figsize=(3, 2))',
    'plt.plot([1, 2, 3], [2, 4, 1])',
    'plt.title("sandpipe")',
    'plt.show()',
  ].join('\n'), { timeoutMs: 120_000 })
  assert.equal(exec.error, undefined, JSON.stringify(exec.error))
  const pngs = exec.results.filter((r) => r.png)
  assert.equal(pngs.length, 1, JSON.stringify(exec.results.map((r) => Object.keys(r))))
  const bytes = Buffer.from(pngs[0].png, 'base64')
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  assert.ok(bytes.length > 1000, `a PNG of ${bytes.length} bytes`)
  assert.equal(pngs[0].isMainResult, false)
})

test('an error carries its name, value and traceback; the context lives on', async () => {
  const s = await sandbox()
  const errors = []
  const exec = await s.runCode('y = 5\n1 / 0', { onError: (e) => errors.push(e) })
  assert.ok(exec.error)
  assert.equal(exec.error.name, 'ZeroDivisionError')
  assert.match(exec.error.value, /division by zero/)
  assert.match(exec.error.traceback, /ZeroDivisionError/)
  assert.equal(errors.length, 1)
  const after = await s.runCode('y + 1')
  assert.equal(after.text, '6')
})

test('contexts: create, run in one, list, restart, remove', async () => {
  const s = await sandbox()
  const ctx = await s.createCodeContext({ language: 'python', cwd: '/tmp' })
  assert.ok(ctx.id)
  assert.equal(ctx.language, 'python')
  await s.runCode('z = 41', { context: ctx })
  assert.equal((await s.runCode('z + 1', { context: ctx })).text, '42')
  // Another context does not share its state.
  const other = await s.runCode('"z" in globals()')
  assert.equal(other.text, 'False')
  assert.equal((await s.runCode('import os; os.getcwd()', { context: ctx })).text, '/tmp')
  const list = await s.listCodeContexts()
  assert.ok(list.some((c) => c.id === ctx.id), JSON.stringify(list))
  await s.restartCodeContext(ctx)
  const gone = await s.runCode('z', { context: ctx })
  assert.equal(gone.error?.name, 'NameError')
  await s.removeCodeContext(ctx)
  const list2 = await s.listCodeContexts()
  assert.ok(!list2.some((c) => c.id === ctx.id), JSON.stringify(list2))
  await assert.rejects(s.runCode('1', { context: ctx }))
})

test('JavaScript runs in a context of its own', async () => {
  const s = await sandbox()
  const a = await s.runCode('const k = 6; k * 7', { language: 'js' })
  assert.equal(a.error, undefined, JSON.stringify(a.error))
  assert.equal(a.text, '42')
  const lines = []
  await s.runCode('console.log("from node")', { language: 'js', onStdout: (m) => lines.push(m.line) })
  assert.ok(lines.some((l) => l.includes('from node')), JSON.stringify(lines))
})
