// Drives `edgelm serve` with the official `openai` npm package, unchanged except for its base
// URL: models, chat and text completions (JSON and streaming), errors, an aborted stream.
// Run through run.sh (which skips with exit 77 when node_modules, the model or the binary is
// missing): EDGELM_CLI=/path/to/edgelm EDGELM_MODEL=/path/model.gguf node --test <this file>
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

const cli = process.env.EDGELM_CLI;
const modelPath = process.env.EDGELM_MODEL;
const modelId = modelPath.split('/').pop().replace(/\.gguf$/, '');
const apiKey = 'test-key-123';
let server;
let baseURL;
let client;

before(async () => {
  server = spawn(cli, ['serve', '-m', modelPath, '--port', '0', '--parallel', '2', '-c', '256',
                       '--api-key', apiKey], { stdio: ['ignore', 'inherit', 'pipe'] });
  baseURL = await new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60000);
    server.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 60000 });
});

after(async () => {
  if (!server) return;
  const exited = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
  server.kill('SIGTERM');
  assert.equal(await exited, 0, 'edgelm serve exits 0 on SIGTERM');
});

const messages = [{ role: 'system', content: 'You are terse.' },
                  { role: 'user', content: 'Tell me about the sea.' }];

test('models.list returns the served model', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [modelId]);
  assert.equal(page.data[0].object, 'model');
  const one = await client.models.retrieve(modelId);
  assert.equal(one.id, modelId);
});

test('chat completion, non-streaming and streaming agree (greedy)', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages, max_tokens: 12,
                                                   temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 5);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: modelId, messages, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(text, r.choices[0].message.content);
  assert.equal(finish, r.choices[0].finish_reason);
  assert.deepEqual(usage, r.usage);
});

test('seeded sampling is reproducible', async () => {
  const ask = () => client.chat.completions.create({ model: modelId, messages, max_tokens: 10,
                                                     temperature: 0.9, top_p: 0.95, seed: 1234 });
  const [a, b] = await Promise.all([ask(), ask()]);  // two slots at once
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('text completions, non-streaming and streaming', async () => {
  const r = await client.completions.create({ model: modelId, prompt: 'Once upon a time',
                                              max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens <= 8);
  const stream = await client.completions.create({ model: modelId, prompt: 'Once upon a time',
                                                   max_tokens: 8, temperature: 0,
                                                   stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('stop strings end the answer before the stop text', async () => {
  const r = await client.completions.create({ model: modelId, prompt: 'Once upon a time',
                                              max_tokens: 16, temperature: 0 });
  const full = r.choices[0].text;
  if (full.length < 4) return;  // nothing to cut
  const stop = full.slice(2, 4);
  const cut = await client.completions.create({ model: modelId, prompt: 'Once upon a time',
                                                max_tokens: 16, temperature: 0, stop });
  assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('errors come back as the SDK error classes', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages, n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages, temperature: 'warm' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  await assert.rejects(
    client.chat.completions.create({
      model: modelId, messages: [{ role: 'user', content: 'word '.repeat(400) }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
  const wrongKey = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(),
                       (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test('an aborted stream cancels its generation and the server keeps serving', async () => {
  const stream = await client.chat.completions.create({
    model: modelId, messages, max_tokens: 200, temperature: 1, seed: 5, stream: true });
  let chunks = 0;
  for await (const chunk of stream) {
    if (++chunks === 3) break;  // leaving the loop aborts the HTTP request
  }
  let cancelled = 0;
  for (let i = 0; i < 100 && cancelled === 0; i++) {
    const metrics = await (await fetch(`${baseURL}/metrics`, {
      headers: { Authorization: `Bearer ${apiKey}` } })).text();
    cancelled = Number(metrics.match(/edgelm_requests_cancelled_total (\d+)/)[1]);
    if (cancelled === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(cancelled >= 1, 'the server counted the cancelled stream');
  const r = await client.chat.completions.create({ model: modelId, messages, max_tokens: 4 });
  assert.equal(r.choices.length, 1);
  const health = await fetch(`${baseURL}/health`);
  assert.equal(health.status, 200);
});
