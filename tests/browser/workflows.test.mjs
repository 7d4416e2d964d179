// tests/browser/workflows.test.mjs: the console's Workflows view in a
// real browser.
//
// Headless Chromium (as console.test.mjs) signs in, opens the Workflows
// view, runs a Python workflow whose code has a syntax error (the run
// ends failed, its finding shows file and line, the run step stays
// pending), then one that prints a marker (it ends succeeded, the marker
// in its log), and finds both in the list. Screenshots go to
// $SP_TEST_OUT/browser/.
//
//   SP_LISTEN=127.0.0.1:18080 SP_API_KEY=spk_… node tests/browser/workflows.test.mjs
//
// tests/integration/test_browser.py runs it as part of ./sandpipe test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { API_KEY, LISTEN, OUT, useBrowser } from './session.mjs';

const WAIT = { timeout: 20000 };
const RUN_WAIT = { timeout: 120000 };
const MARKER = `browser-wf-${randomBytes(4).toString('hex')}`;

let page;
const step = useBrowser('failed-workflows-', (p) => { page = p; });

async function runCode(code) {
  await page.fill('#wf-code', code);
  await page.click('#wf-start');
  await page.waitForSelector('#wf-detail-id:not(:empty)', WAIT);
}

test('signs in and opens the Workflows view', () => step('open', async () => {
  await page.goto(`http://${LISTEN}/`);
  await page.getByLabel('API key').fill(API_KEY);
  await page.click('#sign-in');
  await page.waitForSelector('body[data-state="signed-in"]', WAIT);
  await page.click('#view-workflows');
  await page.waitForSelector('#workflows-view:not([hidden])', WAIT);
}));

test('a syntax error: failed, its finding shown, nothing run', () => step('syntax', async () => {
  await runCode(`print('${MARKER}')\ndef f(:\n`);
  await page.waitForSelector('#wf-detail-status[data-status="failed"]', RUN_WAIT);
  await page.waitForSelector('#wf-findings li', WAIT);
  assert.match(await page.textContent('#wf-findings li'), /main\.py:2: .*SyntaxError/);
  const run = page.locator('#wf-steps tr', { hasText: /^run/ });
  assert.match(await run.textContent(), /pending/);
  assert.doesNotMatch(await page.textContent('#wf-log'), new RegExp(MARKER));
}));

test('a good run: succeeded, its output in the log', () => step('good', async () => {
  await runCode(`print('${MARKER}')\n`);
  await page.waitForSelector('#wf-detail-status[data-status="succeeded"]', RUN_WAIT);
  await page.waitForFunction((m) => document.getElementById('wf-log').textContent.includes(m),
    MARKER, WAIT);
  assert.ok(await page.locator('#wf-list tr').count() >= 2);
  await page.screenshot({ path: path.join(OUT, 'workflows.png') });
}));
