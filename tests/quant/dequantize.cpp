// Dequantization of hand-built blocks: the bytes are assembled here from each format's
// description (one element at a time, independently of src/quant), and the expected floats are
// computed from the format's formula. Values are chosen so that the results are exact floats.
// A second set of tests fills blocks with random bytes and checks bit-exactness with the formula
// evaluated in ggml's float operation order.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

constexpr uint16_t kHalf0_5 = 0x3800, kHalf0_25 = 0x3400, kHalf0_125 = 0x3000;
constexpr uint16_t kHalfM1_5 = 0xBE00, kHalfM2 = 0xC000, kHalf0_0625 = 0x2C00;

std::vector<float> deq(GgmlType t, const void* blocks, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), -12345.0f);
  dequantize_row(t, blocks, out.data(), n);
  return out;
}

// --- element accessors written from the layout descriptions ---------------------------------

// 32-element blocks: elements j and j+16 share byte j (low / high nibble).
void set_q4(uint8_t* qs, int e, int q) {
  if (e < 16)
    qs[e] = static_cast<uint8_t>((qs[e] & 0xF0) | (q & 15));
  else
    qs[e - 16] = static_cast<uint8_t>((qs[e - 16] & 0x0F) | ((q & 15) << 4));
}
int get_q4(const uint8_t* qs, int e) { return e < 16 ? qs[e] & 15 : qs[e - 16] >> 4; }
// 5th bit of element e: bit e of the little-endian u32 qh.
void set_q5(uint8_t* qs, uint8_t* qh, int e, int q) {
  set_q4(qs, e, q);
  qh[e / 8] = static_cast<uint8_t>((qh[e / 8] & ~(1u << (e % 8))) | (((q >> 4) & 1u) << (e % 8)));
}
int get_q5(const uint8_t* qs, const uint8_t* qh, int e) {
  return get_q4(qs, e) | (((qh[e / 8] >> (e % 8)) & 1) << 4);
}
// Q4_K / Q5_K: 6-bit scale and min of sub-block j.
void set_k4_scale_min(uint8_t* s, int j, int sc, int m) {
  if (j < 4) {
    s[j] = static_cast<uint8_t>((s[j] & 0xC0) | sc);
    s[j + 4] = static_cast<uint8_t>((s[j + 4] & 0xC0) | m);
  } else {
    s[j + 4] = static_cast<uint8_t>((sc & 15) | ((m & 15) << 4));
    s[j - 4] = static_cast<uint8_t>((s[j - 4] & 0x3F) | ((sc >> 4) << 6));
    s[j] = static_cast<uint8_t>((s[j] & 0x3F) | ((m >> 4) << 6));
  }
}
void get_k4_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
// Low 4 bits of element e of a 256 super-block: chunk k = e/64 owns qs[32k..32k+31]; the first
// 32 elements of the chunk are the low nibbles, the next 32 the high nibbles.
void set_k4(uint8_t* qs, int e, int q) {
  const int k = e / 64, r = e % 64;
  uint8_t& b = qs[32 * k + r % 32];
  b = r < 32 ? static_cast<uint8_t>((b & 0xF0) | (q & 15))
             : static_cast<uint8_t>((b & 0x0F) | ((q & 15) << 4));
}
int get_k4(const uint8_t* qs, int e) {
  const int k = e / 64, r = e % 64;
  const uint8_t b = qs[32 * k + r % 32];
  return r < 32 ? b & 15 : b >> 4;
}
int k5_bit(int e) { return 2 * (e / 64) + ((e % 64) >= 32 ? 1 : 0); }
void set_k5(uint8_t* qs, uint8_t* qh, int e, int q) {
  set_k4(qs, e, q);
  uint8_t& h = qh[e % 32];
  h = static_cast<uint8_t>((h & ~(1u << k5_bit(e))) | (((q >> 4) & 1u) << k5_bit(e)));
}
int get_k5(const uint8_t* qs, const uint8_t* qh, int e) {
  return get_k4(qs, e) | (((qh[e % 32] >> k5_bit(e)) & 1) << 4);
}
// Q6_K: half h = e/128, group g = (e%128)/32 and lane l = e%32.
void set_q6(BlockQ6_K& b, int e, int q) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  uint8_t& lo = b.ql[64 * h + l + (g % 2) * 32];
  lo = g < 2 ? static_cast<uint8_t>((lo & 0xF0) | (q & 15))
             : static_cast<uint8_t>((lo & 0x0F) | ((q & 15) << 4));
  uint8_t& hi = b.qh[32 * h + l];
  hi = static_cast<uint8_t>((hi & ~(3u << (2 * g))) | (((q >> 4) & 3u) << (2 * g)));
}
int get_q6(const BlockQ6_K& b, int e) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  const uint8_t lo = b.ql[64 * h + l + (g % 2) * 32];
  return (g < 2 ? lo & 15 : lo >> 4) | (((b.qh[32 * h + l] >> (2 * g)) & 3) << 4);
}

const int kSc[8] = {1, 17, 33, 63, 5, 45, 60, 2};
const int kMn[8] = {0, 9, 63, 31, 48, 7, 16, 63};

// --- hand-built blocks --------------------------------------------------------------------------

TEST(Dequantize, Q4_0HandBlocks) {
  BlockQ4_0 b[2] = {};
  b[0].d = kHalf0_5;
  b[1].d = kHalfM2;
  int q[64];
  for (int e = 0; e < 64; ++e) {
    q[e] = (e * 7 + 3) % 16;
    set_q4(b[e / 32].qs, e % 32, q[e]);
  }
  const auto y = deq(GgmlType::kQ4_0, b, 64);
  for (int e = 0; e < 64; ++e) EXPECT_EQ(y[e], (q[e] - 8) * (e < 32 ? 0.5f : -2.0f)) << e;
  EXPECT_EQ(y[0], -2.5f);                 // q = 3
  EXPECT_EQ(y[17], 1.0f);                 // q = 122 % 16 = 10
  EXPECT_EQ(y[33], -4.0f);                // q = 234 % 16 = 10, d = -2
  EXPECT_EQ(b[0].qs[1], (10 << 4) | 10);  // elements 1 (q=10) and 17 (q=10)
}

TEST(Dequantize, Q4_1HandBlock) {
  BlockQ4_1 b = {};
  b.d = kHalf0_25;
  b.m = kHalfM1_5;
  int q[32];
  for (int e = 0; e < 32; ++e) set_q4(b.qs, e, q[e] = (e * 5 + 2) % 16);
  const auto y = deq(GgmlType::kQ4_1, &b, 32);
  for (int e = 0; e < 32; ++e) EXPECT_EQ(y[e], q[e] * 0.25f - 1.5f) << e;
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[3], -1.25f);
}

TEST(Dequantize, Q5_0HandBlock) {
  BlockQ5_0 b = {};
  b.d = kHalf0_5;
  int q[32];
  for (int e = 0; e < 32; ++e) set_q5(b.qs, b.qh, e, q[e] = (e * 11 + 5) % 32);
  const auto y = deq(GgmlType::kQ5_0, &b, 32);
  for (int e = 0; e < 32; ++e) EXPECT_EQ(y[e], (q[e] - 16) * 0.5f) << e;
  EXPECT_EQ(y[0], -5.5f);   // q = 5
  EXPECT_EQ(y[20], -7.5f);  // q = 1
  EXPECT_EQ(y[31], 5.0f);   // q = 26
}

TEST(Dequantize, Q5_1HandBlock) {
  BlockQ5_1 b = {};
  b.d = kHalf0_25;
  b.m = kHalfM2;
  int q[32];
  for (int e = 0; e < 32; ++e) set_q5(b.qs, b.qh, e, q[e] = (e * 13 + 7) % 32);
  const auto y = deq(GgmlType::kQ5_1, &b, 32);
  for (int e = 0; e < 32; ++e) EXPECT_EQ(y[e], q[e] * 0.25f - 2.0f) << e;
  EXPECT_EQ(y[0], -0.25f);  // q = 7
  EXPECT_EQ(y[25], 1.0f);   // q = 12
}

TEST(Dequantize, Q8_0AndQ8_1HandBlocks) {
  BlockQ8_0 b = {};
  BlockQ8_1 c = {};
  b.d = c.d = kHalf0_125;
  c.s = 0x7BFF;  // s is not used by dequantization
  for (int j = 0; j < 32; ++j) b.qs[j] = c.qs[j] = static_cast<int8_t>(j * 8 - 128);
  const auto y = deq(GgmlType::kQ8_0, &b, 32);
  const auto z = deq(GgmlType::kQ8_1, &c, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[j], (j * 8 - 128) * 0.125f);
    EXPECT_EQ(z[j], y[j]);
  }
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[31], 15.0f);
}

TEST(Dequantize, Q4_KHandBlock) {
  BlockQ4_K b = {};
  b.d = kHalf0_25;
  b.dmin = kHalf0_125;
  for (int j = 0; j < 8; ++j) set_k4_scale_min(b.scales, j, kSc[j], kMn[j]);
  int q[256];
  for (int e = 0; e < 256; ++e) set_k4(b.qs, e, q[e] = (e * 5 + 1) % 16);
  const auto y = deq(GgmlType::kQ4_K, &b, 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.25 * kSc[e / 32] * q[e] - 0.125 * kMn[e / 32]) << e;
  EXPECT_EQ(y[0], 0.25f);
  EXPECT_EQ(y[160], 10.375f);  // sub-block 5: sc 45 (high bits used), m 7, q 1
  EXPECT_EQ(y[255], -1.875f);  // sub-block 7: sc 2, m 63, q 12
}

TEST(Dequantize, K4ScaleMinPackingAllValues) {
  for (int j = 0; j < 8; ++j) {
    for (int sc = 0; sc < 64; ++sc) {
      for (int m = 0; m < 64; m += 3) {
        uint8_t s[12];
        std::memset(s, 0xA5, sizeof(s));
        set_k4_scale_min(s, j, sc, m);
        uint8_t dsc, dm;
        get_scale_min_k4(j, s, &dsc, &dm);
        ASSERT_EQ(dsc, sc);
        ASSERT_EQ(dm, m);
      }
    }
  }
}

TEST(Dequantize, Q5_KHandBlock) {
  BlockQ5_K b = {};
  b.d = kHalf0_125;
  b.dmin = kHalf0_0625;
  for (int j = 0; j < 8; ++j) set_k4_scale_min(b.scales, j, kSc[j], kMn[j]);
  int q[256];
  for (int e = 0; e < 256; ++e) set_k5(b.qs, b.qh, e, q[e] = (e * 7 + 3) % 32);
  const auto y = deq(GgmlType::kQ5_K, &b, 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.125 * kSc[e / 32] * q[e] - 0.0625 * kMn[e / 32]) << e;
  EXPECT_EQ(y[100], 242.1875f);  // sc 63, m 31, q 31
  EXPECT_EQ(y[200], 201.5f);     // sc 60, m 16, q 27
}

TEST(Dequantize, Q6_KHandBlock) {
  BlockQ6_K b = {};
  b.d = kHalf0_0625;
  const int sc[16] = {-128, 127, 1, -1, 5, -7, 64, -64, 100, 3, 0, 33, -33, 90, -90, 11};
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(sc[j]);
  int q[256];
  for (int e = 0; e < 256; ++e) set_q6(b, e, q[e] = (e * 13 + 9) % 64);
  for (int e = 0; e < 256; ++e) ASSERT_EQ(get_q6(b, e), q[e]);
  const auto y = deq(GgmlType::kQ6_K, &b, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.0625 * sc[e / 16] * (q[e] - 32)) << e;
  EXPECT_EQ(y[0], 184.0f);    // sc -128, q 9
  EXPECT_EQ(y[130], 18.75f);  // sc 100, q 35
  EXPECT_EQ(y[175], 0.0f);    // sc 0
}

TEST(Dequantize, Q8_KHandBlock) {
  BlockQ8_K b = {};
  b.d = 0.375f;
  for (int j = 0; j < 256; ++j) b.qs[j] = static_cast<int8_t>((j * 3) % 256 - 128);
  const auto y = deq(GgmlType::kQ8_K, &b, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.375f * ((j * 3) % 256 - 128));
  EXPECT_EQ(y[0], -48.0f);
}

TEST(Dequantize, FloatRows) {
  const float f[4] = {1.5f, -0.0f, 3e38f, -7.25f};
  EXPECT_EQ(deq(GgmlType::kF32, f, 4), std::vector<float>(f, f + 4));
  const uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7BFF};
  EXPECT_EQ(deq(GgmlType::kF16, h, 4), (std::vector<float>{1.0f, -2.0f, 0x1p-24f, 65504.0f}));
  const uint16_t b[3] = {0x3F80, 0xC049, 0x0000};
  const auto y = deq(GgmlType::kBF16, b, 3);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.140625f);
  EXPECT_EQ(y[2], 0.0f);
}

// --- random bytes: bit-exact with the formula in ggml's operation order --------------------------

class RandomBlocks : public ::testing::Test {
 protected:
  std::mt19937 rng{1234};
  uint8_t byte() { return static_cast<uint8_t>(rng() & 0xFF); }
  void fill(void* p, size_t n) {
    auto* b = static_cast<uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) b[i] = byte();
  }
  uint16_t half() {  // finite, normal, either sign, magnitude 2^-10 .. 2^6
    const uint32_t exp = 5 + rng() % 16;
    return static_cast<uint16_t>(((rng() & 1) << 15) | (exp << 10) | (rng() & 0x3FF));
  }
  static constexpr int kBlocks = 24;
};

TEST_F(RandomBlocks, Q4_0AndQ4_1) {
  std::vector<BlockQ4_0> a(kBlocks);
  std::vector<BlockQ4_1> b(kBlocks);
  fill(a.data(), a.size() * sizeof(a[0]));
  fill(b.data(), b.size() * sizeof(b[0]));
  for (auto& x : a) x.d = half();
  for (auto& x : b) x.d = half(), x.m = half();
  const auto ya = deq(GgmlType::kQ4_0, a.data(), kBlocks * 32);
  const auto yb = deq(GgmlType::kQ4_1, b.data(), kBlocks * 32);
  for (int i = 0; i < kBlocks; ++i) {
    for (int e = 0; e < 32; ++e) {
      ASSERT_EQ(ya[i * 32 + e], (get_q4(a[i].qs, e) - 8) * fp16_to_fp32(a[i].d));
      ASSERT_EQ(yb[i * 32 + e], get_q4(b[i].qs, e) * fp16_to_fp32(b[i].d) + fp16_to_fp32(b[i].m));
    }
  }
}

TEST_F(RandomBlocks, Q5_0AndQ5_1) {
  std::vector<BlockQ5_0> a(kBlocks);
  std::vector<BlockQ5_1> b(kBlocks);
  fill(a.data(), a.size() * sizeof(a[0]));
  fill(b.data(), b.size() * sizeof(b[0]));
  for (auto& x : a) x.d = half();
  for (auto& x : b) x.d = half(), x.m = half();
  const auto ya = deq(GgmlType::kQ5_0, a.data(), kBlocks * 32);
  const auto yb = deq(GgmlType::kQ5_1, b.data(), kBlocks * 32);
  for (int i = 0; i < kBlocks; ++i) {
    for (int e = 0; e < 32; ++e) {
      ASSERT_EQ(ya[i * 32 + e], (get_q5(a[i].qs, a[i].qh, e) - 16) * fp16_to_fp32(a[i].d));
      ASSERT_EQ(yb[i * 32 + e],
                get_q5(b[i].qs, b[i].qh, e) * fp16_to_fp32(b[i].d) + fp16_to_fp32(b[i].m));
    }
  }
}

TEST_F(RandomBlocks, Q8_0) {
  std::vector<BlockQ8_0> a(kBlocks);
  fill(a.data(), a.size() * sizeof(a[0]));
  for (auto& x : a) x.d = half();
  const auto y = deq(GgmlType::kQ8_0, a.data(), kBlocks * 32);
  for (int i = 0; i < kBlocks; ++i)
    for (int e = 0; e < 32; ++e) ASSERT_EQ(y[i * 32 + e], a[i].qs[e] * fp16_to_fp32(a[i].d));
}

TEST_F(RandomBlocks, Q4_KAndQ5_K) {
  std::vector<BlockQ4_K> a(kBlocks / 4);
  std::vector<BlockQ5_K> b(kBlocks / 4);
  fill(a.data(), a.size() * sizeof(a[0]));
  fill(b.data(), b.size() * sizeof(b[0]));
  for (auto& x : a) x.d = half(), x.dmin = half();
  for (auto& x : b) x.d = half(), x.dmin = half();
  const int64_t n = static_cast<int64_t>(a.size()) * 256;
  const auto ya = deq(GgmlType::kQ4_K, a.data(), n);
  const auto yb = deq(GgmlType::kQ5_K, b.data(), n);
  for (size_t i = 0; i < a.size(); ++i) {
    for (int e = 0; e < 256; ++e) {
      int sc, m;
      get_k4_scale_min(a[i].scales, e / 32, &sc, &m);
      float d1 = fp16_to_fp32(a[i].d) * sc, m1 = fp16_to_fp32(a[i].dmin) * m;
      ASSERT_EQ(ya[i * 256 + e], d1 * get_k4(a[i].qs, e) - m1) << i << " " << e;
      get_k4_scale_min(b[i].scales, e / 32, &sc, &m);
      d1 = fp16_to_fp32(b[i].d) * sc;
      m1 = fp16_to_fp32(b[i].dmin) * m;
      ASSERT_EQ(yb[i * 256 + e], d1 * get_k5(b[i].qs, b[i].qh, e) - m1) << i << " " << e;
    }
  }
}

TEST_F(RandomBlocks, Q6_KAndQ8_K) {
  std::vector<BlockQ6_K> a(kBlocks / 4);
  std::vector<BlockQ8_K> b(kBlocks / 4);
  fill(a.data(), a.size() * sizeof(a[0]));
  fill(b.data(), b.size() * sizeof(b[0]));
  for (auto& x : a) x.d = half();
  for (auto& x : b) x.d = fp16_to_fp32(half()) * 1.000123f;
  const int64_t n = static_cast<int64_t>(a.size()) * 256;
  const auto ya = deq(GgmlType::kQ6_K, a.data(), n);
  const auto yb = deq(GgmlType::kQ8_K, b.data(), n);
  for (size_t i = 0; i < a.size(); ++i) {
    for (int e = 0; e < 256; ++e) {
      const float dsc = fp16_to_fp32(a[i].d) * a[i].scales[e / 16];
      ASSERT_EQ(ya[i * 256 + e], dsc * (get_q6(a[i], e) - 32)) << i << " " << e;
      ASSERT_EQ(yb[i * 256 + e], b[i].d * b[i].qs[e]);
    }
  }
}

// --- checked API -------------------------------------------------------------------------------

TEST(DequantizeTensor, ValidatesInput) {
  std::vector<uint8_t> bytes(row_size(GgmlType::kQ4_K, 512));
  std::vector<float> out(512);
  EXPECT_TRUE(dequantize_tensor(GgmlType::kQ4_K, bytes.data(), bytes.size(), 512, out.data()).ok());
  const Status short_buf =
      dequantize_tensor(GgmlType::kQ4_K, bytes.data(), bytes.size() - 1, 512, out.data(), "w");
  EXPECT_EQ(short_buf.code(), StatusCode::kDataLoss);
  EXPECT_NE(short_buf.message().find("'w'"), std::string::npos) << short_buf.message();
  EXPECT_NE(short_buf.message().find("288"), std::string::npos) << short_buf.message();
  EXPECT_EQ(dequantize_tensor(GgmlType::kQ4_K, bytes.data(), bytes.size(), 100, out.data()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(dequantize_tensor(GgmlType::kQ2_K, bytes.data(), bytes.size(), 256, out.data()).code(),
            StatusCode::kUnimplemented);
  auto v = dequantize_tensor(GgmlType::kQ8_0, bytes.data(), bytes.size(), 64);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 64u);
  std::vector<uint8_t> q(row_size(GgmlType::kQ8_0, 64));
  EXPECT_TRUE(quantize_tensor(GgmlType::kQ8_0, out.data(), 64, q.data(), q.size()).ok());
  EXPECT_FALSE(quantize_tensor(GgmlType::kQ8_0, out.data(), 64, q.data(), q.size() - 2).ok());
}

TEST(DequantizeTensor, SupportTableMatchesTypeTraits) {
  const GgmlType supported[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,
                                GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                                GgmlType::kQ8_1, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                                GgmlType::kQ8_K};
  for (GgmlType t : supported) {
    EXPECT_TRUE(can_dequantize(t)) << type_name(t);
    EXPECT_TRUE(can_quantize(t)) << type_name(t);
    ASSERT_NE(type_traits(t), nullptr);
    EXPECT_TRUE(type_traits(t)->can_dequantize) << type_name(t);
  }
  EXPECT_FALSE(can_dequantize(GgmlType::kQ2_K));
  EXPECT_FALSE(can_dequantize(GgmlType::kIQ4_NL));
  // Struct sizes agree with the type table.
  EXPECT_EQ(sizeof(BlockQ4_0), type_traits(GgmlType::kQ4_0)->type_size);
  EXPECT_EQ(sizeof(BlockQ4_1), type_traits(GgmlType::kQ4_1)->type_size);
  EXPECT_EQ(sizeof(BlockQ5_0), type_traits(GgmlType::kQ5_0)->type_size);
  EXPECT_EQ(sizeof(BlockQ5_1), type_traits(GgmlType::kQ5_1)->type_size);
  EXPECT_EQ(sizeof(BlockQ8_0), type_traits(GgmlType::kQ8_0)->type_size);
  EXPECT_EQ(sizeof(BlockQ8_1), type_traits(GgmlType::kQ8_1)->type_size);
  EXPECT_EQ(sizeof(BlockQ4_K), type_traits(GgmlType::kQ4_K)->type_size);
  EXPECT_EQ(sizeof(BlockQ5_K), type_traits(GgmlType::kQ5_K)->type_size);
  EXPECT_EQ(sizeof(BlockQ6_K), type_traits(GgmlType::kQ6_K)->type_size);
  EXPECT_EQ(sizeof(BlockQ8_K), type_traits(GgmlType::kQ8_K)->type_size);
}

}  // namespace
}  // namespace edgelm
