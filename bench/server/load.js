#!/usr/bin/env node
// Load test for `edgelm serve` on loopback: C concurrent streaming chat clients for a bounded
// time, a fraction of them hanging up midway. Every request must end with a complete answer
// (finish_reason + [DONE]) or a clean JSON error (e.g. 503 when the queue is full); anything
// else counts as a failure. Reports requests/s, p50/p99 time to first token, aggregate
// generated tokens/s, and the server's resident memory (start, peak, end) sampled from /proc.
//
//   node bench/server/load.js --edgelm build/edgelm --model ../shared/models/conf-llama-spm-q8_0.gguf \
//        [--clients 1,4,16] [--seconds 15] [--max-tokens 32] [--disconnect 0.2] [--parallel 2]
//   node bench/server/load.js --url http://127.0.0.1:8080 --model-id NAME ...   (running server)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]?.startsWith('--') ? 'true' : all[i + 1]]);
  return acc;
}, []));
const levels = (args.clients ?? '1,4,16').split(',').map(Number);
const seconds = Number(args.seconds ?? 15);
const maxTokens = Number(args['max-tokens'] ?? 32);
const disconnect = Number(args.disconnect ?? 0.2);
const parallel = Number(args.parallel ?? 2);
const maxQueue = Number(args['max-queue'] ?? 32);

function rssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

let serverErr = '';
async function startServer() {
  const srv = spawn(args.edgelm, ['serve', '-m', args.model, '--port', '0', '--parallel',
                                  String(parallel), '--max-queue', String(maxQueue), '-c', '512'],
                    { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise((resolve, reject) => {
    srv.stderr.on('data', (d) => {
      serverErr += d;
      const err = serverErr;
      const m = err.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) resolve(m[1]);
    });
    srv.on('exit', (c) => reject(new Error(`server exited ${c}: ${serverErr}`)));
  });
  return { srv, url };
}

const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// One streaming request. Returns { kind: 'ok'|'error'|'hungup'|'failed', ttft, tokens }.
async function oneRequest(url, modelId, hangUpAfter) {
  const t0 = performance.now();
  const ctrl = new AbortController();
  let res;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', signal: ctrl.signal, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: modelId, max_tokens: maxTokens, temperature: 0.8,
                             stream: true, stream_options: { include_usage: true },
                             messages: [{ role: 'user', content: 'Write about the sea.' }] }) });
  } catch (e) { return { kind: 'failed', why: `connect: ${e.message}` }; }
  if (res.status !== 200) {
    const body = await res.text();
    try {
      const j = JSON.parse(body);
      if (j.error?.message) return { kind: 'error', status: res.status };
    } catch { /* fallthrough */ }
    return { kind: 'failed', why: `HTTP ${res.status} without a JSON error: ${body.slice(0, 80)}` };
  }
  let buf = '', ttft = null, deltas = 0, finish = null, done = false, usage = null;
  let hungUp = false;
  const decoder = new TextDecoder();
  try {
    for await (const bytes of res.body) {
      buf += decoder.decode(bytes, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ')) continue;
        const data = ev.slice(6);
        if (data === '[DONE]') { done = true; continue; }
        const j = JSON.parse(data);
        if (j.error) return { kind: 'error', status: 200 };
        if (j.usage) usage = j.usage;
        for (const c of j.choices) {
          if (c.delta?.content) {
            if (ttft === null) ttft = performance.now() - t0;
            deltas++;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
        if (hangUpAfter !== null && deltas >= hangUpAfter) {
          hungUp = true;
          ctrl.abort();
          return { kind: 'hungup', ttft, tokens: deltas };
        }
      }
    }
  } catch (e) {
    if (hungUp) return { kind: 'hungup', ttft, tokens: deltas };
    return { kind: 'failed', why: `stream: ${e.message}` };
  }
  if (!done || !finish || !usage) return { kind: 'failed', why: 'stream ended early' };
  return { kind: 'ok', ttft, tokens: usage.completion_tokens };
}

async function level(url, modelId, clients, pid) {
  const results = [];
  const deadline = performance.now() + seconds * 1000;
  let seq = 0;
  let peak = 0;
  const sampler = setInterval(() => { if (pid) peak = Math.max(peak, rssKiB(pid)); }, 100);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < deadline) {
      const n = seq++;
      const hang = disconnect > 0 && (n % Math.round(1 / disconnect)) === 0 ? 2 : null;
      results.push(await oneRequest(url, modelId, hang));
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const ok = results.filter((r) => r.kind === 'ok');
  const ttfts = results.filter((r) => r.ttft != null).map((r) => r.ttft);
  const tokens = results.reduce((s, r) => s + (r.tokens ?? 0), 0);
  const failed = results.filter((r) => r.kind === 'failed');
  return {
    clients, requests: results.length, ok: ok.length,
    hungup: results.filter((r) => r.kind === 'hungup').length,
    errors: results.filter((r) => r.kind === 'error').length, failed: failed.length,
    failures: failed.slice(0, 3).map((f) => f.why),
    rps: ok.length / wall, ttft_p50_ms: pct(ttfts, 50), ttft_p99_ms: pct(ttfts, 99),
    tokens_per_s: tokens / wall, peak_rss_mib: peak / 1024,
  };
}

let server = null;
let url = args.url;
let modelId = args['model-id'];
if (!url) {
  server = await startServer();
  url = server.url;
  modelId = args.model.split('/').pop().replace(/\.gguf$/, '');
}
const pid = server?.srv.pid;
const rss0 = pid ? rssKiB(pid) / 1024 : NaN;
const rows = [];
for (const c of levels) {
  const r = await level(url, modelId, c, pid);
  rows.push(r);
  console.error(JSON.stringify(r));
}
// Idle a moment, then check everything was released.
await new Promise((r) => setTimeout(r, 500));
const health = await (await fetch(`${url}/health`)).json();
const rssEnd = pid ? rssKiB(pid) / 1024 : NaN;
console.log(`| clients | requests | complete | hung up | clean errors | failures | req/s | TTFT p50 ms | TTFT p99 ms | tokens/s | peak RSS MiB |`);
console.log(`|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of rows) {
  console.log(`| ${r.clients} | ${r.requests} | ${r.ok} | ${r.hungup} | ${r.errors} | ${r.failed} | ` +
              `${r.rps.toFixed(2)} | ${r.ttft_p50_ms.toFixed(0)} | ${r.ttft_p99_ms.toFixed(0)} | ` +
              `${r.tokens_per_s.toFixed(1)} | ${r.peak_rss_mib.toFixed(1)} |`);
}
console.log(`\nserver RSS: ${rss0.toFixed(1)} MiB at start, ${rssEnd.toFixed(1)} MiB at the end; ` +
            `after the run: active=${health.active} queued=${health.queued}`);
let exitCode = rows.some((r) => r.failed > 0) || health.active !== 0 || health.queued !== 0 ? 1 : 0;
if (server) {
  const exited = new Promise((r) => server.srv.on('exit', (code) => r(code)));
  server.srv.kill('SIGTERM');
  const code = await exited;
  console.log(`server exit status: ${code}`);
  if (code !== 0) {
    console.log(serverErr.slice(-4000));
    exitCode = 1;
  }
}
process.exit(exitCode);
