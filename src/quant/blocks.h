// ggml's block layouts, byte-for-byte (ggml-common.h): each struct is one block of a quantized
// row, with fp16 scales stored as raw IEEE half bits (convert with quant/fp16.h). Also the small
// helpers every consumer of K-quants needs (6-bit scale/min unpacking) and the per-format row
// functions behind quant/quant.h's type-dispatched API.
//
//   const auto* b = static_cast<const BlockQ4_0*>(row);       // n/32 blocks
//   float d = fp16_to_fp32(b[0].d);                            // element j<16: ((qs[j]&15)-8)*d
//   uint8_t sc, m; get_scale_min_k4(3, q4k.scales, &sc, &m);   // sub-block 3's scale and min
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace edgelm {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;       // super-block size of the K-quants
inline constexpr int kKScaleSize = 12;  // bytes of packed 6-bit scales+mins in Q4_K/Q5_K

// x = (q - 8) * d; element j<16 in the low nibble of qs[j], element j+16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};
// x = q * d + m; nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];
};
// x = (q - 16) * d; low 4 bits as Q4_0, bit 4 of element j in bit j of qh (little endian u32).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
// x = q * d + m; bits as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
// x = q * d.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};
// x = q * d; s = d * sum(q) (fp16), used by ggml's q4_1/q5_1 products.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_1];
};
// 8 sub-blocks of 32: x = d*sc[j]*q - dmin*m[j], sc/m 6-bit packed in `scales` (see
// get_scale_min_k4). Elements 64k..64k+31 are the low nibbles of qs[32k..32k+31], elements
// 64k+32..64k+63 their high nibbles.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a 5th bit: element 64k+l (l<32) takes bit 2k of qh[l], 64k+32+l bit 2k+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16: x = d * scales[e/16] * (q - 32), q 6 bits. For half h (128 elements)
// and l<32: element 128h+l = low nibble of ql[64h+l] | bits 0-1 of qh[32h+l] << 4;
// +32: low nibble of ql[64h+l+32], qh bits 2-3; +64: high nibble of ql[64h+l], qh bits 4-5;
// +96: high nibble of ql[64h+l+32], qh bits 6-7.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
// Activations for K-quant products: x = d * q (d is fp32); bsums[j] = sum of qs[16j..16j+15].
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// Scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, 6 bits each.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Round to nearest, ties to even (ggml's nearest_int, valid for |x| < 2^22).
inline int nearest_int(float x) { return static_cast<int>(std::lrintf(x)); }

// Per-format rows; n is a multiple of the format's block size. Dequantizers are bit-exact with
// ggml's dequantize_row_*, quantizers follow ggml's quantize_row_*_ref.
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n);

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

}  // namespace edgelm
