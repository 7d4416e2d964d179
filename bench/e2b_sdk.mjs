// bench/e2b_sdk.mjs: the measurements of bench/e2b.py, run with node from
// tests/sdk (where the e2b package is installed). Side by side, one of each
// in turn: E2B's commands.run('echo hi') through the SDK and the native
// POST /sandboxes/{id}/commands {"cmd":"echo hi"} over a kept-alive
// connection, in the same live sandbox; then Sandbox.create() -> the first
// commands.run done, next to the native create -> first command. Prints
// p50/p99 and the ratios. Environment: E2B_API_KEY, E2B_API_URL,
// E2B_SANDBOX_URL, BENCH_N, BENCH_TEMPLATE, BENCH_SDK_DIR (where e2b is
// installed: a bare import would look beside this file).
import { createRequire } from 'node:module'

const sdkDir = process.env.BENCH_SDK_DIR || new URL('../tests/sdk/', import.meta.url).pathname
const { Sandbox } = await import(createRequire(sdkDir + '/').resolve('e2b'))

const N = Number(process.env.BENCH_N || 100)
const TPL = process.env.BENCH_TEMPLATE || 'base'
const URL_ = process.env.E2B_API_URL
const H = { 'X-API-Key': process.env.E2B_API_KEY, 'Content-Type': 'application/json' }

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.round((p / 100) * (s.length - 1)))]
}
async function native(method, path, body) {
  const r = await fetch(URL_ + path, { method, headers: H, body: body && JSON.stringify(body) })
  const t = await r.text()
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${t}`)
  return t ? JSON.parse(t) : null
}
const ms = async (fn) => {
  const t = performance.now()
  await fn()
  return performance.now() - t
}
const line = (name, xs) =>
  console.log(`${name.padEnd(44)} p50 ${pct(xs, 50).toFixed(2).padStart(8)} ms  p99 ${pct(xs, 99).toFixed(2).padStart(8)} ms`)

const sbx = await Sandbox.create(TPL, { timeoutMs: 600_000 })
const sdk = [], nat = []
for (let i = 0; i < 5; i++) { await sbx.commands.run('echo hi'); await native('POST', `/sandboxes/${sbx.sandboxId}/commands`, { cmd: 'echo hi' }) }
for (let i = 0; i < N; i++) {
  sdk.push(await ms(() => sbx.commands.run('echo hi')))
  nat.push(await ms(() => native('POST', `/sandboxes/${sbx.sandboxId}/commands`, { cmd: 'echo hi' })))
}
await sbx.kill()
const cs = [], cn = []
let failed = 0
for (let i = 0; i < Math.min(N, 50); i++) {
  try {
    cs.push(await ms(async () => {
      const s = await Sandbox.create(TPL, { timeoutMs: 60_000 })
      try { await s.commands.run('true') } finally { setImmediate(() => s.kill().catch(() => {})) }
    }))
  } catch (e) {
    failed++ // counted and shown: a failed run is not a sample
  }
  cn.push(await ms(async () => {
    const s = await native('POST', '/sandboxes', { template: TPL, timeout: 60 })
    await native('POST', `/sandboxes/${s.id}/commands`, { argv: ['true'] })
    setImmediate(() => native('DELETE', `/sandboxes/${s.id}`).catch(() => {}))
  }))
  await new Promise((r) => setTimeout(r, 200)) // deletes finish off the clock
}
line("E2B commands.run('echo hi') (SDK)", sdk)
line('native POST /sandboxes/{id}/commands', nat)
line('E2B Sandbox.create() -> first commands.run', cs)
line('native create -> first command', cn)
console.log(`ratio run: SDK p50 / native p50 = ${(pct(sdk, 50) / pct(nat, 50)).toFixed(2)} (goal <= 2)`)
if (failed) console.log(`create -> first run: ${failed} of ${Math.min(N, 50)} failed`)
console.log(`create -> first run p50 = ${pct(cs, 50).toFixed(1)} ms (goal <= 50 ms); native ${pct(cn, 50).toFixed(1)} ms`)
