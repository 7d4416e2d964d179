// web/workspaces.js: the Workspaces view of the web console: persistent
// workspaces and snapshots.
//
//   Workspaces (GET /workspaces): name, size, version, the sandbox that
//   holds it (the console's is marked), last sync. A form creates one
//   (POST /workspaces); Delete is DELETE /workspaces/{name} (a 409 while
//   a sandbox holds it is shown with its code). "Open terminal" puts the
//   console's terminal on the workspace: when the console's sandbox holds
//   it, a new shell in its mount; else a new console sandbox on it
//   (POST /sandboxes {workspace}, through app.js's replaceSandbox) with
//   the shell in its mount. "Sync now" is POST /sandboxes/{id}/workspace/
//   sync for the console's sandbox, shown while it holds a workspace.
//   Snapshots (GET /snapshots): id, template, size, created. "Snapshot the
//   console's sandbox" is POST /sandboxes/{id}/snapshots; "Start from it"
//   replaces the console's sandbox by POST /sandboxes {snapshot};
//   Delete is DELETE /snapshots/{id}.
//
//   Every string of the server's (names, ids, templates) goes into the
//   page as text (textContent, button labels), never as HTML.

import { $, request, button, cell, formatSize, formatTime, setError, showError, notice } from '/lib.js';

const DEFAULT_MOUNT = '/workspace/files';

const state = {
  shown: false,
  sandboxId: null,   // () → the console's sandbox id (app.js)
  replace: null,     // async (body of POST /sandboxes, cwd) → the console's new sandbox
  terminal: null,    // async (cwd) → a new shell of the console's terminal
  held: null,        // the workspace the console's sandbox holds {name, mount}, or null
};

// init({sandboxId, replace, terminal}): wires the view once, at start-up.
// replace(body, cwd) makes a sandbox and makes it the console's, its
// terminal starting in cwd; terminal(cwd) opens a new shell of the
// console's terminal in cwd (both app.js's, and both show the Workspace
// view's terminal).
export function init({ sandboxId, replace, terminal }) {
  Object.assign(state, { sandboxId, replace, terminal });
  $('ws-refresh').addEventListener('click', () => load().catch(showError));
  $('ws-form').addEventListener('submit', (e) => {
    e.preventDefault();
    create().catch((err) => setError('ws-error', err, 'Not created:'));
  });
  $('ws-sync').addEventListener('click', () => sync().catch((err) => setError('ws-error', err, 'Not synced:')));
  $('snap-take').addEventListener('click', () => snapshot().catch((err) => setError('snap-error', err, 'No snapshot:')));
}

// show(on): the view became visible (load both lists) or hidden.
export function show(on) {
  state.shown = on;
  if (on) load().catch(showError);
}

async function load() {
  await Promise.all([loadWorkspaces(), loadSnapshots()]);
}

// ---------------------------------------------------------------------
// Workspaces

async function loadWorkspaces() {
  const { workspaces } = await request('GET', '/workspaces');
  const mine = state.sandboxId();
  const held = workspaces.find((w) => w.holder && w.holder === mine);
  state.held = held ? { name: held.name, mount: held.mount || DEFAULT_MOUNT } : null;
  $('ws-held').textContent = held ? `The console's sandbox holds ${held.name} at ${state.held.mount}.`
    : 'The console\'s sandbox holds no workspace.';
  $('ws-sync').hidden = !held;
  const rows = workspaces.map((w) => {
    const tr = document.createElement('tr');
    tr.dataset.workspace = w.name;
    const holder = !w.holder ? '' : w.holder === mine ? `${w.holder} (the console's)` : w.holder;
    const actions = document.createElement('td');
    actions.className = 'actions';
    actions.append(
      button('Open terminal', 'quiet ws-open', () => open(w).catch((err) => setError('ws-error', err, 'Not opened:'))),
      button('Delete', 'quiet danger ws-delete', () => remove(w.name).catch((err) => setError('ws-error', err, 'Not deleted:'))));
    tr.append(cell(w.name), cell(formatSize(w.size)), cell(w.version), cell(holder),
      cell(formatTime(w.synced_at || w.created_at)), actions);
    return tr;
  });
  $('ws-list').replaceChildren(...(rows.length ? rows : [empty(6, 'no workspaces yet')]));
}

async function create() {
  setError('ws-error', null);
  const name = $('ws-name').value.trim();
  await request('POST', '/workspaces', { json: { name } });
  $('ws-name').value = '';
  notice(`Workspace ${name} created.`);
  await loadWorkspaces();
}

async function remove(name) {
  setError('ws-error', null);
  if (!confirm(`Delete the workspace ${name} and everything in it?`)) return;
  await request('DELETE', `/workspaces/${encodeURIComponent(name)}`);
  await loadWorkspaces();
}

// open(w): the console's terminal on the workspace w. Another sandbox's
// hold is the server's to refuse (409), shown as such.
async function open(w) {
  setError('ws-error', null);
  if (w.holder && w.holder === state.sandboxId()) {
    await state.terminal(w.mount || DEFAULT_MOUNT);
  } else {
    await state.replace({ workspace: w.name }, DEFAULT_MOUNT);
  }
}

async function sync() {
  setError('ws-error', null);
  const id = state.sandboxId();
  $('ws-sync').disabled = true;
  try {
    const w = await request('POST', `/sandboxes/${id}/workspace/sync`);
    notice(`Workspace ${w.name} synced (version ${w.version}).`);
  } finally {
    $('ws-sync').disabled = false;
  }
  await loadWorkspaces();
}

// ---------------------------------------------------------------------
// Snapshots

async function loadSnapshots() {
  const { snapshots } = await request('GET', '/snapshots');
  const rows = snapshots.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.snapshot = s.id;
    const actions = document.createElement('td');
    actions.className = 'actions';
    actions.append(
      button('Start from it', 'quiet snap-start', () => start(s.id).catch((err) => setError('snap-error', err, 'Not started:'))),
      button('Delete', 'quiet danger snap-delete', () => removeSnapshot(s.id).catch((err) => setError('snap-error', err, 'Not deleted:'))));
    tr.append(cell(s.id), cell(s.template), cell(formatSize(s.size)), cell(formatTime(s.created_at)), actions);
    return tr;
  });
  $('snap-list').replaceChildren(...(rows.length ? rows : [empty(5, 'no snapshots yet')]));
}

async function snapshot() {
  setError('snap-error', null);
  $('snap-take').disabled = true;
  try {
    const s = await request('POST', `/sandboxes/${state.sandboxId()}/snapshots`);
    notice(`Snapshot ${s.id} taken (${formatSize(s.size)}).`);
  } finally {
    $('snap-take').disabled = false;
  }
  await loadSnapshots();
}

// start(id): a new console sandbox from the snapshot (its template is the
// snapshot's); the old one is deleted once the new one exists.
async function start(id) {
  setError('snap-error', null);
  await state.replace({ snapshot: id }, null);
}

async function removeSnapshot(id) {
  setError('snap-error', null);
  if (!confirm(`Delete the snapshot ${id}?`)) return;
  await request('DELETE', `/snapshots/${encodeURIComponent(id)}`);
  await loadSnapshots();
}

// ---------------------------------------------------------------------

function empty(columns, text) {
  const tr = document.createElement('tr');
  const td = cell(text);
  td.colSpan = columns;
  td.className = 'muted';
  tr.append(td);
  return tr;
}
