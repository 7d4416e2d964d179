// tests/browser/workspaces.test.mjs: the console's Workspaces view in a
// real browser.
//
// Headless Chromium (as console.test.mjs) signs in and opens the
// Workspaces view. A hostile name is refused with the server's code; a
// workspace is created; "Open terminal" makes the console's sandbox on it
// and its shell in the mount, where a file is written; "Sync now" raises
// the workspace's version; deleting the workspace while held is shown as
// a conflict. The sandbox is deleted through the API; "Open terminal"
// again makes a new sandbox whose shell reads the file back. The console's
// sandbox becomes one of base (the Sandbox view), a file is written in its
// home, a snapshot of it is taken, a new console sandbox started from it
// reads that file too, and the snapshot and the workspace are deleted
// from the view. Screenshots go to $SP_TEST_OUT/browser/.
//
//   SP_LISTEN=127.0.0.1:18080 SP_API_KEY=spk_… node tests/browser/workspaces.test.mjs
//
// tests/integration/test_browser.py runs it as part of ./sandpipe test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { API_KEY, LISTEN, OUT, signInAndOpen, useBrowser } from './session.mjs';

const WAIT = { timeout: 30000 };
const SLOW = { timeout: 120000 };
const HEX = randomBytes(4).toString('hex');
const NAME = `bws-${HEX}`;

let page;
const step = useBrowser('failed-workspaces-', (p) => { page = p; });

function api(method, route) {
  return fetch(`http://${LISTEN}${route}`, { method, headers: { 'X-API-Key': API_KEY } });
}

const row = (name) => page.locator(`#ws-list tr[data-workspace="${name}"]`);
const cellText = (name, i) => row(name).locator('td').nth(i).textContent();

// The terminal is ready (a new one: its status went through "starting")
// and its prompt is drawn.
async function terminalReady() {
  await page.waitForSelector('#workspace:not([hidden])', WAIT);
  await page.waitForFunction(() => document.getElementById('term-status').textContent === 'ready', null, SLOW);
  await page.waitForFunction(() => /\$\s*$/m.test(document.querySelector('#terminal .xterm-rows')?.textContent || ''), null, WAIT);
}

// typeLine(line): typed into the terminal, then Enter.
async function typeLine(line) {
  await page.click('#terminal');
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

// A row of the terminal reads exactly text (what a command printed).
async function terminalShows(text) {
  await page.waitForFunction((want) => [...document.querySelectorAll('#terminal .xterm-rows > div')]
    .some((r) => r.textContent.trim() === want), text, WAIT);
}

async function openWorkspacesView() {
  await page.click('#view-workspaces');
  await page.waitForSelector('#workspaces-view:not([hidden])', WAIT);
}

test('signs in and opens the Workspaces view', () => step('open', async () => {
  const js = await fetch(`http://${LISTEN}/workspaces.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  await signInAndOpen(page, 'workspaces');
  await page.waitForSelector('#workspaces-view:not([hidden])', WAIT);
  await page.waitForSelector('#ws-list tr', WAIT);
}));

test('a name climbing out is refused with its code', () => step('bad-name', async () => {
  await page.fill('#ws-name', '../etc');
  await page.click('#ws-create');
  await page.waitForSelector('#ws-error[data-code="invalid_argument"]:not([hidden])', WAIT);
  assert.equal(await row('../etc').count(), 0);
}));

test('creates a workspace', () => step('create', async () => {
  await page.fill('#ws-name', NAME);
  await page.click('#ws-create');
  await row(NAME).waitFor(WAIT);
  assert.equal(await page.isHidden('#ws-error'), true);
  assert.equal((await cellText(NAME, 3)).trim(), '');
}));

let firstSandbox;
test('opens a terminal on it and writes a file in its mount', () => step('write', async () => {
  const before = await page.textContent('#sandbox-id');
  await row(NAME).locator('.ws-open').click();
  await page.waitForFunction((old) => document.getElementById('sandbox-id').textContent !== old, before, SLOW);
  firstSandbox = await page.textContent('#sandbox-id');
  await terminalReady();
  await typeLine('pwd');
  await terminalShows('/workspace/files');
  await typeLine(`printf 'ws-%s\\n' ${HEX} > note.txt; cat note.txt`);
  await terminalShows(`ws-${HEX}`);
}));

test('syncs it now; deleting it while held is a conflict', () => step('sync', async () => {
  await openWorkspacesView();
  await page.waitForFunction((n) => document.getElementById('ws-held').textContent.includes(n), NAME, WAIT);
  assert.match(await cellText(NAME, 3), /the console's/);
  const version = (await cellText(NAME, 2)).trim();
  await page.click('#ws-sync');
  await page.waitForFunction(({ n, v }) => {
    const tr = document.querySelector(`#ws-list tr[data-workspace="${n}"]`);
    return tr && tr.children[2].textContent.trim() !== v;
  }, { n: NAME, v: version }, WAIT);
  page.once('dialog', (d) => d.accept());
  await row(NAME).locator('.ws-delete').click();
  await page.waitForSelector('#ws-error[data-code="conflict"]:not([hidden])', WAIT);
  await page.screenshot({ path: path.join(OUT, 'workspaces.png') });
}));

test('a new sandbox on it, after the first is deleted, reads the file', () => step('reopen', async () => {
  const res = await api('DELETE', `/sandboxes/${firstSandbox}`);
  assert.equal(res.status, 204);
  await page.click('#ws-refresh');
  await page.waitForFunction((n) => {
    const tr = document.querySelector(`#ws-list tr[data-workspace="${n}"]`);
    return tr && tr.children[3].textContent.trim() === '';
  }, NAME, WAIT);
  await row(NAME).locator('.ws-open').click();
  await page.waitForFunction((old) => document.getElementById('sandbox-id').textContent !== old, firstSandbox, SLOW);
  await terminalReady();
  await typeLine('cat note.txt');
  await terminalShows(`ws-${HEX}`);
}));

test('a snapshot of a base sandbox, and a new sandbox from it', () => step('snapshot', async () => {
  // The stack's default is the host view, which has no layer to keep: the
  // console's sandbox becomes one of base (the workspace's is deleted).
  const onWorkspace = await page.textContent('#sandbox-id');
  await page.click('#view-sandbox');
  await page.selectOption('#new-template', 'base');
  await page.click('#new-sandbox');
  await page.waitForFunction((old) => document.getElementById('sandbox-id').textContent !== old, onWorkspace, SLOW);
  assert.equal(await page.textContent('#sandbox-template'), 'base');
  await page.click('#view-workspace');
  await terminalReady();
  await typeLine(`printf 'snap-%s\\n' ${HEX} > ~/snap.txt; cat ~/snap.txt`);
  await terminalShows(`snap-${HEX}`);
  await openWorkspacesView();
  await page.click('#snap-take');
  const snap = page.locator('#snap-list tr[data-snapshot]');
  await snap.first().waitFor(SLOW);
  const id = await snap.first().getAttribute('data-snapshot');
  assert.match(id, /^snp_/);
  const before = await page.textContent('#sandbox-id');
  await snap.first().locator('.snap-start').click();
  await page.waitForFunction((old) => document.getElementById('sandbox-id').textContent !== old, before, SLOW);
  await terminalReady();
  await typeLine('cat ~/snap.txt');
  await terminalShows(`snap-${HEX}`);

  await openWorkspacesView();
  page.once('dialog', (d) => d.accept());
  await page.locator(`#snap-list tr[data-snapshot="${id}"] .snap-delete`).click();
  await page.waitForSelector(`#snap-list tr[data-snapshot="${id}"]`, { state: 'detached', ...WAIT });
  assert.equal((await api('GET', `/snapshots/${id}`)).status, 404);
}));

test('deletes the workspace once no sandbox holds it', () => step('delete', async () => {
  // The sandbox the snapshot's replaced is deleted after the new one
  // exists (its workspace synced first): its hold ends with it.
  await page.waitForFunction(async (n) => {
    const tr = document.querySelector(`#ws-list tr[data-workspace="${n}"]`);
    if (tr && tr.children[3].textContent.trim() === '') return true;
    document.getElementById('ws-refresh').click();
    await new Promise((r) => setTimeout(r, 300));
    return false;
  }, NAME, SLOW);
  page.once('dialog', (d) => d.accept());
  await row(NAME).locator('.ws-delete').click();
  await row(NAME).waitFor({ state: 'detached', ...WAIT });
  assert.equal((await api('GET', `/workspaces/${NAME}`)).status, 404);
}));
