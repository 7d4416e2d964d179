// tests/browser/chat.test.mjs: the console's Chat view in headless
// Chromium, against a model stand-in (tests/llm/stand_in.py, scripted by
// the message: "RUN <code>" asks for a python_interpreter call, then
// quotes its result). Signs in, uploads a CSV into the chat's session,
// asks for code that reads it and draws a chart: the tool's code, its
// output, the chart as an image and the streamed answer must show; a
// second message uses a variable of the first (the session's state);
// a model failure shows as an error. Screenshots go to
// $SP_TEST_OUT/browser/.
//
// Run by tests/integration/test_chat.py (which points sp-chat at the
// stand-in); environment as console.test.mjs's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';

import { OUT, signInAndOpen, useBrowser } from './session.mjs';

const WAIT = { timeout: 60000 };
let page;
const step = useBrowser('failed-chat-', (p) => { page = p; });
const last = () => page.locator('.chat-assistant').last();

async function send(text) {
  const before = await page.locator('.chat-assistant[data-done="true"]').count();
  await page.fill('#chat-input', text);
  await page.click('#chat-send');
  await page.waitForFunction((n) => document.querySelectorAll('.chat-assistant[data-done="true"]').length > n,
    before, WAIT);
}

test('signs in and opens the chat', () => step('open', async () => {
  await signInAndOpen(page, 'chat', WAIT.timeout);
  await page.waitForSelector('#chat-view:not([hidden])', WAIT);
}));

test('uploads a file into the chat session', () => step('upload', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sp-chat-'));
  const file = path.join(dir, 'points.csv');
  await writeFile(file, 'x,y\n1,3\n2,1\n3,2\n');
  await page.setInputFiles('#chat-upload', file);
  await page.waitForSelector('#chat-files li', WAIT);
  assert.match(await page.textContent('#chat-files'), /\/uploaded_files\/points\.csv/);
}));

test('a tool call shows its code, output, chart and the answer', () => step('tool', async () => {
  await send("RUN import pandas as pd\nimport matplotlib\nmatplotlib.use('Agg')\n" +
    "import matplotlib.pyplot as plt\ndf = pd.read_csv('/uploaded_files/points.csv')\n" +
    "print('rows', len(df))\nplt.plot(df.x, df.y)\nplt.show()");
  const msg = last();
  assert.match(await msg.locator('.chat-code').textContent(), /read_csv/);
  assert.equal(await msg.locator('.chat-output').textContent(), 'rows 3\n');
  const img = msg.locator('img.chat-chart');
  await img.waitFor(WAIT);
  assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth > 0));
  assert.match(await msg.locator('.chat-text').textContent(), /^TOOL SAID: stdout:\nrows 3/);
  assert.equal(await msg.getAttribute('data-finish'), 'stop');
  await page.screenshot({ path: path.join(OUT, 'chat.png') });
}));

test("the session keeps the code's state", () => step('state', async () => {
  await send('RUN print(len(df) * 10)');
  assert.equal(await last().locator('.chat-output').textContent(), '30\n');
}));

test("a model failure shows as an error", () => step('error', async () => {
  await send('FAIL500');
  assert.match(await last().locator('.chat-error').textContent(), /HTTP 500/);
  await page.click('#sign-out');
}));
