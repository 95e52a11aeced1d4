// SIMD flash-attention steps (kernels/simd/attention.cpp) against the scalar oracle
// (kernels/ref/attention.cpp): bit-for-bit equal on random F16 data, on every Highway target
// this CPU supports, including targets where Highway emulates the F16 conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
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
  for (const Ops* ops : {&ref_ops(), &best_ops()}) {
    std::vector<float> want(hd);
    attention_row(ref_attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                  n_kv, hd, scale, acc.data(), want.data());
    // Double-precision softmax of the same scores.
    std::vector<double> p(n_kv);
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n_kv; ++j) {
      double s = 0;
      for (int64_t d = 0; d < hd; ++d)
        s += double(fp16_to_fp32(k[j * stride + hd + d])) * fp16_to_fp32(q[d]);
      p[j] = s * scale;
      mx = std::max(mx, p[j]);
    }
    for (auto& x : p) sum += (x = std::exp(x - mx));
    for (int64_t d = 0; d < hd; ++d) {
      double o = 0;
      for (int64_t j = 0; j < n_kv; ++j) o += p[j] / sum * fp16_to_fp32(v[j * stride + hd + d]);
      EXPECT_NEAR(want[d], o, 2e-2) << ops->name << " d " << d;
    }
    for_each_target([&](const char* target) {
      // Per target: best_ops' vec_dot follows the forced target too.
      std::vector<float> ref_steps(hd), got(hd, -7.0f);
      attention_row(ref_attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                    n_kv, hd, scale, acc.data(), ref_steps.data());
      attention_row(simd::attn_ops(), *ops, q.data(), k.data() + hd, stride, v.data() + hd, stride,
                    n_kv, hd, scale, acc.data(), got.data());
      EXPECT_EQ(0, std::memcmp(ref_steps.data(), got.data(), hd * sizeof(float)))
          << target << " ops " << ops->name;
    });
  }
}

// The fused row (AttnOps::row: scores, online softmax and F16 value sum in one call) against
// the three separate steps, bit for bit, for head sizes that take the fixed-size kernels (64,
// 128, 32), the any-size one (96, 192) and none (80 on AVX-512: attention_row falls back), with
// scores large enough that the running maximum changes often.
TEST(SimdAttention, FusedRowMatchesSteps) {
  AttnOps steps = simd::attn_ops();
  steps.row = nullptr;
  ASSERT_NE(simd::attn_ops().row, nullptr);
  uint32_t seed = 500;
  for (int64_t hd :
       {int64_t{64}, int64_t{128}, int64_t{32}, int64_t{96}, int64_t{192}, int64_t{80}}) {
    for (int64_t n_kv : {int64_t{1}, int64_t{7}, int64_t{257}}) {
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
        for_each_target([&](const char* target) {
          const Ops& ops = best_ops();
          std::vector<float> want(static_cast<size_t>(hd)), got(static_cast<size_t>(hd), -7.0f);
          attention_row(steps, ops, q.data(), k.data() + hd, stride, v.data() + hd, stride, n_kv,
                        hd, scale, acc.data(), want.data());
          attention_row(simd::attn_ops(), ops, q.data(), k.data() + hd, stride, v.data() + hd,
                        stride, n_kv, hd, scale, acc.data(), got.data());
          EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
              << target << " hd " << hd << " n_kv " << n_kv << " qscale " << qscale;
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
  // Another vec_dot (the scalar reference): the fused kernel declines.
  std::vector<uint16_t> acc(64);
  std::vector<float> out(64);
  const std::vector<uint16_t> kv = random_halves(64, 3, 1.0f);
  EXPECT_FALSE(simd::attn_ops().row(ref_ops(), 1, kv.data(), kv.data(), 64, kv.data(), 64, 1, 64,
                                    0.125f, acc.data(), out.data()));
}

// Several query heads over the same keys and values (GQA), fused two at a time: each equals
// its own attention_row through the separate steps, bit for bit, for odd and even counts.
TEST(SimdAttention, FusedRowsMatchStepsPerQuery) {
  AttnOps steps = simd::attn_ops();
  steps.row = nullptr;
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
        std::vector<float> want(static_cast<size_t>(nq * hd));
        std::vector<float> got(static_cast<size_t>(nq * hd), -7.0f);
        for (int e = 0; e < nq; ++e)
          attention_row(steps, ops, q.data() + e * hd, k.data(), stride, v.data(), stride, n_kv, hd,
                        scale, acc.data(), want.data() + e * hd);
        attention_rows(simd::attn_ops(), ops, nq, q.data(), k.data(), stride, v.data(), stride,
                       n_kv, hd, scale, acc.data(), got.data());
        EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
            << target << " hd " << hd << " nq " << nq;
      });
    }
  }
}

// Every key a new maximum (scores rising): each step rescales, S = S * ms + 1. The fused
// kernel must round S * ms before the add as the scalar steps do (a compiler may contract it
// into an FMA inside FMA-enabled target code), and likewise the score product.
TEST(SimdAttention, FusedRowRisingScoresMatchSteps) {
  AttnOps steps = simd::attn_ops();
  steps.row = nullptr;
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
    for_each_target([&](const char* target) {
      for (int nq : {1, 2}) {
        std::vector<uint16_t> qq;
        for (int e = 0; e < nq; ++e) qq.insert(qq.end(), q.begin(), q.end());
        std::vector<float> want(static_cast<size_t>(nq * hd));
        std::vector<float> got(static_cast<size_t>(nq * hd), -7.0f);
        for (int e = 0; e < nq; ++e)
          attention_row(steps, best_ops(), qq.data() + e * hd, k.data(), hd, v.data(), hd, n_kv, hd,
                        scale, acc.data(), want.data() + e * hd);
        attention_rows(simd::attn_ops(), best_ops(), nq, qq.data(), k.data(), hd, v.data(), hd,
                       n_kv, hd, scale, acc.data(), got.data());
        EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
            << target << " hd " << hd << " nq " << nq;
      }
    });
  }
}

}  // namespace
}  // namespace edgelm
