// Block formats, type-dispatched: dequantize ggml-typed data to floats (bit-exact with ggml's
// dequantize_row_*) and quantize floats into ggml blocks (ggml's quantize_row_*_ref semantics).
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K, Q8_K.
// Layouts: quant/blocks.h; fp16/bf16 scalar conversions: quant/fp16.h.
//
//   if (!can_dequantize(t)) return Status::unimplemented(...);
//   std::vector<float> out(n);
//   RETURN_IF_ERROR(dequantize_tensor(t, data, nbytes, n, out.data(), "blk.0.attn_q.weight"));
//   quantize_row(GgmlType::kQ8_K, x, q8k_blocks, 4096);      // activations for K-quant dots
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "quant/types.h"

namespace edgelm {

// Whether dequantize_row / quantize_row handle `type`.
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// n elements (a multiple of the type's block size). Unsupported types or a bad n are programming
// errors (asserted); use the *_tensor functions for checked input.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// Checked: `type` supported, n >= 0 and a multiple of the block size, src_bytes (resp.
// dst_bytes) >= row_size(type, n). Errors name `name` (a tensor name, may be empty).
Status dequantize_tensor(GgmlType type, const void* src, size_t src_bytes, int64_t n, float* dst,
                         std::string_view name = {});
StatusOr<std::vector<float>> dequantize_tensor(GgmlType type, const void* src, size_t src_bytes,
                                               int64_t n, std::string_view name = {});
Status quantize_tensor(GgmlType type, const float* src, int64_t n, void* dst, size_t dst_bytes,
                       std::string_view name = {});

}  // namespace edgelm
