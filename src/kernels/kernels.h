// Op table for the transformer's hot loops. Two implementations: ref/ (portable scalar code,
// the fallback and the test oracle) and simd/ (Highway, runtime dispatch over AVX2, AVX-512,
// VNNI, NEON, SVE). Products follow ggml: activations are first quantized to the weight type's
// "vec_dot type" (F16 for F16 weights, Q8_0 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K for K-quants,
// F32 for F32, BF16 for BF16), then dotted block by block with integer arithmetic.
// (ggml pairs Q4_1/Q5_1 with Q8_1; edgelm uses Q8_0 and computes their min term from the exact
// integer sum of the activation quants, so it does not carry Q8_1's fp16-rounded sum.)
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
#include "quant/repack.h"
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
  // Optional (may be nullptr; added after the fields above): y[r] = vec_dot(wt, n,
  // w + r * row_stride, xq) for r in [0, nrows), bit-identical to vec_dot. matmul uses it when
  // set. ref_ops() leaves it null (ref::vec_dot_rows exists), so a table copied from ref_ops()
  // must set it together with vec_dot.
  void (*vec_dot_rows)(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                       const void* xq, float* y) = nullptr;
  // Optional (may be nullptr; added after vec_dot_rows): the batched product for prefill,
  // y[c * y_stride + r] = vec_dot(wt, n, w + r * w_stride, xq + c * x_stride) for r in
  // [0, nrows), c in [0, ncols), equal to vec_dot up to float summation order (tiled register
  // kernels reuse each weight block for several activation rows). matmul uses it for m > 1.
  void (*gemm_tile)(GgmlType wt, int64_t n, const void* w, size_t w_stride, int64_t nrows,
                    const void* xq, size_t x_stride, int64_t ncols, float* y,
                    size_t y_stride) = nullptr;
  // Optional (may be nullptr; added after gemm_tile): products on weights repacked at load
  // (quant/repack.h). packed_layout(wt) is the layout these kernels multiply faster than the
  // ggml rows (kNone: keep the file's layout; the loader asks best_ops()).
  PackedLayout (*packed_layout)(GgmlType wt) = nullptr;
  // y[r] for the rows of `ngroups` whole groups starting at w, equal to vec_dot on the unpacked
  // rows up to float summation order. Null: dot_rows() unpacks row by row (slow, exact).
  void (*vec_dot_packed)(PackedLayout layout, int64_t n, const void* w, int64_t ngroups,
                         const void* xq, float* y) = nullptr;
  // Batched: y[c * y_stride + r] for the rows of ngroups groups and ncols activation rows.
  void (*gemm_packed)(PackedLayout layout, int64_t n, const void* w, int64_t ngroups,
                      const void* xq, size_t x_stride, int64_t ncols, float* y,
                      size_t y_stride) = nullptr;
};

// Whether ops.vec_dot accepts weights of type wt (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q4_K, Q5_K, Q6_K). Check at load time; an unsupported type in vec_dot aborts.
bool vec_dot_supported(GgmlType wt);

// The scalar reference: exact integer block sums, block scaling and accumulation in double
// (the oracle for tests), rms_norm/softmax/swiglu/axpy evaluated in double.
const Ops& ref_ops();
// Best implementation for this CPU: the SIMD table when one is linked in (and the environment
// variable EDGELM_KERNELS is not "ref"), else ref_ops().
const Ops& best_ops();
// The SIMD table, defined in simd/dispatch.cpp; a weak fallback returning nullptr
// (weak-simd-hook.cpp) keeps builds without simd/ linking.
const Ops* simd_ops_or_null();

// Y[m, rows] = X[m, n] * W^T, W stored as `rows` rows of n elements of type wt (ggml layout:
// ne0 = n, ne1 = rows). Quantizes X once, splits rows (and m for prefill) across the pool.
// `scratch` grows as needed for the quantized activations.
// `layout` says how W is stored (kNone: ggml rows; else repacked at load, quant/repack.h).
void matmul(const Ops& ops, ThreadPool& pool, GgmlType wt, const void* w, int64_t rows, int64_t n,
            const float* x, int64_t m, float* y, std::vector<uint8_t>& scratch,
            PackedLayout layout = PackedLayout::kNone);

// y[r] = product of row r of W (rows rows of n elements of type wt, stored in `layout`) with
// one activation row quantized to vec_dot_type(wt), for r in [r0, r1). Whole packed groups go
// to ops.vec_dot_packed; rows of a group cut by r0/r1 (and every row when the table has no
// packed kernel) are unpacked one at a time and go to ops.vec_dot.
void dot_rows(const Ops& ops, GgmlType wt, PackedLayout layout, int64_t n, const void* w,
              int64_t rows, int64_t r0, int64_t r1, const void* xq, float* y);

}  // namespace edgelm
