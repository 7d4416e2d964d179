// tests/browser/templates.test.mjs: the console's Templates and Sandbox
// views in a real browser.
//
// Headless Chromium (as console.test.mjs) signs in, lists the templates
// (base is there; deleting it is refused with forbidden), has a spec with
// a bad line refused with that line, builds a small template whose RUN
// line must show in the log while the build is still going and whose
// status must become ready, opens a sandbox of it from the Sandbox view
// (its template, its disk as a bar, the charts filling, a port that
// listens inside it as a link to its preview URL), sees the
// template's deletion refused while that sandbox uses it (conflict), moves
// to a sandbox of the server's default, deletes the template and signs
// out. Screenshots go to $SP_TEST_OUT/browser/.
//
//   SP_LISTEN=127.0.0.1:18080 SP_API_KEY=spk_… node tests/browser/templates.test.mjs
//
// Environment as console.test.mjs's. tests/integration/test_browser.py
// runs it as part of ./sandpipe test; the stack must have built `base`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { API_KEY, LISTEN, OUT, signInAndOpen, useBrowser } from './session.mjs';

const WAIT = { timeout: 20000 };
const BUILD_WAIT = { timeout: 400000 };   // a build copies base's tree once

const NAME = `browser-${randomBytes(3).toString('hex')}`;
const SPEC = 'FROM base\nRUN echo built-by-browser\n';

let page;

// Whatever a failed step left: the template is not kept.
const step = useBrowser('failed-templates-', (p) => { page = p; }, () =>
  fetch(`http://${LISTEN}/templates/${NAME}`, { method: 'DELETE', headers: { 'X-API-Key': API_KEY } }).catch(() => {}));

const shot = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`) });
const row = (name) => page.locator('#tpl-list tr', { has: page.getByRole('button', { name, exact: true }) });

async function deleteSelected() {
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
}

test('signs in and lists the templates, base among them', () => step('list', async () => {
  await signInAndOpen(page, 'templates', WAIT.timeout);
  await row('base').waitFor(WAIT);
  await row('host').waitFor(WAIT);
  await row('base').click();
  await page.waitForSelector('#tpl-detail dd[data-term="workdir"]', WAIT);
  assert.equal(await page.textContent('#tpl-detail dd[data-term="workdir"]'), '/home/user');
  assert.equal(await page.textContent('#tpl-detail dd[data-term="user"]'), 'user');
  // The picker of the Sandbox view chose base.
  assert.equal(await page.inputValue('#new-template'), 'base');
}));

test('refuses to delete a built-in template, with the code', () => step('forbidden', async () => {
  await deleteSelected();
  await page.waitForSelector('#tpl-error[data-code="forbidden"]:not([hidden])', WAIT);
  assert.match(await page.textContent('#tpl-error'), /Cannot delete base/);
  await shot('templates');
}));

test('shows the line of a bad spec', () => step('bad-spec', async () => {
  await page.getByLabel('Template name').fill(NAME);
  await page.getByLabel('Spec', { exact: true }).fill('FROM base\nEXPOSE 80\n');
  await page.getByRole('button', { name: 'Build', exact: true }).click();
  await page.waitForSelector('#build-error[data-code="invalid_argument"]:not([hidden])', WAIT);
  assert.match(await page.textContent('#build-error'), /line 2/);
  assert.equal(await page.getAttribute('#build-status', 'data-status'), 'refused');
}));

test('builds a template and shows its log as it is printed', () => step('build', async () => {
  // Each change of the log is recorded with the build status of that
  // moment: the RUN line must be seen while the build is still going.
  await page.evaluate(() => {
    window.buildLog = [];
    const log = document.getElementById('build-log');
    new MutationObserver(() => window.buildLog.push({
      text: log.textContent, status: document.getElementById('build-status').dataset.status,
    })).observe(log, { childList: true, subtree: true, characterData: true });
  });
  await page.getByLabel('Spec', { exact: true }).fill(SPEC);
  await page.getByRole('button', { name: 'Build', exact: true }).click();
  await page.waitForSelector('#build-status[data-status="building"]', WAIT);
  await page.waitForFunction(() => document.getElementById('build-log').textContent.includes('built-by-browser'),
    null, BUILD_WAIT);
  await shot('build-live');
  await page.waitForSelector('#build-status[data-status="ready"]', BUILD_WAIT);
  assert.ok(await page.locator('#build-error').isHidden());
  const seen = (await page.evaluate(() => window.buildLog)).find((s) => s.text.includes('built-by-browser'));
  assert.equal(seen.status, 'building', 'the RUN line was shown only after the build had ended');
  // The list is refreshed and the new template is shown.
  await row(NAME).waitFor(WAIT);
  await page.waitForFunction((n) => document.getElementById('tpl-detail-name').textContent === n, NAME, WAIT);
  await page.waitForSelector('#tpl-detail dd[data-term="from"]', WAIT);
  assert.equal(await page.textContent('#tpl-detail dd[data-term="from"]'), 'base');
  await shot('build');
}));

test('opens a sandbox of the new template and shows its disk and usage', () => step('sandbox', async () => {
  await page.getByRole('button', { name: 'New sandbox of it' }).click();
  await page.waitForSelector('body[data-view="sandbox"]', WAIT);
  assert.equal(await page.getByLabel('Template', { exact: true }).inputValue(), NAME);
  await page.getByLabel('Disk (MB)').fill('256');
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await page.waitForFunction((n) => document.getElementById('sandbox-template').textContent === n, NAME, WAIT);
  const id = await page.textContent('#sandbox-id');
  await page.waitForFunction((i) => document.getElementById('sbx-id').textContent === i, id, WAIT);
  await page.waitForSelector('#sbx-facts dd[data-term="template"]', WAIT);
  await page.waitForFunction((n) => document.querySelector('#sbx-facts dd[data-term="template"]')?.textContent === n, NAME, WAIT);
  // The disk bar: some of a 256 MB disk in use.
  await page.waitForSelector('#disk-bar[aria-valuenow]', WAIT);
  const total = Number(await page.getAttribute('#disk-bar', 'aria-valuemax'));
  const used = Number(await page.getAttribute('#disk-bar', 'aria-valuenow'));
  assert.ok(total > 200 * 1024 * 1024 && total <= 256 * 1024 * 1024, `disk total ${total}`);
  assert.ok(used > 0 && used < total, `disk used ${used}`);
  assert.match(await page.textContent('#disk-text'), /of \d+(\.\d)? MiB/);
  await page.waitForFunction(() => document.querySelector('#disk-bar .fill').getBoundingClientRect().width > 0, null, WAIT);
  // The workspace follows: the files of the template's workdir, a
  // terminal in it. Some CPU and disk, then the charts fill (from the
  // metrics route, or the page's own samples every 5 s).
  await page.click('#view-workspace');
  await page.waitForFunction(() => document.getElementById('files-path').textContent === '/home/user', null, WAIT);
  await page.waitForFunction(() => document.getElementById('term-status').textContent === 'ready', null, WAIT);
  await page.waitForFunction(() => /\$\s*$/m.test(document.querySelector('#terminal .xterm-rows')?.textContent || ''), null, WAIT);
  await page.click('#terminal');
  await page.keyboard.type("head -c 30000000 /dev/urandom > big; timeout 3 sh -c 'while :; do :; done'; echo load-$((6*7))");
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('#terminal .xterm-rows > div')]
    .some((r) => r.textContent.trim() === 'load-42'), null, WAIT);
  await page.click('#files-refresh');
  await page.locator('#files-list tr', { hasText: 'big' }).waitFor(WAIT);
  await page.click('#view-sandbox');
  await page.waitForFunction(() => ['chart-cpu', 'chart-mem', 'chart-disk']
    .every((c) => Number(document.getElementById(c).dataset.points) >= 2), null, { timeout: 30000 });
  assert.notEqual(await page.textContent('#chart-mem figcaption b'), 'no samples yet');
  await shot('sandbox');
}));

test('lists a port that listens in the sandbox and opens its preview URL', () => step('ports', async () => {
  const id = await page.textContent('#sandbox-id');
  const r = await fetch(`http://${LISTEN}/sandboxes/${id}/commands`, {
    method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ argv: ['python3', '-m', 'http.server', '8765', '--bind', '127.0.0.1'], background: true }),
  });
  assert.equal(r.status, 202, await r.text());
  const link = page.locator('#sbx-ports a', { hasText: '8765' });
  for (let i = 0; i < 40 && !(await link.count()); i++) {
    await page.click('#sbx-refresh');
    await page.waitForTimeout(250);
  }
  await link.waitFor(WAIT);
  const href = await link.getAttribute('href');
  assert.match(href, new RegExp(`^http://8765-${id}\\.`));
  // The first visit carries the token; the proxy answers with a cookie
  // for that host and the page the sandbox serves.
  const tab = await page.context().newPage();
  try {
    await tab.goto(href, WAIT);
    await tab.waitForFunction(() => /Directory listing/.test(document.body.textContent), null, WAIT);
    assert.ok(!tab.url().includes('token='), tab.url());
  } finally {
    await tab.close();
  }
  await shot('ports');
}));

test('refuses to delete a template in use, then deletes it', () => step('delete', async () => {
  await page.click('#view-templates');
  await row(NAME).click();
  await page.waitForFunction((n) => document.getElementById('tpl-detail-name').textContent === n, NAME, WAIT);
  await deleteSelected();
  await page.waitForSelector('#tpl-error[data-code="conflict"]:not([hidden])', WAIT);
  assert.match(await page.textContent('#tpl-error'), /a sandbox still uses it/);
  await shot('templates-in-use');
  // A sandbox of the server's default replaces the template's.
  await page.click('#view-sandbox');
  await page.getByLabel('Template', { exact: true }).selectOption('');
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await page.waitForFunction((n) => document.getElementById('sandbox-template').textContent !== n, NAME, WAIT);
  // The old sandbox's deletion is on its way: the template may stay in use
  // for a moment.
  await page.click('#view-templates');
  await row(NAME).click();
  for (let i = 0; ; i++) {
    await deleteSelected();
    try {
      await row(NAME).waitFor({ state: 'detached', timeout: 5000 });
      break;
    } catch (err) {
      if (i === 5) throw err;
    }
  }
  const res = await fetch(`http://${LISTEN}/templates/${NAME}`, { headers: { 'X-API-Key': API_KEY } });
  assert.equal(res.status, 404);
}));

test('signs out and leaves no sandbox behind', () => step('sign-out', async () => {
  const sandboxId = await page.textContent('#sandbox-id');
  await page.click('#sign-out');
  await page.waitForSelector('body[data-state="signed-out"]', WAIT);
  const res = await fetch(`http://${LISTEN}/sandboxes/${sandboxId}`, { headers: { 'X-API-Key': API_KEY } });
  assert.equal(res.status, 404);
}));
