// The quality-drift monitor: records per-request features into the bounded store, compares the
// newest window with the baseline's feature distributions (KS + PSI), runs the canary set when
// the caller's may_run_now() allows (e.g. the governor: idle and plugged in), and reports alarms
// through an alert callback. Config JSON: {"max_rows": 10000, "keep_text": false,
// "thresholds": {...drift.h DriftThresholds...}}; every key optional.
//
//   MonitorConfig cfg;  ASSIGN_OR_RETURN(cfg, load_monitor_config("monitor.json"));
//   ASSIGN_OR_RETURN(auto mon, Monitor::open("monitor.db", cfg));
//   mon->set_baseline(*load_baseline("baseline.json"));
//   mon->on_alert([](const Alert& a) { log_warn("{}: {}", a.kind, a.message); });
//   mon->record(features_from_result(result, "model-v3"));
//   ASSIGN_OR_RETURN(MonitorReport rep, mon->check());            // fires alerts
//   mon->maybe_run_canary(*engine, prompts, [&] { return governor.idle_and_charging(); });
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/monitor/canary.h"
#include "runtime/monitor/drift.h"
#include "runtime/monitor/features.h"
#include "runtime/monitor/store.h"

namespace edgelm::monitor {

struct MonitorConfig {
  StoreOptions store;
  DriftThresholds thresholds;
};
nlohmann::json to_json(const MonitorConfig& c);
StatusOr<MonitorConfig> monitor_config_from_json(const nlohmann::json& j);
StatusOr<MonitorConfig> load_monitor_config(const std::string& path);

struct Alert {
  std::string kind;     // "feature_drift", "canary_perplexity", "canary_agreement",
                        // "canary_overlap", "canary_feature_drift"
  std::string feature;  // the feature or figure concerned
  std::string message;  // one readable line
  double value = 0;     // the statistic that crossed its threshold
  double threshold = 0;
};
using AlertCallback = std::function<void(const Alert&)>;

struct MonitorReport {
  int64_t rows = 0;                    // rows in the store
  size_t compared = 0;                 // production rows compared (newest window)
  std::vector<FeatureDrift> features;  // empty without a baseline
  std::optional<CanaryReport> canary;
  std::vector<Alert> alerts;
  bool has_baseline = false;
  bool alarm() const { return !alerts.empty(); }
  nlohmann::json to_json() const;
  std::string to_markdown() const;
};

class Monitor {
 public:
  static StatusOr<std::unique_ptr<Monitor>> open(const std::string& db_path,
                                                 const MonitorConfig& config = {});

  void set_baseline(Baseline b);
  void on_alert(AlertCallback cb);
  const MonitorConfig& config() const { return config_; }
  FeatureStore& store() { return *store_; }

  Status record(const RequestFeatures& f) { return store_->add(f); }
  Status record(const GenerateResult& r, const std::string& model,
                std::optional<std::string> prompt_text = std::nullopt);

  // Summary of the store and, with a baseline, drift of the newest thresholds.window
  // production rows against it. Alerts go to the callback and into the report.
  StatusOr<MonitorReport> check();
  // Runs the canary set against the baseline if may_run_now() (nullopt when it said no, or
  // was withdrawn during the run); canary generations are stored with source "canary".
  // FAILED_PRECONDITION without a baseline.
  StatusOr<std::optional<CanaryReport>> maybe_run_canary(const Engine& engine,
                                                         const MayRunNow& may_run_now,
                                                         const std::atomic<bool>* cancel = nullptr);

 private:
  Monitor(MonitorConfig config, std::unique_ptr<FeatureStore> store)
      : config_(std::move(config)), store_(std::move(store)) {}
  void fire(const Alert& a);

  MonitorConfig config_;
  std::unique_ptr<FeatureStore> store_;
  std::optional<Baseline> baseline_;
  AlertCallback on_alert_;
  std::mutex mu_;
};

// Alerts for a canary report (one per reason).
std::vector<Alert> canary_alerts(const CanaryReport& rep, const DriftThresholds& t);
// Markdown table of feature drift rows.
std::string drift_table_markdown(const std::vector<FeatureDrift>& rows);

}  // namespace edgelm::monitor
