// fp16 / bf16 conversions: exact values, rounding to nearest even, subnormals, inf, NaN.
#include "quant/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

namespace edgelm {
namespace {

float f_bits(uint32_t u) { return std::bit_cast<float>(u); }

TEST(Fp16, ExactValues) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);  // largest finite half
  EXPECT_EQ(fp32_to_fp16(0.1f), 0x2E66);
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x2E66), 0.0999755859375f);
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(fp16_to_fp32(0x8000), 0.0f);
}

TEST(Fp16, InfAndNan) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_fp16(inf), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-inf), 0xFC00);
  EXPECT_EQ(fp16_to_fp32(0x7C00), inf);
  EXPECT_EQ(fp16_to_fp32(0xFC00), -inf);
  // Overflow: 65520 is the midpoint between 65504 and 2^16, ties to even -> inf.
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(-1e6f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::max()), 0x7C00);
  // NaN stays NaN (quiet), sign kept; never becomes inf.
  const uint16_t qn = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(qn & 0x7C00, 0x7C00);
  EXPECT_NE(qn & 0x03FF, 0);
  EXPECT_EQ(fp32_to_fp16(f_bits(0x7F800001u)) & 0x7FFF, 0x7E00);  // signalling NaN input
  EXPECT_EQ(fp32_to_fp16(f_bits(0xFFC00000u)), 0xFE00);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xFFFF)));
}

TEST(Fp16, Subnormals) {
  const float tiny = 0x1p-24f;  // smallest half subnormal
  EXPECT_EQ(fp32_to_fp16(tiny), 0x0001);
  EXPECT_EQ(fp16_to_fp32(0x0001), tiny);
  EXPECT_EQ(fp16_to_fp32(0x03FF), 1023 * tiny);  // largest subnormal
  EXPECT_EQ(fp32_to_fp16(1023 * tiny), 0x03FF);
  EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0400), 0x1p-14f);
  // Ties to even in the subnormal range.
  EXPECT_EQ(fp32_to_fp16(0.5f * tiny), 0x0000);
  EXPECT_EQ(fp32_to_fp16(1.5f * tiny), 0x0002);
  EXPECT_EQ(fp32_to_fp16(2.5f * tiny), 0x0002);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(0.5f * tiny, 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-1.5f * tiny), 0x8002);
  // 1023.5 * tiny is a tie between 0x03FF and 0x0400 -> even (0x0400).
  EXPECT_EQ(fp32_to_fp16(1023.5f * tiny), 0x0400);
  // Far below: flushes to signed zero.
  EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-1e-30f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(f_bits(1)), 0x0000);  // fp32 subnormal
}

TEST(Fp16, RoundToNearestEven) {
  const float ulp = 0x1p-10f;                          // half ulp spacing at 1.0
  EXPECT_EQ(fp32_to_fp16(1.0f + 0.5f * ulp), 0x3C00);  // tie, even stays
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.5f * ulp), 0x3C02);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + 0.5f * ulp, 2.0f)), 0x3C01);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + 1.5f * ulp, 0.0f)), 0x3C01);
  EXPECT_EQ(fp32_to_fp16(2047.0f / 1024.0f + 0.5f * ulp), 0x4000);  // mantissa carry to exponent
  EXPECT_EQ(fp32_to_fp16(-(1.0f + 1.5f * ulp)), 0xBC02);
}

TEST(Fp16, AllHalvesRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
    }
  }
}

// Independent oracle: the nearest half computed in double, ties broken toward even codes.
TEST(Fp16, RandomAgainstDoubleOracle) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits(0, 0xFFFFFFFFu);
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    // Focus on the half range: exponents around [-26, 17].
    uint32_t u = bits(rng);
    const uint32_t exp = 101 + (u % 44);
    u = (u & 0x807FFFFFu) | (exp << 23);
    const float f = f_bits(u);
    const uint16_t h = fp32_to_fp16(f);
    const double v = std::fabs(static_cast<double>(f));
    // Find the nearest finite half by bracketing.
    uint16_t best = 0;
    double best_err = 1e300;
    const uint16_t guess = h & 0x7FFF;
    for (int d = -1; d <= 1; ++d) {
      const int c = guess + d;
      if (c < 0 || c > 0x7BFF) continue;
      const double err = std::fabs(static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(c))) - v);
      if (err < best_err || (err == best_err && (c & 1) == 0)) {
        best_err = err;
        best = static_cast<uint16_t>(c);
      }
    }
    if (guess == 0x7C00) {  // overflowed: the value must be >= 65520
      ASSERT_GE(v, 65520.0) << u;
      continue;
    }
    ASSERT_EQ(guess, best) << std::hex << u;
    ASSERT_EQ(h >> 15, u >> 31);
    ++checked;
  }
  EXPECT_GT(checked, 100000);
}

#if defined(__FLT16_MANT_DIG__)
// Second independent oracle: the compiler's _Float16 conversions (IEEE, round to nearest even).
TEST(Fp16, MatchesCompilerFloat16) {
  std::mt19937 rng(9);
  for (int i = 0; i < 200000; ++i) {
    const float f = f_bits(rng());
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    ASSERT_EQ(fp32_to_fp16(f), std::bit_cast<uint16_t>(h)) << std::hexfloat << f;
  }
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float want = static_cast<float>(std::bit_cast<_Float16>(static_cast<uint16_t>(h)));
    if (std::isnan(want)) continue;
    ASSERT_EQ(fp16_to_fp32(static_cast<uint16_t>(h)), want) << h;
  }
}
#endif

TEST(Bf16, ExactAndRounding) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC049), f_bits(0xC0490000u));
  EXPECT_EQ(fp32_to_bf16(f_bits(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(f_bits(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(f_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(f_bits(0x3F807FFFu)), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(f_bits(0xBF818000u)), 0xBF82);
  EXPECT_EQ(fp32_to_bf16(f_bits(0x3FFF8000u)), 0x4000);  // carry into the exponent
}

TEST(Bf16, InfNanSubnormal) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_bf16(inf), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-inf), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
  EXPECT_EQ(fp32_to_bf16(f_bits(0x7F7F7FFFu)), 0x7F7F);
  // NaNs stay NaN, even those whose payload lives only in the low 16 bits.
  EXPECT_EQ(fp32_to_bf16(f_bits(0x7F800001u)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(f_bits(0xFF800001u)), 0xFFC0);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // Subnormals are rounded, not flushed.
  EXPECT_EQ(fp32_to_bf16(f_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(f_bits(0x00008000u)), 0x0000);
  EXPECT_EQ(fp32_to_bf16(f_bits(0x00010000u)), 0x0001);
  EXPECT_EQ(bf16_to_fp32(0x0001), f_bits(0x00010000u));
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
}

TEST(Bf16, AllRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
    } else {
      ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
    }
  }
}

TEST(Fp16, Rows) {
  const float src[5] = {1.0f, -0.5f, 65504.0f, 0x1p-24f, 3.0f};
  uint16_t h[5], b[5];
  float back[5];
  fp32_to_fp16_row(src, h, 5);
  fp16_to_fp32_row(h, back, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(back[i], src[i]);
  fp32_to_bf16_row(src, b, 5);
  bf16_to_fp32_row(b, back, 5);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -0.5f);
  EXPECT_EQ(back[4], 3.0f);
  EXPECT_EQ(back[2], 65536.0f);  // 65504 = 0x477FE000 rounds up in bf16
}

}  // namespace
}  // namespace edgelm
