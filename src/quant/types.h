// ggml tensor types: numbering and block geometry identical to ggml, so files interoperate
// with llama.cpp. Shared by the GGUF reader/writer (size validation) and the block formats.
//
//   const TypeTraits* t = type_traits(GgmlType::kQ4_K);   // t->block_size == 256
//   size_t bytes = row_size(GgmlType::kQ8_0, 4096);      // 4096/32*34
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace edgelm {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

struct TypeTraits {
  GgmlType type;
  const char* name;     // ggml's name: "f16", "q4_K", ...
  uint32_t block_size;  // elements per block
  uint32_t type_size;   // bytes per block
  bool can_dequantize;  // edgelm has a dequantizer for it (src/quant)
};

// nullptr for a number ggml does not define (or one edgelm cannot size).
const TypeTraits* type_traits(uint32_t type);
inline const TypeTraits* type_traits(GgmlType t) { return type_traits(static_cast<uint32_t>(t)); }
const char* type_name(GgmlType t);                              // "unknown" if undefined
std::optional<GgmlType> type_from_name(std::string_view name);  // case-insensitive

// Bytes of a row of n elements; n must be a multiple of the block size.
size_t row_size(GgmlType t, int64_t n);

}  // namespace edgelm
