// Perplexity of a GGUF in llama.cpp (node-llama-cpp's prebuilt CPU binary), computed the way
// llama.cpp's llama-perplexity and `edgelm eval` compute it: tokenize the whole text once (BOS
// first when the model adds one), cut it into chunks of --ctx tokens, replace each chunk's
// first token with BOS when the model adds BOS, evaluate each chunk from an empty cache and
// score the second half (the logits at positions [ctx/2, ctx-1) predict the next token).
// PPL = exp(mean NLL). One JSON line on stdout: {model, ppl, ln_ppl, tokens, chunks, ctx}.
//
//   node bench/peer/perplexity.mjs --model m.gguf --file ppl-text.txt [--ctx 128] [--chunks 16]
//                                  [--threads 2]
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";

function parse_args(argv) {
  const a = {model: "", file: "", ctx: 128, chunks: 16, threads: 2};
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${k}`);
      return argv[++i];
    };
    if (k === "-m" || k === "--model") a.model = v();
    else if (k === "-f" || k === "--file") a.file = v();
    else if (k === "-c" || k === "--ctx") a.ctx = parseInt(v(), 10);
    else if (k === "--chunks") a.chunks = parseInt(v(), 10);
    else if (k === "-t" || k === "--threads") a.threads = parseInt(v(), 10);
    else throw new Error(`unknown option ${k}`);
  }
  if (!a.model || !a.file) throw new Error("usage: perplexity.mjs --model M --file TEXT [--ctx 128] [--chunks 16] [--threads 2]");
  return a;
}

async function main() {
  const a = parse_args(process.argv);
  const text = fs.readFileSync(a.file, "utf8");
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0, useMmap: true});
  const md = model.fileInfo.metadata.tokenizer.ggml;
  // llama.cpp's default when the key is absent: SPM adds BOS, byte-level BPE does not.
  const add_bos = md.add_bos_token ?? md.model === "llama";
  const bos = model.tokens.bos;
  let ids = Array.from(model.tokenize(text, false));
  if (add_bos) ids = [bos, ...ids];
  const n_chunk = Math.min(a.chunks > 0 ? a.chunks : Infinity, Math.floor(ids.length / a.ctx));
  if (n_chunk < 1) throw new Error(`${a.file}: ${ids.length} tokens, fewer than one chunk of ${a.ctx}`);

  const ctx = await model.createContext({
    contextSize: a.ctx, batchSize: a.ctx, threads: {ideal: a.threads, min: a.threads}, sequences: 1,
  });
  const seq = ctx.getSequence();
  const first = a.ctx / 2;
  let nll = 0;
  let count = 0;
  for (let c = 0; c < n_chunk; c++) {
    const chunk = ids.slice(c * a.ctx, (c + 1) * a.ctx);
    if (add_bos) chunk[0] = bos;
    await seq.clearHistory();
    const input = chunk.map((tok, i) => {
      if (i < first || i >= a.ctx - 1) return tok;
      return [tok, {generateNext: {
        logits: {filter: {tokens: [chunk[i + 1]], includeTop: 1}},  // includeMax is ignored in 3.22.1
        totalLogitWeight: true,
        // No sampling transforms: the full softmax (node-llama-cpp otherwise applies its
        // default top-k before summing the logit weight).
        options: {temperature: 1, topK: 0, topP: 1, minP: 0},
      }}];
    });
    const out = await seq.controlledEvaluate(input);
    for (let i = first; i < a.ctx - 1; i++) {
      const next = out[i]?.next;
      if (!next?.logits || next.totalLogitWeight === undefined) throw new Error(`no logits at ${c}:${i}`);
      const max_logit = next.logits.values().next().value;  // sorted, highest first
      const lp = next.logits.get(chunk[i + 1]) - max_logit - Math.log(next.totalLogitWeight);
      nll -= lp;
      count++;
    }
    process.stderr.write(`peer ppl: chunk ${c + 1}/${n_chunk} PPL ${Math.exp(nll / count).toFixed(4)}\n`);
  }
  const ppl = Math.exp(nll / count);
  process.stdout.write(JSON.stringify({
    model: a.model, ppl, ln_ppl: nll / count, tokens: count, chunks: n_chunk, ctx: a.ctx,
    text_tokens: ids.length, llama_cpp: llama.llamaCppRelease.release,
  }) + "\n");
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
}

main().catch((e) => {
  process.stderr.write(`perplexity.mjs: ${e.message}\n`);
  process.exit(1);
});
