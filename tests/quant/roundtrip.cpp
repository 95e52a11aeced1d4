// Quantizers: ggml reference semantics on hand-picked inputs (grids that must round-trip
// exactly, rounding rules), and quantize -> dequantize error bounds on random data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

std::vector<float> roundtrip(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_size(t, static_cast<int64_t>(x.size())));
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// --- ggml reference semantics -----------------------------------------------------------------

TEST(Quantize, Q8_0Reference) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = (j - 16) * 0.25f;  // amax 4 at j = 0
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(4.0f / 127));
  // q = roundf(x * 127/4) = roundf((j-16) * 7.9375), half away from zero.
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[17], 8);    // 7.9375
  EXPECT_EQ(b.qs[18], 16);   // 15.875
  EXPECT_EQ(b.qs[2], -111);  // -111.125
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int>(std::round((j - 16) * 7.9375)));
}

TEST(Quantize, Q4_0Reference) {
  // Largest magnitude is -8, so d = 1 and id = 1: q = trunc(x + 8.5) clamped to 15.
  float x[32] = {-8.0f, 0.5f, -0.5f, -1.5f, 7.0f, 7.6f, 3.49f, -7.5f};
  for (int j = 8; j < 32; ++j) x[j] = static_cast<float>((j % 16) - 8);
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), 1.0f);
  float y[32];
  dequantize_row_q4_0(&b, y, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[1], 1.0f);  // 0.5 rounds up (ggml: +8.5 then truncate)
  EXPECT_EQ(y[2], 0.0f);  // -0.5 rounds up too
  EXPECT_EQ(y[3], -1.0f);
  EXPECT_EQ(y[4], 7.0f);
  EXPECT_EQ(y[5], 7.0f);  // clamped at 15 - 8
  EXPECT_EQ(y[6], 3.0f);
  EXPECT_EQ(y[7], -7.0f);  // -7.5 -> trunc(1.0) = 1 -> -7
  for (int j = 8; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
  // Positive largest magnitude: d = max / -8 is negative.
  float p[32];
  for (int j = 0; j < 32; ++j) p[j] = static_cast<float>(j % 9) - 4.0f;  // max magnitude +4
  p[5] = 8.0f;
  quantize_row_q4_0(p, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), -1.0f);
  dequantize_row_q4_0(&b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], p[j]) << j;
}

TEST(Quantize, GridValuesRoundTripExactly) {
  std::mt19937 rng(3);
  // Q4_1 / Q5_1: values min + k*d with the extremes present.
  for (auto [type, levels] : {std::pair{GgmlType::kQ4_1, 16}, std::pair{GgmlType::kQ5_1, 32}}) {
    std::vector<float> x(64);
    for (int i = 0; i < 64; ++i) x[i] = -3.0f + 0.5f * static_cast<float>(rng() % levels);
    x[0] = -3.0f;
    x[33] = -3.0f;
    x[1] = -3.0f + 0.5f * (levels - 1);
    x[40] = -3.0f + 0.5f * (levels - 1);
    EXPECT_EQ(roundtrip(type, x), x) << type_name(type);
  }
  // Q5_0: integers in [-16, 15] with -16 present (d = 1).
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(static_cast<int>(rng() % 32) - 16);
  x[3] = -16.0f;
  x[35] = -16.0f;
  EXPECT_EQ(roundtrip(GgmlType::kQ5_0, x), x);
  // Q8_0: integers in [-127, 127] with 127 present (d = 1).
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(static_cast<int>(rng() % 255) - 127);
  x[7] = 127.0f;
  x[60] = -127.0f;
  EXPECT_EQ(roundtrip(GgmlType::kQ8_0, x), x);
  // F16 / BF16: representable values.
  for (int i = 0; i < 64; ++i)
    x[i] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 64;
  EXPECT_EQ(roundtrip(GgmlType::kF16, x), x);
  EXPECT_EQ(roundtrip(GgmlType::kF32, x), x);
}

TEST(Quantize, Q8_KReference) {
  std::vector<float> x(256);
  for (int j = 0; j < 256; ++j) x[j] = static_cast<float>(j) - 128.0f;  // max magnitude -128
  BlockQ8_K b;
  quantize_row_q8_k(x.data(), &b, 256);
  const float iscale = -127.f / -128.f;
  EXPECT_EQ(b.d, 1 / iscale);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[255], static_cast<int>(std::lrint(127.0f * iscale)));  // 126
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int i = 0; i < 16; ++i) s += b.qs[16 * g + i];
    EXPECT_EQ(b.bsums[g], s);
  }
  // All zero: d = 0, quants and sums zero.
  std::vector<float> z(256, 0.0f);
  std::memset(&b, 0x5A, sizeof(b));
  quantize_row_q8_k(z.data(), &b, 256);
  EXPECT_EQ(b.d, 0.0f);
  for (int j = 0; j < 256; ++j) ASSERT_EQ(b.qs[j], 0);
  for (int g = 0; g < 16; ++g) ASSERT_EQ(b.bsums[g], 0);
}

TEST(Quantize, Q8_1SumField) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 1.0f);
  std::vector<float> x(64);
  for (auto& v : x) v = u(rng);
  BlockQ8_1 b[2];
  quantize_row_q8_1(x.data(), b, 64);
  BlockQ8_0 c[2];
  quantize_row_q8_0(x.data(), c, 64);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(b[i].d, c[i].d);
    EXPECT_EQ(std::memcmp(b[i].qs, c[i].qs, 32), 0);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b[i].qs[j];
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * i + j]));
    EXPECT_EQ(b[i].s, fp32_to_fp16(static_cast<float>(sum) * (amax / 127)));
  }
}

TEST(Quantize, Q6_KScalesAndZeroBlock) {
  std::vector<float> x(512, 0.0f);
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int i = 256; i < 512; ++i) x[i] = g(rng);
  BlockQ6_K b[2];
  std::memset(b, 0x77, sizeof(b));
  quantize_row_q6_k(x.data(), b, 512);
  EXPECT_EQ(b[0].d, 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b[0].scales[j], 0);
  float y[512];
  dequantize_row_q6_k(b, y, 512);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.0f);
  // The sub-block with the largest |scale| gets scale -128 (ggml: iscale = -128 / max_scale).
  int extreme = 0;
  for (int j = 0; j < 16; ++j) extreme += b[1].scales[j] == -128 ? 1 : 0;
  EXPECT_GE(extreme, 1);
}

// --- random data error bounds ------------------------------------------------------------------

struct Bound {
  GgmlType type;
  double rel_rmse;      // sqrt(sum (x - y)^2 / sum x^2), smooth distributions
  double outlier_rmse;  // the same with 20x outliers (whole blocks take the outlier's scale)
  double block_max;     // max |x - y| / max |x| over each 32- or 256-block
};

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    s += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(e / s);
}

double worst_block(const std::vector<float>& x, const std::vector<float>& y, int bs) {
  double worst = 0;
  for (size_t b = 0; b < x.size(); b += bs) {
    double amax = 0, emax = 0;
    for (int i = 0; i < bs; ++i) {
      amax = std::max(amax, std::fabs(static_cast<double>(x[b + i])));
      emax = std::max(emax, std::fabs(static_cast<double>(x[b + i]) - y[b + i]));
    }
    if (amax > 0) worst = std::max(worst, emax / amax);
  }
  return worst;
}

class RoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(RoundTrip, RandomDataWithinBounds) {
  const Bound b = GetParam();
  const int64_t n = 256 * 16;
  std::mt19937 rng(static_cast<uint32_t>(b.type) * 101 + 7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (int dist = 0; dist < 4; ++dist) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) {
      switch (dist) {
        case 0:
          x[i] = gauss(rng) * 0.02f;
          break;  // weight-like
        case 1:
          x[i] = uni(rng) * 3.0f;
          break;  // uniform
        case 2:
          x[i] = 0.5f + 0.1f * uni(rng);
          break;  // offset, all positive
        default:
          x[i] = gauss(rng) * (i % 97 == 0 ? 20.0f : 1.0f);  // outliers
      }
    }
    const auto y = roundtrip(b.type, x);
    for (float v : y) ASSERT_TRUE(std::isfinite(v));
    const int bs = static_cast<int>(type_traits(b.type)->block_size);
    const double r = rel_rmse(x, y);
    const double w = worst_block(x, y, std::max(bs, 32));
    EXPECT_LT(r, dist == 3 ? b.outlier_rmse : b.rel_rmse)
        << type_name(b.type) << " distribution " << dist;
    EXPECT_LT(w, b.block_max) << type_name(b.type) << " distribution " << dist;
    // Zeros stay zeros.
    std::vector<float> z(n, 0.0f);
    for (float v : roundtrip(b.type, z)) ASSERT_EQ(v, 0.0f) << type_name(b.type);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, RoundTrip,
    // Bounds are ~1.3x the values measured with these seeds.
    ::testing::Values(
        Bound{GgmlType::kF16, 3e-4, 3e-4, 6e-4}, Bound{GgmlType::kBF16, 2.4e-3, 2.2e-3, 5e-3},
        Bound{GgmlType::kQ8_0, 7e-3, 0.015, 5.5e-3}, Bound{GgmlType::kQ8_1, 7e-3, 0.015, 5.5e-3},
        Bound{GgmlType::kQ8_K, 9.5e-3, 0.036, 5e-3}, Bound{GgmlType::kQ4_0, 0.11, 0.20, 0.16},
        Bound{GgmlType::kQ4_1, 0.10, 0.14, 0.085}, Bound{GgmlType::kQ5_0, 0.055, 0.12, 0.08},
        Bound{GgmlType::kQ5_1, 0.05, 0.067, 0.042}, Bound{GgmlType::kQ4_K, 0.093, 0.128, 0.10},
        Bound{GgmlType::kQ5_K, 0.046, 0.064, 0.049}, Bound{GgmlType::kQ6_K, 0.023, 0.043, 0.026}),
    [](const ::testing::TestParamInfo<Bound>& info) {
      return std::string(type_name(info.param.type));
    });

}  // namespace
}  // namespace edgelm
