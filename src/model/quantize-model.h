// Model quantization: an F32/F16/BF16 llama-family GGUF to Q8_0, Q4_0, Q4_K_M, Q5_K_M or Q6_K,
// in ggml's block layouts and with llama.cpp's per-tensor mixture rules (llama-quantize without
// an importance matrix), so the output loads in llama.cpp too. Rules, per preset base type B:
//  - 1-D tensors, *_norm.weight and tensors not ending in "weight" are copied;
//  - output.weight (and token_embd.weight when the output is tied to it): Q6_K, or Q8_0 when B
//    is Q8_0 or the row length is not a multiple of B's block;
//  - Q4_K_M / Q5_K_M: attn_v and ffn_down of the "more bits" layers (first and last eighth, and
//    every third in between) get Q6_K;
//  - a row length that is not a multiple of the chosen type's block falls back as llama.cpp
//    does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16);
//  - everything else: B.
// Tensors are written in llama-quantize's order (non-layer tensors by name, then by layer and
// name); general.file_type and general.quantization_version are set. Rows are quantized on a
// thread pool; the output is written atomically (a failure never leaves a partial file).
//
//   QuantizeOptions o;  o.preset = QuantPreset::kQ4_K_M;  o.n_threads = 4;
//   o.progress = [](const QuantizeProgress& p) { ... };
//   ASSIGN_OR_RETURN(QuantizeReport r, quantize_model("in-f16.gguf", "out-q4_k_m.gguf", o));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "quant/types.h"

namespace edgelm {

enum class QuantPreset { kQ8_0, kQ4_0, kQ4_K_M, kQ5_K_M, kQ6_K };

// "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k" (case-insensitive).
std::optional<QuantPreset> quant_preset_from_name(std::string_view name);
const char* quant_preset_name(QuantPreset p);
GgmlType quant_preset_base_type(QuantPreset p);
// llama.cpp's llama_ftype value written to general.file_type (7, 2, 15, 17, 18).
uint32_t quant_preset_file_type(QuantPreset p);

struct TensorQuantPlan {
  std::string name;
  std::vector<int64_t> dims;
  GgmlType src_type = GgmlType::kF32;
  GgmlType dst_type = GgmlType::kF32;
  std::string rule;  // why dst_type ("base", "output", "more bits", "fallback", "copy", ...)
  size_t src_bytes = 0;
  size_t dst_bytes = 0;
};

// The type of every tensor, in output order. Errors: a tensor to quantize whose type is not
// F32/F16/BF16 (requantizing is not supported), unknown layout.
StatusOr<std::vector<TensorQuantPlan>> plan_quantization(const GgufFile& in, QuantPreset preset);

struct QuantizeProgress {
  size_t index = 0;  // 1-based tensor index
  size_t count = 0;
  const TensorQuantPlan* tensor = nullptr;
  size_t bytes_done = 0;  // source bytes processed so far (this tensor included)
  size_t bytes_total = 0;
};

struct QuantizeOptions {
  QuantPreset preset = QuantPreset::kQ8_0;
  int n_threads = 0;                                      // 0: hardware concurrency
  std::function<void(const QuantizeProgress&)> progress;  // after each tensor (may be empty)
  // Activation-aware scaling (model/awq.h): before quantizing tensor NAME, element j of every
  // row is multiplied by column_scales[NAME][j]; 1-D tensor NAME is divided elementwise by
  // norm_divisors[NAME] (the RMSNorm weight feeding those matrices), so the product is unchanged
  // in exact arithmetic.
  std::map<std::string, std::vector<float>> column_scales;
  std::map<std::string, std::vector<float>> norm_divisors;
};

struct QuantizeReport {
  std::vector<TensorQuantPlan> tensors;
  size_t src_bytes = 0;                       // tensor bytes in
  size_t dst_bytes = 0;                       // tensor bytes out
  std::map<std::string, size_t> type_counts;  // dst type name -> tensors
  double seconds = 0;
};

StatusOr<QuantizeReport> quantize_model(const std::string& in_path, const std::string& out_path,
                                        const QuantizeOptions& options);
// Same, from an opened file.
StatusOr<QuantizeReport> quantize_model(const GgufFile& in, const std::string& out_path,
                                        const QuantizeOptions& options);

}  // namespace edgelm
