// Threshold calibration: the target device share is met, accuracy and AUC follow the labels
// (a perfect score, an inverted one, a useless constant one), bad input is rejected.
#include "runtime/router/calibrate.h"

#include <gtest/gtest.h>

namespace edgelm::router {
namespace {

std::vector<LabelledScore> separable() {
  std::vector<LabelledScore> xs;
  for (int i = 0; i < 10; ++i) xs.push_back({1.0 + 0.1 * i, false});
  for (int i = 0; i < 10; ++i) xs.push_back({5.0 + 0.1 * i, true});
  return xs;
}

TEST(Calibrate, SeparableScoresGivePerfectRouting) {
  auto r = calibrate_threshold(separable(), 0.5);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->threshold, 1.9);
  EXPECT_LT(r->threshold, 5.0);
  EXPECT_DOUBLE_EQ(r->at_threshold.device_share, 0.5);
  EXPECT_DOUBLE_EQ(r->at_threshold.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(r->auc, 1.0);
  // A 25% device share keeps half of the easy prompts on the device, sends all hard ones away.
  r = calibrate_threshold(separable(), 0.25);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->at_threshold.device_share, 0.25);
  EXPECT_DOUBLE_EQ(r->at_threshold.easy_on_device, 0.5);
  EXPECT_DOUBLE_EQ(r->at_threshold.hard_to_cloud, 1.0);
  EXPECT_DOUBLE_EQ(r->at_threshold.accuracy, 0.75);
  r = calibrate_threshold(separable(), 0.0);
  EXPECT_DOUBLE_EQ(r->at_threshold.device_share, 0.0);
  r = calibrate_threshold(separable(), 1.0);
  EXPECT_DOUBLE_EQ(r->at_threshold.device_share, 1.0);
}

TEST(Calibrate, InvertedAndUselessScores) {
  auto xs = separable();
  for (auto& x : xs) x.score = -x.score;
  auto r = calibrate_threshold(xs, 0.5);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->auc, 0.0);
  EXPECT_DOUBLE_EQ(r->at_threshold.accuracy, 0.0);
  for (auto& x : xs) x.score = 3.0;
  r = calibrate_threshold(xs, 0.5);
  EXPECT_DOUBLE_EQ(r->auc, 0.5);
  EXPECT_NE(r->to_json().find("\"auc\":0.5"), std::string::npos) << r->to_json();
}

TEST(Calibrate, RejectsBadInput) {
  EXPECT_FALSE(calibrate_threshold({}, 0.5).ok());
  EXPECT_FALSE(calibrate_threshold(separable(), 1.5).ok());
  EXPECT_FALSE(calibrate_threshold(separable(), -0.1).ok());
}

}  // namespace
}  // namespace edgelm::router
