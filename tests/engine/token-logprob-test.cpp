// GenerateResult::token_logprobs / token_entropies: one entry per generated token, equal to a
// direct log-softmax (in double, over the whole vocabulary) of the logits the executor returned
// for that step, independent of the sampling transforms; on the fake executor and on a real
// model (shared conformance file).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/engine.h"
#include "engine/session.h"
#include "fakes.h"
#include "test_util.h"

namespace edgelm {
namespace {

using testing::ByteCodec;
using testing::FakeExecutor;

// Direct log-softmax: log p_i = x_i - log(sum_j exp(x_j)); H = -sum p_i log p_i.
void direct_log_softmax(std::span<const float> logits, int32_t token, double* logprob,
                        double* entropy) {
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x));
  const double log_z = std::log(z);
  *logprob = logits[token] - log_z;
  double h = 0;
  for (float x : logits) {
    const double lp = x - log_z;
    h -= std::exp(lp) * lp;
  }
  *entropy = h;
}

// Records a copy of every logits vector the wrapped executor returns.
class RecordingExecutor : public Executor {
 public:
  explicit RecordingExecutor(std::unique_ptr<Executor> inner) : inner_(std::move(inner)) {}
  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens) override {
    auto r = inner_->eval(tokens);
    if (r.ok()) seen.emplace_back(r->begin(), r->end());
    return r;
  }
  int n_vocab() const override { return inner_->n_vocab(); }
  int n_ctx() const override { return inner_->n_ctx(); }
  int n_past() const override { return inner_->n_past(); }
  void reset() override { inner_->reset(); }
  void truncate(int n) override { inner_->truncate(n); }
  std::vector<std::vector<float>> seen;

 private:
  std::unique_ptr<Executor> inner_;
};

void expect_matches_logits(const GenerateResult& r, const std::vector<std::vector<float>>& seen) {
  ASSERT_EQ(r.token_logprobs.size(), r.tokens.size());
  ASSERT_EQ(r.token_entropies.size(), r.tokens.size());
  ASSERT_GE(seen.size(), r.tokens.size());
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    double lp = 0, h = 0;
    direct_log_softmax(seen[i], r.tokens[i], &lp, &h);
    EXPECT_NEAR(r.token_logprobs[i], lp, 1e-4 * (1 + std::fabs(lp))) << "token " << i;
    EXPECT_NEAR(r.token_entropies[i], h, 1e-4 * (1 + h)) << "token " << i;
    EXPECT_LE(r.token_logprobs[i], 0.0f);
    EXPECT_GE(r.token_entropies[i], 0.0f);
  }
}

TEST(TokenLogprob, MatchesDirectLogSoftmaxUnderSampling) {
  auto codec = std::make_shared<ByteCodec>();
  // Logits with a soft peak, so sampled tokens are not always the argmax.
  auto fake = std::make_unique<FakeExecutor>(codec->n_vocab(), 128,
                                             [](std::span<const int32_t>) { return -1; });
  auto rec = std::make_unique<RecordingExecutor>(std::move(fake));
  RecordingExecutor* recp = rec.get();
  Session s(std::move(rec), codec);
  GenerateParams gp;
  gp.max_tokens = 12;
  gp.sampling.temperature = 1.5f;  // transforms must not change the reported figures
  gp.sampling.top_k = 5;
  gp.sampling.seed = 7;
  gp.ignore_eog = true;
  auto r = s.generate("abc", gp);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tokens.size(), 12u);
  expect_matches_logits(*r, recp->seen);
  // The ramp logits are near-uniform: entropy close to log(n_vocab), far from a peaked one.
  EXPECT_GT(r->token_entropies[0], 0.9 * std::log(codec->n_vocab()));
}

TEST(TokenLogprob, PeakedLogitsGiveLowEntropy) {
  auto codec = std::make_shared<ByteCodec>();
  auto fake = std::make_unique<FakeExecutor>(
      codec->n_vocab(), 128, [](std::span<const int32_t>) { return ByteCodec::tok('x'); });
  Session s(std::move(fake), codec);
  GenerateParams gp;
  gp.max_tokens = 4;
  gp.sampling = SamplingParams::greedy();
  auto r = s.generate("abc", gp);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->token_logprobs.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GT(r->token_logprobs[i], -1e-3f);  // the peak of 20 holds almost all the mass
    EXPECT_LT(r->token_entropies[i], 0.01f);
  }
}

TEST(TokenLogprob, HelperHandlesMinusInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits = {0.0f, -inf, 0.0f, -inf};
  TokenLogprob lp = token_logprob(logits, 0);
  EXPECT_NEAR(lp.logprob, std::log(0.5), 1e-6);
  EXPECT_NEAR(lp.entropy, std::log(2.0), 1e-6);
  EXPECT_TRUE(std::isinf(token_logprob(logits, 1).logprob));
}

TEST(TokenLogprob, RealModelMatchesExecutorLogits) {
  EDGELM_REQUIRE_SHARED(model_path, "models/conf-llama-spm-f16.gguf");
  auto engine = Engine::load(model_path);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  SessionOptions so;
  so.n_ctx = 64;
  so.n_threads = 2;
  // One session generates; a second one replays the same tokens through its own executor.
  auto replay = (*engine)->open_session(so);
  ASSERT_TRUE(replay.ok());
  auto session2 = (*engine)->open_session(so);
  ASSERT_TRUE(session2.ok());
  GenerateParams gp;
  gp.max_tokens = 6;
  gp.sampling.temperature = 0.8f;
  gp.sampling.seed = 3;
  gp.ignore_eog = true;
  auto r = (*session2)->generate("Once upon a time", gp);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tokens.size(), 6u);
  // Prompt in one batch (as the session does), then the generated tokens one at a time.
  auto prompt = (*engine)->tokenizer().encode("Once upon a time", true, true);
  ASSERT_TRUE(prompt.ok());
  Executor& ex = (*replay)->executor();
  std::vector<std::vector<float>> seen;
  auto l = ex.eval(*prompt);
  ASSERT_TRUE(l.ok());
  seen.emplace_back(l->begin(), l->end());
  for (size_t i = 0; i + 1 < r->tokens.size(); ++i) {
    const int32_t one[1] = {r->tokens[i]};
    l = ex.eval(one);
    ASSERT_TRUE(l.ok());
    seen.emplace_back(l->begin(), l->end());
  }
  expect_matches_logits(*r, seen);
}

}  // namespace
}  // namespace edgelm
