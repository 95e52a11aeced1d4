// GGUF v3 writer: metadata and tensors in ggml block layouts, aligned as llama.cpp expects.
// Used by tests (tiny random models), quantize and delta tools. Writes atomically
// (temporary file + rename), so a failed write never leaves a half file at `path`.
//
//   GgufWriter w;
//   w.set_string("general.architecture", "llama");
//   w.set_u32("llama.block_count", 2);
//   w.add_tensor("token_embd.weight", GgmlType::kF16, {256, 32000}, bytes);
//   RETURN_IF_ERROR(w.write("tiny.gguf"));
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "quant/types.h"

namespace edgelm {

class GgufWriter {
 public:
  GgufWriter() = default;

  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_u8(const std::string& key, const std::vector<uint8_t>& v);
  // Copies one value (any type, arrays included) from a parsed file.
  void set_value(const std::string& key, const GgufValue& v);
  void set_alignment(uint32_t alignment);  // also written as general.alignment

  // dims: ne[0] first. data must hold exactly the bytes of that shape in `type`; copied.
  Status add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims,
                    std::span<const uint8_t> data);

  std::vector<uint8_t> to_bytes() const;
  Status write(const std::string& path) const;

 private:
  struct Kv {
    std::string key;
    std::vector<uint8_t> encoded;  // type tag + value, GGUF encoding
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  void put(const std::string& key, std::vector<uint8_t> encoded);

  std::vector<Kv> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace edgelm
