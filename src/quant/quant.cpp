#include "quant/quant.h"

#include <fmt/format.h>

#include <cassert>
#include <cstdlib>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace edgelm {

bool can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ8_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kQ8_K:
      return true;
    default:
      return false;
  }
}

bool can_quantize(GgmlType type) { return can_dequantize(type); }

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16:
      return fp16_to_fp32_row(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::kBF16:
      return bf16_to_fp32_row(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::kQ4_0:
      return dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
    case GgmlType::kQ4_1:
      return dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case GgmlType::kQ5_0:
      return dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case GgmlType::kQ5_1:
      return dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case GgmlType::kQ8_0:
      return dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case GgmlType::kQ8_1:
      return dequantize_row_q8_1(static_cast<const BlockQ8_1*>(src), dst, n);
    case GgmlType::kQ4_K:
      return dequantize_row_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case GgmlType::kQ5_K:
      return dequantize_row_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case GgmlType::kQ6_K:
      return dequantize_row_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
    case GgmlType::kQ8_K:
      return dequantize_row_q8_k(static_cast<const BlockQ8_K*>(src), dst, n);
    default:
      assert(!"dequantize_row: unsupported type");
      std::abort();
  }
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16:
      return fp32_to_fp16_row(src, static_cast<uint16_t*>(dst), n);
    case GgmlType::kBF16:
      return fp32_to_bf16_row(src, static_cast<uint16_t*>(dst), n);
    case GgmlType::kQ4_0:
      return quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
    case GgmlType::kQ4_1:
      return quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
    case GgmlType::kQ5_0:
      return quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
    case GgmlType::kQ5_1:
      return quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
    case GgmlType::kQ8_0:
      return quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
    case GgmlType::kQ8_1:
      return quantize_row_q8_1(src, static_cast<BlockQ8_1*>(dst), n);
    case GgmlType::kQ4_K:
      return quantize_row_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
    case GgmlType::kQ5_K:
      return quantize_row_q5_k(src, static_cast<BlockQ5_K*>(dst), n);
    case GgmlType::kQ6_K:
      return quantize_row_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
    case GgmlType::kQ8_K:
      return quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
    default:
      assert(!"quantize_row: unsupported type");
      std::abort();
  }
}

namespace {

std::string describe(std::string_view name) {
  return name.empty() ? std::string("tensor") : fmt::format("tensor '{}'", name);
}

// Validates type/n/bytes; on success *need receives row_size(type, n).
Status check(const char* what, GgmlType type, int64_t n, size_t bytes, std::string_view name,
             bool (*supported)(GgmlType), size_t* need) {
  const TypeTraits* tr = type_traits(type);
  if (tr == nullptr || !supported(type))
    return Status::unimplemented(fmt::format("{}: cannot {} type {} ({})", describe(name), what,
                                             type_name(type), static_cast<uint32_t>(type)));
  if (n < 0 || n % tr->block_size != 0)
    return Status::invalid_argument(
        fmt::format("{}: {} elements is not a multiple of the {} block size {}", describe(name), n,
                    tr->name, tr->block_size));
  *need = row_size(type, n);
  if (bytes < *need)
    return Status::data_loss(fmt::format("{}: {} of {} {} elements needs {} bytes, found {}",
                                         describe(name), what, n, tr->name, *need, bytes));
  return Status::ok_status();
}

}  // namespace

Status dequantize_tensor(GgmlType type, const void* src, size_t src_bytes, int64_t n, float* dst,
                         std::string_view name) {
  size_t need = 0;
  RETURN_IF_ERROR(check("dequantize", type, n, src_bytes, name, can_dequantize, &need));
  if (n > 0 && (src == nullptr || dst == nullptr))
    return Status::invalid_argument(fmt::format("{}: null buffer", describe(name)));
  if (n > 0) dequantize_row(type, src, dst, n);
  return Status::ok_status();
}

StatusOr<std::vector<float>> dequantize_tensor(GgmlType type, const void* src, size_t src_bytes,
                                               int64_t n, std::string_view name) {
  size_t need = 0;
  RETURN_IF_ERROR(check("dequantize", type, n, src_bytes, name, can_dequantize, &need));
  std::vector<float> out(static_cast<size_t>(n));
  RETURN_IF_ERROR(dequantize_tensor(type, src, src_bytes, n, out.data(), name));
  return out;
}

Status quantize_tensor(GgmlType type, const float* src, int64_t n, void* dst, size_t dst_bytes,
                       std::string_view name) {
  size_t need = 0;
  RETURN_IF_ERROR(check("quantize", type, n, dst_bytes, name, can_quantize, &need));
  if (n > 0 && (src == nullptr || dst == nullptr))
    return Status::invalid_argument(fmt::format("{}: null buffer", describe(name)));
  if (n > 0) quantize_row(type, src, dst, n);
  return Status::ok_status();
}

}  // namespace edgelm
