// Drift tests between a baseline sample and a current sample of a feature: population
// stability index (PSI, on the baseline's decile bins) and the two-sample Kolmogorov-Smirnov
// test (statistic D and asymptotic p-value), plus the thresholds that turn them into alarms
// (config JSON, documented defaults in docs/monitor.md).
//
//   KsResult ks = ks_two_sample(baseline_values, current_values);   // ks.p_value
//   double p = population_stability_index(baseline_values, current_values);
//   ASSIGN_OR_RETURN(DriftThresholds t, thresholds_from_json(json));
//   std::vector<FeatureDrift> d = compare_features(baseline_by_name, current_rows, t);
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/monitor/features.h"

namespace edgelm::monitor {

struct KsResult {
  double statistic = 0;  // sup |F_a - F_b|
  double p_value = 1;    // asymptotic (Kolmogorov distribution with effective n)
};
// Two-sample KS; ties handled (steps taken over equal values together). Empty input: D 0, p 1.
KsResult ks_two_sample(std::span<const double> a, std::span<const double> b);
// Q_KS(lambda) = 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 lambda^2), the Kolmogorov tail.
double kolmogorov_tail(double lambda);

// PSI = sum_i (c_i - e_i) ln(c_i / e_i) over `bins` quantile bins of `expected` (fewer when
// values tie; bins are (lo, hi], plus one below the baseline's minimum); shares floored at 1e-4.
// 0 = same distribution; > 0.2 is read as a shift.
double population_stability_index(std::span<const double> expected, std::span<const double> actual,
                                  int bins = 10);

struct DriftThresholds {
  // A feature alarms when KS p < ks_alpha (divided by the number of tested features when
  // bonferroni) AND PSI >= psi_alert: a shift both significant and large.
  double ks_alpha = 0.01;
  bool bonferroni = true;
  double psi_alert = 0.2;
  int psi_bins = 10;
  int min_samples = 20;  // fewer rows on either side: not tested
  // Features tested for alarms (others are still reported). Latency and speed are left out by
  // default: they move with the hardware and load, not with quality.
  std::vector<std::string> features = {"output_tokens",        "mean_logprob", "mean_entropy",
                                       "repeated_ngram_share", "empty_output", "stop_eog"};
  // Canary: alarm when perplexity on the reference continuations rises by more than this
  // ratio, when fewer than agreement_min of the greedy answers are identical, or when the
  // mean token-overlap F1 of the greedy answers falls below overlap_min.
  double perplexity_ratio_max = 1.10;
  double agreement_min = 0.8;
  double overlap_min = 0.9;
  int window = 500;  // production rows compared by `check` (newest)
};
nlohmann::json to_json(const DriftThresholds& t);
// Missing keys keep their defaults; unknown keys and wrong types are INVALID_ARGUMENT.
StatusOr<DriftThresholds> thresholds_from_json(const nlohmann::json& j);
StatusOr<DriftThresholds> load_thresholds(const std::string& path);

struct FeatureDrift {
  std::string feature;
  size_t n_baseline = 0, n_current = 0;
  double baseline_mean = 0, current_mean = 0;
  double psi = 0;
  KsResult ks;
  bool tested = false;  // listed in thresholds.features and enough samples
  bool alarm = false;
};
// Every numeric feature present in `baseline` (name -> values) against `current`.
std::vector<FeatureDrift> compare_features(
    const std::map<std::string, std::vector<double>>& baseline,
    const std::vector<RequestFeatures>& current, const DriftThresholds& t);
// name -> values of every numeric feature of `rows`.
std::map<std::string, std::vector<double>> feature_columns(
    const std::vector<RequestFeatures>& rows);
// The rows as a JSON array (the "features" member of monitor and canary reports).
nlohmann::json drift_json(const std::vector<FeatureDrift>& rows);

}  // namespace edgelm::monitor
