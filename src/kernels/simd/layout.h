// Private to src/kernels/simd: the ggml block layouts (from quant/blocks.h) under short names,
// and branch-free inline scalar fp16/bf16 conversions usable inside any Highway target
// (results identical to quant/fp16.h; the tests check that).
//
//   const auto* b = static_cast<const simd::BlockQ4_0*>(row);
//   float d = simd::f16_to_f32(b[0].d);
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace edgelm::simd {

inline constexpr int kQK = kQK8_0;  // elements per Q8_0 / Q4_0 block
inline constexpr int kQKK = kQK_K;  // elements per K-quant super-block

using BlockQ8_0 = edgelm::BlockQ8_0;
using BlockQ4_0 = edgelm::BlockQ4_0;
using BlockQ4K = edgelm::BlockQ4_K;
using BlockQ5K = edgelm::BlockQ5_K;
using BlockQ6K = edgelm::BlockQ6_K;
using BlockQ8K = edgelm::BlockQ8_K;

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// IEEE half -> float, exact for all inputs (normals, subnormals, inf, nan).
inline float f16_to_f32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  // Normal/inf/nan: move exponent+mantissa into place, rebias by scaling with 2^-112.
  const float normalized = bits_to_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormal: place mantissa under a magic exponent and subtract it back out.
  const float denormalized = bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t bits =
      sign | (two_w < (1u << 27) ? f32_to_bits(denormalized) : f32_to_bits(normalized));
  return bits_to_f32(bits);
}

// float -> IEEE half, round to nearest even, overflow to inf, nan kept nan.
inline uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u)
    return static_cast<uint16_t>(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520
  if (ax < 0x38800000u) {  // result is subnormal or zero: let the FPU round at the 2^-24 grid
    const float r = bits_to_f32(ax) + 0.5f;  // 0.5 = 2^-1: ulp of 2^-24 units after shift
    return static_cast<uint16_t>(sign | (f32_to_bits(r) - 0x3F000000u));
  }
  const uint32_t mant_odd = (ax >> 13) & 1u;
  const uint32_t rounded = ax + 0xC8000FFFu + mant_odd;  // rebias exponent (-112<<23) + RNE
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; nan stays a (quiet) nan.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace edgelm::simd
