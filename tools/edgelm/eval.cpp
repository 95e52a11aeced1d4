// `edgelm eval -m MODEL [-f TEXT] [--baseline MODEL] [--tasks FILE]... [--gate FILE]
//               [--report OUT.json] [-c N_CTX] [--chunks N] [-t T] [--sha256]`
//
// Quality of a model file: perplexity on held-out text (llama.cpp's method: chunks of n_ctx,
// second half of each scored), KL divergence / top-1 agreement against a baseline model on the
// same text, and accuracy on JSONL task sets (runtime/monitor/eval*.h, docs/eval.md).
// Output: a human-readable summary on stdout; progress on stderr (unless --quiet); with
// --report, one JSON object (schema "edgelm.eval/1", written atomically).
// Exit status: 0 ok (and the gate, if any, passed); 1 error; 2 usage error; 3 the gate failed
// (each failed threshold printed on stderr with its measured value; the report is still
// written).
#include "runtime/monitor/eval.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "runtime/monitor/eval-report.h"
#include "runtime/monitor/eval-tasks.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

constexpr int kGateFailed = 3;

struct EvalOptions {
  std::string model;
  std::string text;
  std::string baseline;
  std::vector<std::string> tasks;
  std::string gate;
  std::string report;
  int n_ctx = 512;
  int chunks = 0;
  int task_ctx = 0;
  int n_threads = 0;
  bool sha256 = false;
  bool quiet = false;
};

StatusOr<std::string> file_sha256(const std::string& path) {
  if (sodium_init() < 0) return Status::internal("libsodium failed to initialize");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("cannot read '{}' for its SHA-256", path));
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) {
      crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf.data()),
                                static_cast<unsigned long long>(n));
    }
  }
  if (in.bad()) return Status::io(fmt::format("{}: read error while hashing", path));
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, d);
  std::string hex;
  for (unsigned char c : d) hex += fmt::format("{:02x}", c);
  return hex;
}

StatusOr<ModelFileInfo> file_info(const std::string& path, bool sha) {
  ModelFileInfo m;
  m.file = path;
  std::error_code ec;
  m.size_bytes = std::filesystem::file_size(path, ec);
  if (ec) return Status::not_found(fmt::format("cannot stat '{}': {}", path, ec.message()));
  if (sha) {
    ASSIGN_OR_RETURN(m.sha256, file_sha256(path));
  }
  return m;
}

Status write_atomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io(fmt::format("cannot write report '{}'", tmp));
    out << data;
    out.flush();
    if (!out) return Status::io(fmt::format("write error on '{}'", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status::io(fmt::format("cannot rename '{}' to '{}'", tmp, path));
  }
  return Status::ok_status();
}

std::string human_bytes(uint64_t b) {
  return b >= (1u << 20) ? fmt::format("{:.1f} MiB", b / 1048576.0)
                         : fmt::format("{:.1f} KiB", b / 1024.0);
}

void print_summary(const EvalReport& r) {
  fmt::print("model       {} ({})\n", r.model.file, human_bytes(r.model.size_bytes));
  if (r.baseline) {
    fmt::print("baseline    {} ({})\n", r.baseline->file, human_bytes(r.baseline->size_bytes));
  }
  if (r.text) {
    const TextEvalResult& t = *r.text;
    fmt::print("text        {}: {} tokens, {} chunks of {}, {} scored ({:.1f} s)\n", r.text_file,
               r.text_tokens, t.ppl.chunks, r.chunk.n_ctx, t.ppl.tokens, t.seconds);
    fmt::print("perplexity  {:.4f} +/- {:.4f}  (ln {:.5f})\n", t.ppl.ppl, t.ppl.ppl_stderr,
               t.ppl.ln_ppl);
    if (t.baseline_ppl && t.kl) {
      const KlResult& k = *t.kl;
      fmt::print(
          "baseline    PPL {:.4f} +/- {:.4f}; candidate/baseline {:+.3f} %  "
          "ln(PPL ratio) {:.5f}\n",
          t.baseline_ppl->ppl, t.baseline_ppl->ppl_stderr,
          (t.ppl.ppl / t.baseline_ppl->ppl - 1) * 100, k.ln_ppl_ratio);
      fmt::print(
          "KL          mean {:.6f} +/- {:.6f}  max {:.6f}  99.9% {:.6f}  99% {:.6f}  "
          "median {:.6f}  1% {:.6f}  min {:.6f}\n",
          k.mean, k.stderr_mean, k.max, k.p99_9, k.p99, k.median, k.p1, k.min);
      fmt::print("top-1       same top token {:.3f} +/- {:.3f} %  ({} positions)\n", k.top1 * 100,
                 k.top1_stderr * 100, k.positions);
      fmt::print("delta p     mean {:+.4g} %  RMS {:.4g} %\n", k.delta_p_mean * 100,
                 k.delta_p_rms * 100);
    }
  }
  for (const auto& s : r.tasks) {
    std::string parts;
    for (const auto& [m, t] : s.by_metric) parts += fmt::format(" {} {}/{}", m, t.correct, t.n);
    for (const auto& [d, t] : s.by_difficulty) {
      parts += fmt::format(" | {} {}/{}", d, t.correct, t.n);
    }
    fmt::print("tasks       {}: {}/{} correct ({:.1f} %):{}  ({:.1f} s)\n", s.name, s.correct, s.n,
               s.accuracy * 100, parts, s.seconds);
  }
}

int run_eval(const EvalOptions& o) {
  if (o.text.empty() && o.tasks.empty()) {
    return report_error("nothing to evaluate: give a held-out text (-f) and/or --tasks FILE");
  }
  if (!o.baseline.empty() && o.text.empty()) {
    return report_error("--baseline compares distributions on a text: give it with -f TEXT");
  }
  std::optional<QualityGate> gate;
  if (!o.gate.empty()) {  // read first: a bad gate file should not cost a long evaluation
    auto g = load_gate(o.gate);
    if (!g.ok()) return report_error(g.status());
    gate = *g;
  }
  std::vector<TaskSet> task_sets;
  for (const auto& path : o.tasks) {
    auto s = load_task_set(path);
    if (!s.ok()) return report_error(s.status());
    task_sets.push_back(std::move(*s));
  }

  EvalReport rep;
  rep.timestamp = utc_timestamp();
  rep.gate_file = o.gate;
  rep.n_threads = o.n_threads;
  rep.chunk.n_ctx = o.n_ctx;
  rep.chunk.max_chunks = o.chunks;
  auto mi = file_info(o.model, o.sha256);
  if (!mi.ok()) return report_error(mi.status());
  rep.model = *mi;

  auto engine = Engine::load(o.model);
  if (!engine.ok()) return report_error(engine.status());

  if (!o.text.empty()) {
    std::ifstream in(o.text, std::ios::binary);
    if (!in) return report_error(fmt::format("cannot read text file '{}'", o.text));
    std::ostringstream ss;
    ss << in.rdbuf();
    const Tokenizer& tok = (*engine)->tokenizer();
    auto ids = tok.encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
    if (!ids.ok()) return report_error(ids.status().with_context(o.text));
    rep.text_file = o.text;
    rep.text_tokens = static_cast<int64_t>(ids->size());
    ChunkOptions co = rep.chunk;
    co.bos_token = tok.add_bos() ? tok.bos() : -1;
    if (chunk_count(ids->size(), co) < 1) {
      return report_error(fmt::format("{}: {} tokens, fewer than one chunk of -c {} tokens", o.text,
                                      ids->size(), o.n_ctx));
    }
    SessionOptions so;
    so.n_ctx = o.n_ctx;
    so.n_threads = o.n_threads;
    auto session = (*engine)->open_session(so);
    if (!session.ok()) return report_error(session.status());
    LogitsEvaluator cand((*session)->executor());

    std::unique_ptr<Engine> base_engine;
    std::unique_ptr<Session> base_session;
    std::optional<LogitsEvaluator> base;
    if (!o.baseline.empty()) {
      auto bi = file_info(o.baseline, o.sha256);
      if (!bi.ok()) return report_error(bi.status());
      rep.baseline = *bi;
      auto be = Engine::load(o.baseline);
      if (!be.ok()) return report_error(be.status());
      base_engine = std::move(*be);
      auto bids = base_engine->tokenizer().encode(ss.str(), true, false);
      if (!bids.ok()) return report_error(bids.status().with_context(o.baseline));
      if (*bids != *ids) {
        return report_error(fmt::format(
            "the baseline '{}' tokenizes the text differently from '{}' ({} vs {} tokens): KL "
            "divergence needs the same tokenizer",
            o.baseline, o.model, bids->size(), ids->size()));
      }
      auto bs = base_engine->open_session(so);
      if (!bs.ok()) return report_error(bs.status());
      base_session = std::move(*bs);
      base.emplace(base_session->executor());
    }
    const int total = chunk_count(ids->size(), co);
    ChunkProgress progress;
    if (!o.quiet) {
      progress = [](int done, int n, double ppl, double kl) {
        if (std::isnan(kl))
          fmt::print(stderr, "eval: chunk {}/{}  PPL {:.4f}\n", done, n, ppl);
        else
          fmt::print(stderr, "eval: chunk {}/{}  PPL {:.4f}  mean KL {:.6f}\n", done, n, ppl, kl);
        std::fflush(stderr);
      };
      fmt::print(stderr, "eval: {} tokens, {} chunks of {}{}\n", ids->size(), total, o.n_ctx,
                 base ? ", with baseline" : "");
    }
    auto r = evaluate_text(cand, base ? &*base : nullptr, *ids, co, progress);
    if (!r.ok()) return report_error(r.status());
    rep.text = *r;
  }

  if (!task_sets.empty()) {
    SessionOptions so;
    so.n_ctx = o.task_ctx;
    so.n_threads = o.n_threads;
    auto session = (*engine)->open_session(so);
    if (!session.ok()) return report_error(session.status());
    for (const auto& set : task_sets) {
      TaskProgress progress;
      if (!o.quiet) {
        progress = [&set](int done, int n) {
          fmt::print(stderr, "eval: tasks {} {}/{}\n", set.name, done, n);
          std::fflush(stderr);
        };
      }
      auto r = run_task_set(**session, set, progress);
      if (!r.ok()) return report_error(r.status());
      rep.tasks.push_back(std::move(*r));
    }
  }

  std::vector<GateCheck> checks;
  if (gate) {
    auto c = check_gate(*gate, rep);
    if (!c.ok()) return report_error(c.status().with_context(o.gate));
    checks = std::move(*c);
  }
  print_summary(rep);
  if (gate) {
    for (const auto& c : checks) {
      fmt::print("gate        {} {}: measured {:.6g}, threshold {:.6g}\n",
                 c.passed ? "pass" : "FAIL", c.name, c.measured, c.threshold);
    }
  }
  std::fflush(stdout);
  if (!o.report.empty()) {
    const std::string js =
        report_to_json(rep, gate ? &checks : nullptr)
            .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
        "\n";
    Status st = write_atomically(o.report, js);
    if (!st.ok()) return report_error(st);
  }
  if (gate && !gate_passed(checks)) {
    for (const auto& line : gate_failures(checks)) {
      fmt::print(stderr, "edgelm: gate failed: {}\n", line);
    }
    return kGateFailed;
  }
  return 0;
}

}  // namespace

void register_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand(
      "eval", "Measure a model's quality: perplexity, KL vs a baseline, task accuracy, gates");
  sub->footer(
      "Perplexity as llama.cpp's llama-perplexity (chunks of -c tokens, second half scored);\n"
      "--baseline adds KL divergence, top-1 agreement and delta-p on the same text. Task sets\n"
      "are JSONL (docs/eval.md). --gate FILE: JSON thresholds (max_perplexity_increase,\n"
      "max_kl, max_kl_p99, min_top1, min_task_accuracy, ...).\n"
      "Exit status: 0 ok, 1 error, 2 usage, 3 gate failed (failed thresholds on stderr).\n"
      "Example: edgelm eval -m m-q4_k_m.gguf --baseline m-f16.gguf -f text.txt -c 128 \\\n"
      "           --tasks eval/tasks/basic.jsonl --gate gate.json --report quality.json");
  sub->add_option("-m,--model", o->model, "Model to evaluate (the candidate)")->required();
  sub->add_option("-f,--file", o->text, "Held-out text for perplexity (and KL with --baseline)");
  sub->add_option("--baseline", o->baseline,
                  "Baseline model (e.g. the F16 file) for KL divergence and top-1 agreement");
  sub->add_option("--tasks", o->tasks, "JSONL task set; may be repeated");
  sub->add_option("--gate", o->gate, "JSON thresholds; exit 3 when the model fails them");
  sub->add_option("--report", o->report, "Write the JSON report here");
  sub->add_option("-c,--ctx-size", o->n_ctx, "Tokens per perplexity chunk")
      ->capture_default_str()
      ->check(CLI::Range(4, 1 << 20));
  sub->add_option("--chunks", o->chunks, "Score at most this many chunks; 0 = all")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--task-ctx", o->task_ctx,
                  "Context size for the tasks; 0 = model's, at most 4096")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("-t,--threads", o->n_threads, "Threads; 0 = physical cores")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--sha256", o->sha256, "Put the model files' SHA-256 in the report");
  sub->add_flag("-q,--quiet", o->quiet, "No progress lines on stderr");
  sub->callback([o] { exit_with(run_eval(*o)); });
}

}  // namespace edgelm::cli
