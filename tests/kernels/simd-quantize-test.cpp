// SIMD activation quantizers (Q8_0, Q8_K, F16, BF16, F32) vs the reference ones, on every
// Highway target of this CPU; plus the inline fp16/bf16 helpers of the SIMD code vs quant/fp16.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/simd/layout.h"
#include "kernels/simd/simd.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "simd-util.h"

namespace edgelm {
namespace {

using testing::for_each_target;
using testing::random_floats;

TEST(SimdFp16Helpers, MatchQuantConversionsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = simd::f16_to_f32(static_cast<uint16_t>(h));
    const float b = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a)) << h;
    } else {
      ASSERT_EQ(simd::f32_to_bits(a), simd::f32_to_bits(b)) << "half bits " << h;
    }
    ASSERT_EQ(simd::f32_to_bits(simd::bf16_to_f32(static_cast<uint16_t>(h))),
              simd::f32_to_bits(bf16_to_fp32(static_cast<uint16_t>(h))))
        << h;
  }
  std::vector<float> probes = random_floats(20000, 5, 3.0f);
  const std::vector<float> small = random_floats(2000, 6, 1e-5f);  // fp16 subnormal range
  probes.insert(probes.end(), small.begin(), small.end());
  for (float f : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, 6.1035156e-05f, 5.96e-8f,
                  2.98e-8f, std::numeric_limits<float>::infinity(), -1.0f / 3}) {
    probes.push_back(f);
    probes.push_back(-f);
  }
  for (float f : probes) {
    EXPECT_EQ(simd::f32_to_f16(f), fp32_to_fp16(f)) << f;
    EXPECT_EQ(simd::f32_to_bf16(f), fp32_to_bf16(f)) << f;
  }
}

class SimdQuantize : public ::testing::TestWithParam<GgmlType> {};

TEST_P(SimdQuantize, MatchesRef) {
  const GgmlType t = GetParam();
  ASSERT_TRUE(simd::has_quantize_row(t));
  for (int64_t n : {int64_t{256}, int64_t{4096}}) {
    const std::vector<float> x = random_floats(n, 99 + static_cast<uint32_t>(n));
    const size_t bytes = row_size(t, n);
    std::vector<uint8_t> want(bytes);
    ref_ops().quantize_row(t, x.data(), want.data(), n);
    std::vector<float> want_f(static_cast<size_t>(n));
    dequantize_row(t, want.data(), want_f.data(), n);
    for_each_target([&](const char* target) {
      std::vector<uint8_t> got(bytes, 0xAB);
      simd::quantize_row(t, x.data(), got.data(), n);
      // Q8_0 too: both compute x * (1/d) and round to nearest even, as ggml's runtime does.
      if (t == GgmlType::kF16 || t == GgmlType::kBF16 || t == GgmlType::kF32 ||
          t == GgmlType::kQ8_0) {
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), bytes)) << type_name(t);
        return;
      }
      // Q8_K: scales must be identical; a quant may differ by one step where the product lands
      // on a rounding tie; such ties are rare.
      std::vector<float> got_f(static_cast<size_t>(n));
      dequantize_row(t, got.data(), got_f.data(), n);
      int64_t off_by_one = 0;
      if (t == GgmlType::kQ8_0) {
        const auto* g = reinterpret_cast<const BlockQ8_0*>(got.data());
        const auto* w = reinterpret_cast<const BlockQ8_0*>(want.data());
        for (int64_t b = 0; b < n / 32; ++b) {
          ASSERT_EQ(g[b].d, w[b].d) << "block " << b;
          for (int k = 0; k < 32; ++k) {
            const int diff = std::abs(g[b].qs[k] - w[b].qs[k]);
            ASSERT_LE(diff, 1) << "block " << b << " elem " << k;
            off_by_one += diff;
          }
        }
      } else {
        const auto* g = reinterpret_cast<const BlockQ8_K*>(got.data());
        const auto* w = reinterpret_cast<const BlockQ8_K*>(want.data());
        for (int64_t b = 0; b < n / 256; ++b) {
          ASSERT_EQ(g[b].d, w[b].d) << "block " << b;
          for (int k = 0; k < 256; ++k) {
            const int diff = std::abs(g[b].qs[k] - w[b].qs[k]);
            ASSERT_LE(diff, 1) << "block " << b << " elem " << k;
            off_by_one += diff;
          }
          for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int k = 0; k < 16; ++k) s += g[b].qs[16 * j + k];
            ASSERT_EQ(g[b].bsums[j], s) << "block " << b << " bsum " << j;
          }
        }
      }
      EXPECT_LE(off_by_one, n / 256 + 1) << type_name(t);
      // Quantization error itself stays within half a step (+ the tie step).
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got_f[i], want_f[i], std::fabs(want_f[i]) * 0.02f + 0.1f) << i;
      }
    });
  }
}

INSTANTIATE_TEST_SUITE_P(Types, SimdQuantize,
                         ::testing::Values(GgmlType::kQ8_0, GgmlType::kQ8_K, GgmlType::kF16,
                                           GgmlType::kBF16, GgmlType::kF32),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(type_name(info.param));
                         });

TEST(SimdQuantizeZeros, ZeroBlocksGiveZeroScale) {
  std::vector<float> x(512, 0.0f);
  x[300] = 2.5f;  // second block of Q8_K / tenth of Q8_0 non-zero
  for_each_target([&](const char* target) {
    std::vector<uint8_t> q(row_size(GgmlType::kQ8_K, 512), 0xCD);
    simd::quantize_row(GgmlType::kQ8_K, x.data(), q.data(), 512);
    const auto* b = reinterpret_cast<const BlockQ8_K*>(q.data());
    EXPECT_EQ(b[0].d, 0.0f);
    EXPECT_EQ(b[0].qs[5], 0);
    EXPECT_EQ(b[0].bsums[3], 0);
    EXPECT_NEAR(b[1].d * b[1].qs[300 - 256], 2.5f, 1e-6f);
    std::vector<uint8_t> q0(row_size(GgmlType::kQ8_0, 512), 0xCD);
    simd::quantize_row(GgmlType::kQ8_0, x.data(), q0.data(), 512);
    const auto* c = reinterpret_cast<const BlockQ8_0*>(q0.data());
    EXPECT_EQ(c[0].d, 0);
    EXPECT_EQ(c[0].qs[0], 0);
    EXPECT_EQ(c[9].qs[300 - 288], 127);
  });
}

}  // namespace
}  // namespace edgelm
