// Drift statistics (see drift.h).
#include "runtime/monitor/drift.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>

namespace edgelm::monitor {

double kolmogorov_tail(double lambda) {
  if (lambda < 1e-3) return 1.0;
  double sum = 0, sign = 1, prev = 0;
  for (int j = 1; j <= 200; ++j) {
    const double term = sign * std::exp(-2.0 * j * j * lambda * lambda);
    sum += term;
    if (std::fabs(term) <= 1e-10 * std::fabs(sum) || std::fabs(term) <= 1e-300) break;
    prev = term;
    sign = -sign;
  }
  (void)prev;
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

KsResult ks_two_sample(std::span<const double> a_in, std::span<const double> b_in) {
  KsResult r;
  if (a_in.empty() || b_in.empty()) return r;
  std::vector<double> a(a_in.begin(), a_in.end()), b(b_in.begin(), b_in.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / na - static_cast<double>(j) / nb));
  }
  r.statistic = d;
  const double en = std::sqrt(na * nb / (na + nb));
  r.p_value = kolmogorov_tail((en + 0.12 + 0.11 / en) * d);
  return r;
}

double population_stability_index(std::span<const double> expected, std::span<const double> actual,
                                  int bins) {
  if (expected.empty() || actual.empty() || bins < 1) return 0;
  std::vector<double> e(expected.begin(), expected.end());
  std::sort(e.begin(), e.end());
  // Inner edges at the baseline's quantiles; ties collapse bins.
  // First edge just below the baseline's minimum: values under everything the baseline saw get
  // a bin of their own (even a constant baseline then tells lower, equal and higher apart).
  std::vector<double> edges = {std::nextafter(e.front(), -std::numeric_limits<double>::infinity())};
  for (int k = 1; k < bins; ++k) {
    const size_t idx = static_cast<size_t>(k) * e.size() / static_cast<size_t>(bins);
    const double q = e[std::min(e.size() - 1, idx > 0 ? idx - 1 : 0)];  // top of the k-th bin
    if (q > edges.back()) edges.push_back(q);
  }
  // Bin k holds (edges[k-1], edges[k]]: a value equal to an edge goes left, so a constant
  // baseline still separates smaller, equal and larger values.
  auto shares = [&](std::span<const double> v) {
    std::vector<double> c(edges.size() + 1, 0.0);
    for (double x : v) {
      const size_t k =
          static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), x) - edges.begin());
      c[k] += 1;
    }
    for (double& x : c) x = std::max(x / static_cast<double>(v.size()), 1e-4);
    return c;
  };
  const std::vector<double> pe = shares(expected), pa = shares(actual);
  double psi = 0;
  for (size_t k = 0; k < pe.size(); ++k) psi += (pa[k] - pe[k]) * std::log(pa[k] / pe[k]);
  return psi;
}

nlohmann::json to_json(const DriftThresholds& t) {
  return {{"ks_alpha", t.ks_alpha},
          {"bonferroni", t.bonferroni},
          {"psi_alert", t.psi_alert},
          {"psi_bins", t.psi_bins},
          {"min_samples", t.min_samples},
          {"features", t.features},
          {"perplexity_ratio_max", t.perplexity_ratio_max},
          {"agreement_min", t.agreement_min},
          {"overlap_min", t.overlap_min},
          {"window", t.window}};
}

StatusOr<DriftThresholds> thresholds_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("monitor config: expected a JSON object");
  DriftThresholds t;
  const nlohmann::json defaults = to_json(t);
  for (const auto& [key, value] : j.items()) {
    if (!defaults.contains(key)) {
      return Status::invalid_argument(fmt::format(
          "monitor config: unknown key '{}' (expected one of ks_alpha, bonferroni, psi_alert, "
          "psi_bins, min_samples, features, perplexity_ratio_max, agreement_min, overlap_min, "
          "window)",
          key));
    }
    const auto& d = defaults[key];
    const bool same_kind = (d.is_number() && value.is_number()) ||
                           (d.is_boolean() && value.is_boolean()) ||
                           (d.is_array() && value.is_array());
    if (!same_kind) {
      return Status::invalid_argument(fmt::format("monitor config: '{}' must be a {}, found {}",
                                                  key, d.type_name(), value.type_name()));
    }
  }
  try {
    t.ks_alpha = j.value("ks_alpha", t.ks_alpha);
    t.bonferroni = j.value("bonferroni", t.bonferroni);
    t.psi_alert = j.value("psi_alert", t.psi_alert);
    t.psi_bins = j.value("psi_bins", t.psi_bins);
    t.min_samples = j.value("min_samples", t.min_samples);
    t.features = j.value("features", t.features);
    t.perplexity_ratio_max = j.value("perplexity_ratio_max", t.perplexity_ratio_max);
    t.agreement_min = j.value("agreement_min", t.agreement_min);
    t.overlap_min = j.value("overlap_min", t.overlap_min);
    t.window = j.value("window", t.window);
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("monitor config: {}", e.what()));
  }
  if (!(t.ks_alpha > 0 && t.ks_alpha < 1)) {
    return Status::invalid_argument(
        fmt::format("monitor config: ks_alpha must be in (0, 1), found {}", t.ks_alpha));
  }
  if (t.psi_bins < 2 || t.min_samples < 1 || t.window < 1) {
    return Status::invalid_argument(fmt::format(
        "monitor config: psi_bins >= 2, min_samples >= 1 and window >= 1 expected, found {}, {}, "
        "{}",
        t.psi_bins, t.min_samples, t.window));
  }
  for (const auto& f : t.features) {
    const auto& names = numeric_feature_names();
    if (std::find(names.begin(), names.end(), f) == names.end()) {
      return Status::invalid_argument(
          fmt::format("monitor config: unknown feature '{}' in 'features'", f));
    }
  }
  return t;
}

StatusOr<DriftThresholds> load_thresholds(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("monitor config '{}': cannot open", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::invalid_argument(fmt::format("monitor config '{}': not valid JSON", path));
  }
  auto t = thresholds_from_json(j);
  if (!t.ok()) return t.status().with_context(path);
  return t;
}

std::map<std::string, std::vector<double>> feature_columns(
    const std::vector<RequestFeatures>& rows) {
  std::map<std::string, std::vector<double>> cols;
  for (const auto& name : numeric_feature_names()) {
    auto& c = cols[name];
    c.reserve(rows.size());
    for (const auto& r : rows) c.push_back(*feature_value(r, name));
  }
  return cols;
}

std::vector<FeatureDrift> compare_features(
    const std::map<std::string, std::vector<double>>& baseline,
    const std::vector<RequestFeatures>& current, const DriftThresholds& t) {
  const auto cur = feature_columns(current);
  std::vector<FeatureDrift> out;
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  for (const auto& name : numeric_feature_names()) {
    auto it = baseline.find(name);
    if (it == baseline.end()) continue;
    const auto& b = it->second;
    const auto& c = cur.at(name);
    FeatureDrift d;
    d.feature = name;
    d.n_baseline = b.size();
    d.n_current = c.size();
    d.baseline_mean = mean(b);
    d.current_mean = mean(c);
    d.psi = population_stability_index(b, c, t.psi_bins);
    d.ks = ks_two_sample(b, c);
    d.tested = std::find(t.features.begin(), t.features.end(), name) != t.features.end() &&
               b.size() >= static_cast<size_t>(t.min_samples) &&
               c.size() >= static_cast<size_t>(t.min_samples);
    out.push_back(d);
  }
  size_t n_tested = 0;
  for (const auto& d : out) n_tested += d.tested ? 1 : 0;
  const double alpha =
      t.bonferroni && n_tested > 0 ? t.ks_alpha / static_cast<double>(n_tested) : t.ks_alpha;
  for (auto& d : out) d.alarm = d.tested && d.ks.p_value < alpha && d.psi >= t.psi_alert;
  return out;
}

nlohmann::json drift_json(const std::vector<FeatureDrift>& rows) {
  nlohmann::json f = nlohmann::json::array();
  for (const auto& d : rows) {
    f.push_back({{"feature", d.feature},
                 {"n_baseline", d.n_baseline},
                 {"n_current", d.n_current},
                 {"baseline_mean", d.baseline_mean},
                 {"current_mean", d.current_mean},
                 {"psi", d.psi},
                 {"ks_d", d.ks.statistic},
                 {"ks_p", d.ks.p_value},
                 {"tested", d.tested},
                 {"alarm", d.alarm}});
  }
  return f;
}

}  // namespace edgelm::monitor
