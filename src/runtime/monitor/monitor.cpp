// The quality-drift monitor (see monitor.h).
#include "runtime/monitor/monitor.h"

#include <fmt/format.h>

#include <fstream>

namespace edgelm::monitor {

nlohmann::json to_json(const MonitorConfig& c) {
  return {{"max_rows", c.store.max_rows},
          {"keep_text", c.store.keep_text},
          {"thresholds", to_json(c.thresholds)}};
}

StatusOr<MonitorConfig> monitor_config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("monitor config: expected a JSON object");
  MonitorConfig c;
  for (const auto& [key, value] : j.items()) {
    if (key == "max_rows") {
      if (!value.is_number_integer() || value.get<int64_t>() <= 0) {
        return Status::invalid_argument(fmt::format(
            "monitor config: max_rows must be a positive integer, found {}", value.dump()));
      }
      c.store.max_rows = value.get<int64_t>();
    } else if (key == "keep_text") {
      if (!value.is_boolean()) {
        return Status::invalid_argument(
            fmt::format("monitor config: keep_text must be a boolean, found {}", value.dump()));
      }
      c.store.keep_text = value.get<bool>();
    } else if (key == "thresholds") {
      ASSIGN_OR_RETURN(c.thresholds, thresholds_from_json(value));
    } else {
      return Status::invalid_argument(fmt::format(
          "monitor config: unknown key '{}' (expected max_rows, keep_text, thresholds)", key));
    }
  }
  return c;
}

StatusOr<MonitorConfig> load_monitor_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("monitor config '{}': cannot open", path));
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return Status::invalid_argument(fmt::format("monitor config '{}': not valid JSON", path));
  }
  auto c = monitor_config_from_json(j);
  if (!c.ok()) return c.status().with_context(path);
  return c;
}

StatusOr<std::unique_ptr<Monitor>> Monitor::open(const std::string& db_path,
                                                 const MonitorConfig& config) {
  ASSIGN_OR_RETURN(auto store, FeatureStore::open(db_path, config.store));
  return std::unique_ptr<Monitor>(new Monitor(config, std::move(store)));
}

void Monitor::set_baseline(Baseline b) {
  std::lock_guard<std::mutex> lock(mu_);
  baseline_ = std::move(b);
}

void Monitor::on_alert(AlertCallback cb) {
  std::lock_guard<std::mutex> lock(mu_);
  on_alert_ = std::move(cb);
}

void Monitor::fire(const Alert& a) {
  AlertCallback cb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cb = on_alert_;
  }
  if (cb) cb(a);
}

Status Monitor::record(const GenerateResult& r, const std::string& model,
                       std::optional<std::string> prompt_text) {
  return store_->add(features_from_result(r, model, std::move(prompt_text)));
}

std::vector<Alert> canary_alerts(const CanaryReport& rep, const DriftThresholds& t) {
  std::vector<Alert> out;
  if (rep.perplexity_ratio > t.perplexity_ratio_max) {
    out.push_back({"canary_perplexity", "perplexity_ratio", rep.reasons.empty() ? "" : "",
                   rep.perplexity_ratio, t.perplexity_ratio_max});
  }
  if (rep.agreement < t.agreement_min) {
    out.push_back({"canary_agreement", "agreement", "", rep.agreement, t.agreement_min});
  }
  if (rep.overlap < t.overlap_min) {
    out.push_back({"canary_overlap", "overlap", "", rep.overlap, t.overlap_min});
  }
  for (const auto& d : rep.features) {
    if (d.alarm) out.push_back({"canary_feature_drift", d.feature, "", d.ks.p_value, t.ks_alpha});
  }
  // Messages: the report's reasons are in the same order as the alerts built above.
  for (size_t i = 0; i < out.size() && i < rep.reasons.size(); ++i) out[i].message = rep.reasons[i];
  return out;
}

StatusOr<MonitorReport> Monitor::check() {
  MonitorReport rep;
  ASSIGN_OR_RETURN(rep.rows, store_->count());
  std::optional<Baseline> baseline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    baseline = baseline_;
  }
  if (!baseline) return rep;
  rep.has_baseline = true;
  ASSIGN_OR_RETURN(auto rows, store_->recent(config_.thresholds.window, "request"));
  rep.compared = rows.size();
  rep.features = compare_features(baseline->features, rows, config_.thresholds);
  for (const auto& d : rep.features) {
    if (!d.alarm) continue;
    rep.alerts.push_back(
        {"feature_drift", d.feature,
         fmt::format("{} drifted: KS D {:.3f} p {:.2g}, PSI {:.3f} (mean {:.4g} -> {:.4g}, "
                     "n {} vs {})",
                     d.feature, d.ks.statistic, d.ks.p_value, d.psi, d.baseline_mean,
                     d.current_mean, d.n_baseline, d.n_current),
         d.ks.p_value, config_.thresholds.ks_alpha});
  }
  for (const auto& a : rep.alerts) fire(a);
  return rep;
}

StatusOr<std::optional<CanaryReport>> Monitor::maybe_run_canary(const Engine& engine,
                                                                const MayRunNow& may_run_now,
                                                                const std::atomic<bool>* cancel) {
  std::optional<Baseline> baseline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    baseline = baseline_;
  }
  if (!baseline) {
    return Status::failed_precondition("monitor: run_canary needs a baseline (set_baseline)");
  }
  if (may_run_now && !may_run_now()) return std::optional<CanaryReport>();
  std::vector<CanaryPrompt> prompts;
  for (const auto& c : baseline->canary) prompts.push_back({c.id, c.prompt});
  auto run = run_canary(engine, prompts, baseline->options, &*baseline, may_run_now, cancel);
  if (!run.ok()) {
    if (run.status().code() == StatusCode::kCancelled) return std::optional<CanaryReport>();
    return run.status();
  }
  for (const auto& f : run->samples) RETURN_IF_ERROR(store_->add(f));
  CanaryReport rep = compare_canary(*baseline, *run, config_.thresholds);
  for (const auto& a : canary_alerts(rep, config_.thresholds)) fire(a);
  return std::optional<CanaryReport>(std::move(rep));
}

std::string drift_table_markdown(const std::vector<FeatureDrift>& rows) {
  std::string s =
      "| feature | n base | n now | mean base | mean now | PSI | KS D | KS p | alarm |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& d : rows) {
    s += fmt::format("| {} | {} | {} | {:.4g} | {:.4g} | {:.3f} | {:.3f} | {:.3g} | {} |\n",
                     d.feature, d.n_baseline, d.n_current, d.baseline_mean, d.current_mean, d.psi,
                     d.ks.statistic, d.ks.p_value,
                     d.alarm ? "**ALARM**" : (d.tested ? "no" : "not tested"));
  }
  return s;
}

nlohmann::json MonitorReport::to_json() const {
  nlohmann::json alerts_j = nlohmann::json::array();
  for (const auto& a : alerts) {
    alerts_j.push_back({{"kind", a.kind},
                        {"feature", a.feature},
                        {"message", a.message},
                        {"value", a.value},
                        {"threshold", a.threshold}});
  }
  nlohmann::json j = {{"rows", rows},
                      {"compared", compared},
                      {"has_baseline", has_baseline},
                      {"features", drift_json(features)},
                      {"alerts", alerts_j},
                      {"alarm", alarm()}};
  if (canary) j["canary"] = canary->to_json();
  return j;
}

std::string MonitorReport::to_markdown() const {
  std::string s = fmt::format("rows in store: {}\n", rows);
  if (!has_baseline) return s + "no baseline given: drift not tested\n";
  s += fmt::format("compared: newest {} production rows against the baseline\n\n", compared);
  s += drift_table_markdown(features);
  if (canary) {
    s += fmt::format(
        "\ncanary: perplexity {:.3f} -> {:.3f} (ratio {:.3f}), greedy agreement {:.3f}, token "
        "overlap {:.3f}\n\n",
        canary->baseline_perplexity, canary->current_perplexity, canary->perplexity_ratio,
        canary->agreement, canary->overlap);
    s += drift_table_markdown(canary->features);
  }
  s += alerts.empty() ? "\nno alarm\n" : "\n";
  for (const auto& a : alerts) s += fmt::format("ALARM {}: {}\n", a.kind, a.message);
  return s;
}

}  // namespace edgelm::monitor
