// Canary set, baseline JSON and the end-to-end drift demonstration: a tiny random model's
// baseline (8 prompts x 4 sampled generations = 32 feature samples, greedy answers, canary
// perplexity); the same model re-run with other seeds raises no alarm; a copy with noise added
// to some tensors (GgufWriter, write_perturbed_model) is flagged by the drift tests.
#include "runtime/monitor/canary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model_builder.h"
#include "runtime/monitor/monitor.h"
#include "test_util.h"

namespace edgelm::monitor {
namespace {

// One tiny model (and its damaged copy) for the whole file.
struct Models {
  std::string good = edgelm::testing::temp_path("monitor-good.gguf");
  std::string bad = edgelm::testing::temp_path("monitor-bad.gguf");
  std::unique_ptr<Engine> good_engine, bad_engine;
  Status status;
  Models() {
    edgelm::testing::TinyModelSpec spec;
    spec.n_vocab = 96;
    spec.n_ctx_train = 128;
    spec.matrix_type = GgmlType::kF16;
    spec.seed = 11;
    // A vocabulary that covers the prompts: "\u2581" (SentencePiece space), a-z, 0-9, then
    // two-letter pieces.
    std::vector<std::string> vocab = {"<unk>", "<s>", "</s>", "\xe2\x96\x81"};
    for (char c = 'a'; c <= 'z'; ++c) vocab.emplace_back(1, c);
    for (char c = '0'; c <= '9'; ++c) vocab.emplace_back(1, c);
    for (char c = 'a'; vocab.size() < static_cast<size_t>(spec.n_vocab); ++c) {
      vocab.push_back(std::string(1, c) + "e");
    }
    GgufWriter w;
    status = edgelm::testing::build_tiny_model(spec, w);
    if (!status.ok()) return;
    w.set_array_string("tokenizer.ggml.tokens", vocab);
    status = w.write(good);
    if (!status.ok()) return;
    auto changed = write_perturbed_model(good, bad, {"output.weight", "blk.1.ffn_down"}, 0.5, 3);
    if (!changed.ok()) {
      status = changed.status();
      return;
    }
    auto g = Engine::load(good);
    auto b = Engine::load(bad);
    if (!g.ok() || !b.ok()) {
      status = g.ok() ? b.status() : g.status();
      return;
    }
    good_engine = std::move(*g);
    bad_engine = std::move(*b);
  }
  ~Models() {
    good_engine.reset();
    bad_engine.reset();
    std::filesystem::remove(good);
    std::filesystem::remove(bad);
  }
  static Models& get() {
    static Models m;
    return m;
  }
};

std::vector<CanaryPrompt> prompts() {
  std::vector<CanaryPrompt> p;
  for (int i = 0; i < 8; ++i) {
    p.push_back({fmt::format("p{}", i), fmt::format("the cat {} sat on mat {}", i, 7 * i)});
  }
  return p;
}

CanaryOptions options(uint64_t seed) {
  CanaryOptions o;
  o.max_tokens = 16;
  o.samples_per_prompt = 4;
  o.seed = seed;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.n_threads = 1;
  return o;
}

const Baseline& baseline() {
  static Baseline b = [] {
    auto r = make_baseline(*Models::get().good_engine, Models::get().good, prompts(), options(1));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : Baseline{};
  }();
  return b;
}

#define REQUIRE_MODELS()                                                      \
  ASSERT_TRUE(Models::get().status.ok()) << Models::get().status.to_string(); \
  ASSERT_FALSE(baseline().canary.empty())

TEST(MonitorCanary, LoadCanaryFile) {
  const std::string path = edgelm::testing::temp_path("canary.txt");
  {
    std::ofstream out(path);
    out << "# comment\nplain prompt\n\n{\"id\": \"q1\", \"prompt\": \"json prompt\"}\n";
  }
  auto p = load_canary_file(path);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].prompt, "plain prompt");
  EXPECT_EQ((*p)[0].id, "p0");
  EXPECT_EQ((*p)[1].id, "q1");
  EXPECT_EQ((*p)[1].prompt, "json prompt");
  {
    std::ofstream out(path);
    out << "ok\n{\"id\": 3}\n";
  }
  auto bad = load_canary_file(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_EQ(load_canary_file(path).status().code(), StatusCode::kNotFound);
}

TEST(MonitorCanary, BaselineJsonRoundTripAndManifest) {
  REQUIRE_MODELS();
  const Baseline& b = baseline();
  ASSERT_EQ(b.canary.size(), 8u);
  EXPECT_EQ(b.features.at("mean_logprob").size(), 32u);
  for (const auto& c : b.canary) {
    EXPECT_GT(c.perplexity, 1.0);
    EXPECT_GT(c.n_scored, 0);
  }
  const std::string path = edgelm::testing::temp_path("baseline.json");
  ASSERT_TRUE(save_baseline(b, path).ok());
  auto back = load_baseline(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->canary[3].greedy_tokens, b.canary[3].greedy_tokens);
  EXPECT_EQ(back->features.at("mean_entropy"), b.features.at("mean_entropy"));
  EXPECT_EQ(back->options.samples_per_prompt, 4);
  // Carried by a release manifest.
  nlohmann::json manifest = {{"name", "m"}, {"quality", {{"monitor_baseline", to_json(b)}}}};
  auto from_manifest = baseline_from_json(manifest);
  ASSERT_TRUE(from_manifest.ok()) << from_manifest.status().to_string();
  EXPECT_EQ(from_manifest->canary.size(), 8u);
  // Bad input: clear errors.
  EXPECT_FALSE(baseline_from_json({{"format", "other"}}).ok());
  nlohmann::json v2 = to_json(b);
  v2["version"] = 2;
  EXPECT_EQ(baseline_from_json(v2).status().code(), StatusCode::kUnimplemented);
  nlohmann::json no_ppl = to_json(b);
  no_ppl["canary"][0].erase("perplexity");
  EXPECT_FALSE(baseline_from_json(no_ppl).ok());
  std::filesystem::remove(path);
}

TEST(MonitorCanary, UnchangedModelRaisesNoAlarm) {
  REQUIRE_MODELS();
  const DriftThresholds t;
  for (uint64_t seed : {1001u, 2002u, 3003u}) {
    auto run = run_canary(*Models::get().good_engine, prompts(), options(seed), &baseline());
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    const CanaryReport rep = compare_canary(baseline(), *run, t);
    EXPECT_FALSE(rep.alarm) << "seed " << seed << ": " << rep.to_json().dump(1);
    EXPECT_DOUBLE_EQ(rep.agreement, 1.0);
    EXPECT_NEAR(rep.perplexity_ratio, 1.0, 1e-6);
  }
}

TEST(MonitorCanary, DamagedModelIsFlagged) {
  REQUIRE_MODELS();
  auto run = run_canary(*Models::get().bad_engine, prompts(), options(1001), &baseline());
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  const CanaryReport rep = compare_canary(baseline(), *run, DriftThresholds{});
  EXPECT_TRUE(rep.alarm) << rep.to_json().dump(1);
  EXPECT_GT(rep.perplexity_ratio, 1.1);
  EXPECT_LT(rep.agreement, 0.8);
  // The feature tests alone flag it too (canary figures aside).
  bool feature_alarm = false;
  for (const auto& d : rep.features) feature_alarm |= d.alarm;
  EXPECT_TRUE(feature_alarm) << rep.to_json().dump(1);
}

TEST(MonitorCanary, MayRunNowGatesTheRun) {
  REQUIRE_MODELS();
  int asked = 0;
  auto withdrawn = run_canary(*Models::get().good_engine, prompts(), options(5), &baseline(),
                              [&] { return ++asked < 3; });
  ASSERT_FALSE(withdrawn.ok());
  EXPECT_EQ(withdrawn.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(asked, 3);
}

TEST(MonitorCanary, TokenOverlap) {
  EXPECT_DOUBLE_EQ(token_overlap_f1({1, 2, 3}, {1, 2, 3}), 1.0);
  EXPECT_DOUBLE_EQ(token_overlap_f1({1, 2, 3}, {4, 5}), 0.0);
  EXPECT_DOUBLE_EQ(token_overlap_f1({1, 1, 2, 3}, {1, 2}), 2.0 * 1.0 * 0.5 / 1.5);
  EXPECT_DOUBLE_EQ(token_overlap_f1({}, {}), 1.0);
}

TEST(MonitorCanary, PerturbedModelErrors) {
  REQUIRE_MODELS();
  const std::string out = edgelm::testing::temp_path("never.gguf");
  auto none = write_perturbed_model(Models::get().good, out, {"no-such-tensor"}, 0.5);
  EXPECT_FALSE(none.ok());
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(write_perturbed_model("/nonexistent.gguf", out, {"output"}, 0.5).ok());
}

// Monitor: production rows like the baseline raise nothing; rows from the damaged model raise
// feature_drift alerts through the callback; the canary runs only when allowed and is stored.
TEST(MonitorCanary, MonitorCheckAndCanaryAlerts) {
  REQUIRE_MODELS();
  const std::string db = edgelm::testing::temp_path("monitor-check.db");
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(db + s);
  auto mon = Monitor::open(db);
  ASSERT_TRUE(mon.ok()) << mon.status().to_string();
  std::vector<Alert> alerts;
  (*mon)->on_alert([&](const Alert& a) { alerts.push_back(a); });

  auto report = (*mon)->check();  // no baseline: summary only
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->has_baseline);
  EXPECT_EQ((*mon)->maybe_run_canary(*Models::get().good_engine, {}).status().code(),
            StatusCode::kFailedPrecondition);

  (*mon)->set_baseline(baseline());
  auto good = run_canary(*Models::get().good_engine, prompts(), options(77), &baseline());
  ASSERT_TRUE(good.ok());
  for (auto f : good->samples) {
    f.source = "request";
    ASSERT_TRUE((*mon)->record(f).ok());
  }
  report = (*mon)->check();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->compared, 32u);
  EXPECT_FALSE(report->alarm()) << report->to_markdown();
  EXPECT_TRUE(alerts.empty());

  auto bad = run_canary(*Models::get().bad_engine, prompts(), options(78), &baseline());
  ASSERT_TRUE(bad.ok());
  for (auto f : bad->samples) {
    f.source = "request";
    ASSERT_TRUE((*mon)->record(f).ok());
  }
  // Window = the 32 newest rows: all from the damaged model.
  MonitorConfig cfg;
  cfg.thresholds.window = 32;
  auto mon2 = Monitor::open(db, cfg);
  ASSERT_TRUE(mon2.ok());
  (*mon2)->set_baseline(baseline());
  (*mon2)->on_alert([&](const Alert& a) { alerts.push_back(a); });
  report = (*mon2)->check();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->alarm()) << report->to_markdown();
  ASSERT_FALSE(alerts.empty());
  EXPECT_EQ(alerts[0].kind, "feature_drift");
  EXPECT_FALSE(alerts[0].message.empty());

  // Canary: refused by may_run_now -> nothing run; allowed on the damaged model -> alerts.
  alerts.clear();
  auto skipped = (*mon2)->maybe_run_canary(*Models::get().bad_engine, [] { return false; });
  ASSERT_TRUE(skipped.ok());
  EXPECT_FALSE(skipped->has_value());
  const int64_t rows_before = *(*mon2)->store().count();
  auto ran = (*mon2)->maybe_run_canary(*Models::get().bad_engine, [] { return true; });
  ASSERT_TRUE(ran.ok()) << ran.status().to_string();
  ASSERT_TRUE(ran->has_value());
  EXPECT_TRUE((*ran)->alarm);
  EXPECT_EQ(*(*mon2)->store().count(), rows_before + 32);
  bool perplexity_alert = false;
  for (const auto& a : alerts) perplexity_alert |= a.kind == "canary_perplexity";
  EXPECT_TRUE(perplexity_alert);
  (*mon).reset();
  (*mon2).reset();
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(db + s);
}

}  // namespace
}  // namespace edgelm::monitor
