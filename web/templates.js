// web/templates.js: the Templates view of the web console and the
// template picker of the Sandbox view.
//
//   GET /templates fills the list and the picker; a row opens its details
//   (GET /templates/{name}), which can be deleted (403 for a built-in or
//   another's, 409 while a sandbox uses it: both shown in the panel).
//   The build form posts {name, spec, private, files} to POST /templates
//   and follows the build's log at its events_url (log lines as they are
//   printed, then result); without the event stream the build's record is
//   polled instead. A build that ends ready refreshes the list.

import { $, request, openStream, button, formatTime, showError, facts, setError } from '/lib.js';

const BUILD_EVENTS = ['log', 'result'];
const BUILD_POLL_MS = 2000;

const state = {
  list: [],            // the templates of the last GET /templates
  selected: null,      // name of the template in the detail panel
  build: null,         // {id, name, stream} of the build being followed
  onUse: () => {},     // called with a template's name by "New sandbox of it"
};

// init({onUse}): wires the view's buttons once, at start-up.
export function init({ onUse }) {
  state.onUse = onUse;
  $('tpl-refresh').addEventListener('click', () => load().catch(showError));
  $('tpl-delete').addEventListener('click', () => deleteSelected().catch(showError));
  $('tpl-use').addEventListener('click', () => state.selected && state.onUse(state.selected));
  $('build-form').addEventListener('submit', (e) => {
    e.preventDefault();
    startBuild().catch(showError);
  });
  $('build-add-file').addEventListener('click', () => addFileRow('', ''));
}

// load() → the templates: the list, the picker and the detail panel
// follow the server's answer.
export async function load() {
  const { templates } = await request('GET', '/templates');
  // The host view last: it is the odd one out (no root of its own).
  state.list = templates.sort((a, b) =>
    (a.name === 'host') - (b.name === 'host') || a.name.localeCompare(b.name));
  renderList();
  fillPicker();
  if (state.selected && !state.list.some((t) => t.name === state.selected)) showDetail(null);
  return state.list;
}

// ---------------------------------------------------------------------
// The list and the details

function renderList() {
  const rows = state.list.map((t) => {
    const tr = document.createElement('tr');
    tr.dataset.name = t.name;
    tr.classList.toggle('selected', t.name === state.selected);
    const name = document.createElement('td');
    name.append(button(t.name, 'link', () => showDetail(t.name).catch(showError)));
    tr.append(name, cell(t.from), cell(t.user), cell(t.private ? 'yes' : ''), cell(formatTime(t.created_at)));
    tr.addEventListener('click', (e) => {
      if (e.target.tagName !== 'BUTTON') showDetail(t.name).catch(showError);
    });
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="5" class="muted">no templates</td>';
    rows.push(tr);
  }
  $('tpl-list').replaceChildren(...rows);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  return td;
}

async function showDetail(name) {
  state.selected = name;
  setError('tpl-error', null);
  for (const tr of $('tpl-list').children) tr.classList.toggle('selected', tr.dataset.name === name);
  $('tpl-detail-name').textContent = name || '';
  $('tpl-use').disabled = $('tpl-delete').disabled = !name;
  $('tpl-detail-empty').hidden = !!name;
  $('tpl-detail').hidden = !name;
  if (!name) return;
  const t = await request('GET', `/templates/${encodeURIComponent(name)}`);
  if (state.selected !== name) return;
  const env = Object.entries(t.env || {});
  facts($('tpl-detail'), [
    ['from', t.from],
    ['version', t.version],
    ['user', t.user],
    ['home', t.home],
    ['workdir', t.workdir],
    ['private', t.private ? 'yes (yours only)' : 'no'],
    ['made by', t.maker],
    ['created', formatTime(t.created_at)],
    ['env', env.length ? env.map(([k, v]) => `${k}=${v}`).join('\n') : '–'],
  ]);
}

async function deleteSelected() {
  const name = state.selected;
  if (!name || !confirm(`Delete the template ${name}?`)) return;
  setError('tpl-error', null);
  try {
    await request('DELETE', `/templates/${encodeURIComponent(name)}`);
  } catch (err) {
    const why = { 403: 'it is built in or not yours', 409: 'a sandbox still uses it' }[err.status];
    setError('tpl-error', err, why && `Cannot delete ${name}: ${why}.`);
    return;
  }
  showDetail(null);
  await load();
}

// ---------------------------------------------------------------------
// The picker: base when there is one, else the server's default.

function fillPicker() {
  const select = $('new-template');
  const had = select.value;
  const options = state.list.map((t) => new Option(t.private ? `${t.name} (private)` : t.name, t.name));
  options.push(new Option('server default', ''));
  select.replaceChildren(...options);
  if (had && state.list.some((t) => t.name === had)) select.value = had;
  else select.value = state.list.some((t) => t.name === 'base') ? 'base' : '';
}

// ---------------------------------------------------------------------
// Builds

function addFileRow(name, content) {
  const n = $('build-file-list').children.length + 1;
  const row = document.createElement('div');
  row.className = 'file-row';
  row.innerHTML = `
    <input type="text" class="file-name" spellcheck="false" placeholder="app.py" aria-label="File ${n} name">
    <textarea class="file-content" spellcheck="false" rows="3" aria-label="File ${n} content"></textarea>`;
  row.querySelector('.file-name').value = name;
  row.querySelector('.file-content').value = content;
  row.append(button('Remove', 'quiet danger', () => row.remove()));
  $('build-file-list').append(row);
  row.querySelector('.file-name').focus();
}

function buildFiles() {
  const files = {};
  for (const row of $('build-file-list').children) {
    const name = row.querySelector('.file-name').value.trim();
    if (name) files[name] = row.querySelector('.file-content').value;
  }
  return files;
}

async function startBuild() {
  const name = $('build-name').value.trim();
  const body = { name, spec: $('build-spec').value, private: $('build-private').checked };
  const files = buildFiles();
  if (Object.keys(files).length) body.files = files;
  setError('build-error', null);
  if (state.build) state.build.stream?.close();
  state.build = null;
  $('build-log').replaceChildren();
  $('build-id').textContent = '';
  setBuildStatus('starting');
  $('build-start').disabled = true;
  let doc;
  try {
    doc = await request('POST', '/templates', { json: body });
  } catch (err) {
    setBuildStatus('refused');
    setError('build-error', err);
    $('build-start').disabled = false;
    return;
  }
  $('build-id').textContent = doc.build_id;
  setBuildStatus(doc.status);
  const build = { id: doc.build_id, name: doc.name, stream: null };
  state.build = build;
  build.stream = openStream(doc.events_url, BUILD_EVENTS, (type, ev) => onBuildEvent(build, type, ev), {
    finalType: 'result',
    onGiveUp: () => pollBuild(build),
  });
}

function onBuildEvent(build, type, ev) {
  if (state.build !== build) return;
  switch (type) {
  case 'log':
    appendLog(ev.line, /^error: /.test(ev.line) ? 'error' : '');
    break;
  case 'result':
    endBuild(build, ev.status, ev.error);
    break;
  case 'error':
    appendLog(ev.message || ev.code || JSON.stringify(ev), 'error');
    break;
  }
}

// Without the event stream the log is lost to this page; the record
// still says how the build ended.
async function pollBuild(build) {
  appendLog('[the build\'s event stream is unavailable: waiting for its end]', 'info');
  try {
    for (;;) {
      const rec = await request('GET', `/templates/${encodeURIComponent(build.name)}/builds/${build.id}`);
      if (state.build !== build) return;
      if (rec.status !== 'building') return endBuild(build, rec.status, rec.error);
      await new Promise((r) => setTimeout(r, BUILD_POLL_MS));
    }
  } catch (err) {
    showError(err);
    if (state.build === build) endBuild(build, 'unknown');
  }
}

function endBuild(build, status, error) {
  setBuildStatus(status);
  if (error) appendLog(`build ${status}: ${error}`, 'error');
  $('build-start').disabled = false;
  state.build = null;
  if (status === 'ready') {
    load().then(() => showDetail(build.name)).catch(showError);
  }
}

function setBuildStatus(status) {
  const el = $('build-status');
  el.textContent = status;
  el.dataset.status = status;
}

function appendLog(line, kind) {
  const log = $('build-log');
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  const div = document.createElement('div');
  if (kind) div.className = kind;
  div.textContent = line;
  log.append(div);
  if (stick) log.scrollTop = log.scrollHeight;
}
