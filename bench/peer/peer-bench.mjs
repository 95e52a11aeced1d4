// llama.cpp (through node-llama-cpp's prebuilt CPU binary) measured the way `edgelm bench`
// measures edgelm: same tests (pp / tg / pg), same random-token scheme, same JSON shape.
//
//   node bench/peer/peer-bench.mjs --model m.gguf --threads 1,2 --pp 64,512 --tg 128 --reps 5
//
// Tests (identical definitions in tools/edgelm/bench.cpp):
//   ppP   clear the cache, evaluate P tokens as one batch (logits of the last one), timed.
//   tgN   clear the cache, evaluate a short untimed prefix (--tg-prefix, default 16 tokens),
//         then decode N tokens one at a time, each fed the greedy pick of the previous step.
//   ppP+tgN  clear, prefill P then decode N; t/s = (P + N) / total time; ttft = prefill time.
// One JSON object is written to stdout; progress goes to stderr.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";

function parse_args(argv) {
  const a = {
    model: "", threads: [1], pp: [64], tg: [128], pg: [], reps: 5, seed: 42, tgPrefix: 16,
    fa: false, warmup: true, batch: 0,
  };
  const list = (s) => s.split(",").filter((x) => x.length > 0).map((x) => parseInt(x, 10));
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${k}`);
      return argv[++i];
    };
    if (k === "-m" || k === "--model") a.model = v();
    else if (k === "-t" || k === "--threads") a.threads = list(v());
    else if (k === "-p" || k === "--pp") a.pp = list(v());
    else if (k === "-n" || k === "--tg") a.tg = list(v());
    else if (k === "--pg") {
      const p = list(v());
      if (p.length !== 2) throw new Error("--pg takes P,N");
      a.pg.push(p);
    } else if (k === "-r" || k === "--reps") a.reps = parseInt(v(), 10);
    else if (k === "--seed") a.seed = parseInt(v(), 10);
    else if (k === "--tg-prefix") a.tgPrefix = parseInt(v(), 10);
    else if (k === "--batch") a.batch = parseInt(v(), 10);
    else if (k === "--fa") a.fa = true;
    else if (k === "--no-warmup") a.warmup = false;
    else if (k === "--check") a.check = true;
    else if (k === "-h" || k === "--help") {
      process.stdout.write("usage: node peer-bench.mjs -m MODEL [-t 1,2] [-p 64,512] [-n 128] [--pg P,N]... " +
                           "[-r 5] [--seed 42] [--tg-prefix 16] [--batch B] [--fa] [--no-warmup] | --check\n");
      process.exit(0);
    }
    else throw new Error(`unknown option ${k}`);
  }
  if (!a.model && !a.check) throw new Error("--model is required");
  a.pp = a.pp.filter((x) => x > 0);
  a.tg = a.tg.filter((x) => x > 0);
  return a;
}

// mulberry32: the same generator as tools/edgelm/bench.cpp, so both engines see the same ids.
function make_rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function random_tokens(rng, n, n_vocab) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = 3 + (rng() % (n_vocab - 3));  // skip unk/bos/eos
  return out;
}

function vm_kb(field) {
  const m = fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? parseInt(m[1], 10) : 0;
}

function stats(samples_ns, tokens) {
  const ts = samples_ns.map((ns) => (tokens * 1e9) / ns);
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = (xs) => {
    if (xs.length < 2) return 0;
    const m = mean(xs);
    return Math.sqrt(xs.reduce((s, x) => s + (x - m) * (x - m), 0) / (xs.length - 1));
  };
  return {
    avg_ns: mean(samples_ns), stddev_ns: sd(samples_ns), avg_ts: mean(ts), stddev_ts: sd(ts),
    samples_ns, samples_ts: ts,
  };
}

const now_ns = () => process.hrtime.bigint();

// The generator of sequence.evaluate(): the first next() evaluates `tokens` as one batch and
// samples (greedy) from the last one's logits; each further next() evaluates the previously
// sampled token and samples again, i.e. one decode step. (controlledEvaluate() costs several
// ms more per call, which would swamp decode steps of small models.) EOG tokens do not stop it.
function generator(seq, tokens) {
  return seq.evaluate(tokens, {temperature: 0, yieldEogToken: true});
}

async function step(it) {
  const r = await it.next();
  if (r.done) throw new Error("the evaluation ended early");
  return r.value;
}

async function main() {
  const a = parse_args(process.argv);
  if (a.check) {  // install check: the CPU binary loads offline, nothing is built or downloaded
    const l = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
    if (l.gpu !== false) throw new Error("peer is not CPU-only");
    process.stdout.write(`node-llama-cpp ok: llama.cpp ${l.llamaCppRelease.release}, ${l.buildType}\n`);
    await l.dispose();
    return;
  }
  const base_rss_kb = vm_kb("VmRSS");
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 0});
  const t_load = now_ns();
  const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0, useMmap: true});
  const load_ms = Number(now_ns() - t_load) / 1e6;
  const n_vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const bos = model.tokens.bos ?? 1;

  const max_pp = Math.max(1, ...a.pp, ...a.pg.map((x) => x[0]));
  const need_ctx = Math.max(
    max_pp + 1, ...a.tg.map((n) => a.tgPrefix + n + 1), ...a.pg.map(([p, n]) => p + n + 1));
  const batch = a.batch > 0 ? a.batch : Math.max(512, max_pp);
  const results = [];
  const rng = make_rng(a.seed);

  for (const t of a.threads) {
    const ctx = await model.createContext({
      contextSize: need_ctx, batchSize: batch, threads: {ideal: t, min: t}, flashAttention: a.fa,
      sequences: 1,
    });
    const seq = ctx.getSequence();
    if (a.warmup) {
      process.stderr.write(`peer warmup t=${t}\n`);
      await seq.clearHistory();
      const it = generator(seq, [bos, ...random_tokens(rng, Math.min(max_pp, 64) - 1, n_vocab)]);
      for (let i = 0; i < 3; i++) await step(it);  // prefill + 2 decode steps
      await it.return();
    }
    const tests = [
      ...a.pp.map((p) => ({kind: "pp", p, n: 0})),
      ...a.tg.map((n) => ({kind: "tg", p: 0, n})),
      ...a.pg.map(([p, n]) => ({kind: "pg", p, n})),
    ];
    for (const test of tests) {
      const name = test.kind === "pp" ? `pp${test.p}` : test.kind === "tg" ? `tg${test.n}` : `pp${test.p}+tg${test.n}`;
      const samples = [];
      const ttft = [];
      for (let r = 0; r < a.reps; r++) {
        process.stderr.write(`peer ${name} t=${t} rep ${r + 1}/${a.reps}\n`);
        await seq.clearHistory();
        if (test.kind === "tg") {
          const prefix = [bos, ...random_tokens(rng, Math.max(0, a.tgPrefix - 1), n_vocab)];
          const it = generator(seq, prefix);
          await step(it);  // untimed prefix
          const t0 = now_ns();
          for (let i = 0; i < test.n; i++) await step(it);
          samples.push(Number(now_ns() - t0));
          await it.return();
        } else {
          const prompt = [bos, ...random_tokens(rng, test.p - 1, n_vocab)];
          const t0 = now_ns();
          const it = generator(seq, prompt);
          await step(it);
          ttft.push(Number(now_ns() - t0) / 1e6);
          if (test.kind === "pg") for (let i = 0; i < test.n; i++) await step(it);
          samples.push(Number(now_ns() - t0));
          await it.return();
        }
      }
      const tokens = test.kind === "pp" ? test.p : test.kind === "tg" ? test.n : test.p + test.n;
      const r = {
        test: name, kind: test.kind, n_prompt: test.p, n_gen: test.n, n_threads: t, reps: a.reps,
        ...stats(samples, tokens),
      };
      if (ttft.length) r.ttft_ms = ttft.reduce((s, x) => s + x, 0) / ttft.length;
      results.push(r);
    }
    await ctx.dispose();
  }

  const report = {
    engine: "llama.cpp",
    build: {
      name: "node-llama-cpp",
      version: JSON.parse(fs.readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url))).version,
      llama_cpp_release: llama.llamaCppRelease.release,
      build_type: llama.buildType,
    },
    cpu: {features: llama.systemInfo.trim()},
    model: {path: a.model, size_bytes: fs.statSync(a.model).size, type: model.typeDescription},
    load_ms,
    base_rss_bytes: base_rss_kb * 1024,
    results,
  };
  await model.dispose();
  report.peak_rss_bytes = vm_kb("VmHWM") * 1024;
  process.stdout.write(JSON.stringify(report, null, 1) + "\n");
  await llama.dispose();
}

main().catch((e) => {
  process.stderr.write(`peer-bench: ${e?.stack ?? e}\n`);
  process.exit(1);
});
