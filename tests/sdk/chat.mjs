// tests/sdk/chat.mjs: sandpipe's chat answers read by the official
// clients: the AI SDK's own data stream parser (@ai-sdk/ui-utils
// processDataStream, which useChat runs) on POST /api/chat, and the openai
// package's streaming on POST /api/chat/completions (base URL .../api).
// Run by tests/integration/test_chat.py with SP_URL, SP_API_KEY (an access
// token for the openai client's Bearer header) and SP_SESSION, against
// the model stand-in (tests/llm/stand_in.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import { processDataStream } from "@ai-sdk/ui-utils";
import OpenAI from "openai";

const url = process.env.SP_URL;
const token = process.env.SP_TOKEN;
const session = process.env.SP_SESSION;

async function chat(content) {
  const res = await fetch(`${url}/api/chat`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ session_id: session, messages: [{ role: "user", content }] }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-vercel-ai-data-stream"), "v1");
  const seen = { text: "", calls: [], results: [], steps: [], errors: [], data: [], finish: null };
  await processDataStream({
    stream: res.body,
    onTextPart: (t) => { seen.text += t; },
    onToolCallPart: (c) => seen.calls.push(c),
    onToolResultPart: (r) => seen.results.push(r),
    onFinishStepPart: (s) => seen.steps.push(s),
    onFinishMessagePart: (f) => { seen.finish = f; },
    onErrorPart: (e) => seen.errors.push(e),
    onDataPart: (d) => seen.data.push(...d),
  });
  return seen;
}

test("the AI SDK's parser reads a tool round", async () => {
  const s = await chat("RUN print('from-sdk'); 2 + 3");
  assert.deepEqual(s.errors, []);
  assert.equal(s.calls.length, 1);
  assert.equal(s.calls[0].toolName, "python_interpreter");
  assert.equal(s.results[0].toolCallId, s.calls[0].toolCallId);
  assert.equal(s.results[0].result.stdout, "from-sdk\n");
  assert.ok(s.data.some((d) => d.type === "tool-output" && d.text.includes("from-sdk")));
  assert.deepEqual(s.steps.map((x) => x.finishReason), ["tool-calls", "stop"]);
  assert.equal(s.finish.finishReason, "stop");
  assert.ok(s.text.startsWith("TOOL SAID: "), s.text);
});

test("the AI SDK's parser reads an error part", async () => {
  const s = await chat("FAIL500");
  assert.equal(s.errors.length, 1);
  assert.match(s.errors[0], /HTTP 500/);
  assert.equal(s.finish, null);
});

test("the openai client streams /api/chat/completions", async () => {
  const client = new OpenAI({ apiKey: token, baseURL: `${url}/api`, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: "any", stream: true, session_id: session,
    messages: [{ role: "user", content: "RUN print('oa-sdk')" }],
  });
  let content = "";
  const extras = [];
  let usage = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) content += c.delta?.content ?? "";
    if (chunk.sandpipe) extras.push(chunk.sandpipe.type);
    if (chunk.usage) usage = chunk.usage;
  }
  assert.match(content, /```python\nprint\('oa-sdk'\)\n```/);
  assert.match(content, /TOOL SAID: stdout:\noa-sdk/);
  assert.deepEqual(extras, ["tool_call", "tool_result"]);
  assert.ok(usage.total_tokens > 0);
});

test("the openai client raises the stream's error", async () => {
  const client = new OpenAI({ apiKey: token, baseURL: `${url}/api`, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: "any", stream: true, session_id: session,
    messages: [{ role: "user", content: "FAIL500" }],
  });
  await assert.rejects(async () => {
    for await (const chunk of stream) void chunk;
  }, /HTTP 500/);
});
