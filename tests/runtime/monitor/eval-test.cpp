// Perplexity and KL divergence (runtime/monitor/eval.h) against direct computations: closed-form
// fake executors recomputed by hand, and a tiny generated model whose logits the test takes
// from the Context and scores itself in long double.
#include "runtime/monitor/eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "eval-test-util.h"
#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

using testing::FnExecutor;
using testing::slow_log_softmax;

// A smooth, position-dependent distribution over a small vocabulary.
float logit_a(std::span<const int32_t> seq, int v) {
  const int last = seq.back() + 3 * seq.front();  // the first token matters too (BOS tests)
  return 2.0f * std::sin(0.37f * static_cast<float>(v) + 1.3f * static_cast<float>(last) +
                         0.11f * static_cast<float>(seq.size()));
}
// A perturbation of logit_a (the "quantized" model).
float logit_b(std::span<const int32_t> seq, int v) {
  return logit_a(seq, v) + 0.4f * std::cos(0.91f * static_cast<float>(v * seq.size()));
}

std::vector<int32_t> random_tokens(size_t n, int n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// The llama.cpp protocol written out directly: for each chunk (first token -> bos), the
// distribution after tokens [0, i] for i in [n_ctx/2, n_ctx - 1) predicts token i + 1.
struct Direct {
  long double nll = 0, nll_b = 0, kl = 0, max_kl = 0;
  int same = 0, n = 0;
};
Direct direct(const FnExecutor::Fn& a, const FnExecutor::Fn& b, int V,
              const std::vector<int32_t>& toks, int n_ctx, int chunks, int32_t bos) {
  Direct d;
  for (int c = 0; c < chunks; ++c) {
    std::vector<int32_t> ch(toks.begin() + c * n_ctx, toks.begin() + (c + 1) * n_ctx);
    if (bos >= 0) ch[0] = bos;
    for (int i = n_ctx / 2; i < n_ctx - 1; ++i) {
      std::span<const int32_t> seq(ch.data(), static_cast<size_t>(i + 1));
      std::vector<float> la(V), lb(V);
      for (int v = 0; v < V; ++v) la[v] = a(seq, v), lb[v] = b(seq, v);
      auto pa = slow_log_softmax(la), pb = slow_log_softmax(lb);
      const int next = ch[i + 1];
      d.nll -= pa[next];
      d.nll_b -= pb[next];
      long double k = 0;
      int ta = 0, tb = 0;
      for (int v = 0; v < V; ++v) {
        k += std::exp(pb[v]) * (pb[v] - pa[v]);  // KL(baseline b || candidate a)
        if (pa[v] > pa[ta]) ta = v;
        if (pb[v] > pb[tb]) tb = v;
      }
      d.kl += k;
      d.max_kl = std::max(d.max_kl, k);
      d.same += ta == tb;
      ++d.n;
    }
  }
  return d;
}

TEST(EvalText, PerplexityAndKlMatchDirectComputationOnFakes) {
  constexpr int V = 40, kCtx = 16, kChunks = 3;
  const auto toks = random_tokens(kCtx * kChunks + 5, V, 7);  // 5 tokens left over: ignored
  FnExecutor ea(V, 64, logit_a), eb(V, 64, logit_b);
  LogitsEvaluator cand(ea), base(eb);
  ChunkOptions co;
  co.n_ctx = kCtx;
  co.bos_token = 1;
  int calls = 0;
  auto r = evaluate_text(cand, &base, toks, co, [&](int done, int total, double ppl, double kl) {
    ++calls;
    EXPECT_EQ(total, kChunks);
    EXPECT_EQ(done, calls);
    EXPECT_GT(ppl, 1.0);
    EXPECT_FALSE(std::isnan(kl));
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(calls, kChunks);
  const Direct d = direct(logit_a, logit_b, V, toks, kCtx, kChunks, 1);
  ASSERT_EQ(d.n, kChunks * (kCtx - 1 - kCtx / 2));
  EXPECT_EQ(r->ppl.tokens, d.n);
  EXPECT_EQ(r->ppl.chunks, kChunks);
  EXPECT_NEAR(r->ppl.ln_ppl, static_cast<double>(d.nll / d.n), 1e-9);
  EXPECT_NEAR(r->ppl.ppl, std::exp(static_cast<double>(d.nll / d.n)), 1e-9 * r->ppl.ppl);
  ASSERT_TRUE(r->baseline_ppl.has_value());
  EXPECT_NEAR(r->baseline_ppl->ln_ppl, static_cast<double>(d.nll_b / d.n), 1e-9);
  ASSERT_TRUE(r->kl.has_value());
  EXPECT_NEAR(r->kl->mean, static_cast<double>(d.kl / d.n), 1e-9);
  EXPECT_NEAR(r->kl->max, static_cast<double>(d.max_kl), 1e-9);
  EXPECT_GT(r->kl->mean, 1e-3);  // the perturbation is visible
  EXPECT_NEAR(r->kl->top1, static_cast<double>(d.same) / d.n, 1e-12);
  EXPECT_LT(r->kl->top1, 1.0);
  EXPECT_LE(r->kl->min, r->kl->median);
  EXPECT_LE(r->kl->median, r->kl->p99);
  EXPECT_LE(r->kl->p99, r->kl->max);
  EXPECT_NEAR(r->kl->ln_ppl_ratio, r->ppl.ln_ppl - r->baseline_ppl->ln_ppl, 1e-12);
  EXPECT_EQ(r->tokens_evaluated, kChunks * kCtx);
}

TEST(EvalText, BosReplacementAndMaxChunksChangeWhatIsScored) {
  constexpr int V = 40, kCtx = 8;
  const auto toks = random_tokens(kCtx * 4, V, 3);
  FnExecutor ea(V, 64, logit_a);
  LogitsEvaluator cand(ea);
  ChunkOptions co;
  co.n_ctx = kCtx;
  co.max_chunks = 2;
  auto r = evaluate_text(cand, nullptr, toks, co);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ppl.chunks, 2);
  EXPECT_FALSE(r->kl.has_value());
  const Direct d = direct(logit_a, logit_a, V, toks, kCtx, 2, -1);
  EXPECT_NEAR(r->ppl.ln_ppl, static_cast<double>(d.nll / d.n), 1e-9);
  co.bos_token = 5;
  auto rb = evaluate_text(cand, nullptr, toks, co);
  ASSERT_TRUE(rb.ok()) << rb.status().to_string();
  const Direct with_bos = direct(logit_a, logit_a, V, toks, kCtx, 2, 5);
  EXPECT_NEAR(rb->ppl.ln_ppl, static_cast<double>(with_bos.nll / with_bos.n), 1e-9);
  EXPECT_GT(std::abs(rb->ppl.ln_ppl - r->ppl.ln_ppl), 1e-6);
}

TEST(EvalText, SameModelHasZeroKlAndFullAgreement) {
  constexpr int V = 40;
  const auto toks = random_tokens(64, V, 11);
  FnExecutor ea(V, 64, logit_a), eb(V, 64, logit_a);
  LogitsEvaluator cand(ea), base(eb);
  auto r = evaluate_text(cand, &base, toks, {.n_ctx = 16});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_NEAR(r->kl->mean, 0, 1e-12);
  EXPECT_EQ(r->kl->top1, 1.0);
  EXPECT_NEAR(r->ppl.ppl, r->baseline_ppl->ppl, 1e-9);
}

TEST(EvalText, ErrorsNameTheProblem) {
  constexpr int V = 40;
  FnExecutor ea(V, 32, logit_a), eb(V + 1, 32, logit_a);
  LogitsEvaluator cand(ea), other(eb);
  const auto toks = random_tokens(20, V, 1);
  auto short_text = evaluate_text(cand, nullptr, toks, {.n_ctx = 32});
  ASSERT_FALSE(short_text.ok());
  EXPECT_NE(short_text.status().message().find("fewer than one chunk"), std::string::npos)
      << short_text.status().to_string();
  auto too_big = evaluate_text(cand, nullptr, random_tokens(200, V, 1), {.n_ctx = 64});
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("exceeds the candidate's context"), std::string::npos);
  auto vocab = evaluate_text(cand, &other, toks, {.n_ctx = 8});
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.status().message().find("same vocabulary"), std::string::npos);
  std::vector<int32_t> bad = toks;
  bad[3] = V + 7;
  auto oov = evaluate_text(cand, nullptr, bad, {.n_ctx = 8});
  ASSERT_FALSE(oov.ok());
  EXPECT_NE(oov.status().message().find("position 3"), std::string::npos);
  auto tiny = evaluate_text(cand, nullptr, toks, {.n_ctx = 2});
  EXPECT_FALSE(tiny.ok());
}

TEST(EvalText, PercentileInterpolates) {
  std::vector<double> v = {0, 1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0.5), 2);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0.1), 0.4);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 1), 4);
  EXPECT_DOUBLE_EQ(percentile_sorted({}, 0.5), 0);
}

// A real (tiny, random) model: the library's numbers against the test's own scoring of the
// Context's logits, and against a quantized copy of the same weights.
class EvalTinyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinyModelSpec spec;
    spec.n_ctx_train = 64;
    f32_ = testing::temp_path("eval-tiny-f32.gguf");
    q8_ = testing::temp_path("eval-tiny-q8.gguf");
    ASSERT_TRUE(testing::write_tiny_model(spec, f32_).ok());
    spec.matrix_type = GgmlType::kQ8_0;
    ASSERT_TRUE(testing::write_tiny_model(spec, q8_).ok());
  }
  void TearDown() override {
    std::filesystem::remove(f32_);
    std::filesystem::remove(q8_);
  }
  std::string f32_, q8_;
};

TEST_F(EvalTinyModel, MatchesDirectComputationFromContextLogits) {
  auto ma = Model::load(f32_, {.log_summary = false});
  auto mb = Model::load(q8_, {.log_summary = false});
  ASSERT_TRUE(ma.ok() && mb.ok());
  auto ca = Context::create(**ma, {.n_ctx = 32, .n_threads = 2});
  auto cb = Context::create(**mb, {.n_ctx = 32, .n_threads = 2});
  ASSERT_TRUE(ca.ok() && cb.ok());
  const int V = (*ca)->n_vocab(), kCtx = 32, kChunks = 3;
  const auto toks = random_tokens(kCtx * kChunks, V, 5);
  LogitsEvaluator cand(**cb), base(**ca);
  auto r = evaluate_text(cand, &base, toks, {.n_ctx = kCtx, .bos_token = 1});
  ASSERT_TRUE(r.ok()) << r.status().to_string();

  // Direct: each chunk in one pass with every row's logits, scored here in long double.
  long double nll = 0, nll_base = 0, kl = 0;
  int same = 0, n = 0;
  for (int c = 0; c < kChunks; ++c) {
    std::vector<int32_t> ch(toks.begin() + c * kCtx, toks.begin() + (c + 1) * kCtx);
    ch[0] = 1;
    (*ca)->reset();
    (*cb)->reset();
    auto la = (*ca)->eval(ch, true);
    ASSERT_TRUE(la.ok());
    std::vector<float> rows_a(la->begin(), la->end());
    auto lb = (*cb)->eval(ch, true);
    ASSERT_TRUE(lb.ok());
    for (int i = kCtx / 2; i < kCtx - 1; ++i) {
      auto pa = slow_log_softmax(std::span<const float>(rows_a).subspan(i * V, V));
      auto pb = slow_log_softmax(lb->subspan(i * V, V));
      nll -= pb[ch[i + 1]];
      nll_base -= pa[ch[i + 1]];
      int ta = 0, tb = 0;
      for (int v = 0; v < V; ++v) {
        kl += std::exp(pa[v]) * (pa[v] - pb[v]);
        if (pa[v] > pa[ta]) ta = v;
        if (pb[v] > pb[tb]) tb = v;
      }
      same += ta == tb;
      ++n;
    }
  }
  // The library runs the unscored first half as a separate batch: float rounding differs.
  EXPECT_NEAR(r->ppl.ln_ppl, static_cast<double>(nll / n), 1e-4);
  EXPECT_NEAR(r->baseline_ppl->ln_ppl, static_cast<double>(nll_base / n), 1e-4);
  EXPECT_NEAR(r->kl->mean, static_cast<double>(kl / n), 1e-4 + 1e-2 * r->kl->mean);
  EXPECT_NEAR(r->kl->top1, static_cast<double>(same) / n, 2.0 / n);
  EXPECT_GT(r->kl->mean, 0);     // Q8_0 is not F32
  EXPECT_LT(r->kl->mean, 0.05);  // but close to it
  std::printf("[ tiny F32 vs Q8_0 ] PPL %.4f vs %.4f, mean KL %.6f, top-1 %.3f\n", r->ppl.ppl,
              r->baseline_ppl->ppl, r->kl->mean, r->kl->top1);
}

}  // namespace
}  // namespace edgelm
