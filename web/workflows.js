// web/workflows.js: the Workflows view of the web console.
//
//   GET /workflows/runs fills the list (newest first); a row opens the run
//   (GET /workflows/runs/{id}): its facts, each step's status, duration and
//   exit code, the findings of a failed check, and each step's output. A
//   run that has not ended is followed at /workflows/runs/{id}/events:
//   every "step" or "result" event reloads the run, "log" events append
//   to the log as they come. Cancel and Retry are the run's routes. The
//   form posts a small workflow {language, code, validate.tests}.

import { $, request, openStream, button, cell, formatTime, facts, setError, showError } from '/lib.js';

const ENDED = ['succeeded', 'failed', 'cancelled'];

const state = { shown: false, selected: null, stream: null };

// init(): wires the view's buttons once, at start-up.
export function init() {
  $('wf-refresh').addEventListener('click', () => load().catch(showError));
  $('wf-cancel').addEventListener('click', () => act('cancel').catch(showError));
  $('wf-retry').addEventListener('click', () => act('retry').catch(showError));
  $('wf-form').addEventListener('submit', (e) => {
    e.preventDefault();
    start().catch((err) => setError('wf-form-error', err, 'Not started:'));
  });
}

// show(on): the view became visible (load the runs) or hidden (stop
// following a run).
export function show(on) {
  state.shown = on;
  if (on) load().catch(showError);
  else follow(null);
}

async function load() {
  const { runs } = await request('GET', '/workflows/runs?limit=50');
  const rows = runs.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.run = r.run_id;
    tr.classList.toggle('selected', r.run_id === state.selected);
    const id = document.createElement('td');
    id.append(button(r.run_id, 'link', () => open(r.run_id).catch(showError)));
    tr.append(id, cell(r.status), cell(formatTime(r.started_at)),
      cell(r.duration_ms != null ? `${r.duration_ms} ms` : ''));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="4" class="muted">no runs yet</td>';
    rows.push(tr);
  }
  $('wf-list').replaceChildren(...rows);
}

async function start() {
  setError('wf-form-error', null);
  const body = { language: $('wf-language').value, code: $('wf-code').value };
  const tests = $('wf-tests').value.trim();
  if (tests) body.validate = { tests };
  const { run_id: id } = await request('POST', '/workflows', { json: body });
  await load();
  await open(id);
}

// open(id): the run in the detail panel, followed while it runs.
async function open(id) {
  follow(null);
  state.selected = id;
  $('wf-log').textContent = '';
  for (const tr of $('wf-list').children) tr.classList.toggle('selected', tr.dataset.run === id);
  const run = await render(id);
  follow(run && !ENDED.includes(run.status) ? id : null);
}

async function render(id) {
  let run;
  try {
    run = await request('GET', `/workflows/runs/${id}`);
    setError('wf-error', null);
  } catch (err) {
    setError('wf-error', err, 'This run cannot be shown:');
    return null;
  }
  $('wf-detail-empty').hidden = true;
  $('wf-detail-id').textContent = run.run_id;
  $('wf-detail-status').textContent = run.status;
  $('wf-detail-status').dataset.status = run.status;
  $('wf-cancel').disabled = ENDED.includes(run.status);
  $('wf-retry').disabled = !['failed', 'cancelled'].includes(run.status);
  facts($('wf-facts'), [['workflow', run.workflow_id], ['created', formatTime(run.created_at)],
    ['duration', run.duration_ms != null ? `${run.duration_ms} ms` : ''],
    ['error', run.error ? `${run.error.code}: ${run.error.message}` : ''],
    ['retry of', run.retry_of], ['outputs', (run.output_objects || []).join(', ')]]);
  $('wf-steps').replaceChildren(...run.steps.map((s) => {
    const tr = document.createElement('tr');
    tr.append(cell(s.step), cell(s.reused ? `${s.status} (kept)` : s.status),
      cell(s.duration_ms != null ? `${s.duration_ms} ms` : ''), cell(s.exit_code));
    return tr;
  }));
  const findings = run.steps.flatMap((s) => s.findings || []);
  $('wf-findings').replaceChildren(...findings.map((f) => {
    const li = document.createElement('li');
    li.textContent = `${f.file}:${f.line}${f.column ? `:${f.column}` : ''}: ${f.message}`;
    return li;
  }));
  if (!state.stream) {
    // Not followed live: the output each step kept.
    $('wf-log').textContent = run.steps.filter((s) => s.output)
      .map((s) => `── ${s.step}\n${s.output.stdout}${s.output.stderr}`).join('\n');
  }
  return run;
}

function follow(id) {
  if (state.stream) state.stream.close();
  state.stream = null;
  if (!id || !state.shown) return;
  state.stream = openStream(`/workflows/runs/${id}/events`, ['step', 'log', 'result'], (type, data) => {
    if (state.selected !== id) return;
    if (type === 'log') {
      $('wf-log').textContent += `── ${data.step} ${data.stream}\n${data.text}`;
      return;
    }
    render(id).catch(showError);
    if (type === 'result') load().catch(showError);
  }, { finalType: 'result', onGiveUp: () => render(id).catch(showError) });
}

async function act(what) {
  const id = state.selected;
  if (!id) return;
  const r = await request('POST', `/workflows/runs/${id}/${what}`);
  await load();
  await open(what === 'retry' ? r.run_id : id);
}
