// Reference vec_dot: against a double-precision dot of the dequantized weight row and the
// dequantized quantized activation row (tight), against the unquantized float activations
// (per-type normalized bound), hand-built blocks with exact expected values, and range limits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma, bool outliers) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[i] = g(rng);
    if (outliers && i % 61 == 5) v[i] *= 10.0f;
  }
  v[0] = v[0] == 0.0f ? sigma : v[0];
  return v;
}

struct RefCase {
  GgmlType wt;
  int64_t n;
  double loose;  // |dot - sum w*x_float| / (||w|| * ||x||), activation quantization error
};

class RefVecDot : public ::testing::TestWithParam<RefCase> {};

TEST_P(RefVecDot, MatchesDequantizedDots) {
  const RefCase c = GetParam();
  const GgmlType vt = vec_dot_type(c.wt);
  ASSERT_TRUE(vec_dot_supported(c.wt));
  const int bs = static_cast<int>(type_traits(c.wt)->block_size);
  for (uint32_t trial = 0; trial < 4; ++trial) {
    const uint32_t seed = static_cast<uint32_t>(c.wt) * 1000 + trial;
    // Trial 3: weights all positive with an offset (exercises the min terms).
    std::vector<float> wsrc = gaussian(c.n, seed, 0.05f, false);
    if (trial == 3)
      for (float& v : wsrc) v = 0.3f + std::fabs(v);
    const std::vector<float> x = gaussian(c.n, seed + 77, 1.0f, trial != 0);
    std::vector<uint8_t> w(row_size(c.wt, c.n)), xq(row_size(vt, c.n));
    quantize_row(c.wt, wsrc.data(), w.data(), c.n);
    ref_ops().quantize_row(vt, x.data(), xq.data(), c.n);
    std::vector<float> wf(c.n), xf(c.n);
    dequantize_row(c.wt, w.data(), wf.data(), c.n);
    dequantize_row(vt, xq.data(), xf.data(), c.n);

    const float got = ref_ops().vec_dot(c.wt, c.n, w.data(), xq.data());
    ASSERT_EQ(got, ref::vec_dot(c.wt, c.n, w.data(), xq.data()));

    // Tight: the ref result is the exact quantized product rounded once to float; the
    // dequantized K/min-format weights carry one float rounding of d*sc*q - dmin*m each. Both are
    // bounded linearly (2^-24 per term, with 3x the block's largest |w| covering the min term),
    // with a 2x margin.
    double exact = 0, scale = 0, wn = 0, xn = 0, loose_exact = 0;
    for (int64_t b = 0; b < c.n; b += bs) {
      double bmax = 0;
      for (int i = 0; i < bs; ++i) bmax = std::max(bmax, std::fabs(static_cast<double>(wf[b + i])));
      for (int i = 0; i < bs; ++i) {
        const double wi = wf[b + i];
        exact += wi * xf[b + i];
        scale += (std::fabs(wi) + 3 * bmax) * std::fabs(static_cast<double>(xf[b + i]));
        loose_exact += wi * x[b + i];
        wn += wi * wi;
        xn += static_cast<double>(x[b + i]) * x[b + i];
      }
    }
    const double tight = 1.2e-7 * scale;
    EXPECT_LE(std::fabs(got - exact), tight) << type_name(c.wt) << " n=" << c.n << " trial "
                                             << trial << " got " << got << " exact " << exact;
    const double norm_err = std::fabs(got - loose_exact) / std::sqrt(wn * xn);
    EXPECT_LE(norm_err, c.loose) << type_name(c.wt) << " n=" << c.n << " trial " << trial;
  }
}

std::string ref_case_name(const ::testing::TestParamInfo<RefCase>& info) {
  return std::string(type_name(info.param.wt)) + "_" + std::to_string(info.param.n);
}

INSTANTIATE_TEST_SUITE_P(
    AllWeightTypes, RefVecDot,
    // Loose bounds: ~1.5-3x the largest normalized error measured with these seeds.
    ::testing::Values(RefCase{GgmlType::kF32, 1, 1e-7}, RefCase{GgmlType::kF32, 77, 1e-7},
                      RefCase{GgmlType::kF32, 1024, 1e-7}, RefCase{GgmlType::kF16, 3, 3e-4},
                      RefCase{GgmlType::kF16, 1024, 3e-5}, RefCase{GgmlType::kBF16, 5, 4e-3},
                      RefCase{GgmlType::kBF16, 1024, 4e-4}, RefCase{GgmlType::kQ4_0, 32, 3e-3},
                      RefCase{GgmlType::kQ4_0, 1024, 8e-4}, RefCase{GgmlType::kQ4_1, 32, 5e-3},
                      RefCase{GgmlType::kQ4_1, 1024, 8e-4}, RefCase{GgmlType::kQ5_0, 1024, 1.5e-3},
                      RefCase{GgmlType::kQ5_1, 1024, 1.5e-3}, RefCase{GgmlType::kQ8_0, 32, 5e-3},
                      RefCase{GgmlType::kQ8_0, 1024, 1.2e-3}, RefCase{GgmlType::kQ4_K, 256, 6e-4},
                      RefCase{GgmlType::kQ4_K, 1024, 2.5e-3},
                      RefCase{GgmlType::kQ5_K, 1024, 2.5e-3}, RefCase{GgmlType::kQ6_K, 256, 3e-3},
                      RefCase{GgmlType::kQ6_K, 1024, 2.5e-3}),
    ref_case_name);

// --- hand-built blocks: exact integer formulas
// ----------------------------------------------------

TEST(RefVecDotHand, Q4_0TimesQ8_0) {
  BlockQ4_0 w = {};
  BlockQ8_0 x = {};
  w.d = fp32_to_fp16(0.5f);
  x.d = fp32_to_fp16(0.25f);
  long sumi = 0;
  for (int j = 0; j < 32; ++j) {
    const int q = (j * 3) % 16;  // element j's 4-bit quant
    if (j < 16)
      w.qs[j] = static_cast<uint8_t>(q);
    else
      w.qs[j - 16] = static_cast<uint8_t>(w.qs[j - 16] | (q << 4));
    x.qs[j] = static_cast<int8_t>(120 - 7 * j);
    sumi += (q - 8) * (120 - 7 * j);
  }
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ4_0, 32, &w, &x), static_cast<float>(0.125 * sumi));
}

TEST(RefVecDotHand, Q4_1AndQ5_1MinTermUsesExactActivationSum) {
  BlockQ4_1 w = {};
  BlockQ5_1 w5 = {};
  BlockQ8_0 x = {};
  w.d = w5.d = fp32_to_fp16(0.5f);
  w.m = w5.m = fp32_to_fp16(-3.0f);
  x.d = fp32_to_fp16(0.125f);
  long sumi = 0, sumi5 = 0, sumx = 0;
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) {
    const int q = (j * 5 + 1) % 16, q5 = (j * 7 + 2) % 32;
    if (j < 16) {
      w.qs[j] = static_cast<uint8_t>(q);
      w5.qs[j] = static_cast<uint8_t>(q5 & 15);
    } else {
      w.qs[j - 16] = static_cast<uint8_t>(w.qs[j - 16] | (q << 4));
      w5.qs[j - 16] = static_cast<uint8_t>(w5.qs[j - 16] | ((q5 & 15) << 4));
    }
    qh |= static_cast<uint32_t>(q5 >> 4) << j;
    x.qs[j] = static_cast<int8_t>(j * 7 - 100);
    sumi += q * (j * 7 - 100);
    sumi5 += q5 * (j * 7 - 100);
    sumx += j * 7 - 100;
  }
  std::memcpy(w5.qh, &qh, 4);
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ4_1, 32, &w, &x),
            static_cast<float>(0.5 * 0.125 * sumi - 3.0 * 0.125 * sumx));
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ5_1, 32, &w5, &x),
            static_cast<float>(0.5 * 0.125 * sumi5 - 3.0 * 0.125 * sumx));
}

TEST(RefVecDotHand, Q4_KUsesScalesMinsAndBsums) {
  // Weights from a hand-set block; activations from quantize_row (bsums consistent).
  BlockQ4_K w = {};
  w.d = fp32_to_fp16(0.25f);
  w.dmin = fp32_to_fp16(0.5f);
  const int sc[8] = {63, 1, 40, 17, 50, 2, 33, 9}, mn[8] = {5, 63, 0, 20, 49, 7, 18, 1};
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      w.scales[j] = static_cast<uint8_t>(sc[j]);
      w.scales[j + 4] = static_cast<uint8_t>(mn[j]);
    } else {
      w.scales[j + 4] = static_cast<uint8_t>((sc[j] & 15) | ((mn[j] & 15) << 4));
      w.scales[j - 4] = static_cast<uint8_t>(w.scales[j - 4] | ((sc[j] >> 4) << 6));
      w.scales[j] = static_cast<uint8_t>(w.scales[j] | ((mn[j] >> 4) << 6));
    }
  }
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 11 + 4) % 16;
    const int k = e / 64, r = e % 64;
    w.qs[32 * k + r % 32] |= static_cast<uint8_t>(r < 32 ? q[e] : q[e] << 4);
  }
  std::vector<float> xs(256);
  for (int e = 0; e < 256; ++e) xs[e] = static_cast<float>((e * 37) % 255 - 127);  // |max| 127
  BlockQ8_K x;
  quantize_row(GgmlType::kQ8_K, xs.data(), &x, 256);
  double want = 0;
  for (int e = 0; e < 256; ++e)
    want += (0.25 * sc[e / 32] * q[e] - 0.5 * mn[e / 32]) * (static_cast<double>(x.d) * x.qs[e]);
  EXPECT_FLOAT_EQ(ref_ops().vec_dot(GgmlType::kQ4_K, 256, &w, &x), static_cast<float>(want));
  // The min term comes from bsums: corrupting them must change the result.
  x.bsums[3] = static_cast<int16_t>(x.bsums[3] + 100);
  EXPECT_NE(ref_ops().vec_dot(GgmlType::kQ4_K, 256, &w, &x), static_cast<float>(want));
}

TEST(RefVecDotHand, RangeLimitsNoOverflow) {
  // Every quant at its extreme with every activation at -128/127: sums stay exact.
  BlockQ8_K x[2];
  for (auto& b : x) {
    b.d = 1.0f;
    for (int j = 0; j < 256; ++j) b.qs[j] = -128;
    for (int j = 0; j < 16; ++j) b.bsums[j] = -128 * 16;
  }
  BlockQ6_K w6[2];
  std::memset(w6, 0, sizeof(w6));  // q = 0 -> -32
  for (auto& b : w6) {
    b.d = fp32_to_fp16(1.0f);
    for (int j = 0; j < 16; ++j) b.scales[j] = -128;
  }
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ6_K, 512, w6, x), 512.0f * -128 * -32 * -128);
  BlockQ5_K w5[2];
  std::memset(w5, 0xFF, sizeof(w5));  // q = 31, sc = m = 63
  for (auto& b : w5) b.d = b.dmin = fp32_to_fp16(1.0f);
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ5_K, 512, w5, x),
            512.0f * (63.0f * 31 * -128) - 512.0f * (63.0f * -128));
  BlockQ8_0 a[4], b[4];
  for (int i = 0; i < 4; ++i) {
    a[i].d = b[i].d = fp32_to_fp16(1.0f);
    for (int j = 0; j < 32; ++j) a[i].qs[j] = b[i].qs[j] = -128;
  }
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kQ8_0, 128, a, b), 128.0f * 128 * 128);
}

TEST(RefVecDotHand, FloatTypesAreExactlyRounded) {
  // 1 + 2^-30 + ... : a float accumulation would lose the small terms, double keeps them.
  std::vector<float> w = {1.0f, 0x1p-30f, 0x1p-30f, -1.0f, 0x1p-30f};
  std::vector<float> x = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kF32, 5, w.data(), x.data()), 3 * 0x1p-30f);
  std::vector<uint16_t> h = {fp32_to_fp16(2.0f), fp32_to_fp16(-0.5f), fp32_to_fp16(0x1p-24f)};
  std::vector<uint16_t> k = {fp32_to_fp16(3.0f), fp32_to_fp16(4.0f), fp32_to_fp16(1024.0f)};
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kF16, 3, h.data(), k.data()), 4.0f + 0x1p-14f);
  std::vector<uint16_t> bw = {fp32_to_bf16(1.5f), fp32_to_bf16(-2.0f)};
  std::vector<uint16_t> bx = {fp32_to_bf16(4.0f), fp32_to_bf16(0.25f)};
  EXPECT_EQ(ref_ops().vec_dot(GgmlType::kBF16, 2, bw.data(), bx.data()), 5.5f);
}

TEST(RefVecDotTypes, VecDotTypeMapping) {
  EXPECT_EQ(vec_dot_type(GgmlType::kF32), GgmlType::kF32);
  EXPECT_EQ(vec_dot_type(GgmlType::kF16), GgmlType::kF16);
  EXPECT_EQ(vec_dot_type(GgmlType::kBF16), GgmlType::kBF16);
  for (GgmlType t :
       {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0})
    EXPECT_EQ(vec_dot_type(t), GgmlType::kQ8_0) << type_name(t);
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K})
    EXPECT_EQ(vec_dot_type(t), GgmlType::kQ8_K) << type_name(t);
  EXPECT_FALSE(vec_dot_supported(GgmlType::kQ2_K));
  EXPECT_FALSE(vec_dot_supported(GgmlType::kQ8_K));
  EXPECT_TRUE(vec_dot_supported(GgmlType::kQ5_1));
}

}  // namespace
}  // namespace edgelm
