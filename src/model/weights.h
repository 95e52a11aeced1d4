// Binds a model's tensors by llama.cpp's names (token_embd.weight, blk.N.attn_q.weight, ...,
// output.weight or tied to token_embd) to pointers into the memory-mapped GGUF file: weights
// are used in place, never copied. Shapes and types are checked here, so the forward pass
// can trust them; errors name the tensor, the expected and the found shape or type.
//
//   ASSIGN_OR_RETURN(Weights w, bind_weights(*file, hparams));
//   const TensorRef& wq = w.layers[0].wq;   // wq.type, wq.data, wq.ne0 (n_embd), wq.ne1 (rows)
//
// A matrix whose type has no product kernel (on this CPU, or disabled with LoadPolicy /
// EDGELM_DISABLE_KERNEL=q4_K,q6_K) is converted once at load to F16 (F32 if F16 is disabled
// too) into memory owned by Weights; every bound tensor gets a TensorLoadRecord saying what was
// stored and what the kernels execute. With LoadPolicy::strict_quant a conversion is an error.
// A matrix whose type the CPU's kernels multiply faster in an interleaved layout (Q4_0 on x86:
// quant/repack.h) is repacked once at load into memory owned by Weights (same bytes, same
// precision, rows reordered in groups; its file pages are then dropped from the resident set);
// LoadPolicy::repack = false or EDGELM_REPACK=0 keeps every matrix in the mapped file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "model/hparams.h"
#include "quant/repack.h"
#include "quant/types.h"

namespace edgelm {

// A view of one tensor in the mapped file. ne0 is the contiguous (row) length, ne1 the rows.
struct TensorRef {
  const GgufTensorInfo* info = nullptr;
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;
  int64_t ne0 = 0;
  int64_t ne1 = 1;
  // kNone: ggml rows (row(i) is valid); else repacked at load: whole groups interleaved, rows
  // past the last whole group in the ggml layout (use kernels' dot_rows / matmul).
  PackedLayout layout = PackedLayout::kNone;

  explicit operator bool() const { return data != nullptr; }
  size_t row_bytes() const { return row_size(type, ne0); }
  const uint8_t* row(int64_t i) const { return data + static_cast<size_t>(i) * row_bytes(); }
  // F32 vectors (norms, biases).
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

struct LayerWeights {
  TensorRef attn_norm;         // [n_embd] F32
  TensorRef wq, wk, wv, wo;    // [n_embd, n_embd_q], [n_embd, n_embd_kv] x2, [n_embd_q, n_embd]
  TensorRef bq, bk, bv;        // optional biases (qwen2: required), F32
  TensorRef ffn_norm;          // [n_embd] F32
  TensorRef ffn_gate, ffn_up;  // [n_embd, n_ff]
  TensorRef ffn_down;          // [n_ff, n_embd]
};

// What the loader did with one bound tensor (see engine/audit.h for the report).
struct TensorLoadRecord {
  std::string name;
  GgmlType stored_type = GgmlType::kF32;      // type in the file
  GgmlType exec_type = GgmlType::kF32;        // type the kernels run on
  size_t stored_bytes = 0;                    // bytes in the file (mapped)
  size_t exec_bytes = 0;                      // bytes the kernels read (== stored unless converted)
  const uint8_t* mapped = nullptr;            // the tensor's bytes in the mapping
  bool converted = false;                     // copied to exec_type at load (heap memory)
  PackedLayout layout = PackedLayout::kNone;  // repacked at load (heap memory, same type)
  std::string reason;                         // why it was converted ("" otherwise)
};

// How the loader treats matrix types.
struct LoadPolicy {
  // Types treated as having no product kernel, in addition to those the kernels lack.
  std::vector<GgmlType> disabled_types = {};
  // A tensor that would be converted at load is an error instead.
  bool strict_quant = false;
  // Repack matrices the kernels multiply faster in an interleaved layout (a heap copy of the
  // same size replaces the mapped pages). EDGELM_REPACK=0 turns it off.
  bool repack = true;
  // disabled_types from EDGELM_DISABLE_KERNEL (comma-separated ggml type names, e.g. "q4_K,q6_K";
  // case-insensitive), repack from EDGELM_REPACK ("0" turns it off). Unknown names are an error
  // naming the variable.
  static StatusOr<LoadPolicy> from_env();
};

struct Weights {
  TensorRef token_embd;   // [n_embd, n_vocab]
  TensorRef output_norm;  // [n_embd] F32
  TensorRef output;       // [n_embd, n_vocab]; == token_embd when tied
  TensorRef rope_freqs;   // optional [n_rot/2] F32 frequency factors (Llama 3.1 style)
  bool tied_output = false;
  std::vector<LayerWeights> layers;
  size_t total_bytes = 0;  // bytes of all bound tensors (tied counted once)
  // One per bound tensor (tied output counted once), in binding order.
  std::vector<TensorLoadRecord> load_records;
  size_t converted_bytes = 0;  // heap bytes of converted tensors
  size_t repacked_bytes = 0;   // heap bytes of repacked tensors
  // Owns the converted and repacked tensors' data (shared so that copies of Weights stay valid),
  // each aligned to a 64-byte cache line.
  std::vector<std::shared_ptr<const uint8_t[]>> converted_storage;
};

// True for the matrix types the forward pass multiplies (types with a vec_dot in kernels).
bool is_supported_matrix_type(GgmlType t);

// Kernel-level support, ignoring any LoadPolicy (what the CPU and the build provide).
bool has_matrix_kernel(GgmlType t);

StatusOr<Weights> bind_weights(const GgufFile& file, const HParams& hp);
StatusOr<Weights> bind_weights(const GgufFile& file, const HParams& hp, const LoadPolicy& policy);

}  // namespace edgelm
