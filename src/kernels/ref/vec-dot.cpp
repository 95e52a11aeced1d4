// Reference dot products of a weight row with a quantized activation row (ggml's
// ggml_vec_dot_<w>_<vec_dot_type> semantics, evaluated exactly per block).
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/ref/ref.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace edgelm::ref {
namespace {

double h2d(uint16_t h) { return static_cast<double>(fp16_to_fp32(h)); }

double dot_f32(int64_t n, const float* w, const float* x) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(w[i]) * x[i];
  return s;
}

double dot_f16(int64_t n, const uint16_t* w, const uint16_t* x) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += h2d(w[i]) * h2d(x[i]);
  return s;
}

double dot_bf16(int64_t n, const uint16_t* w, const uint16_t* x) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += static_cast<double>(bf16_to_fp32(w[i])) * static_cast<double>(bf16_to_fp32(x[i]));
  return s;
}

// Sum of the activation quants of a Q8_0 block (for the min terms of Q4_1/Q5_1).
int q8_sum(const BlockQ8_0& y) {
  int s = 0;
  for (int j = 0; j < kQK8_0; ++j) s += y.qs[j];
  return s;
}

double dot_q4_0(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y) {
  double s = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      sumi += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
      sumi += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + kQK4_0 / 2];
    }
    s += h2d(x[ib].d) * h2d(y[ib].d) * sumi;
  }
  return s;
}

double dot_q4_1(int64_t n, const BlockQ4_1* x, const BlockQ8_0* y) {
  double s = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      sumi += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
      sumi += (x[ib].qs[j] >> 4) * y[ib].qs[j + kQK4_1 / 2];
    }
    const double dy = h2d(y[ib].d);
    s += h2d(x[ib].d) * dy * sumi + h2d(x[ib].m) * dy * q8_sum(y[ib]);
  }
  return s;
}

// 5-bit quant of element j (0..31) of a Q5_0/Q5_1 block.
int q5_value(const uint8_t* qs, uint32_t qh, int j) {
  const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

double dot_q5_0(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y) {
  double s = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < kQK5_0; ++j) sumi += (q5_value(x[ib].qs, qh, j) - 16) * y[ib].qs[j];
    s += h2d(x[ib].d) * h2d(y[ib].d) * sumi;
  }
  return s;
}

double dot_q5_1(int64_t n, const BlockQ5_1* x, const BlockQ8_0* y) {
  double s = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < kQK5_1; ++j) sumi += q5_value(x[ib].qs, qh, j) * y[ib].qs[j];
    const double dy = h2d(y[ib].d);
    s += h2d(x[ib].d) * dy * sumi + h2d(x[ib].m) * dy * q8_sum(y[ib]);
  }
  return s;
}

double dot_q8_0(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y) {
  double s = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
    s += h2d(x[ib].d) * h2d(y[ib].d) * sumi;
  }
  return s;
}

// 5th bit of element l of sub-block j (Q5_K): bit j of qh[l]; Q4_K has none.
int k_high_bit(const BlockQ4_K&, int, int) { return 0; }
int k_high_bit(const BlockQ5_K& b, int j, int l) { return ((b.qh[l] >> j) & 1) << 4; }

// Q4_K and Q5_K share the structure: sum_j sc_j * sum(q * q8) - sum_j m_j * (bsums of j).
template <class Block>
double dot_qk_min(int64_t n, const Block* x, const BlockQ8_K* y) {
  double s = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int64_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[i].scales, &sc, &m);
      const int chunk = j / 2;
      const bool high = (j % 2) == 1;
      int sub = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t b = x[i].qs[32 * chunk + l];
        const int q = (high ? (b >> 4) : (b & 0x0F)) | k_high_bit(x[i], j, l);
        sub += q * y[i].qs[32 * j + l];
      }
      sumi += static_cast<int64_t>(sc) * sub;
      summ += static_cast<int64_t>(m) * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    const double dy = static_cast<double>(y[i].d);
    s += h2d(x[i].d) * dy * static_cast<double>(sumi) -
         h2d(x[i].dmin) * dy * static_cast<double>(summ);
  }
  return s;
}

double dot_q6_k(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y) {
  double s = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      int8_t* o = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        o[l + 0] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int64_t sumi = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sub = 0;
      for (int l = 0; l < 16; ++l) sub += q[16 * j + l] * y[i].qs[16 * j + l];
      sumi += static_cast<int64_t>(x[i].scales[j]) * sub;
    }
    s += h2d(x[i].d) * static_cast<double>(y[i].d) * static_cast<double>(sumi);
  }
  return s;
}

}  // namespace

bool vec_dot_supported(GgmlType wt) {
  switch (wt) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

float vec_dot(GgmlType wt, int64_t n, const void* w, const void* xq) {
  double s = 0;
  switch (wt) {
    case GgmlType::kF32:
      s = dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(xq));
      break;
    case GgmlType::kF16:
      s = dot_f16(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(xq));
      break;
    case GgmlType::kBF16:
      s = dot_bf16(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(xq));
      break;
    case GgmlType::kQ4_0:
      s = dot_q4_0(n, static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(xq));
      break;
    case GgmlType::kQ4_1:
      s = dot_q4_1(n, static_cast<const BlockQ4_1*>(w), static_cast<const BlockQ8_0*>(xq));
      break;
    case GgmlType::kQ5_0:
      s = dot_q5_0(n, static_cast<const BlockQ5_0*>(w), static_cast<const BlockQ8_0*>(xq));
      break;
    case GgmlType::kQ5_1:
      s = dot_q5_1(n, static_cast<const BlockQ5_1*>(w), static_cast<const BlockQ8_0*>(xq));
      break;
    case GgmlType::kQ8_0:
      s = dot_q8_0(n, static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(xq));
      break;
    case GgmlType::kQ4_K:
      s = dot_qk_min(n, static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(xq));
      break;
    case GgmlType::kQ5_K:
      s = dot_qk_min(n, static_cast<const BlockQ5_K*>(w), static_cast<const BlockQ8_K*>(xq));
      break;
    case GgmlType::kQ6_K:
      s = dot_q6_k(n, static_cast<const BlockQ6_K*>(w), static_cast<const BlockQ8_K*>(xq));
      break;
    default:
      std::fprintf(stderr, "edgelm: vec_dot: unsupported weight type %s (%u)\n", type_name(wt),
                   static_cast<unsigned>(wt));
      std::abort();
  }
  return static_cast<float>(s);
}

void vec_dot_rows(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                  const void* xq, float* y) {
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < nrows; ++r)
    y[r] = vec_dot(wt, n, base + static_cast<size_t>(r) * row_stride, xq);
}

}  // namespace edgelm::ref
