// Sampler stages on hand-made logits: each stage's effect, seeded reproducibility, and that
// the random draw follows softmax(logits / T).
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace edgelm {
namespace {

std::set<int32_t> ids_of(const Candidates& c) {
  std::set<int32_t> s;
  for (const auto& t : c.data) s.insert(t.id);
  return s;
}

Candidates make(std::vector<float> logits) {
  Candidates c;
  c.assign(logits);
  return c;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTie) {
  SamplerChain chain = make_sampler_chain(SamplingParams::greedy());
  EXPECT_EQ(chain.describe(), "greedy");
  EXPECT_EQ(chain.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.5f}), 1);
  EXPECT_EQ(chain.sample(std::vector<float>{3.0f, 1.0f, 3.0f}), 0);
  EXPECT_EQ(chain.sample(std::vector<float>{-5.0f, -2.0f, -3.0f}), 1);
}

TEST(Sampler, TopKKeepsKBestSorted) {
  Candidates c = make({0.5f, 3.0f, -1.0f, 2.0f, 1.0f});
  TopKStage(3).apply(c);
  ASSERT_EQ(c.data.size(), 3u);
  EXPECT_TRUE(c.sorted);
  EXPECT_EQ(c.data[0].id, 1);
  EXPECT_EQ(c.data[1].id, 3);
  EXPECT_EQ(c.data[2].id, 4);
  Candidates all = make({0.5f, 3.0f});
  TopKStage(0).apply(all);  // off
  EXPECT_EQ(all.data.size(), 2u);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // probabilities ~ 0.5, 0.25, 0.125, 0.125 (logits are log-probs)
  Candidates c = make({std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)});
  TopPStage(0.7f).apply(c);
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{1, 2}));
  Candidates c2 = make({std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)});
  TopPStage(0.4f).apply(c2);
  EXPECT_EQ(ids_of(c2), (std::set<int32_t>{1}));
  Candidates c3 = make({std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)});
  TopPStage(1.0f).apply(c3);
  EXPECT_EQ(c3.data.size(), 4u);
}

TEST(Sampler, MinPKeepsRelativeToMax) {
  // p_max = 0.5; min_p 0.3 -> threshold 0.15: keeps 0.5 and 0.25 and drops 0.125s.
  Candidates c = make({std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)});
  MinPStage(0.3f).apply(c);
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{1, 2}));
  Candidates c2 = make({std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)});
  MinPStage(0.2f).apply(c2);
  EXPECT_EQ(c2.data.size(), 4u);
}

TEST(Sampler, TemperatureScalesLogits) {
  Candidates c = make({1.0f, -2.0f, 4.0f});
  TemperatureStage(0.5f).apply(c);
  EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.data[1].logit, -4.0f);
  EXPECT_FLOAT_EQ(c.data[2].logit, 8.0f);
}

TEST(Sampler, PenaltiesFollowLlamaCppRules) {
  PenaltiesStage pen(/*last_n=*/3, /*repeat=*/2.0f, /*freq=*/0.5f, /*presence=*/0.25f);
  pen.accept(0);
  pen.accept(1);
  pen.accept(1);
  Candidates c = make({4.0f, -1.0f, 3.0f});
  pen.apply(c);
  EXPECT_FLOAT_EQ(c.data[0].logit, 4.0f / 2 - 1 * 0.5f - 0.25f);   // positive: divided
  EXPECT_FLOAT_EQ(c.data[1].logit, -1.0f * 2 - 2 * 0.5f - 0.25f);  // negative: multiplied
  EXPECT_FLOAT_EQ(c.data[2].logit, 3.0f);                          // never seen
  // The window slides: after 3 more tokens, 0 is out of the history.
  pen.accept(2);
  pen.accept(2);
  pen.accept(2);
  Candidates c2 = make({4.0f, -1.0f, 3.0f});
  pen.apply(c2);
  EXPECT_FLOAT_EQ(c2.data[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c2.data[1].logit, -1.0f);
  EXPECT_FLOAT_EQ(c2.data[2].logit, 3.0f / 2 - 3 * 0.5f - 0.25f);
  pen.reset();
  Candidates c3 = make({4.0f, -1.0f, 3.0f});
  pen.apply(c3);
  EXPECT_FLOAT_EQ(c3.data[2].logit, 3.0f);
}

TEST(Sampler, RepeatPenaltyChangesGreedyChoice) {
  SamplingParams p = SamplingParams::greedy();
  p.repeat_penalty = 3.0f;
  SamplerChain chain = make_sampler_chain(p);
  EXPECT_EQ(chain.describe(), "penalties -> greedy");
  std::vector<float> logits = {2.0f, 1.5f, 0.1f};
  EXPECT_EQ(chain.sample(logits), 0);
  chain.accept(0);
  EXPECT_EQ(chain.sample(logits), 1);  // 2/3 < 1.5
}

TEST(Sampler, ChainOrderAndSeedReproducibility) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 5;
  p.top_p = 0.9f;
  p.min_p = 0.01f;
  p.repeat_penalty = 1.1f;
  p.seed = 1234;
  SamplerChain a = make_sampler_chain(p);
  SamplerChain b = make_sampler_chain(p);
  EXPECT_EQ(a.describe(), "penalties -> top-k -> top-p -> min-p -> temperature -> dist");
  EXPECT_EQ(a.seed(), 1234u);
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i) * 1.7f) * 2;
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 64; ++i) {
    int32_t x = a.sample(logits), y = b.sample(logits);
    a.accept(x);
    b.accept(y);
    ta.push_back(x);
    tb.push_back(y);
  }
  EXPECT_EQ(ta, tb);
  std::set<int32_t> distinct(ta.begin(), ta.end());
  EXPECT_GT(distinct.size(), 1u) << "a random sampler should not always pick the same token";
  // Without penalties, only the top-5 ids may ever come out.
  SamplingParams np = p;
  np.repeat_penalty = 1.0f;
  SamplerChain d = make_sampler_chain(np);
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(),
            [&](int32_t x, int32_t y) { return logits[x] > logits[y]; });
  std::set<int32_t> top5(order.begin(), order.begin() + 5);
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(top5.count(d.sample(logits)));

  p.seed = 999;
  SamplerChain c = make_sampler_chain(p);
  std::vector<int32_t> tc;
  for (int i = 0; i < 64; ++i) {
    int32_t x = c.sample(logits);
    c.accept(x);
    tc.push_back(x);
  }
  EXPECT_NE(ta, tc) << "different seeds should give different sequences";
}

TEST(Sampler, RandomSeedIsResolvedAndReported) {
  SamplingParams p;
  p.seed = kRandomSeed;
  SamplerChain chain = make_sampler_chain(p);
  EXPECT_NE(chain.seed(), kRandomSeed);
}

TEST(Sampler, DistFollowsSoftmaxWithTemperature) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f, 2.0f};
  const float temp = 0.7f;
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 7;
  SamplerChain chain = make_sampler_chain(p);
  EXPECT_EQ(chain.describe(), "temperature -> dist");
  const int n = 20000;
  std::map<int32_t, int> hist;
  for (int i = 0; i < n; ++i) ++hist[chain.sample(logits)];
  double z = 0;
  for (float l : logits) z += std::exp(l / temp);
  for (int32_t id = 0; id < 4; ++id) {
    const double expect = std::exp(logits[id] / temp) / z;
    const double got = static_cast<double>(hist[id]) / n;
    // 5 standard deviations of a binomial proportion.
    const double tol = 5 * std::sqrt(expect * (1 - expect) / n) + 1e-3;
    EXPECT_NEAR(got, expect, tol) << "token " << id;
  }
}

TEST(Sampler, TopPOnLargeVocabularyMatchesFullSort) {
  // 50000 logits: a few dozen strong ones over a long flat tail, so the kept set is large
  // enough for the head-sorting path to grow past its first guess for small p and to fall back
  // to the full sort when p is close to 1.
  std::vector<float> logits(50000);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < logits.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    logits[i] = static_cast<float>(x % 1000) / 250.0f + (i % 997 == 0 ? 9.0f : 0.0f);
  }
  for (float p : {0.2f, 0.5f, 0.9f, 0.99f}) {
    Candidates fast;
    fast.assign(logits);
    TopPStage(p).apply(fast);
    // Reference: full softmax and sort, then the smallest prefix reaching p.
    Candidates ref;
    ref.assign(logits);
    ref.softmax();
    double cum = 0;
    size_t keep = ref.data.size();
    for (size_t i = 0; i < ref.data.size(); ++i) {
      cum += ref.data[i].p;
      if (cum >= p) {
        keep = i + 1;
        break;
      }
    }
    ASSERT_EQ(fast.data.size(), keep) << "p = " << p;
    EXPECT_TRUE(fast.sorted);
    for (size_t i = 0; i < keep; ++i) {
      ASSERT_EQ(fast.data[i].id, ref.data[i].id) << "p = " << p << " i = " << i;
      ASSERT_NEAR(fast.data[i].p, ref.data[i].p, 1e-6);
    }
  }
}

TEST(Sampler, SoftmaxSumsToOneAndHandlesNan) {
  Candidates c = make({1.0f, std::nanf(""), 3.0f, -2.0f});
  c.softmax();
  double s = 0;
  for (const auto& t : c.data) s += t.p;
  EXPECT_NEAR(s, 1.0, 1e-6);
  EXPECT_EQ(c.data[0].id, 2);
  EXPECT_EQ(c.data.back().id, 1);  // NaN treated as -inf
  EXPECT_EQ(c.data.back().p, 0.0f);
}

}  // namespace
}  // namespace edgelm
