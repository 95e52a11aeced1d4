// Q5_0 and Q5_1: 32 5-bit quants (low nibbles in qs, 5th bits in the 32-bit qh).
// Q5_0: x = (q - 16) * d. Q5_1: x = q * d + m.
#include <algorithm>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace edgelm {

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  assert(n % kQK5_0 == 0);
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
      const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
      const int32_t x0 = static_cast<int32_t>((x[i].qs[j] & 0x0Fu) | xh0) - 16;
      const int32_t x1 = static_cast<int32_t>((x[i].qs[j] >> 4) | xh1) - 16;
      y[i * kQK5_0 + j] = x0 * d;
      y[i * kQK5_0 + j + kQK5_0 / 2] = x1 * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  assert(n % kQK5_1 == 0);
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
      const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
      const int x0 = static_cast<int>((x[i].qs[j] & 0x0Fu) | xh0);
      const int x1 = static_cast<int>((x[i].qs[j] >> 4) | xh1);
      y[i * kQK5_1 + j] = x0 * d + m;
      y[i * kQK5_1 + j + kQK5_1 / 2] = x1 * d + m;
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  assert(n % kQK5_0 == 0);
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const float* xb = x + i * kQK5_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK5_0; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const uint32_t xi0 = static_cast<uint32_t>(
          std::min(31, static_cast<int>(static_cast<int8_t>(xb[j] * id + 16.5f))));
      const uint32_t xi1 = static_cast<uint32_t>(
          std::min(31, static_cast<int>(static_cast<int8_t>(xb[j + kQK5_0 / 2] * id + 16.5f))));
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << j;
      qh |= ((xi1 & 0x10u) >> 4) << (j + kQK5_0 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  assert(n % kQK5_1 == 0);
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const float* xb = x + i * kQK5_1;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK5_1; ++j) {
      if (xb[j] < min) min = xb[j];
      if (xb[j] > max) max = xb[j];
    }
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const float x0 = (xb[j] - min) * id;
      const float x1 = (xb[j + kQK5_1 / 2] - min) * id;
      const uint32_t xi0 = static_cast<uint8_t>(x0 + 0.5f);
      const uint32_t xi1 = static_cast<uint8_t>(x1 + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << j;
      qh |= ((xi1 & 0x10u) >> 4) << (j + kQK5_1 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

}  // namespace edgelm
