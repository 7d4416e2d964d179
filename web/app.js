// web/app.js: the web console's workspace and its wiring. What every part
// shares (API calls, the session's tokens, event streams, small helpers)
// is in lib.js; the Templates view in templates.js; the Sandbox view
// (usage, charts, a new sandbox of a chosen template) in sandbox.js; the
// Chat view in chat.js.
// Workflows view (runs, one run's steps and logs) in workflows.js; the
// Workspaces view (workspaces and snapshots) in workspaces.js.
//
// Read top to bottom:
//   1. Signing out.
//   2. The console's sandbox: one per browser session, shared by runs, the
//      terminal and the file panel; replaced by one of another template.
//   3. Run panel: POST /execute-stream, then the execution's events.
//   4. Terminal: xterm.js on POST /terminal and its events; keystrokes are
//      batched into POST /terminal/{id}/input.
//   5. File panel: list, upload, download and delete under /workspace (or
//      the workdir of the sandbox's template).
//   6. Wiring: views, buttons, sign in and out, start-up.

import { Terminal } from '/vendor/xterm/lib/xterm.mjs';
import { FitAddon } from '/vendor/xterm-addon-fit/lib/addon-fit.mjs';
import {
  $, KEY_STORE, request, auth, signIn, openStream,
  notice, showError, button, formatSize, formatTime,
} from '/lib.js';
import * as templates from '/templates.js';
import * as sandboxView from '/sandbox.js';
import * as chatView from '/chat.js';
import * as workflows from '/workflows.js';
import * as workspaces from '/workspaces.js';

const SANDBOX_STORE = 'sandpipe.sandboxId';
const SANDBOX_TIMEOUT_S = 1800;       // asked for at creation and on each keep-alive
const SANDBOX_KEEPALIVE_MS = 5 * 60 * 1000;
const INPUT_BATCH_MS = 8;             // keystrokes typed this close together go in one POST
const INPUT_CHUNK = 16 * 1024;        // the server takes at most 64 KiB per input

// ---------------------------------------------------------------------
// 1. Signing out

async function signOut() {
  const refresh = auth.refresh;
  const terminalClosed = closeTerminal();
  stopRunStream();
  clearInterval(sandbox.keepAlive);
  try {
    await terminalClosed;
    if (sandbox.id) await request('DELETE', `/sandboxes/${sandbox.id}`);
    if (refresh) await request('POST', '/api/auth/revoke', { json: { refresh_token: refresh } });
  } catch { /* signing out locally is what matters */ }
  clearTimeout(auth.timer);
  Object.assign(auth, { apiKey: null, access: null, refresh: null, expiresAt: 0 });
  sandbox.id = null;
  chatView.reset();
  sessionStorage.removeItem(KEY_STORE);
  sessionStorage.removeItem(SANDBOX_STORE);
  $('api-key').value = '';
  showSignedOut();
}

// ---------------------------------------------------------------------
// 2. The console's sandbox

const sandbox = { id: null, keepAlive: 0 };

// Reuse this browser session's sandbox if it still exists (a reload),
// else make one. Its timeout is pushed back every few minutes.
async function ensureSandbox() {
  const known = sessionStorage.getItem(SANDBOX_STORE);
  if (known) {
    try {
      const doc = await request('POST', `/sandboxes/${known}/timeout`, { json: { timeout: SANDBOX_TIMEOUT_S } });
      return setSandbox(doc);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  return setSandbox(await request('POST', '/sandboxes', { json: { timeout: SANDBOX_TIMEOUT_S } }));
}

// setSandbox(doc): the sandbox of this answer (GET or POST /sandboxes) is
// the console's. Returns its id.
function setSandbox(doc) {
  sandbox.id = doc.id;
  term.cwd = null;
  run.contexts = {};
  sessionStorage.setItem(SANDBOX_STORE, doc.id);
  $('sandbox-id').textContent = doc.id;
  $('sandbox-template').textContent = doc.template || 'host';
  clearInterval(sandbox.keepAlive);
  sandbox.keepAlive = setInterval(keepSandboxAlive, SANDBOX_KEEPALIVE_MS);
  sandboxView.setSandbox(doc.id);
  files.root = files.path = FILES_ROOT;
  files.rootKnown = filesRootOf(doc.template).then((root) => {
    if (sandbox.id === doc.id && root !== files.root) files.root = files.path = root;
  });
  return doc.id;
}

// replaceSandbox(body, cwd): a new sandbox (POST /sandboxes with body:
// the Sandbox view's template, network and limits, or the Workspaces
// view's workspace or snapshot) becomes the console's, its terminal's
// shell starting in cwd (null: the shell's own default); the old one is
// deleted once the new one exists, so that a refused request (an unknown
// template, a workspace held elsewhere, too many sandboxes) loses nothing.
async function replaceSandbox(body, cwd = null) {
  const made = await request('POST', '/sandboxes', { json: { timeout: SANDBOX_TIMEOUT_S, ...body } });
  const old = sandbox.id;
  const terminalClosed = closeTerminal();
  stopRunStream();
  setSandbox(made);
  term.cwd = cwd;
  notice(`Sandbox ${made.id} of the template ${made.template || 'host'} is the console's now.`);
  await terminalClosed;
  if (old) request('DELETE', `/sandboxes/${old}`).catch(() => {});
  await Promise.all([openTerminal(), listFiles()]);
}

async function keepSandboxAlive() {
  try {
    await request('POST', `/sandboxes/${sandbox.id}/timeout`, { json: { timeout: SANDBOX_TIMEOUT_S } });
  } catch (err) {
    if (err.status !== 404) return showError(err);
    // It ended (timeout, restart): start over with a new one.
    sessionStorage.removeItem(SANDBOX_STORE);
    await ensureSandbox();
    notice('The sandbox had ended; a new one was made.');
    openTerminal().catch(showError);
    listFiles().catch(showError);
  }
}

// ---------------------------------------------------------------------
// 3. Run panel

const RUN_EVENTS = ['status', 'stdout', 'stderr', 'display', 'result'];
const run = { id: null, stream: null, contexts: {} };

async function loadLanguages() {
  const { languages } = await request('GET', '/languages');
  const select = $('language');
  select.replaceChildren(...languages.map((l) => new Option(`${l.name} ${l.version}`, l.name)));
  if (languages.some((l) => l.name === 'python')) select.value = 'python';
}

async function startRun() {
  if ($('run').disabled) return;   // a run is starting or going (Ctrl+Enter)
  $('output').replaceChildren();
  setRunInfo('starting', null, null);
  $('run').disabled = true;
  try {
    const language = $('language').value;
    const body = { code: $('code').value, language, sandbox_id: sandbox.id };
    if ($('keep-state').checked) body.context_id = await contextFor(language);
    let exe;
    try {
      exe = await request('POST', '/execute-stream', { json: body });
    } catch (err) {
      if (!body.context_id || err.status !== 404) throw err;
      // The context ended (it lives with its sandbox): make a new one.
      delete run.contexts[language];
      body.context_id = await contextFor(language);
      exe = await request('POST', '/execute-stream', { json: body });
    }
    run.id = exe.executionId;
    $('cancel').disabled = false;
    const id = run.id;
    run.stream = openStream(`/executions/${id}/events`, RUN_EVENTS, onRunEvent, {
      finalType: 'result',
      onGiveUp: () => pollRun(id),
    });
  } catch (err) {
    setRunInfo('error', null, null);
    appendOutput('error', err.message + '\n');
    endRun();
  }
}

// With "keep state", runs of a language share one execution context in the
// sandbox: variables and imports survive between runs, as in a notebook.
async function contextFor(language) {
  if (!run.contexts[language]) {
    const ctx = await request('POST', `/sandboxes/${sandbox.id}/contexts`, { json: { language } });
    run.contexts[language] = ctx.id;
  }
  return run.contexts[language];
}

function onRunEvent(type, ev) {
  switch (type) {
  case 'status':
    setRunInfo(ev.status);
    if (ev.message) appendOutput('info', ev.message + '\n');
    break;
  case 'stdout':
  case 'stderr':
    appendOutput(type, ev.data);
    break;
  case 'display':
    appendDisplay(ev.mime, ev.data);
    break;
  case 'result':
    setRunInfo(ev.data.status, ev.data.exitCode, ev.duration);
    if (ev.data.truncated) appendOutput('info', '[output truncated]\n');
    endRun();
    break;
  case 'error':
    appendOutput('error', (ev.message || ev.error || JSON.stringify(ev)) + '\n');
    break;
  }
}

// Without the event stream (the relay is down), the result is polled
// instead: the output then appears when the run ends, not as it is
// printed, and replaces whatever the stream had shown.
async function pollRun(id) {
  setRunInfo('running (no live output)');
  try {
    let exe;
    for (;;) {
      exe = await request('GET', `/executions/${id}`);
      if (run.id !== id) return;
      if (exe.status !== 'running' && exe.status !== 'queued') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    $('output').replaceChildren();
    appendOutput('stdout', exe.output || '');
    appendOutput('stderr', exe.error || '');
    for (const r of exe.results || []) {
      for (const [mime, data] of Object.entries(r)) appendDisplay(mime, data);
    }
    setRunInfo(exe.status, exe.exitCode, exe.duration);
  } catch (err) {
    showError(err);
  }
  if (run.id === id) endRun();
}

async function cancelRun() {
  if (!run.id) return;
  try {
    await request('POST', `/executions/${run.id}/cancel`);
  } catch (err) {
    showError(err);
  }
}

function stopRunStream() {
  if (run.stream) run.stream.close();
  endRun();
}

function endRun() {
  run.id = null;
  run.stream = null;
  $('run').disabled = false;
  $('cancel').disabled = true;
  listFiles().catch(() => {});   // the code may have written files
}

function setRunInfo(status, exitCode, duration) {
  const el = $('run-status');
  el.textContent = status;
  el.dataset.status = status;
  if (exitCode !== undefined) $('exit-code').textContent = exitCode ?? '–';
  if (duration !== undefined) $('duration').textContent = duration == null ? '–' : `${duration} ms`;
}

// Output keeps its order; consecutive chunks of one stream share a span.
function appendOutput(kind, text) {
  if (!text) return;
  const out = $('output');
  const last = out.lastElementChild;
  const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
  if (last && last.tagName === 'SPAN' && last.className === kind) {
    last.append(text);
  } else {
    const span = document.createElement('span');
    span.className = kind;
    span.textContent = text;
    out.append(span);
  }
  if (stick) out.scrollTop = out.scrollHeight;
}

// Rich output: images (base64) inline, plain text (as it is) as text;
// anything else, HTML included, is only named, never rendered.
function appendDisplay(mime, data) {
  const out = $('output');
  if (/^image\/(png|jpeg|gif|webp|svg\+xml)$/.test(mime)) {
    const img = document.createElement('img');
    img.alt = mime;
    img.src = `data:${mime};base64,${data}`;
    out.append(img);
  } else if (mime === 'text/plain') {
    appendOutput('result', data.endsWith('\n') ? data : data + '\n');
  } else {
    appendOutput('info', `[${mime} output not shown]\n`);
  }
  out.scrollTop = out.scrollHeight;
}

// ---------------------------------------------------------------------
// 4. Terminal

const TERMINAL_EVENTS = ['status', 'ready', 'output', 'exit'];
const term = {
  xterm: null, fit: null, id: null, stream: null, cwd: null,
  queue: '', timer: 0, sending: false, resizeTimer: 0,
};

function setupTerminal() {
  term.xterm = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace',
    fontSize: 13,
    scrollback: 5000,
    theme: { background: '#14171c', foreground: '#d8dee9', cursor: '#8fbcbb' },
  });
  term.fit = new FitAddon();
  term.xterm.loadAddon(term.fit);
  term.xterm.open($('terminal'));
  term.xterm.onData(queueInput);
  term.xterm.onResize(({ cols, rows }) => {
    $('terminal').dataset.size = `${rows} ${cols}`;
    clearTimeout(term.resizeTimer);
    term.resizeTimer = setTimeout(() => sendResize(cols, rows), 150);
  });
  // Follows the window and any layout change of the panel.
  new ResizeObserver(() => fitTerminal()).observe($('terminal'));
}

function fitTerminal() {
  if (term.fit && $('terminal').offsetParent !== null) term.fit.fit();
}

async function openTerminal() {
  closeTerminal();
  fitTerminal();
  term.xterm.reset();
  setTermStatus('starting');
  const made = await request('POST', '/terminal', {
    json: { cols: term.xterm.cols, rows: term.xterm.rows, sandbox_id: sandbox.id, ...(term.cwd && { cwd: term.cwd }) },
  });
  term.id = made.id;
  $('terminal').dataset.size = `${made.rows} ${made.cols}`;
  term.stream = openStream(`/terminal/${made.id}/events`, TERMINAL_EVENTS, onTerminalEvent, {
    finalType: 'exit',
    onGiveUp: () => {
      setTermStatus('no event stream');
      term.xterm.write('\x1b[31m[the terminal\'s event stream is unavailable]\x1b[0m\r\n');
    },
  });
}

function onTerminalEvent(type, ev) {
  switch (type) {
  case 'status':
    setTermStatus(ev.status);
    break;
  case 'ready':
    setTermStatus('ready');
    term.xterm.focus();
    break;
  case 'output':
    term.xterm.write(ev.data);
    break;
  case 'exit':
    term.xterm.write(`\r\n\x1b[2m[exited with code ${ev.code}]\x1b[0m\r\n`);
    setTermStatus('exited');
    term.id = null;
    break;
  case 'error':
    term.xterm.write(`\r\n\x1b[31m${ev.message || 'terminal error'}\x1b[0m\r\n`);
    break;
  }
}

function setTermStatus(text) {
  $('term-status').textContent = text;
}

// Keystrokes wait a few milliseconds, and while one POST is on its way
// the next ones gather; the order is kept because only one POST is ever
// in flight.
function queueInput(data) {
  if (!term.id) return;
  term.queue += data;
  if (!term.timer) term.timer = setTimeout(flushInput, INPUT_BATCH_MS);
}

async function flushInput() {
  term.timer = 0;
  if (term.sending || !term.queue || !term.id) return;
  const data = term.queue.slice(0, INPUT_CHUNK);
  term.queue = term.queue.slice(data.length);
  term.sending = true;
  try {
    await request('POST', `/terminal/${term.id}/input`, { json: { data } });
  } catch (err) {
    if (err.status === 409 || err.status === 404) {
      setTermStatus('ended');
      term.id = null;
      term.queue = '';
    } else {
      showError(err);
    }
  } finally {
    term.sending = false;
  }
  if (term.queue) flushInput();
}

function sendResize(cols, rows) {
  if (!term.id) return;
  request('POST', `/terminal/${term.id}/resize`, { json: { cols, rows } }).catch(() => {});
}

// Ends the terminal on the server too; keepalive lets the DELETE go out
// while the page unloads. Returns when the DELETE is answered.
function closeTerminal() {
  let done = Promise.resolve();
  if (term.stream) term.stream.close();
  if (term.id && auth.access) {
    done = fetch(`/terminal/${term.id}`, {
      method: 'DELETE', keepalive: true, headers: { Authorization: `Bearer ${auth.access}` },
    }).catch(() => {});
  }
  Object.assign(term, { id: null, stream: null, queue: '' });
  setTermStatus('closed');
  return done;
}

// ---------------------------------------------------------------------
// 5. File panel

// The file panel starts in /workspace, or in the template's workdir
// (/home/user for base) for a sandbox of a template with a root of its own.
const FILES_ROOT = '/workspace';
const files = { root: FILES_ROOT, path: FILES_ROOT, rootKnown: Promise.resolve() };

async function filesRootOf(template) {
  if (!template || template === 'host') return FILES_ROOT;
  try {
    const t = await request('GET', `/templates/${encodeURIComponent(template)}`);
    return t.workdir || FILES_ROOT;
  } catch {
    return FILES_ROOT;
  }
}

function filesUrl(path, extra = '') {
  return `/sandboxes/${sandbox.id}/files?path=${encodeURIComponent(path)}${extra}`;
}

async function listFiles() {
  if (!sandbox.id) return;
  await files.rootKnown;
  const listing = await request('GET', filesUrl(files.path));
  $('files-path').textContent = files.path;
  $('files-up').disabled = files.path === files.root;
  const entries = [...listing.entries].sort((a, b) =>
    (a.type === 'directory' ? 0 : 1) - (b.type === 'directory' ? 0 : 1) || a.name.localeCompare(b.name));
  const rows = entries.map(fileRow);
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="4" class="muted">empty</td>';
    rows.push(tr);
  }
  $('files-list').replaceChildren(...rows);
}

function fileRow(entry) {
  const tr = document.createElement('tr');
  const name = document.createElement('td');
  if (entry.type === 'directory') {
    const open = button(entry.name + '/', 'link', () => { files.path = entry.path; listFiles().catch(showError); });
    name.append(open);
  } else {
    name.textContent = entry.name;
  }
  const size = document.createElement('td');
  size.textContent = entry.type === 'directory' ? '' : formatSize(entry.size);
  const modified = document.createElement('td');
  modified.textContent = formatTime(entry.modified);
  const actions = document.createElement('td');
  actions.className = 'actions';
  if (entry.type === 'file') actions.append(button('Download', 'quiet', () => downloadFile(entry).catch(showError)));
  actions.append(button('Delete', 'quiet danger', () => deleteFile(entry).catch(showError)));
  tr.append(name, size, modified, actions);
  return tr;
}

// The download needs the Authorization header, so it is fetched and
// handed to the browser as a blob.
async function downloadFile(entry) {
  const res = await request('GET', filesUrl(entry.path), { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = entry.name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function deleteFile(entry) {
  const what = entry.type === 'directory' ? `the directory ${entry.path} and everything in it` : entry.path;
  if (!confirm(`Delete ${what}?`)) return;
  await request('DELETE', filesUrl(entry.path, entry.type === 'directory' ? '&recursive=true' : ''));
  await listFiles();
}

async function uploadFiles(fileList) {
  if (!fileList.length) return;
  const form = new FormData();
  for (const f of fileList) form.append('file', f, f.name);
  await request('POST', filesUrl(files.path), { body: form });
  notice(`Uploaded ${fileList.length} file${fileList.length > 1 ? 's' : ''} to ${files.path}.`);
  await listFiles();
}

// ---------------------------------------------------------------------
// 6. Wiring

const VIEWS = ['workspace', 'templates', 'sandbox', 'chat', 'workflows', 'workspaces'];

// showView(name): one of VIEWS is shown (none when signed out).
function showView(name) {
  for (const v of VIEWS) {
    $(v === 'workspace' ? v : `${v}-view`).hidden = v !== name;
    const tab = $(`view-${v}`);
    if (v === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  document.body.dataset.view = name || '';
  sandboxView.show(name === 'sandbox');
  if (name === 'templates') templates.load().catch(showError);
  workflows.show(name === 'workflows');
  workspaces.show(name === 'workspaces');
}

function showSignedOut() {
  $('sign-in-form').hidden = false;
  $('session').hidden = true;
  $('views').hidden = true;
  showView(null);
  sandboxView.setSandbox(null);
  $('welcome').hidden = false;
  document.body.dataset.state = 'signed-out';
}

// After a successful sign-in: who we are, the sandbox, then the panels.
async function startConsole() {
  $('sign-in-form').hidden = true;
  $('session').hidden = false;
  $('views').hidden = false;
  showView('workspace');
  $('welcome').hidden = true;
  if (!term.xterm) setupTerminal();   // once visible, so that it can measure itself
  const [who] = await Promise.all([request('GET', '/api/auth/verify'), ensureSandbox(), loadLanguages()]);
  $('subject').textContent = who.sub;
  document.body.dataset.state = 'signed-in';
  // The templates fill the Sandbox view's picker; the workspace works without.
  templates.load().catch(showError);
  await Promise.all([openTerminal(), listFiles()]);
}

async function onSignIn(event) {
  event.preventDefault();
  const key = $('api-key').value.trim();
  $('sign-in').disabled = true;
  try {
    await signIn(key);
    await startConsole();
  } catch (err) {
    if (!auth.access) sessionStorage.removeItem(KEY_STORE);
    showError(err);
    if (!auth.access) showSignedOut();
  } finally {
    $('sign-in').disabled = false;
  }
}

function main() {
  $('sign-in-form').addEventListener('submit', onSignIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('run').addEventListener('click', startRun);
  $('cancel').addEventListener('click', cancelRun);
  $('code').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      startRun();
    } else if (e.key === 'Tab' && !e.shiftKey) {
      e.preventDefault();   // indent instead of leaving the editor
      e.target.setRangeText('    ', e.target.selectionStart, e.target.selectionEnd, 'end');
    }
  });
  $('term-restart').addEventListener('click', () => openTerminal().catch(showError));
  $('files-refresh').addEventListener('click', () => listFiles().catch(showError));
  $('files-up').addEventListener('click', () => {
    files.path = files.path.replace(/\/[^/]+$/, '') || files.root;
    listFiles().catch(showError);
  });
  $('files-upload').addEventListener('change', (e) => {
    uploadFiles(e.target.files).catch(showError).finally(() => { e.target.value = ''; });
  });
  window.addEventListener('pagehide', closeTerminal);
  for (const v of VIEWS) $(`view-${v}`).addEventListener('click', () => showView(v));
  templates.init({
    onUse: (name) => {
      sandboxView.pick(name);
      showView('sandbox');
      $('new-template').focus();
    },
  });
  sandboxView.init({ onOpen: replaceSandbox });
  chatView.init();
  workflows.init();
  // The Workspaces view's terminal is the Workspace view's: it is shown.
  workspaces.init({
    sandboxId: () => sandbox.id,
    replace: async (body, cwd) => {
      await replaceSandbox(body, cwd);
      showView('workspace');
    },
    terminal: async (cwd) => {
      term.cwd = cwd;
      showView('workspace');
      await openTerminal();
    },
  });

  // A reload in the same tab signs in again with the stored key.
  const stored = sessionStorage.getItem(KEY_STORE);
  if (stored) {
    signIn(stored).then(startConsole).catch((err) => {
      sessionStorage.removeItem(KEY_STORE);
      showError(err);
      showSignedOut();
    });
  } else {
    showSignedOut();
  }
}

main();
