// Drift statistics: KS statistic and p-value on known cases (ties included), the Kolmogorov
// tail at its classic critical values, PSI near 0 for the same distribution and large for a
// shift, thresholds JSON (defaults, unknown keys and wrong types refused), alarm rule.
#include "runtime/monitor/drift.h"

#include <gtest/gtest.h>

#include <random>

namespace edgelm::monitor {
namespace {

std::vector<double> normal(int n, double mean, uint64_t seed) {
  std::seed_seq sq{seed, uint64_t{0x9e3779b9}};  // small raw seeds give correlated streams
  std::mt19937_64 rng(sq);
  std::normal_distribution<double> d(mean, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

TEST(MonitorDrift, KolmogorovTailCriticalValues) {
  EXPECT_NEAR(kolmogorov_tail(1.358), 0.05, 1e-3);
  EXPECT_NEAR(kolmogorov_tail(1.628), 0.01, 1e-3);
  EXPECT_NEAR(kolmogorov_tail(1.224), 0.10, 1e-3);
  EXPECT_DOUBLE_EQ(kolmogorov_tail(0), 1.0);
}

TEST(MonitorDrift, KsKnownCases) {
  const std::vector<double> a = {1, 2, 3, 4};
  const std::vector<double> b = {5, 6, 7, 8};
  EXPECT_DOUBLE_EQ(ks_two_sample(a, b).statistic, 1.0);
  EXPECT_DOUBLE_EQ(ks_two_sample(a, a).statistic, 0.0);
  EXPECT_DOUBLE_EQ(ks_two_sample(a, a).p_value, 1.0);
  // Interleaved: max gap 1/4.
  const std::vector<double> c = {1.5, 2.5, 3.5, 4.5};
  EXPECT_DOUBLE_EQ(ks_two_sample(a, c).statistic, 0.25);
  // Ties across samples step together: {0,0,1,1} vs {0,1,1,1}: D = 1/4.
  EXPECT_DOUBLE_EQ(
      ks_two_sample(std::vector<double>{0, 0, 1, 1}, std::vector<double>{0, 1, 1, 1}).statistic,
      0.25);
  EXPECT_DOUBLE_EQ(ks_two_sample({}, a).p_value, 1.0);
}

TEST(MonitorDrift, KsSeparatesShiftedFromSame) {
  const auto base = normal(200, 0.0, 1);
  const auto same = normal(200, 0.0, 2);
  const auto shifted = normal(200, 0.8, 3);
  EXPECT_GT(ks_two_sample(base, same).p_value, 0.01);
  EXPECT_LT(ks_two_sample(base, shifted).p_value, 1e-6);
  EXPECT_LT(population_stability_index(base, same), 0.2);
  EXPECT_GT(population_stability_index(base, shifted), 0.3);
  EXPECT_NEAR(population_stability_index(base, base), 0.0, 1e-12);
  // Constant features: no shift, no NaN.
  const std::vector<double> zeros(50, 0.0), ones(50, 1.0);
  EXPECT_NEAR(population_stability_index(zeros, zeros), 0.0, 1e-12);
  EXPECT_GT(population_stability_index(zeros, ones), 1.0);
}

TEST(MonitorDrift, ThresholdsJson) {
  auto d = thresholds_from_json(nlohmann::json::object());
  ASSERT_TRUE(d.ok());
  EXPECT_DOUBLE_EQ(d->ks_alpha, 0.01);
  EXPECT_DOUBLE_EQ(d->psi_alert, 0.2);
  auto t = thresholds_from_json({{"ks_alpha", 0.05}, {"features", {"mean_logprob"}}});
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_DOUBLE_EQ(t->ks_alpha, 0.05);
  EXPECT_EQ(t->features, std::vector<std::string>{"mean_logprob"});
  auto round = thresholds_from_json(to_json(*t));
  ASSERT_TRUE(round.ok());
  EXPECT_DOUBLE_EQ(round->ks_alpha, 0.05);

  auto unknown = thresholds_from_json({{"ks_alfa", 0.05}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("ks_alfa"), std::string::npos);
  EXPECT_FALSE(thresholds_from_json({{"ks_alpha", "high"}}).ok());
  EXPECT_FALSE(thresholds_from_json({{"ks_alpha", 2.0}}).ok());
  EXPECT_FALSE(thresholds_from_json({{"features", {"colour"}}}).ok());
}

std::vector<RequestFeatures> rows_with_logprobs(const std::vector<double>& v) {
  std::vector<RequestFeatures> rows(v.size());
  for (size_t i = 0; i < v.size(); ++i) rows[i].mean_logprob = v[i];
  return rows;
}

TEST(MonitorDrift, AlarmNeedsSignificanceAndSize) {
  DriftThresholds t;
  t.features = {"mean_logprob"};
  std::map<std::string, std::vector<double>> base = {{"mean_logprob", normal(100, 0, 1)}};
  auto same = compare_features(base, rows_with_logprobs(normal(100, 0, 9)), t);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_TRUE(same[0].tested);
  EXPECT_FALSE(same[0].alarm);
  auto moved = compare_features(base, rows_with_logprobs(normal(100, 1.0, 9)), t);
  EXPECT_TRUE(moved[0].alarm);
  // Too few rows: reported, not tested.
  auto few = compare_features(base, rows_with_logprobs(normal(5, 3.0, 9)), t);
  EXPECT_FALSE(few[0].tested);
  EXPECT_FALSE(few[0].alarm);
  // A large PSI threshold: significant but not large enough.
  t.psi_alert = 100;
  EXPECT_FALSE(compare_features(base, rows_with_logprobs(normal(100, 1.0, 9)), t)[0].alarm);
}

}  // namespace
}  // namespace edgelm::monitor
