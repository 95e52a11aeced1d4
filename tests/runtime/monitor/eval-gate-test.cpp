// Quality gates and the report (runtime/monitor/eval-report.h): gate files and their errors;
// a gate that passes a good quantization (Q8_0 of the same weights) and fails a deliberately
// damaged copy (one tensor noised); the JSON report; and, when the CLI is built alongside,
// `edgelm eval --gate` exit codes (0 pass, 3 fail, 1 error).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "runtime/monitor/eval-report.h"
#include "test_util.h"

namespace edgelm {
namespace {

std::string gate_error(const std::string& text) {
  auto g = parse_gate(text, "gate.json");
  return g.ok() ? std::string("(parsed)") : g.status().message();
}

TEST(EvalGate, ParsesThresholdsAndRejectsBadFiles) {
  auto g = parse_gate(R"({"description": "release gate", "max_perplexity_increase": 0.05,
      "max_kl": 0.02, "max_kl_p99": 0.3, "min_top1": 0.9, "max_perplexity": 100,
      "min_task_accuracy": 0.5, "min_task_accuracy_by_set": {"basic": 0.75}})",
                      "gate.json");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_DOUBLE_EQ(*g->max_perplexity_increase, 0.05);
  EXPECT_DOUBLE_EQ(*g->max_kl, 0.02);
  EXPECT_DOUBLE_EQ(*g->max_kl_p99, 0.3);
  EXPECT_DOUBLE_EQ(*g->min_top1, 0.9);
  EXPECT_DOUBLE_EQ(*g->max_perplexity, 100);
  EXPECT_DOUBLE_EQ(*g->min_task_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(g->min_task_accuracy_by_set.at("basic"), 0.75);

  EXPECT_NE(gate_error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(gate_error("[1]").find("a gate is a JSON object"), std::string::npos);
  EXPECT_NE(gate_error(R"({"max_kll": 0.1})").find("unknown key \"max_kll\""), std::string::npos);
  EXPECT_NE(gate_error(R"({"max_kl": "0.1"})").find("must be a finite number"), std::string::npos);
  EXPECT_NE(gate_error(R"({"min_top1": 90})").find("fraction in [0, 1]"), std::string::npos);
  EXPECT_NE(gate_error(R"({"max_kl": -1})").find(">= 0"), std::string::npos);
  EXPECT_NE(gate_error(R"({"description": "x"})").find("no thresholds"), std::string::npos);
  EXPECT_NE(gate_error(R"({"min_task_accuracy_by_set": 0.5})").find("must be an object"),
            std::string::npos);
  auto missing = load_gate("/nonexistent/gate.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/gate.json"), std::string::npos);
}

EvalReport synthetic_report() {
  EvalReport r;
  r.model = {"cand.gguf", 1000, ""};
  TextEvalResult t;
  t.ppl.ppl = 11.0;
  t.baseline_ppl = PerplexityResult{};
  t.baseline_ppl->ppl = 10.0;
  t.kl = KlResult{};
  t.kl->mean = 0.03;
  t.kl->p99 = 0.2;
  t.kl->top1 = 0.85;
  r.text = t;
  TaskSetResult s;
  s.name = "basic";
  s.n = 4;
  s.correct = 3;
  s.accuracy = 0.75;
  r.tasks.push_back(s);
  return r;
}

TEST(EvalGate, EachThresholdAgainstTheMeasuredValue) {
  const EvalReport r = synthetic_report();
  QualityGate g;
  g.max_perplexity_increase = 0.05;  // measured +10 %: fails
  g.max_kl = 0.05;                   // 0.03: passes
  g.max_kl_p99 = 0.1;                // 0.2: fails
  g.min_top1 = 0.9;                  // 0.85: fails
  g.min_task_accuracy = 0.5;         // 0.75: passes
  g.max_perplexity = 20;             // 11: passes
  auto checks = check_gate(g, r);
  ASSERT_TRUE(checks.ok()) << checks.status().to_string();
  EXPECT_FALSE(gate_passed(*checks));
  std::map<std::string, const GateCheck*> by;
  for (const auto& c : *checks) by[c.name] = &c;
  ASSERT_EQ(by.size(), 6u);
  EXPECT_FALSE(by["max_perplexity_increase"]->passed);
  EXPECT_NEAR(by["max_perplexity_increase"]->measured, 0.1, 1e-12);
  EXPECT_TRUE(by["max_kl"]->passed);
  EXPECT_FALSE(by["max_kl_p99"]->passed);
  EXPECT_FALSE(by["min_top1"]->passed);
  EXPECT_TRUE(by["min_task_accuracy"]->passed);
  EXPECT_TRUE(by["max_perplexity"]->passed);
  const auto lines = gate_failures(*checks);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "max_perplexity_increase: measured 0.1 > threshold 0.05");
  EXPECT_EQ(lines[2], "min_top1: measured 0.85 < threshold 0.9");

  QualityGate ok;
  ok.max_kl = 0.05;
  ok.min_task_accuracy_by_set["basic"] = 0.75;  // equal to the threshold passes
  auto c2 = check_gate(ok, r);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(gate_passed(*c2));
}

TEST(EvalGate, ThresholdWithoutItsMeasurementIsAnError) {
  EvalReport r = synthetic_report();
  r.text->kl.reset();
  r.text->baseline_ppl.reset();
  QualityGate g;
  g.max_kl = 0.1;
  auto c = check_gate(g, r);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("\"max_kl\" needs a baseline"), std::string::npos);
  QualityGate t;
  t.min_task_accuracy_by_set["other"] = 0.5;
  auto c2 = check_gate(t, r);
  ASSERT_FALSE(c2.ok());
  EXPECT_NE(c2.status().message().find("other"), std::string::npos);
  r.tasks.clear();
  QualityGate a;
  a.min_task_accuracy = 0.1;
  EXPECT_FALSE(check_gate(a, r).ok());
}

TEST(EvalReportJson, SelfContainedObject) {
  EvalReport r = synthetic_report();
  r.model.sha256 = "ab12";
  r.timestamp = "2026-11-26T04:00:00Z";
  QualityGate g;
  g.max_kl = 0.01;
  auto checks = check_gate(g, r);
  ASSERT_TRUE(checks.ok());
  auto j = report_to_json(r, &*checks);
  auto back = nlohmann::json::parse(j.dump());  // round-trips as plain JSON
  EXPECT_EQ(back["schema"], "edgelm.eval/1");
  EXPECT_EQ(back["timestamp"], "2026-11-26T04:00:00Z");
  EXPECT_EQ(back["model"]["file"], "cand.gguf");
  EXPECT_EQ(back["model"]["sha256"], "ab12");
  EXPECT_DOUBLE_EQ(back["perplexity"]["value"].get<double>(), 11.0);
  EXPECT_NEAR(back["perplexity"]["relative_increase"].get<double>(), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(back["kl"]["mean"].get<double>(), 0.03);
  EXPECT_DOUBLE_EQ(back["top1"]["agreement"].get<double>(), 0.85);
  EXPECT_DOUBLE_EQ(back["tasks"]["accuracy"].get<double>(), 0.75);
  EXPECT_EQ(back["tasks"]["sets"][0]["name"], "basic");
  EXPECT_EQ(back["gate"]["passed"], false);
  EXPECT_EQ(back["gate"]["checks"][0]["name"], "max_kl");
  EXPECT_EQ(utc_timestamp().size(), 20u);
}

// Copy of `src` with `tensor` (F32, "" = none) replaced by itself plus Gaussian noise of `rel`
// times its RMS (a deliberately damaged model) and, with text_vocab, SentencePiece pieces that
// can spell lowercase text ("\u2581", letters, digits, "\u2581a".."\u2581z") so that the CLI
// can tokenize a text file with it.
Status write_damaged(const std::string& src, const std::string& dst, const std::string& tensor,
                     double rel, bool text_vocab = false) {
  ASSIGN_OR_RETURN(auto f, GgufFile::open(src));
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set_value(k, v);
  if (text_vocab) {
    const GgufValue* toks = f->find("tokenizer.ggml.tokens");
    if (toks == nullptr) return Status::not_found("tokenizer.ggml.tokens");
    std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", "\u2581"};
    for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
    for (char c = '0'; c <= '9'; ++c) pieces.push_back(std::string(1, c));
    for (char c = 'a'; c <= 'z'; ++c) pieces.push_back("\u2581" + std::string(1, c));
    while (pieces.size() < toks->array_count) pieces.push_back(fmt::format("x{}", pieces.size()));
    std::vector<float> scores;
    for (size_t i = 0; i < pieces.size(); ++i) scores.push_back(-static_cast<float>(i));
    w.set_array_string("tokenizer.ggml.tokens", pieces);
    w.set_array_f32("tokenizer.ggml.scores", scores);
  }
  bool found = tensor.empty();
  for (const auto& t : f->tensors()) {
    std::span<const uint8_t> bytes(t.data, t.nbytes);
    std::vector<float> noisy;
    if (t.name == tensor) {
      if (t.type != GgmlType::kF32) return Status::invalid_argument("damage needs an F32 tensor");
      found = true;
      noisy.assign(reinterpret_cast<const float*>(t.data),
                   reinterpret_cast<const float*>(t.data) + t.n_elements);
      double ss = 0;
      for (float x : noisy) ss += double(x) * x;
      const double rms = std::sqrt(ss / noisy.size());
      std::mt19937_64 rng(99);
      std::normal_distribution<double> n(0.0, rel * rms);
      for (float& x : noisy) x += static_cast<float>(n(rng));
      bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(noisy.data()),
                                       noisy.size() * sizeof(float));
    }
    RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, bytes));
  }
  if (!found) return Status::not_found(tensor);
  return w.write(dst);
}

class EvalGateModels : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinyModelSpec spec;
    base_ = testing::temp_path("gate-f32.gguf");
    good_ = testing::temp_path("gate-q8.gguf");
    bad_ = testing::temp_path("gate-damaged.gguf");
    ASSERT_TRUE(testing::write_tiny_model(spec, base_).ok());
    spec.matrix_type = GgmlType::kQ8_0;
    ASSERT_TRUE(testing::write_tiny_model(spec, good_).ok());
    Status st = write_damaged(base_, bad_, "output.weight", 1.5);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  void TearDown() override {
    for (const auto& p : {base_, good_, bad_, text_, gate_, report_}) {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  }

  StatusOr<EvalReport> evaluate(const std::string& cand_path) {
    ASSIGN_OR_RETURN(auto mb, Model::load(base_, {.log_summary = false}));
    ASSIGN_OR_RETURN(auto mc, Model::load(cand_path, {.log_summary = false}));
    ASSIGN_OR_RETURN(auto cb, Context::create(*mb, {.n_ctx = 32, .n_threads = 2}));
    ASSIGN_OR_RETURN(auto cc, Context::create(*mc, {.n_ctx = 32, .n_threads = 2}));
    std::mt19937_64 rng(4);
    std::vector<int32_t> toks(32 * 3);
    for (auto& t : toks) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(cc->n_vocab()));
    LogitsEvaluator cand(*cc), base(*cb);
    ASSIGN_OR_RETURN(TextEvalResult t, evaluate_text(cand, &base, toks, {.n_ctx = 32}));
    EvalReport r;
    r.model.file = cand_path;
    r.text = t;
    return r;
  }

  QualityGate gate() {
    QualityGate g;
    g.max_kl = 0.05;
    g.min_top1 = 0.8;
    g.max_perplexity_increase = 0.10;
    return g;
  }

  std::string base_, good_, bad_, text_, gate_, report_;
};

TEST_F(EvalGateModels, PassesAGoodQuantizationAndFailsADamagedModel) {
  auto good = evaluate(good_);
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  auto gc = check_gate(gate(), *good);
  ASSERT_TRUE(gc.ok());
  for (const auto& l : gate_failures(*gc)) ADD_FAILURE() << "good model failed: " << l;
  EXPECT_TRUE(gate_passed(*gc));

  auto bad = evaluate(bad_);
  ASSERT_TRUE(bad.ok()) << bad.status().to_string();
  auto bc = check_gate(gate(), *bad);
  ASSERT_TRUE(bc.ok());
  EXPECT_FALSE(gate_passed(*bc));
  std::printf("[ gate ] good: KL %.6f top-1 %.3f; damaged: KL %.4f top-1 %.3f\n",
              good->text->kl->mean, good->text->kl->top1, bad->text->kl->mean, bad->text->kl->top1);
  EXPECT_GT(bad->text->kl->mean, 0.05);
  EXPECT_GT(bad->text->kl->mean, 20 * good->text->kl->mean);
}

#ifdef EDGELM_EVAL_CLI
struct Cmd {
  int code = -1;
  std::string out, err;
};

Cmd run_cli(const std::string& args) {
  const std::string base = testing::temp_path("eval-cli");
  const std::string cmd =
      std::string(EDGELM_EVAL_CLI) + " " + args + " >" + base + ".out 2>" + base + ".err";
  const int st = std::system(cmd.c_str());
  Cmd r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  for (auto [path, dst] : {std::pair{base + ".out", &r.out}, std::pair{base + ".err", &r.err}}) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    *dst = ss.str();
    std::filesystem::remove(path);
  }
  return r;
}

TEST_F(EvalGateModels, CliExitCodes) {
  if (!std::filesystem::exists(EDGELM_EVAL_CLI)) {
    GTEST_SKIP() << "SKIPPED: the CLI " << EDGELM_EVAL_CLI << " is not built";
  }
  if (run_cli("eval --help").code != 0) {
    GTEST_SKIP() << "SKIPPED: " << EDGELM_EVAL_CLI << " has no eval subcommand (stale build)";
  }
  text_ = testing::temp_path("gate-text.txt");
  gate_ = testing::temp_path("gate.json");
  report_ = testing::temp_path("gate-report.json");
  {
    std::ofstream t(text_);
    for (int i = 0; i < 120; ++i) t << "the quick brown fox jumps over a lazy dog " << i << " ";
    std::ofstream g(gate_);
    g << R"({"max_kl": 0.05, "min_top1": 0.8})";
  }
  // The same three models with a vocabulary that can spell the text.
  for (std::string* p : {&base_, &good_, &bad_}) {
    const std::string v = *p + ".vocab.gguf";
    Status st = write_damaged(*p, v, "", 0, /*text_vocab=*/true);
    ASSERT_TRUE(st.ok()) << st.to_string();
    std::filesystem::remove(*p);
    *p = v;
  }
  const std::string common =
      " -f " + text_ + " --baseline " + base_ + " -c 32 --chunks 3 -t 2 --gate " + gate_;
  Cmd good = run_cli("eval -m " + good_ + common + " --report " + report_);
  EXPECT_EQ(good.code, 0) << good.out << good.err;
  EXPECT_NE(good.out.find("gate        pass max_kl"), std::string::npos) << good.out;
  std::ifstream rep(report_);
  auto j = nlohmann::json::parse(rep, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["gate"]["passed"], true);
  EXPECT_EQ(j["perplexity"]["chunks"], 3);
  EXPECT_GT(j["top1"]["agreement"].get<double>(), 0.8);

  Cmd bad = run_cli("eval -m " + bad_ + common + " --sha256 --report " + report_);
  EXPECT_EQ(bad.code, 3) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("edgelm: gate failed: max_kl: measured"), std::string::npos) << bad.err;
  std::ifstream rep2(report_);
  auto j2 = nlohmann::json::parse(rep2, nullptr, false);
  ASSERT_FALSE(j2.is_discarded());
  EXPECT_EQ(j2["gate"]["passed"], false);  // the report is written before exit 3
  EXPECT_EQ(j2["model"]["sha256"].get<std::string>().size(), 64u);

  Cmd broken = run_cli("eval -m " + good_ + " -f " + text_ + " -c 32 --gate " + gate_);
  EXPECT_EQ(broken.code, 1) << broken.err;  // max_kl without --baseline: an error, not a pass
  EXPECT_NE(broken.err.find("needs a baseline"), std::string::npos) << broken.err;
  Cmd missing = run_cli("eval -m /nonexistent.gguf -f " + text_);
  EXPECT_EQ(missing.code, 1);
  Cmd nothing = run_cli("eval -m " + good_);
  EXPECT_EQ(nothing.code, 1);
  EXPECT_NE(nothing.err.find("nothing to evaluate"), std::string::npos);
}
#endif

}  // namespace
}  // namespace edgelm
