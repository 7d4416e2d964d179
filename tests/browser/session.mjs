// tests/browser/session.mjs: what the console's browser tests share: the
// stack's address and key from the environment, a headless Chromium
// (Debian's) with a throwaway profile whose page logs what went wrong, and
// steps that leave a screenshot when they fail.
//
// Environment: SP_LISTEN, SP_API_KEY, SP_TEST_OUT (default tests/out),
// SP_CHROMIUM (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
// playwright-core is a devDependency of the console, installed in web/.
const { chromium } = createRequire(path.join(ROOT, 'web', 'package.json'))('playwright-core');

export const LISTEN = process.env.SP_LISTEN || '127.0.0.1:18080';
export const API_KEY = process.env.SP_API_KEY || '';
export const OUT = path.join(process.env.SP_TEST_OUT || path.join(ROOT, 'tests', 'out'), 'browser');
const CHROMIUM = process.env.SP_CHROMIUM || '/usr/bin/chromium';

const hideToken = (url) => url.replace(/access_token=[^&]+/, 'access_token=…');

// A browser with one page; close() prints what the page logged.
export async function openBrowser() {
  assert.ok(API_KEY, 'SP_API_KEY must be set');
  await mkdir(OUT, { recursive: true });
  const profile = await mkdtemp(path.join(tmpdir(), 'sp-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.method()} ${hideToken(r.url())} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) log.push(`http ${r.status()}: ${r.request().method()} ${hideToken(r.url())}`);
  });
  return {
    page,
    async close() {
      if (log.length) console.log('page log:\n  ' + log.join('\n  '));
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

// signInAndOpen(page, view): the console opened, signed in with the
// stack's key, and the view's tab clicked (waits up to wait ms a step).
export async function signInAndOpen(page, view, wait = 20000) {
  await page.goto(`http://${LISTEN}/`);
  await page.getByLabel('API key').fill(API_KEY);
  await page.click('#sign-in');
  await page.waitForSelector('body[data-state="signed-in"]', { timeout: wait });
  await page.click(`#view-${view}`);
}

// step(name, fn) runs fn; when it fails, a screenshot <prefix><name>.png
// of getPage() is kept and the failure goes on.
export function stepper(prefix, getPage) {
  return async (name, fn) => {
    try {
      await fn();
    } catch (err) {
      const page = getPage();
      if (page) await page.screenshot({ path: path.join(OUT, `${prefix}${name}.png`) }).catch(() => {});
      throw err;
    }
  };
}

// One browser for a test file: opened before its tests, closed after them
// (then cleanup(), if given, runs); onPage(page) hands the page over.
// Returns the file's step (screenshots named <prefix><step>.png).
export function useBrowser(prefix, onPage, cleanup) {
  let browser, page;
  before(async () => {
    browser = await openBrowser();
    page = browser.page;
    onPage(page);
  });
  after(async () => {
    if (browser) await browser.close();
    if (cleanup) await cleanup();
  });
  return stepper(prefix, () => page);
}
