// `edgelm bench -m MODEL [-t 1,2] [-p 64,512] [-n 128] [--pg 512,128] [-r 5] [-o md|json]`:
// throughput of the forward pass, measured like llama.cpp's llama-bench. Needs no tokenizer:
// prompts are seeded random token ids (the same generator as bench/peer/peer-bench.mjs, so
// llama.cpp sees the same ids in the side-by-side comparison).
//
// Tests, for each thread count (each repetition starts from an empty KV cache):
//   ppP      evaluate P tokens as one batch (logits of the last one); t/s = P / time.
//            ttft = that time (time to the first generated token's logits).
//   tgN      evaluate a short untimed prefix (--tg-prefix tokens, default 16), then decode N
//            tokens one at a time, each the argmax of the previous logits; t/s = N / time.
//   ppP+tgN  prefill P then decode N (--pg P,N); t/s = (P + N) / total time.
// A warmup (a short prefill and two decode steps) runs before the tests of each thread count
// unless --no-warmup. t/s is the mean ± sample standard deviation over the repetitions.
//
// Output: -o md (default) prints a llama-bench-style markdown table with the build, CPU
// features, kernel set and peak RSS around it; -o json prints one JSON object:
//   {"build": {"version","commit","info"}, "cpu": {"arch","model","logical_cores",
//    "physical_cores","features"}, "kernels", "model": {"path","arch","type","size_bytes",
//    "n_params","n_vocab","n_embd","n_layer"}, "load_ms", "base_rss_bytes", "peak_rss_bytes",
//    "loadavg": [1, 5, 15 min], "params": {"seed","reps","tg_prefix","warmup"},
//    "results": [{"test","kind","n_prompt","n_gen","n_threads","reps","avg_ns","stddev_ns",
//                 "avg_ts","stddev_ts","samples_ns","samples_ts","ttft_ms"?}]}
// Memory bandwidth: before the tests of each thread count, `threads` threads stream (read
// only) over a buffer of --membw-mib MiB (default 512, at least 4x the L3 cache; 0 skips it),
// best of 3 passes, in GB/s (1e9 bytes/s). tg results add the weight bytes read per token
// (every matrix and norm of the model once plus one embedding row), the achieved
// GB/s = t/s x bytes/token and its fraction of the measured bandwidth: JSON "mem_bw":
// [{"n_threads","gbps"}], "mem_bw_buffer_bytes", "model"."weight_bytes_per_token", and per tg
// result "bytes_per_token", "achieved_gbps", "bw_fraction".
// Progress ("pp512 t=2 rep 3/5") goes to stderr. Exit status: 0 ok, 1 error, 2 usage error.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct BenchOptions {
  std::string model;
  std::vector<int> threads;
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  std::vector<std::string> pg;
  int reps = 5;
  std::string output = "md";
  uint32_t seed = 42;
  int tg_prefix = 16;
  bool warmup = true;
  std::string kernels = "best";
  int membw_mib = 512;
};

enum class Kind { kPp, kTg, kPg };

struct Test {
  Kind kind;
  int p = 0;
  int n = 0;
  std::string name() const {
    switch (kind) {
      case Kind::kPp:
        return fmt::format("pp{}", p);
      case Kind::kTg:
        return fmt::format("tg{}", n);
      case Kind::kPg:
        return fmt::format("pp{}+tg{}", p, n);
    }
    return "?";
  }
  const char* kind_name() const {
    return kind == Kind::kPp ? "pp" : kind == Kind::kTg ? "tg" : "pg";
  }
  int tokens() const { return kind == Kind::kPp ? p : kind == Kind::kTg ? n : p + n; }
};

struct Result {
  Test test;
  int threads = 0;
  std::vector<double> samples_ns;
  std::vector<double> ttft_ms;
};

// mulberry32, bit-identical to make_rng() in bench/peer/peer-bench.mjs.
class Mulberry32 {
 public:
  explicit Mulberry32(uint32_t seed) : s_(seed) {}
  uint32_t next() {
    s_ += 0x6d2b79f5u;
    uint32_t t = s_;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
  }

 private:
  uint32_t s_;
};

// [bos, n - 1 random ids in [3, n_vocab)] (ids 0..2 are unk/bos/eos in llama vocabularies).
std::vector<int32_t> prompt_tokens(Mulberry32& rng, int n, int32_t bos, int64_t n_vocab) {
  std::vector<int32_t> t;
  t.reserve(static_cast<size_t>(std::max(n, 1)));
  t.push_back(bos);
  for (int i = 1; i < n; ++i)
    t.push_back(static_cast<int32_t>(3 + rng.next() % static_cast<uint32_t>(n_vocab - 3)));
  return t;
}

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

double mean(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x;
  return xs.empty() ? 0.0 : s / static_cast<double>(xs.size());
}

double stddev(const std::vector<double>& xs) {
  if (xs.size() < 2) return 0.0;
  const double m = mean(xs);
  double s = 0;
  for (double x : xs) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(xs.size() - 1));
}

std::vector<double> loadavg() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  if (!(in >> a >> b >> c)) return {};
  return {a, b, c};
}

// "edgelm 0.1.0 (abc1234) gcc 12.2 release" -> version, commit.
void split_build_info(const std::string& info, std::string& version, std::string& commit) {
  version = "unknown";
  commit = "unknown";
  const size_t sp = info.find(' ');
  const size_t open = info.find(" (");
  const size_t close = info.find(')', open == std::string::npos ? 0 : open);
  if (sp != std::string::npos && open != std::string::npos && open > sp)
    version = info.substr(sp + 1, open - sp - 1);
  if (open != std::string::npos && close != std::string::npos)
    commit = info.substr(open + 2, close - open - 2);
}

std::string mib(double bytes) { return fmt::format("{:.2f} MiB", bytes / (1024.0 * 1024.0)); }

using Clock = std::chrono::steady_clock;
double ns_since(Clock::time_point t0) {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// Bytes of weights one decode step reads: every layer tensor (matrices, norms, biases), the
// output norm and matrix, and one row of the token embeddings.
double weight_bytes_per_token(const Model& model) {
  const Weights& w = model.weights();
  auto bytes = [](const TensorRef& t) {
    return t ? static_cast<double>(t.row_bytes()) * static_cast<double>(t.ne1) : 0.0;
  };
  double b = bytes(w.output_norm) + bytes(w.output) + static_cast<double>(w.token_embd.row_bytes());
  for (const LayerWeights& l : w.layers) {
    for (const TensorRef* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv,
                               &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
      b += bytes(*t);
  }
  return b;
}

// Last-level cache size from sysfs (0 when unknown).
size_t l3_bytes() {
  size_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream in(fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/size", i));
    size_t v = 0;
    std::string unit;
    if (!(in >> v)) continue;
    in >> unit;
    if (!unit.empty() && (unit[0] == 'K' || unit[0] == 'k')) v <<= 10;
    if (!unit.empty() && unit[0] == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best;
}

// Read-only streaming bandwidth with `threads` threads over `buf`, best of `passes`, GB/s.
double measure_bandwidth(const std::vector<uint64_t>& buf, int threads, int passes) {
  ThreadPool pool(threads);
  std::vector<uint64_t> sink(static_cast<size_t>(threads), 0);
  double best = 0.0;
  for (int r = 0; r < passes; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(
        buf.size(),
        [&](size_t b, size_t e, int t) {
          uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          const uint64_t* p = buf.data();
          size_t i = b;
          for (; i + 4 <= e; i += 4) {
            s0 += p[i];
            s1 += p[i + 1];
            s2 += p[i + 2];
            s3 += p[i + 3];
          }
          for (; i < e; ++i) s0 += p[i];
          sink[static_cast<size_t>(t)] += s0 + s1 + s2 + s3;
        },
        4096);
    const double ns = static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    best = std::max(best, static_cast<double>(buf.size() * sizeof(uint64_t)) / ns);
  }
  uint64_t total = 0;
  for (uint64_t v : sink) total += v;
  if (total == 42) fmt::print(stderr, " ");  // keeps the sums alive
  return best;
}

Status decode(Context& ctx, int32_t first, int n) {
  int32_t tok = first;
  for (int i = 0; i < n; ++i) {
    auto logits = ctx.eval(std::span<const int32_t>(&tok, 1));
    if (!logits.ok()) return logits.status();
    tok = argmax(*logits);
  }
  return Status::ok_status();
}

StatusOr<int32_t> prefill(Context& ctx, const std::vector<int32_t>& tokens) {
  auto logits = ctx.eval(std::span<const int32_t>(tokens));
  if (!logits.ok()) return logits.status();
  return argmax(*logits);
}

Status run_test(Context& ctx, const Test& test, int threads, const BenchOptions& o, Mulberry32& rng,
                int32_t bos, int64_t n_vocab, Result& out) {
  for (int r = 0; r < o.reps; ++r) {
    fmt::print(stderr, "{} t={} rep {}/{}\n", test.name(), threads, r + 1, o.reps);
    ctx.reset();
    if (test.kind == Kind::kTg) {
      auto prefix = prompt_tokens(rng, std::max(1, o.tg_prefix), bos, n_vocab);
      ASSIGN_OR_RETURN(int32_t first, prefill(ctx, prefix));
      const auto t0 = Clock::now();
      RETURN_IF_ERROR(decode(ctx, first, test.n));
      out.samples_ns.push_back(ns_since(t0));
    } else {
      auto prompt = prompt_tokens(rng, test.p, bos, n_vocab);
      const auto t0 = Clock::now();
      ASSIGN_OR_RETURN(int32_t first, prefill(ctx, prompt));
      out.ttft_ms.push_back(ns_since(t0) / 1e6);
      if (test.kind == Kind::kPg) RETURN_IF_ERROR(decode(ctx, first, test.n));
      out.samples_ns.push_back(ns_since(t0));
    }
  }
  return Status::ok_status();
}

std::vector<double> samples_ts(const Result& r) {
  std::vector<double> ts;
  for (double ns : r.samples_ns) ts.push_back(static_cast<double>(r.test.tokens()) * 1e9 / ns);
  return ts;
}

int run_bench(BenchOptions o) {
  if (o.reps < 1)
    return report_error(fmt::format("-r/--repetitions must be at least 1, found {}", o.reps));
  if (o.output != "md" && o.output != "json")
    return report_error(fmt::format("-o/--output: expected md or json, found '{}'", o.output));
  if (o.tg_prefix < 1) return report_error("--tg-prefix must be at least 1");
  const Ops* ops = nullptr;
  if (o.kernels == "ref") {
    ops = &ref_ops();
  } else if (o.kernels == "best") {
    ops = &best_ops();
  } else {
    return report_error(fmt::format("--kernels: expected best or ref, found '{}'", o.kernels));
  }
  if (o.threads.empty()) o.threads.push_back(physical_core_count());
  for (int t : o.threads)
    if (t < 1)
      return report_error(fmt::format("-t/--threads: thread counts must be positive, found {}", t));

  std::vector<Test> tests;
  for (int p : o.n_prompt)
    if (p > 0) tests.push_back({Kind::kPp, p, 0});
  for (int n : o.n_gen)
    if (n > 0) tests.push_back({Kind::kTg, 0, n});
  for (const std::string& s : o.pg) {
    int p = 0, n = 0;
    char tail = 0;
    if (std::sscanf(s.c_str(), "%d,%d%c", &p, &n, &tail) != 2 || p < 1 || n < 1)
      return report_error(fmt::format("--pg: expected P,N with positive P and N, found '{}'", s));
    tests.push_back({Kind::kPg, p, n});
  }
  if (tests.empty()) return report_error("nothing to measure: every -p, -n and --pg is empty or 0");

  const double base_rss = static_cast<double>(current_rss_bytes());
  const auto t_load = Clock::now();
  ModelOptions mo;
  mo.log_summary = false;
  auto model_or = Model::load(o.model, mo);
  if (!model_or.ok()) return report_error(model_or.status());
  std::unique_ptr<Model> model = std::move(model_or).value();
  const double load_ms = ns_since(t_load) / 1e6;
  const HParams& hp = model->hparams();
  if (hp.n_vocab < 4)
    return report_error(
        fmt::format("model '{}' has a vocabulary of {} tokens", o.model, hp.n_vocab));
  const int32_t bos =
      static_cast<int32_t>(model->gguf().get_uint("tokenizer.ggml.bos_token_id").value_or(1));
  int64_t n_params = 0;
  for (const auto& t : model->gguf().tensors()) n_params += t.n_elements;

  int max_p = 1, n_ctx = 1;
  for (const Test& t : tests) {
    max_p = std::max(max_p, t.p);
    const int need = t.kind == Kind::kTg ? o.tg_prefix + t.n : t.p + t.n;
    n_ctx = std::max(n_ctx, need);
  }
  n_ctx = std::max(n_ctx, std::min(max_p, 64) + 2);  // warmup

  if (o.membw_mib < 0)
    return report_error(fmt::format("--membw-mib must be >= 0, found {}", o.membw_mib));
  const double bytes_per_token = weight_bytes_per_token(*model);
  std::vector<std::pair<int, double>> membw;  // (threads, GB/s)
  size_t membw_bytes = 0;
  auto membw_for = [&](int threads) {
    for (const auto& [t, g] : membw)
      if (t == threads) return g;
    return 0.0;
  };

  Mulberry32 rng(o.seed);
  std::vector<Result> results;
  std::string kernels_name = ops->name;
  for (int threads : o.threads) {
    ContextOptions co;
    co.n_ctx = n_ctx;
    co.n_threads = threads;
    co.ops = ops;
    co.n_batch = std::max(max_p, o.tg_prefix);  // every prefill is one forward pass
    auto ctx_or = Context::create(*model, co);
    if (!ctx_or.ok()) return report_error(ctx_or.status());
    std::unique_ptr<Context> ctx = std::move(ctx_or).value();
    kernels_name = ctx->ops().name;
    if (o.warmup) {
      fmt::print(stderr, "warmup t={}\n", threads);
      auto w = prompt_tokens(rng, std::min(max_p, 64), bos, hp.n_vocab);
      auto first = prefill(*ctx, w);
      if (!first.ok()) return report_error(first.status());
      Status s = decode(*ctx, bos, 2);
      if (!s.ok()) return report_error(s);
    }
    for (const Test& test : tests) {
      Result r;
      r.test = test;
      r.threads = threads;
      Status s = run_test(*ctx, test, threads, o, rng, bos, hp.n_vocab, r);
      if (!s.ok())
        return report_error(
            s.with_context(fmt::format("{} with {} threads", test.name(), threads)));
      results.push_back(std::move(r));
    }
  }
  const double peak_rss = static_cast<double>(peak_rss_bytes());
  // After the peak RSS reading: the buffer is not part of the engine's footprint.
  if (o.membw_mib > 0) {
    membw_bytes = std::max(static_cast<size_t>(o.membw_mib) << 20, 4 * l3_bytes());
    std::vector<uint64_t> buf(membw_bytes / sizeof(uint64_t));
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
    for (int threads : o.threads) {
      if (membw_for(threads) != 0.0) continue;
      fmt::print(stderr, "memory bandwidth t={}\n", threads);
      membw.emplace_back(threads, measure_bandwidth(buf, threads, 3));
    }
  }

  const std::string info = build_info();
  std::string version, commit;
  split_build_info(info, version, commit);
  const CpuInfo& cpu = cpu_info();
  const std::string type = model->dominant_type();
  const std::string model_desc = fmt::format("{} {}x{} {}", hp.arch, hp.n_embd, hp.n_layer, type);

  if (o.output == "json") {
    nlohmann::ordered_json j;
    j["engine"] = "edgelm";
    j["build"] = {{"version", version}, {"commit", commit}, {"info", info}};
    j["cpu"] = {{"arch", cpu.arch},
                {"model", cpu.model_name},
                {"logical_cores", cpu.logical_cores},
                {"physical_cores", physical_core_count()},
                {"features", cpu.features_string()}};
    j["kernels"] = kernels_name;
    j["model"] = {{"path", o.model},
                  {"arch", hp.arch},
                  {"type", type},
                  {"size_bytes", model->gguf().file_size()},
                  {"weights_bytes", model->weights_bytes()},
                  {"n_params", n_params},
                  {"n_vocab", hp.n_vocab},
                  {"n_embd", hp.n_embd},
                  {"n_layer", hp.n_layer},
                  {"weight_bytes_per_token", bytes_per_token}};
    j["load_ms"] = load_ms;
    j["base_rss_bytes"] = base_rss;
    j["peak_rss_bytes"] = peak_rss;
    j["loadavg"] = loadavg();
    j["params"] = {
        {"seed", o.seed}, {"reps", o.reps}, {"tg_prefix", o.tg_prefix}, {"warmup", o.warmup}};
    j["mem_bw_buffer_bytes"] = membw_bytes;
    auto bw = nlohmann::ordered_json::array();
    for (const auto& [t, g] : membw) bw.push_back({{"n_threads", t}, {"gbps", g}});
    j["mem_bw"] = std::move(bw);
    auto arr = nlohmann::ordered_json::array();
    for (const Result& r : results) {
      const auto ts = samples_ts(r);
      nlohmann::ordered_json e;
      e["test"] = r.test.name();
      e["kind"] = r.test.kind_name();
      e["n_prompt"] = r.test.p;
      e["n_gen"] = r.test.n;
      e["n_threads"] = r.threads;
      e["reps"] = o.reps;
      e["avg_ns"] = mean(r.samples_ns);
      e["stddev_ns"] = stddev(r.samples_ns);
      e["avg_ts"] = mean(ts);
      e["stddev_ts"] = stddev(ts);
      e["samples_ns"] = r.samples_ns;
      e["samples_ts"] = ts;
      if (!r.ttft_ms.empty()) e["ttft_ms"] = mean(r.ttft_ms);
      if (r.test.kind == Kind::kTg) {
        const double achieved = mean(ts) * bytes_per_token / 1e9;
        e["bytes_per_token"] = bytes_per_token;
        e["achieved_gbps"] = achieved;
        const double g = membw_for(r.threads);
        if (g > 0) e["bw_fraction"] = achieved / g;
      }
      arr.push_back(std::move(e));
    }
    j["results"] = std::move(arr);
    fmt::print("{}\n", j.dump(1));
  } else {
    fmt::print("build: {}\n", info);
    fmt::print("cpu: {} ({}, {} logical / {} physical cores): {}\n",
               cpu.model_name.empty() ? "?" : cpu.model_name, cpu.arch, cpu.logical_cores,
               physical_core_count(), cpu.features_string());
    fmt::print("kernels: {}\n", kernels_name);
    fmt::print("model: {} ({} parameters, load {:.1f} ms)\n\n", o.model,
               fmt::format("{:.2f} M", static_cast<double>(n_params) / 1e6), load_ms);
    fmt::print(
        "| model | size | params | kernels | threads | test | t/s | ttft ms | MiB/token | GB/s | "
        "of mem bw |\n");
    fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (const Result& r : results) {
      const auto ts = samples_ts(r);
      std::string bw_cols = " | | |";
      if (r.test.kind == Kind::kTg) {
        const double achieved = mean(ts) * bytes_per_token / 1e9;
        const double g = membw_for(r.threads);
        bw_cols =
            fmt::format(" {:.2f} | {:.2f} | {} |", bytes_per_token / (1024.0 * 1024.0), achieved,
                        g > 0 ? fmt::format("{:.0f}%", 100.0 * achieved / g) : std::string());
      }
      fmt::print(
          "| {} | {} | {:.2f} M | {} | {} | {} | {:.2f} ± {:.2f} | {} |{}\n", model_desc,
          mib(static_cast<double>(model->gguf().file_size())), static_cast<double>(n_params) / 1e6,
          kernels_name, r.threads, r.test.name(), mean(ts), stddev(ts),
          r.ttft_ms.empty() ? std::string("") : fmt::format("{:.2f}", mean(r.ttft_ms)), bw_cols);
    }
    if (!membw.empty()) {
      std::string line;
      for (const auto& [t, g] : membw)
        line += fmt::format("{}t={}: {:.2f} GB/s", line.empty() ? "" : ", ", t, g);
      fmt::print("\nmemory bandwidth (read-only stream over {}, best of 3): {}\n",
                 mib(static_cast<double>(membw_bytes)), line);
    }
    const auto la = loadavg();
    fmt::print("\npeak RSS: {} (process start {}); {} repetitions, seed {}, tg prefix {}{}\n",
               mib(peak_rss), mib(base_rss), o.reps, o.seed, o.tg_prefix,
               la.empty() ? std::string() : fmt::format("; load average {:.2f}", la[0]));
  }
  return 0;
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub =
      app.add_subcommand("bench", "Measure prefill (pp), decode (tg) and combined (pg) throughput");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  sub->add_option("-t,--threads", o->threads,
                  "Thread counts, comma separated (default: physical cores)")
      ->delimiter(',');
  sub->add_option("-p,--n-prompt", o->n_prompt,
                  "Prompt lengths for pp tests, comma separated (0: none)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-n,--n-gen", o->n_gen, "Token counts for tg tests, comma separated (0: none)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--pg", o->pg, "Prefill P then generate N, as P,N (repeatable)");
  sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test")->capture_default_str();
  sub->add_option("-o,--output", o->output, "Output format: md or json")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the random prompt tokens")->capture_default_str();
  sub->add_option("--tg-prefix", o->tg_prefix, "Untimed context evaluated before each tg test")
      ->capture_default_str();
  sub->add_option("--kernels", o->kernels, "Kernel set: best (SIMD when available) or ref")
      ->capture_default_str();
  sub->add_option("--membw-mib", o->membw_mib,
                  "Buffer of the memory-bandwidth measurement in MiB (raised to 4x L3; 0: skip)")
      ->capture_default_str();
  sub->add_flag("!--no-warmup", o->warmup, "Skip the warmup run");
  sub->callback([o] { exit_with(run_bench(*o)); });
}

}  // namespace edgelm::cli
