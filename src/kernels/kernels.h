// Op table for the transformer's hot loops. Two implementations: ref/ (portable scalar code,
// the fallback and the test oracle) and simd/ (Highway, runtime dispatch over AVX2, AVX-512,
// VNNI, NEON, SVE). Products follow ggml: activations are first quantized to the weight type's
// "vec_dot type" (F16 for F16 weights, Q8_0 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K for K-quants,
// F32 for F32, BF16 for BF16), then dotted block by block with integer arithmetic.
//
//   const Ops& ops = best_ops();                     // or ref_ops()
//   std::vector<uint8_t> xq(row_size(vec_dot_type(wt), n));
//   ops.quantize_row(vec_dot_type(wt), x, xq.data(), n);
//   float y = ops.vec_dot(wt, n, weight_row, xq.data());
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/threadpool.h"
#include "quant/types.h"

namespace edgelm {

// Type the activations are quantized to before a product with weights of type `weight`.
GgmlType vec_dot_type(GgmlType weight);

struct Ops {
  const char* name;  // "ref", "simd:AVX3_ZEN4", ...
  // Quantizes n floats to `type` (one of the vec_dot types). n is a multiple of its block size.
  void (*quantize_row)(GgmlType type, const float* x, void* dst, int64_t n);
  // Dot product of one weight row (type wt) with one activation row already quantized to
  // vec_dot_type(wt). Returns false-free float; unsupported wt is a programming error.
  float (*vec_dot)(GgmlType wt, int64_t n, const void* w, const void* xq);
  // y = x / sqrt(mean(x^2) + eps) * w
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // In place, numerically stable.
  void (*softmax)(float* x, int64_t n);
  // out = silu(gate) * up
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
  // y += a * x
  void (*axpy)(float a, const float* x, float* y, int64_t n);
};

const Ops& ref_ops();
// Best SIMD implementation for this CPU (falls back to ref_ops where one is missing).
const Ops& best_ops();

// Y[m, rows] = X[m, n] * W^T, W stored as `rows` rows of n elements of type wt (ggml layout:
// ne0 = n, ne1 = rows). Quantizes X once, splits rows (and m for prefill) across the pool.
// `scratch` grows as needed for the quantized activations.
void matmul(const Ops& ops, ThreadPool& pool, GgmlType wt, const void* w, int64_t rows, int64_t n,
            const float* x, int64_t m, float* y, std::vector<uint8_t>& scratch);

}  // namespace edgelm
