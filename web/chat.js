// web/chat.js: the console's Chat view. A conversation with the model the
// server is configured with (POST /api/chat), whose answer streams in the
// AI SDK's data stream protocol: text as it comes, each python_interpreter
// call with its code, its output while it runs and its result (text, and
// charts as images), errors. The session (one per browser tab) owns a
// sandbox on the server, where uploaded files land in /uploaded_files and
// the model's code keeps its variables from one message to the next.
//
//   1. State: the tab's session id and the conversation so far.
//   2. The stream: lines of TYPE:JSON read from the response body.
//   3. Rendering: messages, tool calls, results (never HTML from the
//      sandbox: text and PNG images only).
//   4. Sending, uploading, wiring.

import { $, request, accessToken, showError, formatSize } from '/lib.js';

const SESSION_STORE = 'sandpipe.chatSession';

// ---------------------------------------------------------------------
// 1. State

const chat = { session: null, history: [], busy: false, abort: null };

function sessionId() {
  if (!chat.session) {
    chat.session = sessionStorage.getItem(SESSION_STORE);
    if (!chat.session) {
      const bytes = crypto.getRandomValues(new Uint8Array(12));
      chat.session = 'console_' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      sessionStorage.setItem(SESSION_STORE, chat.session);
    }
  }
  return chat.session;
}

// ---------------------------------------------------------------------
// 2. The stream

// readParts(res, onPart): every TYPE:JSON line of the body, in order.
async function readParts(res, onPart) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    rest += decoder.decode(value || new Uint8Array(), { stream: !done });
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      const colon = line.indexOf(':');
      if (colon > 0) onPart(line.slice(0, colon), JSON.parse(line.slice(colon + 1)));
    }
    if (done) return;
  }
}

// ---------------------------------------------------------------------
// 3. Rendering

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addMessage(role, text) {
  const m = el('div', `chat-msg chat-${role}`);
  m.dataset.role = role;
  const body = el('div', 'chat-text', text);
  m.append(body);
  $('chat-log').append(m);
  m.scrollIntoView({ block: 'end' });
  return { box: m, text: body };
}

// A tool call's block: its code, its live output, then its result.
function addToolCall(box, part) {
  const t = el('details', 'chat-tool');
  t.open = true;
  t.dataset.toolCallId = part.toolCallId;
  t.append(el('summary', null, part.toolName));
  const code = part.args && typeof part.args.code === 'string' ? part.args.code : JSON.stringify(part.args);
  t.append(el('pre', 'chat-code', code));
  t.append(el('pre', 'chat-output output'));
  box.insertBefore(t, box.lastChild);
  return t;
}

function showResult(tool, result) {
  const out = tool.querySelector('.chat-output');
  tool.dataset.status = result.status || (result.error ? 'error' : 'ok');
  if (typeof result.stdout === 'string') out.textContent = result.stdout;
  if (result.stderr) out.append(el('span', 'stderr', result.stderr));
  for (const r of result.results || []) {
    if (r['image/png']) {
      const img = el('img', 'chat-chart');
      img.alt = 'chart';
      img.src = 'data:image/png;base64,' + r['image/png'];
      tool.append(img);
    } else if (r['text/plain'] !== undefined) {
      tool.append(el('pre', 'chat-value', r['text/plain']));
    }
  }
  if (result.error) {
    const e = result.error;
    const msg = typeof e === 'string' ? e : `${e.name}: ${e.value}\n${e.traceback || ''}`;
    tool.append(el('pre', 'chat-error', msg));
  }
}

// ---------------------------------------------------------------------
// 4. Sending, uploading, wiring

async function send(event) {
  event.preventDefault();
  const input = $('chat-input');
  const content = input.value.trim();
  if (!content || chat.busy) return;
  input.value = '';
  chat.busy = true;
  $('chat-send').disabled = true;
  $('chat-stop').disabled = false;
  $('chat-state').textContent = 'answering';
  addMessage('user', content);
  chat.history.push({ role: 'user', content });
  const answer = addMessage('assistant', '');
  const tools = {};
  let text = '';
  chat.abort = new AbortController();
  try {
    const res = await fetch('/api/chat', {
      method: 'POST',
      headers: { Authorization: `Bearer ${await accessToken()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId(), messages: chat.history }),
      signal: chat.abort.signal,
    });
    if (!res.ok) {
      const err = await res.json().catch(() => ({ error: { message: res.statusText } }));
      throw new Error(err.error.message);
    }
    await readParts(res, (type, v) => {
      if (type === '0') {
        text += v;
        answer.text.textContent = text;
      } else if (type === '9') {
        tools[v.toolCallId] = addToolCall(answer.box, v);
      } else if (type === '2') {
        for (const d of v) {
          const t = tools[d.toolCallId];
          if (d.type === 'tool-output' && t) t.querySelector('.chat-output').textContent += d.text;
        }
      } else if (type === 'a') {
        if (tools[v.toolCallId]) showResult(tools[v.toolCallId], v.result);
      } else if (type === '3') {
        answer.box.append(el('p', 'chat-error inline-error', v));
      } else if (type === 'd') {
        answer.box.dataset.finish = v.finishReason;
      }
      answer.box.scrollIntoView({ block: 'end' });
    });
    chat.history.push({ role: 'assistant', content: text });
  } catch (err) {
    if (err.name !== 'AbortError') answer.box.append(el('p', 'chat-error inline-error', err.message));
  } finally {
    answer.box.dataset.done = 'true';
    chat.busy = false;
    chat.abort = null;
    $('chat-send').disabled = false;
    $('chat-stop').disabled = true;
    $('chat-state').textContent = 'idle';
  }
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append('file', f, f.name);
  // The session's sandbox is made by its first initialize (or chat).
  await request('POST', `/api/sessions/${sessionId()}/initialize`, { json: {} });
  const doc = await request('POST', `/api/sandboxes/upload?session_id=${sessionId()}`, { body: form });
  const list = $('chat-files');
  for (const f of doc.files) list.append(el('li', null, `${f.path} (${formatSize(f.size)})`));
}

export function init() {
  $('chat-form').addEventListener('submit', send);
  $('chat-stop').addEventListener('click', () => chat.abort && chat.abort.abort());
  $('chat-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('chat-form').requestSubmit();
  });
  $('chat-upload').addEventListener('change', (e) => {
    upload(e.target.files).catch(showError).finally(() => { e.target.value = ''; });
  });
}

// A new conversation on sign-out: the next one starts a new session.
export function reset() {
  chat.history = [];
  chat.session = null;
  sessionStorage.removeItem(SESSION_STORE);
  $('chat-log').replaceChildren();
  $('chat-files').replaceChildren();
}
