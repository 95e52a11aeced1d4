// Side-by-side: `edgelm bench` and llama.cpp (peer-bench.mjs) on the same GGUF, same tests,
// same threads, ALTERNATING one process per engine per repetition (edgelm, peer, edgelm, ...),
// so drift in machine load hits both alike. Prints a markdown table to stdout.
//
//   node bench/peer/compare.mjs --edgelm build/tools/edgelm/edgelm --model m.gguf \
//        --threads 1,2 --pp 512 --tg 128 --reps 3 [--json out.json] [--peer-only]
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function parse_args(argv) {
  const a = {edgelm: "", model: "", threads: "1", pp: "512", tg: "128", reps: 3, json: "", peerOnly: false,
             seed: 42, tgPrefix: 16};
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${k}`);
      return argv[++i];
    };
    if (k === "--edgelm") a.edgelm = v();
    else if (k === "--model" || k === "-m") a.model = v();
    else if (k === "--threads" || k === "-t") a.threads = v();
    else if (k === "--pp" || k === "-p") a.pp = v();
    else if (k === "--tg" || k === "-n") a.tg = v();
    else if (k === "--reps" || k === "-r") a.reps = parseInt(v(), 10);
    else if (k === "--seed") a.seed = parseInt(v(), 10);
    else if (k === "--tg-prefix") a.tgPrefix = parseInt(v(), 10);
    else if (k === "--json") a.json = v();
    else if (k === "--peer-only") a.peerOnly = true;
    else throw new Error(`unknown option ${k}`);
  }
  if (!a.model) throw new Error("--model is required");
  if (!a.peerOnly && !a.edgelm) throw new Error("--edgelm is required (or --peer-only)");
  return a;
}

function run_json(label, cmd, args) {
  process.stderr.write(`[${label}] ${[cmd, ...args].join(" ")}\n`);
  const r = spawnSync(cmd, args, {encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"]});
  if (r.error) throw new Error(`${label}: cannot start ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${label}: ${cmd} exited with ${r.status}`);
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    throw new Error(`${label}: output is not JSON: ${e.message}: ${r.stdout.slice(0, 300)}`);
  }
}

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) * (x - m), 0) / (xs.length - 1));
};
const fmt_ts = (xs) => (xs.length ? `${mean(xs).toFixed(2)} ± ${sd(xs).toFixed(2)}` : "n/a");
const mib = (b) => (b / (1024 * 1024)).toFixed(1);

function main() {
  const a = parse_args(process.argv);
  const common = ["-t", a.threads, "-p", a.pp, "-n", a.tg, "-r", "1", "--tg-prefix", String(a.tgPrefix)];
  // samples[engine][key] = [t/s per repetition]; key = "test|threads"
  const samples = {edgelm: new Map(), peer: new Map()};
  const rss = {edgelm: [], peer: []};
  let meta = {edgelm: null, peer: null};
  const add = (engine, report) => {
    meta[engine] = report;
    rss[engine].push(report.peak_rss_bytes);
    for (const r of report.results) {
      const key = `${r.test}|${r.n_threads}`;
      if (!samples[engine].has(key)) samples[engine].set(key, []);
      samples[engine].get(key).push(r.avg_ts);
    }
  };
  const loads = [];
  for (let rep = 0; rep < a.reps; rep++) {
    const seed = String(a.seed + rep);
    loads.push(os.loadavg()[0]);
    if (!a.peerOnly) {
      process.stderr.write(`== repetition ${rep + 1}/${a.reps}: edgelm\n`);
      add("edgelm", run_json("edgelm", a.edgelm, ["bench", "-m", a.model, ...common, "--seed", seed, "-o", "json"]));
    }
    process.stderr.write(`== repetition ${rep + 1}/${a.reps}: llama.cpp\n`);
    add("peer", run_json("llama.cpp", process.execPath,
                         [path.join(here, "peer-bench.mjs"), "--model", a.model, ...common, "--seed", seed]));
  }

  const keys = [...samples.peer.keys()];
  const lines = [];
  lines.push(`model: ${path.basename(a.model)} (${mib(fs.statSync(a.model).size)} MiB), reps: ${a.reps} ` +
             `(alternating processes), 1-min load avg during run: ${mean(loads).toFixed(2)}`);
  if (meta.edgelm) {
    lines.push(`edgelm: ${meta.edgelm.build?.version ?? "?"} (${meta.edgelm.build?.commit ?? "?"}), ` +
               `kernels ${meta.edgelm.kernels ?? "?"}, cpu ${meta.edgelm.cpu?.features ?? "?"}`);
  }
  lines.push(`llama.cpp: node-llama-cpp ${meta.peer.build.version} prebuilt (${meta.peer.build.build_type}), ` +
             `llama.cpp ${meta.peer.build.llama_cpp_release}`);
  lines.push("");
  lines.push("| test | threads | edgelm t/s | llama.cpp t/s | edgelm / llama.cpp |");
  lines.push("| --- | ---: | ---: | ---: | ---: |");
  const rows = [];
  for (const key of keys) {
    const [test, threads] = key.split("|");
    const e = samples.edgelm.get(key) ?? [];
    const p = samples.peer.get(key);
    const ratio = e.length ? mean(e) / mean(p) : NaN;
    rows.push({test, threads: Number(threads), edgelm_ts: e, peer_ts: p, ratio});
    lines.push(`| ${test} | ${threads} | ${fmt_ts(e)} | ${fmt_ts(p)} | ${Number.isNaN(ratio) ? "n/a" : ratio.toFixed(2)} |`);
  }
  const re = rss.edgelm.length ? mean(rss.edgelm) : NaN;
  const rp = mean(rss.peer);
  lines.push(`| peak RSS (MiB) | | ${Number.isNaN(re) ? "n/a" : mib(re)} | ${mib(rp)} | ` +
             `${Number.isNaN(re) ? "n/a" : (re / rp).toFixed(2)} |`);
  if (meta.peer.base_rss_bytes) {
    lines.push("");
    lines.push(`(llama.cpp's RSS includes the node runtime: ${mib(meta.peer.base_rss_bytes)} MiB before the model loaded` +
               (meta.edgelm?.base_rss_bytes ? `; edgelm's process started at ${mib(meta.edgelm.base_rss_bytes)} MiB)` : ")"));
  }
  process.stdout.write(lines.join("\n") + "\n");
  if (a.json) {
    fs.writeFileSync(a.json, JSON.stringify({model: a.model, reps: a.reps, rows, rss, edgelm: meta.edgelm,
                                             peer: meta.peer}, null, 1));
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`compare: ${e.message}\n`);
  process.exit(1);
}
