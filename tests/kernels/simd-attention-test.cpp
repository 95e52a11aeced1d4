// SIMD flash-attention steps (kernels/simd/attention.cpp) against the scalar oracle
// (kernels/ref/attention.cpp): bit-for-bit equal on random F16 data, on every Highway target
// this CPU supports, including targets where Highway emulates the F16 conversions. The fused
// row (AttnOps::row) takes its exps from Highway's vector Exp instead of std::exp, so it may
// differ in rare last bits: it is held to the steps' accuracy against an exact double result,
// to bit equality with the steps on almost every output, and to the softmax weight of every
// single key (one-hot values).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "quant/fp16.h"
#include "simd-util.h"

namespace edgelm {
namespace {

using testing::for_each_target;
using testing::random_floats;

std::vector<uint16_t> random_halves(int64_t n, uint32_t seed, float scale) {
  const std::vector<float> f = random_floats(n, seed, scale);
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (size_t i = 0; i < h.size(); ++i) h[i] = fp32_to_fp16(f[i]);
  return h;
}

// Every finite half, including subnormals and +-0: the conversions must agree everywhere.
std::vector<uint16_t> all_finite_halves() {
  std::vector<uint16_t> h;
  for (uint32_t b = 0; b < 0x10000u; ++b)
    if ((b & 0x7C00u) != 0x7C00u) h.push_back(static_cast<uint16_t>(b));
  return h;
}

TEST(SimdAttention, ScaleMatchesRefOnEveryHalf) {
  const std::vector<uint16_t> base = all_finite_halves();
  const int64_t n = static_cast<int64_t>(base.size());
  // Factors that round (<1, as exp(m_old - m)), create subnormals, and overflow to inf.
  const float factors[] = {0.7313f, 0.03125f, 1.0f, 3.1e-3f, 1.9f, 0.0f};
  for_each_target([&](const char* target) {
    for (float f : factors) {
      std::vector<uint16_t> want = base, got = base;
      ref_attn_ops().scale_f16(want.data(), f, n);
      simd::attn_ops().scale_f16(got.data(), f, n);
      size_t bad = 0;
      for (size_t i = 0; i < want.size(); ++i) bad += want[i] != got[i];
      EXPECT_EQ(bad, 0u) << target << " factor " << f;
    }
  });
}

TEST(SimdAttention, MadMatchesRef) {
  // Many rows of random values at several magnitudes (subnormal sums included), odd lengths
  // for the scalar tails.
  for_each_target([&](const char* target) {
    uint32_t seed = 1;
    for (int64_t n : {int64_t{128}, int64_t{64}, int64_t{80}, int64_t{37}}) {
      for (float scale : {1.0f, 1e-4f, 300.0f}) {
        for (int rep = 0; rep < 50; ++rep, ++seed) {
          std::vector<uint16_t> acc = random_halves(n, seed, scale);
          const std::vector<uint16_t> v = random_halves(n, seed + 7777, scale);
          std::mt19937 rng(seed);
          const float s = std::uniform_real_distribution<float>(1e-3f, 1.0f)(rng);
          std::vector<uint16_t> want = acc, got = acc;
          ref_attn_ops().mad_f16(want.data(), v.data(), s, n);
          simd::attn_ops().mad_f16(got.data(), v.data(), s, n);
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 2))
              << target << " n " << n << " scale " << scale << " rep " << rep;
        }
      }
    }
    // Every half as the value, against a fixed accumulator pattern.
    const std::vector<uint16_t> v = all_finite_halves();
    const int64_t n = static_cast<int64_t>(v.size());
    std::vector<uint16_t> acc = random_halves(n, 99, 2.0f);
    for (float s : {0.8125f, 0.0123f, 1.0f}) {
      std::vector<uint16_t> want = acc, got = acc;
      ref_attn_ops().mad_f16(want.data(), v.data(), s, n);
      simd::attn_ops().mad_f16(got.data(), v.data(), s, n);
      size_t bad = 0;
      for (size_t i = 0; i < want.size(); ++i) bad += want[i] != got[i];
      EXPECT_EQ(bad, 0u) << target << " s " << s;
    }
  });
}

TEST(SimdAttention, ToF32ScaledMatchesRef) {
  const std::vector<uint16_t> h = all_finite_halves();
  const int64_t n = static_cast<int64_t>(h.size());
  for_each_target([&](const char* target) {
    std::vector<float> want(h.size()), got(h.size(), -1.0f);
    ref_attn_ops().f16_to_f32_scaled(h.data(), 0.3711f, want.data(), n);
    simd::attn_ops().f16_to_f32_scaled(h.data(), 0.3711f, got.data(), n);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << target;
  });
}

// The SIMD steps alone (AttnOps::row cleared, so attention_row runs scale/mad/to_f32).
AttnOps simd_steps() {
  AttnOps steps = simd::attn_ops();
  steps.row = nullptr;
  return steps;
}

// Attention of one query over n_kv keys/values at the given stride, in double from the same
// F16 inputs: the exact result the F16-accumulating kernels approximate.
std::vector<double> exact_attention(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                    size_t stride, int64_t n_kv, int64_t hd, float scale) {
  std::vector<double> p(static_cast<size_t>(n_kv));
  double mx = -INFINITY, sum = 0;
  for (int64_t j = 0; j < n_kv; ++j) {
    double s = 0;
    for (int64_t d = 0; d < hd; ++d)
      s += double(fp16_to_fp32(k[static_cast<size_t>(j) * stride + static_cast<size_t>(d)])) *
           fp16_to_fp32(q[d]);
    p[static_cast<size_t>(j)] = s * scale;
    mx = std::max(mx, p[static_cast<size_t>(j)]);
  }
  for (auto& x : p) sum += (x = std::exp(x - mx));
  std::vector<double> o(static_cast<size_t>(hd), 0.0);
  for (int64_t d = 0; d < hd; ++d)
    for (int64_t j = 0; j < n_kv; ++j)
      o[static_cast<size_t>(d)] +=
          p[static_cast<size_t>(j)] / sum *
          fp16_to_fp32(v[static_cast<size_t>(j) * stride + static_cast<size_t>(d)]);
  return o;
}

double max_abs_error(const float* got, const std::vector<double>& exact) {
  double e = 0;
  for (size_t d = 0; d < exact.size(); ++d) e = std::max(e, std::fabs(got[d] - exact[d]));
  return e;
}

double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (double y : x) m = std::max(m, std::fabs(y));
  return m;
}

// The fused kernel runs the steps' online softmax with its exps batched per block of keys
// (Highway's Exp in double rounded to float, std::exp's result except in rare near-ties), so
// where an exp differs in its last bit an F16 rounding downstream can differ: both
// approximate the exact attention with errors of the order of F16's 2^-11 per accumulation.
// The bound: its largest error against the exact (double) result is at most 1.5 times the
// per-key steps' own largest error (the accuracy the engine already accepts, ggml's), plus one
// F16 half-ulp of the largest output (2^-11 * max|o|: with few keys both errors are single
// roundings, whose ratio means nothing). A wrong kernel (a dropped key, a wrong weight or
// maximum) is off by a key's weight, far more; FusedRowOneHotValuesAreTheSoftmax checks each.
void expect_as_accurate_as_steps(const float* fused, const float* steps,
                                 const std::vector<double>& exact, const std::string& what) {
  const double e_fused = max_abs_error(fused, exact), e_steps = max_abs_error(steps, exact);
  EXPECT_LE(e_fused, 1.5 * e_steps + std::ldexp(max_abs(exact), -11))
      << what << ": fused error " << e_fused << ", steps error " << e_steps;
}

// Whole rows: attention_row with the SIMD steps equals the scalar steps bit for bit (same
// vec_dot), and the result is a convex combination of the values (close to a double softmax).
TEST(SimdAttention, AttentionRowMatchesRef) {
  const int64_t hd = 64, n_kv = 300;
  const size_t stride = 2 * hd;  // two interleaved heads, as in the KV cache
  const std::vector<uint16_t> k = random_halves(n_kv * stride, 11, 1.0f);
  const std::vector<uint16_t> v = random_halves(n_kv * stride, 12, 1.0f);
  const std::vector<float> qf = random_floats(hd, 13, 1.0f);
  std::vector<uint16_t> q(hd);
  for (int64_t d = 0; d < hd; ++d) q[d] = fp32_to_fp16(qf[d]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<uint16_t> acc(hd);
  const std::vector<double> o =
      exact_attention(q.data(), k.data() + hd, v.data() + hd, stride, n_kv, hd, scale);
  for (const Ops* ops : {&ref_ops(), &best_ops()}) {
    std::vector<float> want(hd);
    attention_row(ref_attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                  n_kv, hd, scale, acc.data(), want.data());
    for (int64_t d = 0; d < hd; ++d) EXPECT_NEAR(want[d], o[d], 2e-2) << ops->name << " d " << d;
    for_each_target([&](const char* target) {
      // Per target: best_ops' vec_dot follows the forced target too.
      std::vector<float> ref_steps(hd), got(hd, -7.0f), fused(hd, -7.0f);
      attention_row(ref_attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                    n_kv, hd, scale, acc.data(), ref_steps.data());
      attention_row(simd_steps(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                    n_kv, hd, scale, acc.data(), got.data());
      EXPECT_EQ(0, std::memcmp(ref_steps.data(), got.data(), hd * sizeof(float)))
          << target << " ops " << ops->name;
      // With the fused row where it runs (best_ops' vec_dot), against the reference steps.
      attention_row(simd::attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                    n_kv, hd, scale, acc.data(), fused.data());
      expect_as_accurate_as_steps(fused.data(), ref_steps.data(), o,
                                  std::string(target) + " ops " + ops->name);
    });
  }
}

// The fused row (AttnOps::row: scores, online softmax and F16 value sum in one call) against
// the separate steps and the exact result, for head sizes that take the fixed-size kernels (64,
// 128, 32), the any-size one (96, 192) and none (80 on AVX-512: attention_row falls back, the
// results are the steps'), key counts below, at and across the block size, and scores large
// enough that the running maximum changes often.
TEST(SimdAttention, FusedRowAsAccurateAsSteps) {
  const AttnOps steps = simd_steps();
  ASSERT_NE(simd::attn_ops().row, nullptr);
  size_t same = 0, total = 0;  // outputs bit-identical to the steps'
  uint32_t seed = 500;
  for (int64_t hd :
       {int64_t{64}, int64_t{128}, int64_t{32}, int64_t{96}, int64_t{192}, int64_t{80}}) {
    for (int64_t n_kv : {int64_t{1}, int64_t{7}, int64_t{16}, int64_t{33}, int64_t{257}}) {
      for (float qscale : {1.0f, 6.0f}) {
        ++seed;
        const size_t stride = 3 * static_cast<size_t>(hd);
        const std::vector<uint16_t> k =
            random_halves(n_kv * static_cast<int64_t>(stride), seed, 1.0f);
        const std::vector<uint16_t> v =
            random_halves(n_kv * static_cast<int64_t>(stride), seed + 1, 1.0f);
        const std::vector<uint16_t> q = random_halves(hd, seed + 2, qscale);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        std::vector<uint16_t> acc(static_cast<size_t>(hd));
        const std::vector<double> o =
            exact_attention(q.data(), k.data() + hd, v.data() + hd, stride, n_kv, hd, scale);
        for_each_target([&](const char* target) {
          const Ops& ops = best_ops();
          std::vector<float> want(static_cast<size_t>(hd)), got(static_cast<size_t>(hd), -7.0f);
          attention_row(steps, ops, q.data(), k.data() + hd, stride, v.data() + hd, stride, n_kv,
                        hd, scale, acc.data(), want.data());
          attention_row(simd::attn_ops(), ops, q.data(), k.data() + hd, stride, v.data() + hd,
                        stride, n_kv, hd, scale, acc.data(), got.data());
          expect_as_accurate_as_steps(got.data(), want.data(), o,
                                      std::string(target) + " hd " + std::to_string(hd) + " n_kv " +
                                          std::to_string(n_kv) + " qscale " +
                                          std::to_string(qscale));
          // One key: one value rounded to F16 and divided by a weight of 1, in both.
          if (n_kv == 1) {
            EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
                << target << " hd " << hd;
          }
          for (size_t d = 0; d < want.size(); ++d) same += std::memcmp(&want[d], &got[d], 4) == 0;
          total += want.size();
          // Where the CPU has F16 conversions and FMA (x86 AVX2 and up), the fused kernel runs
          // for every head size that is a multiple of the vector length.
          const std::string t = target;
          if (ops.vec_dot == &simd::vec_dot && (t == "AVX2" || t.rfind("AVX3", 0) == 0) &&
              hd % (t == "AVX2" ? 8 : 16) == 0) {
            std::vector<float> direct(static_cast<size_t>(hd));
            EXPECT_TRUE(simd::attn_ops().row(ops, 1, q.data(), k.data() + hd, stride, v.data() + hd,
                                             stride, n_kv, hd, scale, acc.data(), direct.data()))
                << target << " hd " << hd;
          }
        });
      }
    }
  }
  // The same softmax steps and roundings, only exp's rare last-bit differences between them
  // (one changes an F16 rounding, which then carries through the rest of that row): measured
  // 28686 of 29600 outputs identical (96.9%, x86 Zen 4, every target). A kernel with other
  // steps falls below the bound: one maximum update per block of 16 keys with a float Exp
  // (tried) gave 23282 (78.7%).
  EXPECT_GE(static_cast<double>(same), 0.9 * static_cast<double>(total))
      << same << " of " << total << " outputs bit-identical to the steps";
  std::printf("[ fused row ] %zu of %zu outputs bit-identical to the steps\n", same, total);
  // Another vec_dot (the scalar reference): the fused kernel declines.
  std::vector<uint16_t> acc(64);
  std::vector<float> out(64);
  const std::vector<uint16_t> kv = random_halves(64, 3, 1.0f);
  EXPECT_FALSE(simd::attn_ops().row(ref_ops(), 1, kv.data(), kv.data(), 64, kv.data(), 64, 1, 64,
                                    0.125f, acc.data(), out.data()));
}

// One-hot values (v_j = unit vector j) make output d the softmax weight of key d alone, so
// every key's weight is checked separately: a dropped key reads 0, a weight taken against the
// wrong maximum is off by exp of the difference (with scores offset by +-100, a maximum not
// subtracted overflows). Each output is one F16 rounding of its weight plus one per later
// rescale of the accumulator (relative 2^-11 each), at most one per key, in the fused kernel
// and in the steps (which this also checks, as the oracle of the test).
// Scores span under 10 (weights >= e^-10, F16 normals), patterns: random, rising (a new
// maximum every key), falling, and a spike in mid-block; key counts around the block size;
// 1-3 query heads with different scores (queries 1, 1.5, 0.5 on dimension 0).
TEST(SimdAttention, FusedRowOneHotValuesAreTheSoftmax) {
  const AttnOps steps = simd_steps();
  const float qs[3] = {1.0f, 1.5f, 0.5f};
  uint32_t seed = 1300;
  for (int64_t hd : {int64_t{64}, int64_t{128}}) {
    for (int64_t n_kv : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{17}, int64_t{40}, hd}) {
      for (int pattern = 0; pattern < 4; ++pattern) {
        for (float offset : {0.0f, 100.0f, -100.0f}) {
          ++seed;
          std::mt19937 rng(seed);
          std::uniform_real_distribution<float> u(-3.0f, 3.0f);
          const size_t stride = static_cast<size_t>(hd);
          std::vector<uint16_t> k = random_halves(n_kv * hd, seed, 1.0f);
          std::vector<uint16_t> v(static_cast<size_t>(n_kv * hd), 0);
          for (int64_t j = 0; j < n_kv; ++j) {
            float s = u(rng);
            if (pattern == 1) s = -3.0f + 6.0f * static_cast<float>(j) / static_cast<float>(n_kv);
            if (pattern == 2) s = 3.0f - 6.0f * static_cast<float>(j) / static_cast<float>(n_kv);
            if (pattern == 3) s = j == n_kv / 2 ? 3.0f : u(rng) / 3.0f;
            k[static_cast<size_t>(j) * stride] = fp32_to_fp16(offset + s);
            v[static_cast<size_t>(j) * stride + static_cast<size_t>(j)] = fp32_to_fp16(1.0f);
          }
          for (int nq : {1, 2, 3}) {
            std::vector<uint16_t> q(static_cast<size_t>(nq * hd), 0);
            for (int e = 0; e < nq; ++e) q[static_cast<size_t>(e * hd)] = fp32_to_fp16(qs[e]);
            std::vector<uint16_t> acc(static_cast<size_t>(hd));
            for_each_target([&](const char* target) {
              for (const AttnOps* a : {&steps, &simd::attn_ops()}) {
                std::vector<float> got(static_cast<size_t>(nq * hd), -7.0f);
                attention_rows(*a, best_ops(), nq, q.data(), k.data(), stride, v.data(), stride,
                               n_kv, hd, /*scale=*/1.0f, acc.data(), got.data());
                const double rescales = static_cast<double>(n_kv);
                for (int e = 0; e < nq; ++e) {
                  const std::vector<double> o = exact_attention(q.data() + e * hd, k.data(),
                                                                v.data(), stride, n_kv, hd, 1.0f);
                  for (int64_t d = 0; d < hd; ++d) {
                    const double want = o[static_cast<size_t>(d)];
                    const float g = got[static_cast<size_t>(e * hd + d)];
                    if (d >= n_kv) {
                      EXPECT_EQ(g, 0.0f) << target << " " << a->name << " d " << d;
                      continue;
                    }
                    ASSERT_GT(g, 0.0f) << target << " " << a->name << " key " << d << " dropped"
                                       << " (n_kv " << n_kv << " pattern " << pattern << ")";
                    EXPECT_NEAR(g, want, (rescales + 2.0) * std::ldexp(want, -11))
                        << target << " " << a->name << " hd " << hd << " n_kv " << n_kv
                        << " pattern " << pattern << " offset " << offset << " query " << e
                        << " key " << d;
                  }
                }
              }
            });
          }
        }
      }
    }
  }
}

// Several query heads over the same keys and values (GQA), fused two at a time: each equals
// the fused row of that query alone bit for bit (the two interleaved chains never mix), and is
// as accurate as its own attention_row through the separate steps, for odd and even counts.
TEST(SimdAttention, FusedRowsMatchSingleQueryRows) {
  const AttnOps steps = simd_steps();
  uint32_t seed = 900;
  for (int64_t hd : {int64_t{64}, int64_t{96}, int64_t{128}}) {
    for (int nq : {1, 2, 3, 4}) {
      const int64_t n_kv = 129;
      const size_t stride = 2 * static_cast<size_t>(hd);
      ++seed;
      const std::vector<uint16_t> k =
          random_halves(n_kv * static_cast<int64_t>(stride), seed, 1.0f);
      const std::vector<uint16_t> v =
          random_halves(n_kv * static_cast<int64_t>(stride), seed + 1, 1.0f);
      const std::vector<uint16_t> q = random_halves(nq * hd, seed + 2, 4.0f);
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      std::vector<uint16_t> acc(static_cast<size_t>(hd));
      for_each_target([&](const char* target) {
        const Ops& ops = best_ops();
        std::vector<float> single(static_cast<size_t>(nq * hd)), by_steps(single.size());
        std::vector<float> got(static_cast<size_t>(nq * hd), -7.0f);
        for (int e = 0; e < nq; ++e) {
          attention_row(simd::attn_ops(), ops, q.data() + e * hd, k.data(), stride, v.data(),
                        stride, n_kv, hd, scale, acc.data(), single.data() + e * hd);
          attention_row(steps, ops, q.data() + e * hd, k.data(), stride, v.data(), stride, n_kv, hd,
                        scale, acc.data(), by_steps.data() + e * hd);
        }
        attention_rows(simd::attn_ops(), ops, nq, q.data(), k.data(), stride, v.data(), stride,
                       n_kv, hd, scale, acc.data(), got.data());
        EXPECT_EQ(0, std::memcmp(single.data(), got.data(), got.size() * sizeof(float)))
            << target << " hd " << hd << " nq " << nq;
        for (int e = 0; e < nq; ++e)
          expect_as_accurate_as_steps(
              got.data() + e * hd, by_steps.data() + e * hd,
              exact_attention(q.data() + e * hd, k.data(), v.data(), stride, n_kv, hd, scale),
              std::string(target) + " hd " + std::to_string(hd) + " query " + std::to_string(e));
      });
    }
  }
}

// Every key a new maximum (scores rising): each step rescales (the fused kernel's exps of a
// block all rescale factors). Both stay close to the exact result; one and two query heads give the
// same bits (S * ms and the score product are rounded before their adds, so FMA contraction in
// FMA-enabled target code cannot make one instantiation differ from the other).
TEST(SimdAttention, FusedRowRisingScoresAsAccurateAsSteps) {
  const AttnOps steps = simd_steps();
  for (int64_t hd : {int64_t{64}, int64_t{128}}) {
    const int64_t n_kv = 400;
    const std::vector<uint16_t> q = random_halves(hd, 77, 1.0f);
    std::vector<uint16_t> k(static_cast<size_t>(n_kv * hd));
    for (int64_t j = 0; j < n_kv; ++j)
      for (int64_t d = 0; d < hd; ++d)
        k[static_cast<size_t>(j * hd + d)] = fp32_to_fp16(fp16_to_fp32(q[static_cast<size_t>(d)]) *
                                                          (0.05f + 0.01f * static_cast<float>(j)));
    const std::vector<uint16_t> v = random_halves(n_kv * hd, 78, 1.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<uint16_t> acc(static_cast<size_t>(hd));
    const std::vector<double> o =
        exact_attention(q.data(), k.data(), v.data(), static_cast<size_t>(hd), n_kv, hd, scale);
    for_each_target([&](const char* target) {
      std::vector<float> by_steps(static_cast<size_t>(hd)), one(static_cast<size_t>(hd));
      attention_row(steps, best_ops(), q.data(), k.data(), hd, v.data(), hd, n_kv, hd, scale,
                    acc.data(), by_steps.data());
      attention_row(simd::attn_ops(), best_ops(), q.data(), k.data(), hd, v.data(), hd, n_kv, hd,
                    scale, acc.data(), one.data());
      expect_as_accurate_as_steps(one.data(), by_steps.data(), o,
                                  std::string(target) + " hd " + std::to_string(hd));
      std::vector<uint16_t> qq;
      for (int e = 0; e < 2; ++e) qq.insert(qq.end(), q.begin(), q.end());
      std::vector<float> two(static_cast<size_t>(2 * hd), -7.0f);
      attention_rows(simd::attn_ops(), best_ops(), 2, qq.data(), k.data(), hd, v.data(), hd, n_kv,
                     hd, scale, acc.data(), two.data());
      for (int e = 0; e < 2; ++e)
        EXPECT_EQ(0, std::memcmp(one.data(), two.data() + e * hd, one.size() * sizeof(float)))
            << target << " hd " << hd << " query " << e;
    });
  }
}

}  // namespace
}  // namespace edgelm
