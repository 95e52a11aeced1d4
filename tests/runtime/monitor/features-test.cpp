// Per-request features: repeated n-gram share, features from a GenerateResult (means of the
// per-token log-probabilities and entropies, empty output, stop reason), opt-in text, JSON.
#include "runtime/monitor/features.h"

#include <gtest/gtest.h>

namespace edgelm::monitor {
namespace {

TEST(MonitorFeatures, RepeatedNgramShare) {
  const std::vector<int32_t> none = {1, 2, 3, 4, 5, 6};
  EXPECT_DOUBLE_EQ(repeated_ngram_share(none), 0.0);
  const std::vector<int32_t> abcabc = {1, 2, 3, 1, 2, 3};  // 3-grams 123 231 312 123
  EXPECT_DOUBLE_EQ(repeated_ngram_share(abcabc), 0.25);
  const std::vector<int32_t> loop(20, 7);  // 18 3-grams, all but the first repeat
  EXPECT_DOUBLE_EQ(repeated_ngram_share(loop), 17.0 / 18.0);
  EXPECT_DOUBLE_EQ(repeated_ngram_share(std::vector<int32_t>{1, 2, 3}), 0.0);  // too short
  EXPECT_DOUBLE_EQ(repeated_ngram_share(std::vector<int32_t>{4, 4, 4}, 1), 2.0 / 3.0);
}

GenerateResult sample_result() {
  GenerateResult r;
  r.text = "hello";
  r.tokens = {10, 11, 12, 13};
  r.token_logprobs = {-1.0f, -2.0f, -3.0f, -2.0f};
  r.token_entropies = {0.5f, 1.5f, 1.0f, 1.0f};
  r.stop_reason = StopReason::kEog;
  r.stats.prompt_tokens = 7;
  r.stats.total_ms = 120;
  r.stats.ttft_ms = 20;
  r.stats.decode_tokens = 3;
  r.stats.decode_ms = 30;
  return r;
}

TEST(MonitorFeatures, FromResult) {
  const RequestFeatures f = features_from_result(sample_result(), "m1");
  EXPECT_EQ(f.model, "m1");
  EXPECT_EQ(f.prompt_tokens, 7);
  EXPECT_EQ(f.output_tokens, 4);
  EXPECT_DOUBLE_EQ(f.mean_logprob, -2.0);
  EXPECT_DOUBLE_EQ(f.mean_entropy, 1.0);
  EXPECT_EQ(f.stop_reason, StopReason::kEog);
  EXPECT_FALSE(f.empty_output);
  EXPECT_DOUBLE_EQ(f.latency_ms, 120);
  EXPECT_DOUBLE_EQ(f.tokens_per_s, 100);
  EXPECT_GT(f.timestamp_ms, 0);
  EXPECT_FALSE(f.prompt_text.has_value());  // no text unless asked for
  EXPECT_FALSE(f.output_text.has_value());
  EXPECT_EQ(*feature_value(f, "stop_eog"), 1.0);
  EXPECT_EQ(*feature_value(f, "output_tokens"), 4.0);
  EXPECT_FALSE(feature_value(f, "nonsense").has_value());
  for (const auto& n : numeric_feature_names()) EXPECT_TRUE(feature_value(f, n).has_value()) << n;

  const RequestFeatures t = features_from_result(sample_result(), "m1", std::string("hi"));
  EXPECT_EQ(*t.prompt_text, "hi");
  EXPECT_EQ(*t.output_text, "hello");

  GenerateResult blank = sample_result();
  blank.text = " \n";
  EXPECT_TRUE(features_from_result(blank).empty_output);
}

TEST(MonitorFeatures, JsonRoundTripAndErrors) {
  const RequestFeatures f = features_from_result(sample_result(), "m1", std::string("p"));
  auto back = features_from_json(to_json(f));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->model, "m1");
  EXPECT_DOUBLE_EQ(back->mean_logprob, f.mean_logprob);
  EXPECT_EQ(back->stop_reason, StopReason::kEog);
  EXPECT_EQ(*back->prompt_text, "p");
  auto bad = features_from_json({{"stop_reason", "exploded"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("exploded"), std::string::npos);
  EXPECT_FALSE(features_from_json({{"output_tokens", "many"}}).ok());
}

}  // namespace
}  // namespace edgelm::monitor
