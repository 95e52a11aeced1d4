// GGUF v2/v3 reader. Memory-maps the file and validates every header field, metadata value,
// tensor record and data range before anything is used: a corrupt file gives a Status that
// names the problem (key or tensor, byte offset, expected vs found), never a crash.
//
//   ASSIGN_OR_RETURN(auto file, GgufFile::open("model.gguf"));
//   std::string arch = file->get_string("general.architecture").value_or("?");
//   const GgufTensorInfo* t = file->find_tensor("token_embd.weight");
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mmap.h"
#include "base/status.h"
#include "quant/types.h"

namespace edgelm {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* gguf_type_name(GgufType t);
size_t gguf_scalar_size(GgufType t);  // 0 for string/array

struct GgufValue {
  GgufType type = GgufType::kU8;
  // Scalars (the field matching the type's family is set; ints also mirror into the others).
  uint64_t u64 = 0;
  int64_t i64 = 0;
  double f64 = 0;
  std::string_view str;  // kString: points into the mapped file
  // kArray: element type and count; scalar elements are raw little-endian bytes at array_data,
  // string elements are listed in `strings`.
  GgufType array_type = GgufType::kU8;
  uint64_t array_count = 0;
  const uint8_t* array_data = nullptr;
  std::vector<std::string_view> strings;

  bool is_integer() const;
  bool is_number() const;  // integer, float or bool
  // Element i of a numeric array as double / int64 (caller checks i < array_count).
  double array_f64(uint64_t i) const;
  int64_t array_i64(uint64_t i) const;
  // Short human-readable rendering ("128", "\"llama\"", "[string x 32000]").
  std::string to_string(size_t max_elems = 8) const;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> dims;  // ne[0] (innermost, contiguous) first, as in ggml
  uint64_t offset = 0;        // relative to the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t n_elements = 0;

  int64_t ne(size_t i) const { return i < dims.size() ? dims[i] : 1; }
  // "[4096, 32000]" style.
  std::string shape_string() const;
};

class GgufFile {
 public:
  // Maps and validates the file at `path`.
  static StatusOr<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Parses bytes the caller keeps alive (fuzzing, tests). `name` appears in messages.
  static StatusOr<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes,
                                                   const std::string& name = "<memory>");

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t file_size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;

  // Typed lookups: nullopt if the key is absent or of an incompatible type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;  // any non-negative integer
  std::optional<int64_t> get_int(std::string_view key) const;    // any integer
  std::optional<double> get_float(std::string_view key) const;   // any number
  std::optional<bool> get_bool(std::string_view key) const;
  // Required variants: a clear error naming the key when absent or mistyped.
  StatusOr<uint64_t> require_uint(std::string_view key) const;
  StatusOr<std::string> require_string(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  Status parse_all();

  std::string name_;
  MappedFile map_;  // empty when parsed from caller memory
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace edgelm
