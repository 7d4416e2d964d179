// tests/browser/console.test.mjs: the web console in a real browser.
//
// Headless Chromium (Debian's /usr/bin/chromium), driven by playwright-core
// from web/node_modules, opens the console of the stack under test, signs
// in with an API key, runs a Python snippet whose lines must arrive one by
// one, types a command into the terminal, uploads and deletes a file, and
// signs out. Screenshots go to $SP_TEST_OUT/browser/.
//
//   SP_LISTEN=127.0.0.1:18080 SP_API_KEY=spk_… node tests/browser/console.test.mjs
//
// Environment: SP_LISTEN (address of the stack), SP_API_KEY, SP_TEST_OUT
// (default tests/out), SP_CHROMIUM (default /usr/bin/chromium).
// tests/integration/test_browser.py runs it as part of ./sandpipe test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { API_KEY, LISTEN, OUT, useBrowser } from './session.mjs';

const WAIT = { timeout: 20000 };

// Three lines 0.7 s apart, then one line on stderr.
const SNIPPET = [
  'import sys, time',
  'for i in range(3):',
  "    print('line', i, flush=True); time.sleep(0.7)",
  "print('done on stderr', file=sys.stderr)",
].join('\n');

let page;

// Saves a screenshot when a step fails, then fails the step.
const step = useBrowser('failed-', (p) => { page = p; });

test('the console is served with its own CSP and the API keeps its JSON 404', async () => {
  const res = await fetch(`http://${LISTEN}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  const nope = await fetch(`http://${LISTEN}/no-such-route`);
  assert.equal(nope.status, 404);
  assert.equal((await nope.json()).error.code, 'not_found');
  const xterm = await fetch(`http://${LISTEN}/vendor/xterm/lib/xterm.mjs`);
  assert.equal(xterm.status, 200);
  assert.match(xterm.headers.get('content-type'), /javascript/);
});

test('signs in with an API key', () => step('sign-in', async () => {
  await page.goto(`http://${LISTEN}/`);
  await page.fill('#api-key', API_KEY);
  await page.click('#sign-in');
  await page.waitForSelector('body[data-state="signed-in"]', WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#language option').length > 0, null, WAIT);
  assert.match(await page.textContent('#sandbox-id'), /^sbx_/);
  assert.ok(await page.evaluate(() => sessionStorage.getItem('sandpipe.apiKey')));
}));

test('runs Python and shows its lines as they are printed', () => step('run', async () => {
  // Every change of the output is recorded with the run status of that
  // moment, so the test can tell whether the lines came one by one.
  await page.evaluate(() => {
    window.outputLog = [];
    const out = document.getElementById('output');
    new MutationObserver(() => window.outputLog.push({
      text: out.textContent,
      status: document.getElementById('run-status').dataset.status,
    })).observe(out, { childList: true, subtree: true, characterData: true });
  });
  await page.selectOption('#language', 'python');
  await page.fill('#code', SNIPPET);
  await page.click('#run');

  await page.waitForFunction(() => document.getElementById('output').textContent.includes('line 0'), null, WAIT);
  await page.screenshot({ path: path.join(OUT, 'run-live.png') });
  await page.waitForSelector('#run-status[data-status="ok"]', WAIT);
  await page.screenshot({ path: path.join(OUT, 'run.png') });

  const log = await page.evaluate(() => window.outputLog);
  const first = log.find((s) => s.text.includes('line 0'));
  assert.ok(first, 'line 0 never shown');
  assert.ok(!first.text.includes('line 2'), `line 0 arrived together with line 2: ${JSON.stringify(first.text)}`);
  assert.equal(first.status, 'running', 'line 0 was shown only after the run had ended');
  const withLine1 = log.find((s) => s.text.includes('line 1'));
  assert.ok(withLine1 && !withLine1.text.includes('line 2'), 'line 1 arrived together with line 2');

  const text = await page.textContent('#output');
  assert.match(text, /line 0\nline 1\nline 2\n/);
  assert.match(await page.textContent('#output .stderr'), /done on stderr/);
  assert.equal(await page.textContent('#exit-code'), '0');
  assert.match(await page.textContent('#duration'), /^\d+ ms$/);
}));

test('keeps state between runs and shows the value of the last expression', () => step('keep-state', async () => {
  await page.check('#keep-state');
  await page.fill('#code', 'x = 6 * 7');
  await page.click('#run');   // the status is "starting" once the click returns
  await page.waitForSelector('#run-status[data-status="ok"]', WAIT);
  await page.fill('#code', 'x');
  await page.click('#run');
  await page.waitForSelector('#run-status[data-status="ok"]', WAIT);
  assert.equal((await page.textContent('#output .result')).trim(), '42');
  await page.uncheck('#keep-state');
}));

test('types into the terminal and sees the shell answer', () => step('terminal', async () => {
  await page.waitForFunction(() => document.getElementById('term-status').textContent === 'ready', null, WAIT);
  // The prompt has been drawn: the shell reads what is typed.
  await page.waitForFunction(() => /\$\s*$/m.test(document.querySelector('#terminal .xterm-rows')?.textContent || ''), null, WAIT);
  await page.click('#terminal');
  await page.keyboard.type('echo hello-$((6*7))');
  await page.keyboard.press('Enter');
  // The command line itself reads hello-$((6*7)); only the shell prints hello-42.
  await page.waitForFunction(() => [...document.querySelectorAll('#terminal .xterm-rows > div')]
    .some((row) => row.textContent.trim() === 'hello-42'), null, WAIT);
  await page.screenshot({ path: path.join(OUT, 'terminal.png') });
}));

test('resizes the terminal with the window', () => step('resize', async () => {
  const before = await page.getAttribute('#terminal', 'data-size');
  const resized = page.waitForResponse((r) => /\/terminal\/[^/]+\/resize$/.test(r.url()), WAIT);
  await page.setViewportSize({ width: 1100, height: 700 });
  assert.equal((await resized).status(), 204);
  const size = await page.getAttribute('#terminal', 'data-size');
  assert.notEqual(size, before);
  // The shell inside sees the new size.
  await page.click('#terminal');
  await page.keyboard.type('stty size');
  await page.keyboard.press('Enter');
  await page.waitForFunction((want) => [...document.querySelectorAll('#terminal .xterm-rows > div')]
    .some((row) => row.textContent.trim() === want), size, WAIT);
  await page.setViewportSize({ width: 1400, height: 900 });
}));

test('uploads, lists and deletes a file in the sandbox', () => step('files', async () => {
  await page.setInputFiles('#files-upload', {
    name: 'from-browser.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the browser\n'),
  });
  const row = page.locator('#files-list tr', { hasText: 'from-browser.txt' });
  await row.waitFor(WAIT);
  assert.match(await row.textContent(), /23 B/);
  await page.screenshot({ path: path.join(OUT, 'files.png') });
  page.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached', ...WAIT });
}));

test('signs out and leaves no sandbox behind', () => step('sign-out', async () => {
  const sandboxId = await page.textContent('#sandbox-id');
  await page.click('#sign-out');
  await page.waitForSelector('body[data-state="signed-out"]', WAIT);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sandpipe.apiKey')), null);
  const res = await fetch(`http://${LISTEN}/sandboxes/${sandboxId}`, { headers: { 'X-API-Key': API_KEY } });
  assert.equal(res.status, 404);
}));
