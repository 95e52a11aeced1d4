// The monitor through the C API: open a store, record the session's last generations (features
// from the engine's per-token log-probabilities), check against a baseline, alarms reach the
// alert callback; errors for NULLs, a generation-less session and a non-SQLite file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edgelm/edgelm.h"
#include "test_util.h"

namespace {

struct Alerts {
  std::vector<std::string> kinds, features;
};

extern "C" void on_alert(const char* kind, const char* feature, const char* message, double value,
                         double threshold, void* user) {
  (void)message;
  (void)value;
  (void)threshold;
  auto* a = static_cast<Alerts*>(user);
  a->kinds.emplace_back(kind);
  a->features.emplace_back(feature);
}

void remove_db(const std::string& p) {
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(p + s);
}

TEST(MonitorCApi, RecordCheckAndAlert) {
  EDGELM_REQUIRE_SHARED(model_path, "models/conf-llama-spm-f16.gguf");
  edgelm_model* model = nullptr;
  ASSERT_EQ(edgelm_model_load(model_path.c_str(), nullptr, &model), EDGELM_OK);
  edgelm_session_params sp = edgelm_session_default_params();
  sp.n_ctx = 64;
  sp.n_threads = 2;
  edgelm_session* session = nullptr;
  ASSERT_EQ(edgelm_session_create(model, &sp, &session), EDGELM_OK);

  const std::string db = edgelm::testing::temp_path("capi-monitor.db");
  remove_db(db);
  // A baseline whose mean log-probabilities (all 0: certainty) no real output matches.
  const std::string baseline = edgelm::testing::temp_path("capi-baseline.json");
  {
    nlohmann::json b = {{"format", "edgelm.monitor.baseline"},
                        {"version", 1},
                        {"canary", nlohmann::json::array()},
                        {"features", {{"mean_logprob", std::vector<double>(30, 0.0)}}}};
    std::ofstream(baseline) << b.dump();
  }
  const std::string config = edgelm::testing::temp_path("capi-monitor.json");
  std::ofstream(config) << R"({"thresholds": {"min_samples": 3}})";
  Alerts alerts;
  edgelm_monitor_params mp = edgelm_monitor_default_params();
  EXPECT_EQ(mp.max_rows, 10000);
  EXPECT_FALSE(mp.keep_text);
  mp.baseline_path = baseline.c_str();
  mp.config_path = config.c_str();
  mp.on_alert = on_alert;
  mp.user_data = &alerts;
  edgelm_monitor* mon = nullptr;
  ASSERT_EQ(edgelm_monitor_open(db.c_str(), &mp, &mon), EDGELM_OK) << edgelm_last_error();

  EXPECT_EQ(edgelm_monitor_record(mon, session, "m", nullptr), EDGELM_ERR_FAILED_PRECONDITION);
  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.max_tokens = 6;
  gp.seed = 5;
  for (const char* p : {"Once upon a time", "The weather today", "A list of fruits"}) {
    ASSERT_EQ(edgelm_generate(session, p, &gp, nullptr, nullptr), EDGELM_OK);
    ASSERT_EQ(edgelm_monitor_record(mon, session, "m", nullptr), EDGELM_OK) << edgelm_last_error();
  }
  size_t n = 0;
  bool alarm = false;
  EXPECT_EQ(edgelm_monitor_check(mon, &alarm, nullptr, 0, &n), EDGELM_ERR_OUT_OF_RANGE);
  alerts = {};
  std::string buf(n + 1, '\0');
  ASSERT_EQ(edgelm_monitor_check(mon, &alarm, buf.data(), buf.size(), &n), EDGELM_OK);
  const auto rep = nlohmann::json::parse(buf.substr(0, n));
  EXPECT_EQ(rep["rows"], 3);
  EXPECT_TRUE(alarm) << rep.dump(1);
  ASSERT_EQ(alerts.kinds.size(), 1u) << rep.dump(1);
  EXPECT_EQ(alerts.kinds[0], "feature_drift");
  EXPECT_EQ(alerts.features[0], "mean_logprob");
  edgelm_monitor_free(mon);

  // Errors: NULLs, a file that is not SQLite (left as it was).
  EXPECT_EQ(edgelm_monitor_open(nullptr, nullptr, &mon), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_monitor_record(nullptr, session, nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_monitor_open(db.c_str(), &mp, &mon), EDGELM_OK);  // reopen: rows kept
  ASSERT_EQ(edgelm_monitor_check(mon, nullptr, buf.data(), buf.size(), &n), EDGELM_OK);
  EXPECT_EQ(nlohmann::json::parse(buf.substr(0, n))["rows"], 3);
  edgelm_monitor_free(mon);
  EXPECT_EQ(edgelm_monitor_open(baseline.c_str(), nullptr, &mon), EDGELM_ERR_DATA_LOSS);
  EXPECT_EQ(mon, nullptr);
  EXPECT_TRUE(nlohmann::json::parse(std::ifstream(baseline)).contains("features"));

  edgelm_session_free(session);
  edgelm_model_free(model);
  remove_db(db);
  std::filesystem::remove(baseline);
  std::filesystem::remove(config);
}

}  // namespace
