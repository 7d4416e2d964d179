// web/lib.js: what every part of the web console shares.
//
//   1. API calls: fetch with the access token, the JSON error envelope.
//   2. Session: the API key (sessionStorage) is exchanged for a token pair,
//      which is refreshed (and so rotated) before the access token expires.
//   3. Event streams: EventSource on the SSE routes, with the token in the
//      query string (EventSource cannot send headers), reopened with a
//      fresh token and resumed after the last event seen.
//   4. Small helpers of the page: notices, buttons, sizes and times.

export const $ = (id) => document.getElementById(id);

export const KEY_STORE = 'sandpipe.apiKey';

// ---------------------------------------------------------------------
// 1. API calls


export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// request(method, path, options) → parsed JSON, null for 204, or the
// Response itself with {raw: true}. Options: json (sent as JSON), body
// (sent as is: FormData, Blob, string), anonymous (no token). A 401 on an
// authenticated call refreshes the tokens once and tries again.
export async function request(method, path, { json, body, anonymous = false, raw = false } = {}, retried = false) {
  const headers = {};
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  if (!anonymous) headers.Authorization = `Bearer ${await accessToken()}`;
  const res = await fetch(path, { method, headers, body });
  if (res.status === 401 && !anonymous && !retried) {
    await refreshTokens();
    return request(method, path, { json, body, anonymous, raw }, true);
  }
  if (!res.ok) {
    let code = 'http_' + res.status, message = res.statusText;
    try {
      const err = (await res.json()).error;
      code = err.code;
      message = err.message + (err.field ? ` (${err.field})` : '');
    } catch { /* not the JSON envelope */ }
    throw new ApiError(res.status, code, message);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

// ---------------------------------------------------------------------
// 2. Session

export const auth = { apiKey: null, access: null, refresh: null, expiresAt: 0, timer: 0, pending: null };

export async function signIn(apiKey) {
  const pair = await request('POST', '/api/auth/token', { json: { api_key: apiKey }, anonymous: true });
  auth.apiKey = apiKey;
  sessionStorage.setItem(KEY_STORE, apiKey);
  setTokens(pair);
}

function setTokens(pair) {
  auth.access = pair.access_token;
  auth.refresh = pair.refresh_token;
  auth.expiresAt = Date.now() + pair.expires_in * 1000;
  // Refresh a minute before expiry (earlier for very short lifetimes).
  const lead = Math.min(60, pair.expires_in / 5);
  clearTimeout(auth.timer);
  auth.timer = setTimeout(() => refreshTokens().catch(showError), (pair.expires_in - lead) * 1000);
}

// One refresh at a time: presenting the same refresh token twice looks
// like a stolen token to the server, which then revokes the whole family.
// If the refresh token is refused, the API key gets a new pair.
export function refreshTokens() {
  if (!auth.pending) {
    auth.pending = (async () => {
      try {
        setTokens(await request('POST', '/api/auth/refresh',
          { json: { refresh_token: auth.refresh }, anonymous: true }));
      } catch (err) {
        if (!auth.apiKey || err.status === 429) throw err;
        setTokens(await request('POST', '/api/auth/token',
          { json: { api_key: auth.apiKey }, anonymous: true }));
      }
    })().finally(() => { auth.pending = null; });
  }
  return auth.pending;
}

// The current access token, refreshed first if it is about to expire
// (timers do not run while a laptop sleeps).
export async function accessToken() {
  if (auth.pending) await auth.pending;
  if (!auth.access) throw new ApiError(401, 'unauthenticated', 'not signed in');
  if (Date.now() > auth.expiresAt - 15000) await refreshTokens();
  return auth.access;
}

// ---------------------------------------------------------------------
// 3. Event streams

// Event ids are "<ms>-<seq>" (Redis stream positions).
function idAfter(a, b) {
  const [am, as] = a.split('-').map(Number), [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

// openStream(path, types, onEvent, {finalType, onGiveUp}) → {close()}.
// Calls onEvent(type, data) for each event, data being the parsed JSON.
// The browser reconnects by itself after a dropped connection; when the
// server refuses the stream (an expired token, a restart), EventSource
// stops, so the stream is reopened with a fresh token and resumes after
// the last event seen (events seen twice are skipped). After a few
// refusals in a row it gives up and calls onGiveUp.
export function openStream(path, types, onEvent, { finalType, onGiveUp = () => {} } = {}) {
  let es = null, lastId = '', closed = false, failures = 0;

  function close() {
    closed = true;
    if (es) es.close();
  }

  function deliver(type, ev) {
    if (closed) return;
    // An event without an id of its own (the relay's "events_lost") shows
    // the previous id again: only typed events are checked.
    if (ev.lastEventId && type !== 'error') {
      if (lastId && !idAfter(ev.lastEventId, lastId)) return;
      lastId = ev.lastEventId;
    }
    failures = 0;
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    onEvent(type, data);
    if (type === finalType) close();
  }

  async function connect() {
    if (closed) return;
    const query = new URLSearchParams({ access_token: await accessToken() });
    if (lastId) query.set('lastEventId', lastId);
    if (closed) return;
    es = new EventSource(`${path}?${query}`);
    for (const type of types) es.addEventListener(type, (ev) => deliver(type, ev));
    // "error" is both the server's error event (a MessageEvent with data)
    // and EventSource's own connection error (a plain Event).
    es.addEventListener('error', (ev) => {
      if (ev.data !== undefined) return deliver('error', ev);
      if (closed || es.readyState !== EventSource.CLOSED) return;
      if (++failures > 3) {
        closed = true;
        onGiveUp();
        return;
      }
      setTimeout(() => connect().catch(showError), 400 * failures);
    });
  }

  connect().catch((err) => { closed = true; showError(err); onGiveUp(); });
  return { close };
}

// ---------------------------------------------------------------------
// 4. Small helpers of the page

let noticeTimer = 0;

export function notice(text, isError = false) {
  const el = $('notice');
  el.textContent = text;
  el.classList.toggle('error', isError);
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, isError ? 10000 : 4000);
}

export function showError(err) {
  console.error(err);
  notice(err instanceof ApiError ? `${err.message} [${err.code}]` : String(err.message || err), true);
}

export function button(text, className, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

// cell(text): a table cell holding text (as text, never HTML).
export function cell(text) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  return td;
}

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

// "modified" is seconds since the epoch (an RFC 3339 string also works).
export function formatTime(t) {
  if (t == null) return '';
  const d = new Date(typeof t === 'number' ? t * 1000 : t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

// facts(dl, [[term, value], …]): a definition list; empty values are left out.
export function facts(dl, pairs) {
  const items = [];
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.term = term;
    items.push(dt, dd);
  }
  dl.replaceChildren(...items);
}

// setError(id, err, lead): shows an API error in the element id: the
// lead sentence, then its code and message (hidden again when err is null).
export function setError(id, err, lead = '') {
  const el = $(id);
  el.hidden = !err;
  if (!err) return;
  const code = err instanceof ApiError ? err.code : 'error';
  el.replaceChildren();
  if (lead) {
    const span = document.createElement('span');
    span.className = 'lead';
    span.textContent = lead;
    el.append(span);
  }
  const b = document.createElement('code');
  b.textContent = code;
  el.append(b, err.message);
  el.dataset.code = code;
}
