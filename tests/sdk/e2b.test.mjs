// tests/sdk/e2b.test.mjs: the official E2B JavaScript SDK (npm package
// e2b, unpatched) against sandpipe, configured only by E2B_API_KEY,
// E2B_API_URL and E2B_SANDBOX_URL (tests/integration/test_e2b_sdk.py sets
// them to the test stack). Control plane, processes (streaming, background,
// reconnect by pid, stdin, kill, PTY), files, and the errors the SDK maps.
// Node's test runner; every wait is bounded.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  Sandbox,
  CommandExitError,
  NotFoundError,
  FileNotFoundError,
  SandboxNotFoundError,
  AuthenticationError,
} from 'e2b'
// A third party's fetch for signed file URLs: undici's, resolving every
// name to loopback (as browsers resolve *.localhost, RFC 6761), so that
// the sandbox's host 49983-<id>.localhost reaches the test stack.
import { fetch as thirdPartyFetch, Agent, FormData as ThirdPartyFormData } from 'undici'

for (const v of ['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL'])
  assert.ok(process.env[v], `${v} must be set`)
const OTHER_KEY = process.env.SP_OTHER_KEY
const TEMPLATE = process.env.SP_E2B_TEMPLATE || 'base'

const made = []
async function sandbox(opts = {}) {
  const sbx = await Sandbox.create(TEMPLATE, { timeoutMs: 120_000, ...opts })
  made.push(sbx)
  return sbx
}
after(async () => {
  for (const s of made) await s.kill().catch(() => {})
})

// A promise that settles when cond() holds for what onData collected.
function waitFor(cond, what, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const tick = () => {
      if (cond()) return resolve()
      if (Date.now() - t0 > ms) return reject(new Error(`no ${what} in ${ms} ms`))
      setTimeout(tick, 20)
    }
    tick()
  })
}

test('control plane: create, info, timeout, list with filters and pages, kill', async () => {
  const tag = `t${Date.now()}`
  const a = await sandbox({ metadata: { suite: tag, n: '1' } })
  const b = await sandbox({ metadata: { suite: tag, n: '2' } })
  assert.match(a.sandboxId, /^sbx_/)
  const info = await a.getInfo()
  assert.equal(info.sandboxId, a.sandboxId)
  assert.equal(info.state, 'running')
  assert.equal(info.metadata.suite, tag)
  assert.ok(info.endAt > info.startedAt)
  assert.equal(await a.isRunning(), true)
  await a.setTimeout(200_000)
  const later = await a.getInfo()
  assert.ok(later.endAt.getTime() - Date.now() > 150_000)

  const one = Sandbox.list({ query: { metadata: { suite: tag } }, limit: 1 })
  const seen = []
  for (let i = 0; one.hasNext && i < 5; i++) seen.push(...(await one.nextItems()))
  assert.deepEqual(seen.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort())
  const only = await Sandbox.list({ query: { metadata: { suite: tag, n: '2' } } }).nextItems()
  assert.deepEqual(only.map((s) => s.sandboxId), [b.sandboxId])
  const paused = await Sandbox.list({ query: { metadata: { suite: tag }, state: ['paused'] } }).nextItems()
  assert.deepEqual(paused, [])

  assert.equal(await b.kill(), true)
  assert.equal(await Sandbox.kill(b.sandboxId), false)
  await assert.rejects(Sandbox.connect(b.sandboxId), SandboxNotFoundError)
  assert.equal(await b.isRunning().catch(() => false), false)
})

test('pause, then connect resumes; metrics', async () => {
  const s = await sandbox()
  await s.commands.run('echo before > /tmp/mark')
  assert.equal(await s.pause(), true)
  assert.equal((await s.getInfo()).state, 'paused')
  const again = await Sandbox.connect(s.sandboxId)
  assert.equal((await again.getInfo()).state, 'running')
  assert.equal((await again.commands.run('cat /tmp/mark')).stdout, 'before\n')
  const m = await s.getMetrics()
  assert.ok(Array.isArray(m))
})

test('commands.run: output, exit codes, env, cwd, user', async () => {
  const s = await sandbox({ envs: { FROM_CREATE: 'c1' } })
  const r = await s.commands.run('echo hi')
  assert.equal(r.stdout, 'hi\n')
  assert.equal(r.exitCode, 0)
  const e = await s.commands.run('echo out; echo err >&2; exit 3').catch((x) => x)
  assert.ok(e instanceof CommandExitError, String(e))
  assert.equal(e.exitCode, 3)
  assert.equal(e.stdout, 'out\n')
  assert.equal(e.stderr, 'err\n')
  const env = await s.commands.run('echo "$FOO $FROM_CREATE"', { envs: { FOO: 'bar' } })
  assert.equal(env.stdout, 'bar c1\n')
  assert.equal((await s.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n')
  assert.equal((await s.commands.run('whoami', { user: 'root' })).stdout, 'root\n')
  assert.equal((await s.commands.run('whoami')).stdout, 'user\n')
  assert.equal((await s.commands.run('pwd')).stdout, '/home/user\n')
})

test('output streams to callbacks while the command still runs', async () => {
  const s = await sandbox()
  const chunks = []
  // The command waits for a file that the test writes only once the first
  // line has reached the callback: it cannot end before that.
  const h = await s.commands.run(
    'echo first; i=0; while [ ! -f /tmp/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; echo second',
    { background: true, onStdout: (d) => chunks.push(d) })
  await waitFor(() => chunks.join('').includes('first'), 'first line')
  assert.ok(!chunks.join('').includes('second'))
  await s.files.write('/tmp/go', 'x')
  const r = await h.wait()
  assert.equal(r.stdout, 'first\nsecond\n')
  assert.equal(chunks.join(''), 'first\nsecond\n')
})

test('background process: list, reconnect by pid, stdin, closeStdin', async () => {
  const s = await sandbox()
  const h = await s.commands.run('cat', { background: true, stdin: true })
  const procs = await s.commands.list()
  const p = procs.find((x) => x.pid === h.pid)
  assert.ok(p, JSON.stringify(procs))
  assert.equal(p.cmd, '/bin/bash')
  await h.disconnect()
  const got = []
  const again = await s.commands.connect(h.pid, { onStdout: (d) => got.push(d) })
  await s.commands.sendStdin(h.pid, 'hello\n')
  await waitFor(() => got.join('') === 'hello\n', 'echoed input')
  await s.commands.closeStdin(h.pid)
  const r = await again.wait()
  assert.equal(r.exitCode, 0)
  assert.equal((await s.commands.list()).some((x) => x.pid === h.pid), false)
})

test('kill ends a process with signal: killed; unknown pids', async () => {
  const s = await sandbox()
  const h = await s.commands.run('sleep 100', { background: true })
  assert.equal(await s.commands.kill(h.pid), true)
  const e = await h.wait().catch((x) => x)
  assert.ok(e instanceof CommandExitError, String(e))
  assert.equal(e.exitCode, -1)
  assert.match(e.error, /signal: killed/)
  assert.equal(await s.commands.kill(h.pid), false)
  assert.equal(await s.commands.kill(987654), false)
  await assert.rejects(s.commands.connect(987654), NotFoundError)
})

test('pty: create, input, resize, kill', async () => {
  const s = await sandbox()
  const dec = new TextDecoder()
  let out = ''
  const t = await s.pty.create({ cols: 80, rows: 24, onData: (d) => { out += dec.decode(d) } })
  await s.pty.sendInput(t.pid, new TextEncoder().encode('echo pty-$((6*7))\n'))
  await waitFor(() => out.includes('pty-42'), 'pty output')
  await s.pty.resize(t.pid, { cols: 100, rows: 30 })
  await s.pty.sendInput(t.pid, new TextEncoder().encode('stty size\n'))
  await waitFor(() => out.includes('30 100'), 'new size')
  assert.ok((await s.commands.list()).some((x) => x.pid === t.pid))
  assert.equal(await s.pty.kill(t.pid), true)
})

test('files: write, read, several at once, missing', async () => {
  const s = await sandbox()
  const info = await s.files.write('notes/a.txt', 'alpha')
  assert.equal(info.path, '/home/user/notes/a.txt')
  assert.equal(await s.files.read('/home/user/notes/a.txt'), 'alpha')
  assert.equal((await s.commands.run('cat notes/a.txt')).stdout, 'alpha')
  const bytes = new Uint8Array([0, 1, 2, 255, 10])
  await s.files.write('/tmp/bin', bytes.buffer)
  assert.deepEqual(await s.files.read('/tmp/bin', { format: 'bytes' }), bytes)
  const many = await s.files.write([
    { path: '/tmp/m/1.txt', data: 'one' },
    { path: '/tmp/m/2.txt', data: 'two' },
  ])
  assert.deepEqual(many.map((f) => f.path), ['/tmp/m/1.txt', '/tmp/m/2.txt'])
  assert.equal((await s.commands.run('cat /tmp/m/1.txt /tmp/m/2.txt')).stdout, 'onetwo')
  await assert.rejects(s.files.read('/tmp/nope'), NotFoundError)
  await s.kill() // at most 10 live sandboxes per key
})

test('filesystem: list with depth, exists, getInfo, makeDir, rename, remove', async () => {
  const s = await sandbox()
  await s.files.write('/tmp/fs/a/f.txt', 'hi')
  assert.equal(await s.files.makeDir('/tmp/fs/b/c'), true)
  assert.equal(await s.files.makeDir('/tmp/fs/b/c'), false)
  const one = await s.files.list('/tmp/fs')
  assert.deepEqual(one.map((e) => e.name).sort(), ['a', 'b'])
  assert.equal(one.find((e) => e.name === 'a').type, 'dir')
  const deep = await s.files.list('/tmp/fs', { depth: 3 })
  assert.deepEqual(deep.map((e) => e.path).sort(),
    ['/tmp/fs/a', '/tmp/fs/a/f.txt', '/tmp/fs/b', '/tmp/fs/b/c'])
  assert.equal(await s.files.exists('/tmp/fs/a/f.txt'), true)
  assert.equal(await s.files.exists('/tmp/fs/nope'), false)
  const info = await s.files.getInfo('/tmp/fs/a/f.txt')
  assert.equal(info.name, 'f.txt')
  assert.equal(info.type, 'file')
  assert.equal(info.size, 2)
  assert.match(info.permissions, /^-rw/)
  assert.ok(info.modifiedTime instanceof Date && !isNaN(info.modifiedTime))
  const moved = await s.files.rename('/tmp/fs/a/f.txt', '/tmp/fs/b/g.txt')
  assert.equal(moved.path, '/tmp/fs/b/g.txt')
  assert.equal(await s.files.read('/tmp/fs/b/g.txt'), 'hi')
  await s.files.remove('/tmp/fs')
  await s.files.remove('/tmp/fs') // a missing path is no error
  assert.equal(await s.files.exists('/tmp/fs'), false)
  await assert.rejects(s.files.list('/tmp/fs'), FileNotFoundError)
  await assert.rejects(s.files.getInfo('/tmp/fs'), FileNotFoundError)
  await s.kill()
})

test('errors: a bad API key, another key\'s sandbox', async () => {
  await assert.rejects(Sandbox.create(TEMPLATE, { apiKey: 'spk_wrong' }), AuthenticationError)
  if (!OTHER_KEY) return
  const s = await sandbox()
  await assert.rejects(Sandbox.connect(s.sandboxId, { apiKey: OTHER_KEY }), SandboxNotFoundError)
  assert.equal(await Sandbox.kill(s.sandboxId, { apiKey: OTHER_KEY }), false)
  assert.equal(await s.isRunning(), true)
})

test('watchDir: create, write, rename, remove, chmod with relative names; recursive', async () => {
  const s = await sandbox()
  await s.files.makeDir('/tmp/w/sub')
  const flat = []
  const deep = []
  const h1 = await s.files.watchDir('/tmp/w', (e) => flat.push(`${e.type}:${e.name}`))
  const h2 = await s.files.watchDir('/tmp/w', (e) => deep.push(`${e.type}:${e.name}`),
    { recursive: true })
  await s.commands.run('cd /tmp/w && echo hi > a.txt && mv a.txt b.txt && ' +
    'chmod 600 b.txt && echo x > sub/in.txt && rm b.txt')
  const want = ['create:a.txt', 'write:a.txt', 'rename:a.txt', 'create:b.txt',
    'chmod:b.txt', 'remove:b.txt']
  await waitFor(() => want.every((w) => flat.includes(w)), `flat events ${want}`)
  await waitFor(() => deep.includes('create:sub/in.txt') && deep.includes('write:sub/in.txt'),
    'the recursive watch\'s sub/in.txt')
  // The plain watch never sees inside sub (it saw sub itself change at most).
  assert.ok(!flat.some((e) => e.includes('in.txt')), flat.join(' '))
  await h1.stop()
  await h2.stop()
  await s.commands.run('touch /tmp/w/late.txt')
  const later = []
  const h3 = await s.files.watchDir('/tmp/w', (e) => later.push(`${e.type}:${e.name}`))
  await s.commands.run('touch /tmp/w/later.txt')
  await waitFor(() => later.includes('create:later.txt'), 'a third watch\'s event')
  await h3.stop()
  assert.ok(!flat.some((e) => e.includes('late')), flat.join(' '))
  await assert.rejects(s.files.watchDir('/tmp/nope', () => {}), NotFoundError)
  await s.kill()
})

test('watchDir: the watch ends when its sandbox is killed (onExit)', async () => {
  const s = await sandbox()
  let exited = false
  await s.files.watchDir('/tmp', () => {}, { onExit: () => { exited = true } , timeoutMs: 0 })
  await s.kill()
  await waitFor(() => exited, 'onExit after kill')
})

test('files.write with gzip, octet-stream and a stream body; read with gzip', async () => {
  const s = await sandbox()
  const text = 'squeeze '.repeat(10_000)
  const a = await s.files.write('/tmp/up/gz.txt', text, { gzip: true })
  assert.equal(a.path, '/tmp/up/gz.txt')
  assert.equal((await s.commands.run('wc -c < /tmp/up/gz.txt')).stdout.trim(),
    String(text.length))
  assert.equal(await s.files.read('/tmp/up/gz.txt', { gzip: true }), text)
  const b = await s.files.write('/tmp/up/raw.bin', new Uint8Array([0, 255, 7]).buffer,
    { useOctetStream: true })
  assert.equal(b.path, '/tmp/up/raw.bin')
  assert.equal((await s.commands.run('od -An -tu1 /tmp/up/raw.bin')).stdout.trim(),
    '0 255   7')
  const stream = new ReadableStream({
    start(c) { c.enqueue(new TextEncoder().encode('from ')); c.enqueue(new TextEncoder().encode('a stream')); c.close() },
  })
  await s.files.write('/tmp/up/s.txt', stream)
  assert.equal(await s.files.read('/tmp/up/s.txt'), 'from a stream')
  const many = await s.files.write([
    { path: '/tmp/up/m1', data: 'one' }, { path: '/tmp/up/m2', data: 'two' },
  ], { gzip: true })
  assert.deepEqual(many.map((f) => f.path), ['/tmp/up/m1', '/tmp/up/m2'])
  assert.equal((await s.commands.run('cat /tmp/up/m1 /tmp/up/m2')).stdout, 'onetwo')
  await s.kill()
})

test('uploadUrl / downloadUrl: plain fetch on the sandbox\'s host; one origin refused', async () => {
  const s = await sandbox()
  const loopback = new Agent({
    connect: {
      lookup: (h, o, cb) => (o && o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }])
        : cb(null, '127.0.0.1', 4)),
    },
  })
  const onHost = (u) => {
    const x = new URL(u)
    x.hostname = `49983-${s.sandboxId}.localhost`
    return x.toString()
  }
  const get = (u, init = {}) => thirdPartyFetch(onHost(u), { ...init, dispatcher: loopback })
  const up = await s.uploadUrl('/tmp/signed.txt')
  assert.match(up, /[?&]signature=v1_/)
  const form = (Form = ThirdPartyFormData) => {
    const f = new Form()
    f.append('file', new Blob(['via a signed url']), 'signed.txt')
    return f
  }
  // On one origin the URL names no sandbox: a clear 400, at once.
  const direct = await fetch(up, { method: 'POST', body: form(FormData) })
  assert.equal(direct.status, 400)
  assert.match(await direct.text(), /49983-/)
  const w = await get(up, { method: 'POST', body: form() })
  assert.equal(w.status, 200, await w.clone().text())
  assert.equal((await w.json())[0].path, '/tmp/signed.txt')
  assert.equal(await s.files.read('/tmp/signed.txt'), 'via a signed url')
  const down = await s.downloadUrl('/tmp/signed.txt', { useSignatureExpiration: 120 })
  assert.match(down, /signature_expiration=\d+/)
  const r = await get(down)
  assert.equal(r.status, 200)
  assert.equal(await r.text(), 'via a signed url')
  // A download URL does not upload; an expired one does not read; the
  // URL of one path reads no other.
  assert.equal((await get(down, { method: 'POST', body: form() })).status, 401)
  assert.equal((await get(await s.downloadUrl('/tmp/signed.txt',
    { useSignatureExpiration: -5 }))).status, 401)
  assert.equal((await get(down.replace('signed.txt', 'other.txt'))).status, 401)
  await s.kill()
})
