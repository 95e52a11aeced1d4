#include "quant/repack.h"

#include <cstring>

#include "quant/blocks.h"

namespace edgelm {
namespace {

constexpr int kG = 16;                          // rows per kQ4_0x16 group
constexpr size_t kQ4Block = sizeof(BlockQ4_0);  // 18
constexpr size_t kGroupBlock = kG * kQ4Block;   // 288 bytes per block of a group
static_assert(sizeof(BlockQ4_0) == 18, "ggml Q4_0 block");

void pack_group_q4_0(int64_t nb, const uint8_t* src, size_t row_bytes, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = dst + static_cast<size_t>(b) * kGroupBlock;
    for (int r = 0; r < kG; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(src + r * row_bytes) + b;
      std::memcpy(out + 2 * r, &blk->d, 2);
      for (int k = 0; k < 4; ++k) std::memcpy(out + 32 + 64 * k + 4 * r, blk->qs + 4 * k, 4);
    }
  }
}

}  // namespace

const char* packed_layout_name(PackedLayout layout) {
  return layout == PackedLayout::kQ4_0x16 ? "q4_0x16" : "none";
}

GgmlType packed_layout_type(PackedLayout layout) {
  (void)layout;
  return GgmlType::kQ4_0;
}

int packed_group_rows(PackedLayout layout) { return layout == PackedLayout::kQ4_0x16 ? kG : 0; }

int64_t repack_rows(PackedLayout layout, int64_t n, const void* src, void* dst, int64_t rows) {
  const size_t row_bytes = row_size(GgmlType::kQ4_0, n);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const int64_t packed = layout == PackedLayout::kQ4_0x16 ? rows / kG * kG : 0;
  for (int64_t g = 0; g < packed; g += kG) {
    const size_t off = static_cast<size_t>(g) * row_bytes;
    pack_group_q4_0(n / kQK4_0, s + off, row_bytes, d + off);
  }
  const size_t tail = static_cast<size_t>(packed) * row_bytes;
  std::memcpy(d + tail, s + tail, static_cast<size_t>(rows - packed) * row_bytes);
  return packed;
}

void unpack_row(PackedLayout layout, int64_t n, const void* group, int row, void* dst) {
  (void)layout;
  const int64_t nb = n / kQK4_0;
  const auto* g = static_cast<const uint8_t*>(group);
  auto* out = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = g + static_cast<size_t>(b) * kGroupBlock;
    std::memcpy(&out[b].d, in + 2 * row, 2);
    for (int k = 0; k < 4; ++k) std::memcpy(out[b].qs + 4 * k, in + 32 + 64 * k + 4 * row, 4);
  }
}

}  // namespace edgelm
