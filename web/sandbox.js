// web/sandbox.js: the Sandbox view of the web console: the console's
// sandbox (template, limits, usage, its disk as a bar), small charts of
// its CPU, memory and disk over the last ten minutes, pause and resume,
// and the form that opens a new sandbox of a chosen template.
//
//   While the view is shown (and the tab is visible) it is refreshed every
//   5 s: GET /sandboxes/{id}, then GET /sandboxes/{id}/metrics?start=&end=.
//   A server without the metrics route (404 although the sandbox exists)
//   gets a note, and the charts are drawn from this page's own samples of
//   the sandbox's usage instead (CPU % from the growth of cpu_ms).
//   Pause and resume are shown only where GET …/pause is 405 (the route
//   exists, for POST), never where it is 404.

import { $, request, showError, formatSize, formatTime, facts, setError } from '/lib.js';

const REFRESH_MS = 5000;
const WINDOW_S = 600;                 // the charts' longest span
const MIN_SPAN_S = 60;                // and their shortest (a young sandbox)
const MIB = 1024 * 1024;
const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART_W = 300, CHART_H = 64;

const view = {
  id: null,
  visible: false,
  timer: 0,
  busy: false,
  again: false,         // a refresh was asked for while one was going
  metrics: 'unknown',   // 'yes': the server has the route; 'no': it does not
  local: [],            // own samples {t, cpuMs, memUsed, memTotal, diskUsed, diskTotal}
  pausable: null,       // null: not asked yet; true/false: the routes exist
  onOpen: null,         // async (body of POST /sandboxes) → the new sandbox's id
};

// init({onOpen}): wires the view once, at start-up. onOpen makes the
// sandbox and makes it the console's (app.js).
export function init({ onOpen }) {
  view.onOpen = onOpen;
  $('new-sandbox-form').addEventListener('submit', (e) => {
    e.preventDefault();
    openNew().catch(showError);
  });
  $('sbx-refresh').addEventListener('click', () => refresh().catch(showError));
  $('sbx-pause').addEventListener('click', () => pauseResume('pause').catch(showError));
  $('sbx-resume').addEventListener('click', () => pauseResume('resume').catch(showError));
  document.addEventListener('visibilitychange', schedule);
}

// setSandbox(id): the console's sandbox is now id (null when signed out).
export function setSandbox(id) {
  if (view.id !== id) {
    Object.assign(view, { id, metrics: 'unknown', local: [], pausable: null });
    $('sbx-id').textContent = id || '';
  }
  schedule();
}

// show(visible): the view is shown or hidden; it polls only while shown.
export function show(visible) {
  view.visible = visible;
  schedule();
}

function schedule() {
  clearInterval(view.timer);
  view.timer = 0;
  if (!view.visible || document.hidden || !view.id) return;
  refresh().catch(showError);
  view.timer = setInterval(() => refresh().catch(showError), REFRESH_MS);
}

async function refresh() {
  const id = view.id;
  if (!id) return;
  if (view.busy) {
    view.again = true;
    return;
  }
  view.busy = true;
  view.again = false;
  try {
    let doc;
    try {
      doc = await request('GET', `/sandboxes/${id}`);
    } catch (err) {
      if (id === view.id) setError('sbx-error', err);
      return;
    }
    if (id !== view.id) return;
    setError('sbx-error', null);
    renderSandbox(doc);
    await renderPorts(id, doc);
    takeSample(doc);
    await renderCharts(id);
    if (view.pausable === null) await probePause(id);
    renderPause(doc);
  } finally {
    view.busy = false;
  }
  if (view.again && view.visible) await refresh();
}

// ---------------------------------------------------------------------
// The sandbox and its disk

function renderSandbox(doc) {
  const u = doc.usage || {}, lim = doc.limits || {};
  $('sbx-status').textContent = doc.status;
  $('sbx-status').dataset.status = doc.status;
  facts($('sbx-facts'), [
    ['template', doc.template],
    ['network', !doc.network ? 'off' : doc.network.allow_out && doc.network.allow_out.length
      ? `allow list (${doc.network.allow_out.length})` : doc.network.internet ? 'on' : 'off'],
    ['limits', [lim.memory_mb && `${lim.memory_mb} MB memory`, lim.cpus && `${lim.cpus} CPU`,
      lim.disk_mb && `${lim.disk_mb} MB disk`, lim.pids && `${lim.pids} processes`].filter(Boolean).join(', ')],
    ['memory', u.memory_bytes != null ? formatSize(u.memory_bytes) : ''],
    ['CPU time', u.cpu_ms != null ? `${(u.cpu_ms / 1000).toFixed(1)} s` : ''],
    ['processes', u.processes],
    ['OOM kills', u.oom_kills],
    ['created', formatTime(doc.created_at)],
    ['ends', doc.status === 'paused' ? 'paused (its time stands still)' : formatTime(doc.expires_at)],
  ]);
  renderDisk(u.disk_bytes, u.disk_total_bytes);
}

// The TCP ports that listen inside it, each a link to its preview URL.
// The first visit carries the sandbox's traffic token, which the preview
// proxy turns into a cookie for that host (and hides from the sandbox).
async function renderPorts(id, doc) {
  const list = $('sbx-ports');
  let ports = [];
  if (doc.status === 'running') {
    try {
      ports = (await request('GET', `/sandboxes/${id}/ports`)).ports || [];
    } catch {
      ports = null;
    }
  }
  if (id !== view.id) return;
  list.replaceChildren();
  if (!ports || ports.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = ports ? 'none: nothing listens on a TCP port inside it'
      : 'could not be read';
    list.append(li);
    return;
  }
  for (const p of ports) {
    const li = document.createElement('li'), a = document.createElement('a');
    a.target = '_blank';
    a.rel = 'noopener';
    const url = new URL(p.url);
    if (!doc.public && doc.traffic_token) url.searchParams.set('token', doc.traffic_token);
    a.href = url.toString();
    a.textContent = `${p.port}`;
    const where = document.createElement('span');
    where.className = 'muted';
    where.textContent = ` ${p.url}`;
    li.append(a, where);
    list.append(li);
  }
}

function renderDisk(used, total) {
  const bar = $('disk-bar');
  const has = used != null && total > 0;
  const pct = has ? Math.min(100, (100 * used) / total) : 0;
  bar.classList.toggle('none', !has);
  bar.classList.toggle('full', pct >= 90);
  // A disk in use never looks empty: at least a sliver.
  bar.firstElementChild.style.width = has && used > 0 ? `max(3px, ${pct}%)` : '0';
  if (has) {
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(used));
    bar.setAttribute('aria-valuetext', `${formatSize(used)} of ${formatSize(total)}`);
    $('disk-text').textContent = `${formatSize(used)} of ${formatSize(total)} (${pct.toFixed(0)} %)`;
  } else {
    bar.removeAttribute('aria-valuenow');
    bar.setAttribute('aria-valuetext', 'no disk of its own');
    $('disk-text').textContent = 'no disk of its own (its files live in memory)';
  }
}

// ---------------------------------------------------------------------
// Pause and resume, where the server has them

async function probePause(id) {
  try {
    await request('GET', `/sandboxes/${id}/pause`);
    view.pausable = true;
  } catch (err) {
    view.pausable = err.status === 405;
  }
}

function renderPause(doc) {
  $('sbx-pause').hidden = !view.pausable || doc.status === 'paused';
  $('sbx-resume').hidden = !view.pausable || doc.status !== 'paused';
}

async function pauseResume(action) {
  const id = view.id;
  $('sbx-pause').disabled = $('sbx-resume').disabled = true;
  try {
    const doc = await request('POST', `/sandboxes/${id}/${action}`);
    if (id === view.id && doc) {
      renderSandbox(doc);
      renderPause(doc);
    }
  } catch (err) {
    setError('sbx-error', err);
  } finally {
    $('sbx-pause').disabled = $('sbx-resume').disabled = false;
  }
}

// ---------------------------------------------------------------------
// Charts: the server's metrics, or this page's own samples

function takeSample(doc) {
  const u = doc.usage;
  if (!u) return;
  const now = Date.now() / 1000;
  view.local.push({
    t: now, cpuMs: u.cpu_ms, memUsed: u.memory_bytes,
    memTotal: (doc.limits?.memory_mb || 0) * MIB,
    diskUsed: u.disk_bytes, diskTotal: u.disk_total_bytes,
    cpuMax: 100 * (doc.limits?.cpus || 1),
  });
  view.local = view.local.filter((s) => s.t >= now - WINDOW_S);
}

// The local samples as metrics points: CPU % from one sample to the next.
function localPoints() {
  const out = [];
  for (let i = 1; i < view.local.length; i++) {
    const a = view.local[i - 1], b = view.local[i];
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    out.push({ ...b, cpuPct: Math.max(0, (b.cpuMs - a.cpuMs) / (dt * 10)) });
  }
  return out;
}

function timeOf(m) {
  if (typeof m.timestampUnix === 'number') return m.timestampUnix;
  if (typeof m.timestamp === 'number') return m.timestamp;
  return Date.parse(m.timestamp) / 1000;
}

async function serverPoints(id) {
  const end = Math.floor(Date.now() / 1000);
  const list = await request('GET', `/sandboxes/${id}/metrics?start=${end - WINDOW_S}&end=${end}`);
  return (Array.isArray(list) ? list : []).map((m) => ({
    t: timeOf(m), cpuPct: m.cpuUsedPct, cpuMax: 100 * (m.cpuCount || 1),
    memUsed: m.memUsed, memTotal: m.memTotal, diskUsed: m.diskUsed, diskTotal: m.diskTotal,
  }));
}

async function renderCharts(id) {
  let points, note = '';
  if (view.metrics !== 'no') {
    try {
      points = await serverPoints(id);
      view.metrics = 'yes';
      if (points.length === 0) note = 'no samples yet (one every 5 s)';
    } catch (err) {
      if (err.status !== 404) throw err;
      // The sandbox was there a moment ago: the route is what is missing.
      view.metrics = 'no';
    }
  }
  if (view.metrics === 'no') {
    points = localPoints();
    note = 'no metrics yet on this server: the charts show this page\'s own samples (every 5 s)';
  }
  if (id !== view.id) return;
  $('metrics-note').textContent = note;
  $('charts-title').dataset.source = view.metrics;
  const last = points[points.length - 1];
  drawChart('chart-cpu', points.map((p) => [p.t, p.cpuPct]), last ? last.cpuMax : 100,
    (v, max) => `${v.toFixed(1)} % of ${max / 100} CPU`);
  drawChart('chart-mem', points.map((p) => [p.t, p.memUsed]), last?.memTotal,
    (v, max) => max ? `${formatSize(v)} of ${formatSize(max)}` : formatSize(v));
  drawChart('chart-disk', points.map((p) => [p.t, p.diskUsed]), last?.diskTotal,
    (v, max) => max ? `${formatSize(v)} of ${formatSize(max)}` : formatSize(v));
}

// drawChart(figureId, [[t, value], …], max, format): a sparkline from the
// first sample (at most WINDOW_S, at least MIN_SPAN_S ago) to now; the y
// axis runs from 0 to max (or the largest value when there is no max),
// the caption shows the latest value.
function drawChart(figId, series, max, format) {
  const fig = $(figId), svg = fig.querySelector('svg');
  const points = series.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
  const top = Math.max(max || 0, ...points.map(([, v]) => v), 1e-9);
  const now = Date.now() / 1000;
  const span = Math.min(WINDOW_S, Math.max(MIN_SPAN_S, points.length ? now - points[0][0] : 0));
  const from = now - span;
  const x = (t) => Math.max(0, Math.min(CHART_W, ((t - from) / span) * CHART_W));
  fig.querySelector('.since').textContent = span >= 120 ? `${Math.round(span / 60)} min ago` : `${Math.round(span)} s ago`;
  const y = (v) => CHART_H - 2 - (Math.max(0, v) / top) * (CHART_H - 4);
  svg.setAttribute('viewBox', `0 0 ${CHART_W} ${CHART_H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const parts = [el('line', { x1: 0, x2: CHART_W, y1: y(top), y2: y(top), class: 'ceiling' })];
  if (points.length > 0) {
    const xy = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    if (points.length === 1) xy.unshift(`${Math.max(0, x(points[0][0]) - 3).toFixed(1)},${y(points[0][1]).toFixed(1)}`);
    const first = xy[0].split(',')[0], lastX = xy[xy.length - 1].split(',')[0];
    parts.push(el('polygon', { points: `${first},${CHART_H} ${xy.join(' ')} ${lastX},${CHART_H}`, class: 'area' }));
    parts.push(el('polyline', { points: xy.join(' '), class: 'line' }));
  }
  svg.replaceChildren(...parts);
  fig.dataset.points = String(points.length);
  const latest = points[points.length - 1];
  fig.querySelector('figcaption b').textContent = latest ? format(latest[1], max) : 'no samples yet';
}

function el(name, attrs) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.setAttribute('vector-effect', 'non-scaling-stroke');
  return e;
}

// ---------------------------------------------------------------------
// A new sandbox of a chosen template

async function openNew() {
  const body = { network: $('new-network').checked, limits: {} };
  const template = $('new-template').value;
  if (template) body.template = template;
  const disk = parseInt($('new-disk').value, 10), memory = parseInt($('new-memory').value, 10);
  if (disk > 0) body.limits.disk_mb = disk;
  if (memory > 0) body.limits.memory_mb = memory;
  setError('new-sbx-error', null);
  $('new-sandbox').disabled = true;
  try {
    await view.onOpen(body);
  } catch (err) {
    setError('new-sbx-error', err);
  } finally {
    $('new-sandbox').disabled = false;
  }
}

// pick(name): choose name in the picker (a template's "New sandbox of it").
export function pick(name) {
  $('new-template').value = name;
}
