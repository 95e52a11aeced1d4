// The scalar reference kernels behind ref_ops(), callable one by one (SIMD code falls back to
// them per type; tests use them as the oracle). Same contracts as the Ops fields of the same
// name in kernels/kernels.h.
//
//   std::vector<uint8_t> xq(row_size(GgmlType::kQ8_K, n));
//   ref::quantize_row(GgmlType::kQ8_K, x, xq.data(), n);
//   float y = ref::vec_dot(GgmlType::kQ4_K, n, w_row, xq.data());
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace edgelm::ref {

// Any type quant/quant.h can quantize (F32 is a copy).
void quantize_row(GgmlType type, const float* x, void* dst, int64_t n);

// Per block: exact integer sums of quant products, scaled by d_w * d_x in double (exact for the
// 32-blocks), min terms from Q8_K bsums (K-quants) or the exact activation quant sum
// (Q4_1/Q5_1); blocks accumulated in double. F32/F16/BF16: exact products summed in double.
float vec_dot(GgmlType wt, int64_t n, const void* w, const void* xq);
void vec_dot_rows(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                  const void* xq, float* y);
bool vec_dot_supported(GgmlType wt);

// Evaluated in double, rounded once to float.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);  // w may be null
void softmax(float* x, int64_t n);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);

}  // namespace edgelm::ref
