// SIMD kernels (Google Highway, runtime dispatch over AVX2 / AVX-512 / AVX-512 VNNI / NEON /
// SVE ...). best_ops() in kernels.cpp picks these up through simd_ops_or_null(); tests and
// micro-benchmarks use the functions below directly. Each function dispatches to the best
// target compiled in and supported by the CPU (or to the target forced by
// hwy::SetSupportedTargetsForTest); anything without a SIMD version falls back to ref_ops().
//
//   const Ops* ops = simd_ops_or_null();            // "simd:AVX3_DL" on Zen4
//   for (int64_t t : simd::compiled_targets()) {    // tests: every target this CPU runs
//     simd::force_target(t);  ...  simd::force_target(0);
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace edgelm {

// The SIMD op table for the best target (strong definition in simd/dispatch.cpp; kernels.cpp
// may carry a weak fallback returning nullptr). Never nullptr from this definition.
const Ops* simd_ops_or_null();

namespace simd {

// Same contracts as the Ops fields of the same name.
void quantize_row(GgmlType type, const float* x, void* dst, int64_t n);
float vec_dot(GgmlType wt, int64_t n, const void* w, const void* xq);
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void softmax(float* x, int64_t n);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);

// y[r] = vec_dot(wt, n, w + r * row_stride, xq) for r in [0, nrows): one dispatch for many
// rows (what matmul wants per thread).
void vec_dot_rows(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                  const void* xq, float* y);

// Batched product (the Ops::gemm_tile contract): y[c * y_stride + r] = vec_dot(wt, n,
// w + r * w_stride, xq + c * x_stride), computed in register tiles (simd/gemm.cpp).
void gemm_tile(GgmlType wt, int64_t n, const void* w, size_t w_stride, int64_t nrows,
               const void* xq, size_t x_stride, int64_t ncols, float* y, size_t y_stride);
// Whether gemm_tile has a tiled kernel for wt on the current target (else it loops over
// vec_dot_rows, which is still correct).
bool gemm_tiled(GgmlType wt);

// Products on weights repacked at load (the Ops fields of the same name; simd/packed.cpp):
// packed_layout(wt) is kQ4_0x16 for Q4_0 on x86 (AVX2 and up), kQ8_0x16 for Q8_0 on AVX-512
// VNNI, else kNone.
PackedLayout packed_layout(GgmlType wt);
void vec_dot_packed(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                    float* y);
void gemm_packed(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                 size_t x_stride, int64_t ncols, float* y, size_t y_stride);

// Which types / vec_dot types have SIMD code (others go to ref_ops()).
bool has_vec_dot(GgmlType wt);
bool has_quantize_row(GgmlType type);

// Highway target (HWY_AVX2, ...) that the dispatched functions use right now.
int64_t current_target();
// "AVX3_DL", "AVX2", "NEON", ...
const char* target_name(int64_t target);
// Targets compiled into these kernels that this CPU supports, best first.
std::vector<int64_t> compiled_targets();
// Tests: restrict dispatch to `target` (one of compiled_targets()); 0 restores normal dispatch.
void force_target(int64_t target);

// An op table bound to the current target; name is "simd:<target>".
Ops make_ops();

}  // namespace simd
}  // namespace edgelm
