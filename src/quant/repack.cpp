#include "quant/repack.h"

#include <cstring>

#include "quant/blocks.h"

namespace edgelm {
namespace {

constexpr int kG = 16;  // rows per group
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_0) == 34, "ggml block sizes");

// Chunk k of a group block holds bytes 4k..4k+3 of each row's qs (row r at 4r), after the 16
// scales; Q8_0 bytes are stored XOR 0x80 (q + 128 as unsigned).
template <class Block, uint8_t kXor>
void pack_group(int64_t nb, const uint8_t* src, size_t row_bytes, uint8_t* dst) {
  constexpr size_t kQs = sizeof(Block::qs), kGroupBlock = kG * sizeof(Block);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = dst + static_cast<size_t>(b) * kGroupBlock;
    for (int r = 0; r < kG; ++r) {
      const auto* blk = reinterpret_cast<const Block*>(src + r * row_bytes) + b;
      std::memcpy(out + 2 * r, &blk->d, 2);
      const auto* qs = reinterpret_cast<const uint8_t*>(blk->qs);
      for (size_t k = 0; k < kQs / 4; ++k)
        for (int j = 0; j < 4; ++j) out[2 * kG + 64 * k + 4 * r + j] = qs[4 * k + j] ^ kXor;
    }
  }
}

template <class Block, uint8_t kXor>
void unpack_group_row(int64_t nb, const uint8_t* g, int row, uint8_t* dst) {
  constexpr size_t kQs = sizeof(Block::qs), kGroupBlock = kG * sizeof(Block);
  auto* out = reinterpret_cast<Block*>(dst);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = g + static_cast<size_t>(b) * kGroupBlock;
    std::memcpy(&out[b].d, in + 2 * row, 2);
    auto* qs = reinterpret_cast<uint8_t*>(out[b].qs);
    for (size_t k = 0; k < kQs / 4; ++k)
      for (int j = 0; j < 4; ++j) qs[4 * k + j] = in[2 * kG + 64 * k + 4 * row + j] ^ kXor;
  }
}

}  // namespace

const char* packed_layout_name(PackedLayout layout) {
  switch (layout) {
    case PackedLayout::kQ4_0x16:
      return "q4_0x16";
    case PackedLayout::kQ8_0x16:
      return "q8_0x16";
    default:
      return "none";
  }
}

GgmlType packed_layout_type(PackedLayout layout) {
  switch (layout) {
    case PackedLayout::kQ4_0x16:
      return GgmlType::kQ4_0;
    case PackedLayout::kQ8_0x16:
      return GgmlType::kQ8_0;
    default:
      return GgmlType::kF32;
  }
}

int packed_group_rows(PackedLayout layout) { return layout == PackedLayout::kNone ? 0 : kG; }

int64_t repack_rows(PackedLayout layout, int64_t n, const void* src, void* dst, int64_t rows) {
  const size_t row_bytes = row_size(packed_layout_type(layout), n);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const int64_t packed = packed_group_rows(layout) > 0 ? rows / kG * kG : 0;
  for (int64_t g = 0; g < packed; g += kG) {
    const size_t off = static_cast<size_t>(g) * row_bytes;
    if (layout == PackedLayout::kQ4_0x16) {
      pack_group<BlockQ4_0, 0>(n / kQK4_0, s + off, row_bytes, d + off);
    } else {
      pack_group<BlockQ8_0, 0x80>(n / kQK8_0, s + off, row_bytes, d + off);
    }
  }
  const size_t tail = static_cast<size_t>(packed) * row_bytes;
  std::memcpy(d + tail, s + tail, static_cast<size_t>(rows - packed) * row_bytes);
  return packed;
}

void unpack_row(PackedLayout layout, int64_t n, const void* group, int row, void* dst) {
  const auto* g = static_cast<const uint8_t*>(group);
  auto* out = static_cast<uint8_t*>(dst);
  if (layout == PackedLayout::kQ4_0x16) {
    unpack_group_row<BlockQ4_0, 0>(n / kQK4_0, g, row, out);
  } else if (layout == PackedLayout::kQ8_0x16) {
    unpack_group_row<BlockQ8_0, 0x80>(n / kQK8_0, g, row, out);
  }
}

}  // namespace edgelm
