// IEEE 754 half precision (ggml's F16) and bfloat16 (ggml's BF16) conversions, bit-exact with
// ggml's scalar helpers: fp32 -> fp16 rounds to nearest even (overflow -> inf, NaN -> quiet NaN
// 0x7E00 with the sign kept, subnormals kept); fp32 -> bf16 rounds to nearest even and keeps
// NaN a (quiet) NaN. fp16/bf16 -> fp32 are exact.
//
//   uint16_t h = fp32_to_fp16(0.1f);       // 0x2E66
//   float f = fp16_to_fp32(h);             // 0.0999755859375f
//   uint16_t b = fp32_to_bf16(1.0f);       // 0x3F80
//   fp16_to_fp32_row(src, dst, n);         // rows
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace edgelm {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: mant * 2^-24, exact in float.
    bits = sign | std::bit_cast<uint32_t>(static_cast<float>(mant) * 0x1p-24f);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to inf (ties to even)
  if (ax >= 0x38800000u) {                       // normal half (>= 2^-14)
    const uint32_t odd = (ax >> 13) & 1u;
    return sign | static_cast<uint16_t>((ax - (112u << 23) + 0xFFFu + odd) >> 13);
  }
  // Subnormal half (or zero): round |f| * 2^24 to the nearest integer, ties to even. The
  // multiplication is exact; 1024 correctly becomes the smallest normal (0x0400).
  const float scaled = std::bit_cast<float>(ax) * 0x1p24f;
  return sign | static_cast<uint16_t>(std::nearbyint(scaled));
}

inline float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 64u);  // quiet NaN
  return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);
void bf16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_bf16_row(const float* src, uint16_t* dst, int64_t n);

}  // namespace edgelm
