#include "quant/types.h"

#include <cctype>

namespace edgelm {
namespace {

constexpr TypeTraits kTraits[] = {
    {GgmlType::kF32, "f32", 1, 4, true},          {GgmlType::kF16, "f16", 1, 2, true},
    {GgmlType::kQ4_0, "q4_0", 32, 18, true},      {GgmlType::kQ4_1, "q4_1", 32, 20, true},
    {GgmlType::kQ5_0, "q5_0", 32, 22, true},      {GgmlType::kQ5_1, "q5_1", 32, 24, true},
    {GgmlType::kQ8_0, "q8_0", 32, 34, true},      {GgmlType::kQ8_1, "q8_1", 32, 36, true},
    {GgmlType::kQ2_K, "q2_K", 256, 84, false},    {GgmlType::kQ3_K, "q3_K", 256, 110, false},
    {GgmlType::kQ4_K, "q4_K", 256, 144, true},    {GgmlType::kQ5_K, "q5_K", 256, 176, true},
    {GgmlType::kQ6_K, "q6_K", 256, 210, true},    {GgmlType::kQ8_K, "q8_K", 256, 292, true},
    {GgmlType::kIQ4_NL, "iq4_nl", 32, 18, false}, {GgmlType::kIQ4_XS, "iq4_xs", 256, 136, false},
    {GgmlType::kI8, "i8", 1, 1, false},           {GgmlType::kI16, "i16", 1, 2, false},
    {GgmlType::kI32, "i32", 1, 4, false},         {GgmlType::kI64, "i64", 1, 8, false},
    {GgmlType::kF64, "f64", 1, 8, false},         {GgmlType::kBF16, "bf16", 1, 2, true},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

const TypeTraits* type_traits(uint32_t type) {
  for (const auto& t : kTraits)
    if (static_cast<uint32_t>(t.type) == type) return &t;
  return nullptr;
}

const char* type_name(GgmlType t) {
  const TypeTraits* tr = type_traits(t);
  return tr ? tr->name : "unknown";
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& t : kTraits)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

size_t row_size(GgmlType t, int64_t n) {
  const TypeTraits* tr = type_traits(t);
  if (!tr || n < 0) return 0;
  return static_cast<size_t>(n / tr->block_size) * tr->type_size;
}

}  // namespace edgelm
