// tests/browser/sse_restart.test.mjs: a browser's EventSource loses
// nothing when the SSE relay dies and comes back.
//
// Headless Chromium (playwright-core from web/node_modules) opens the
// console's page (its CSP lets the page connect to its own origin) and, in
// it, a plain EventSource on the events of a running execution that prints
// one numbered line every 150 ms. The relay is then killed with SIGKILL by
// pid and kept down for 4 s (a hold file of the supervisor,
// cli/sp_supervise.c), so that the browser's reconnections meet nginx
// while no relay runs: nginx must answer them so that EventSource tries
// again (families/sse.conf), never with the 502 that ends it for good.
// Once the supervisor has started the relay again, EventSource resumes
// with Last-Event-ID. Every event must have arrived exactly once, in
// order: ids strictly increasing, the printed lines complete without a
// repeat, one status first and one result last.
//
//   SP_LISTEN=127.0.0.1:18080 SP_API_KEY=spk_… SP_STATE_DIR=state/test \
//     node tests/browser/sse_restart.test.mjs
//
// tests/integration/test_sse_restart.py runs it as part of ./sandpipe test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const { chromium } = createRequire(path.join(ROOT, 'web', 'package.json'))('playwright-core');

const LISTEN = process.env.SP_LISTEN || '127.0.0.1:18080';
const API_KEY = process.env.SP_API_KEY || '';
const STATE = path.resolve(process.env.SP_STATE_DIR || path.join(ROOT, 'state', 'test'));
const CHROMIUM = process.env.SP_CHROMIUM || '/usr/bin/chromium';
const BASE = `http://${LISTEN}`;
const LINES = 90; // 150 ms apart: 13.5 s, long enough to outlive the outage
const HOLD = path.join(STATE, 'supervise', 'hold', 'sp-sse');
const PIDFILE = path.join(STATE, 'run', 'sp-sse.pid');

let profile, context, page;
const pageLog = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, route, body) {
  const res = await fetch(BASE + route, {
    method,
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function relayPid() {
  try {
    return Number((await readFile(PIDFILE, 'utf8')).trim());
  } catch {
    return 0;
  }
}

// "<ms>-<seq>" ids compared as numbers.
function idAfter(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am > bm || (am === bm && as > bs);
}

before(async () => {
  assert.ok(API_KEY, 'SP_API_KEY must be set');
  profile = await mkdtemp(path.join(tmpdir(), 'sp-sse-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('response', (r) => {
    if (r.url().includes('/events')) pageLog.push(`http ${r.status()} ${r.headers()['content-type']}`);
  });
});

after(async () => {
  await rm(HOLD, { force: true });
  if (pageLog.length) console.log('page log:\n  ' + pageLog.join('\n  '));
  if (context) await context.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test('an EventSource gets every event once, in order, across a relay restart', async () => {
  const { access_token: token } = await api('POST', '/api/auth/token', { api_key: API_KEY });
  const code = `import time\nfor i in range(${LINES}):\n    print(i, flush=True)\n    time.sleep(0.15)\n`;
  const run = await api('POST', '/execute-stream', { code, language: 'python', timeout: 120000 });
  const exe = run.executionId;
  assert.match(exe, /^exe_/);

  await page.goto(BASE + '/');
  await page.evaluate(({ exe, token }) => {
    window.got = [];
    window.opens = 0;
    window.errors = 0;
    const es = new EventSource(`/executions/${exe}/events?access_token=${encodeURIComponent(token)}`);
    es.onopen = () => { window.opens++; };
    es.onerror = () => { window.errors++; window.lastState = es.readyState; };
    for (const type of ['status', 'stdout', 'stderr', 'error', 'result']) {
      es.addEventListener(type, (e) => {
        window.got.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
        if (type === 'result') es.close();
      });
    }
    window.es = es;
  }, { exe, token });
  await page.waitForFunction(() => window.got.filter((e) => e.type === 'stdout').length >= 5,
    null, { timeout: 30000 });

  // The relay dies and stays away for 4 s: reconnections meet nginx alone.
  const old = await relayPid();
  assert.ok(old > 0, 'no pid file of sp-sse');
  await writeFile(HOLD, '');
  process.kill(old, 'SIGKILL');
  await sleep(4000);
  const errorsWhileDown = await page.evaluate(() => window.errors);
  const stateWhileDown = await page.evaluate(() => window.es.readyState);
  await rm(HOLD, { force: true });
  let pid = 0;
  for (let i = 0; i < 100 && (pid === old || pid === 0); i++) {
    await sleep(50);
    pid = await relayPid();
  }
  assert.ok(pid !== old && pid > 0, 'the supervisor did not start the relay again');

  await page.waitForFunction(() => window.got.some((e) => e.type === 'result'), null, { timeout: 60000 });
  const got = await page.evaluate(() => window.got);
  const opens = await page.evaluate(() => window.opens);

  // EventSource was never given up (0 CONNECTING, 1 OPEN; 2 is CLOSED).
  assert.notEqual(stateWhileDown, 2, 'the EventSource was closed for good while the relay was down');
  assert.ok(errorsWhileDown >= 2, `only ${errorsWhileDown} reconnection attempts while the relay was down`);
  assert.ok(opens >= 2, `the stream was opened ${opens} times`);
  // Exactly once, in order.
  for (let i = 1; i < got.length; i++) {
    assert.ok(idAfter(got[i].id, got[i - 1].id), `event ${i} (${got[i].id}) is not after ${got[i - 1].id}`);
  }
  assert.equal(got[0].type, 'status');
  assert.equal(got.filter((e) => e.type === 'status').length, 1, 'status more than once');
  assert.equal(got.at(-1).type, 'result');
  assert.equal(got.filter((e) => e.type === 'result').length, 1);
  assert.equal(got.at(-1).data.data.status, 'ok', JSON.stringify(got.at(-1)));
  const out = got.filter((e) => e.type === 'stdout').map((e) => e.data.data).join('');
  const want = Array.from({ length: LINES }, (_, i) => `${i}\n`).join('');
  assert.equal(out, want);
  assert.ok(!got.some((e) => e.type === 'error'), JSON.stringify(got.filter((e) => e.type === 'error')));
});
