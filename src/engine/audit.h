// Load audit: for every tensor of a loaded model, the type stored in the file, the type the
// kernels actually execute, the bytes mapped from the file and how many of them are resident
// in RAM (mincore on the mapping), and whether the loader converted the tensor at load (no
// kernel for its type on this CPU, or one disabled with EDGELM_DISABLE_KERNEL). The summary sets
// the memory the file promises (its tensor bytes) against what the process actually holds
// (mapped bytes still used + heap copies of converted tensors). `edgelm audit` prints it.
//
//   ASSIGN_OR_RETURN(auto model, Model::load("model.gguf", {.log_summary = false}));
//   LoadAudit a = audit_model(*model);
//   std::cout << a.to_text();             // or a.to_json().dump(2)
//   if (a.n_converted > 0) ...            // what --strict-quant refuses
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/types.h"

namespace edgelm {

struct TensorAudit {
  std::string name;
  std::string shape;  // "[256, 32000]"
  GgmlType stored_type = GgmlType::kF32;
  GgmlType exec_type = GgmlType::kF32;
  bool used = false;       // bound by the model (false: in the file but never read)
  bool converted = false;  // copied to exec_type at load
  // Repacked at load into an interleaved layout of the same type (a heap copy of the same size;
  // same precision, only the byte order changes): "q4_0x16"; kNone otherwise.
  PackedLayout layout = PackedLayout::kNone;
  std::string note;           // the loader's reason for a conversion
  size_t file_bytes = 0;      // bytes in the file (stored type)
  size_t exec_bytes = 0;      // bytes the kernels read (exec type; heap copy when converted)
  size_t mapped_bytes = 0;    // bytes of the file mapping this tensor spans
  size_t resident_bytes = 0;  // of mapped_bytes, in RAM now (page granularity, mincore)
};

struct LoadAudit {
  std::string path;
  std::string kernels;    // op table the model runs with ("simd:AVX2", "ref")
  std::string file_type;  // general.file_type rendered ("MOSTLY_Q4_K_M (15)"), "" if absent
  std::vector<TensorAudit> tensors;  // file order
  size_t file_size = 0;
  size_t expected_bytes = 0;  // tensor bytes of the used tensors as stored in the file
  size_t actual_bytes = 0;    // mapped bytes still used + heap bytes of converted tensors
  size_t converted_heap_bytes = 0;
  size_t repacked_heap_bytes = 0;  // heap bytes of repacked tensors (also in actual_bytes)
  size_t n_repacked = 0;
  size_t resident_bytes = 0;  // resident mapped bytes of all tensors
  size_t n_used = 0;
  size_t n_converted = 0;
  bool resident_known = true;  // false when mincore failed (then resident_bytes is 0)

  std::string to_text() const;
  nlohmann::json to_json() const;
};

// Audits a loaded model (cheap: no tensor data is read; mincore only).
LoadAudit audit_model(const Model& model);

// llama.cpp's name for a general.file_type value ("MOSTLY_Q4_K_M"); "unknown" if not known.
const char* file_type_name(uint32_t file_type);

}  // namespace edgelm
