// Interleaved ("repacked") weight layouts: the loader (model/weights.cpp) rewrites a matrix into
// one of these when the CPU's kernels have a faster product for it (Ops::packed_layout); the
// precision is the stored one, only the byte order changes, and the size stays the same, so
// rows past the last whole group stay where they were, in the ggml layout.
//
// kQ4_0x16: groups of 16 Q4_0 rows. Block b of a group (288 bytes = 16 rows x 18 bytes) holds
// the 16 fp16 scales of the rows' block b, then 4 chunks of 64 bytes: chunk k carries bytes
// 4k..4k+3 of each row's qs, row r at bytes 4r..4r+3. One 512-bit load then gives a lane per row
// (low nibbles: elements 4k..4k+3, high nibbles: 16+4k..16+4k+3), so one broadcast of 4
// activation bytes feeds 16 rows at once, with no horizontal sums.
//
// kQ8_0x16: groups of 16 Q8_0 rows. Block b of a group (544 bytes = 16 x 34) holds the 16 fp16
// scales, then 8 chunks of 64 bytes: chunk k carries bytes 4k..4k+3 of each row's qs, row r at
// bytes 4r..4r+3, each stored as q + 128 (q XOR 0x80: unsigned, what VNNI's vpdpbusd wants).
//
//   std::vector<uint8_t> dst(row_size(GgmlType::kQ4_0, n) * rows);
//   int64_t packed = repack_rows(PackedLayout::kQ4_0x16, n, src, dst.data(), rows);  // rows / 16 *
//   16 unpack_row(PackedLayout::kQ4_0x16, n, dst.data(), /*row=*/5, row5.data());      // ggml
//   layout back
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace edgelm {

enum class PackedLayout : uint8_t { kNone = 0, kQ4_0x16 = 1, kQ8_0x16 = 2 };

// "q4_0x16", "q8_0x16" (or "none").
const char* packed_layout_name(PackedLayout layout);
// The ggml type a layout interleaves (kQ4_0 for kQ4_0x16, kQ8_0 for kQ8_0x16; kF32 for kNone).
GgmlType packed_layout_type(PackedLayout layout);
// Rows per group (16, or 0 for kNone).
int packed_group_rows(PackedLayout layout);

// Rewrites `rows` rows of n elements (ggml layout, contiguous) into `dst` (same byte size):
// whole groups interleaved, the remaining rows copied as they are. Returns the number of rows in
// the interleaved part (rows rounded down to the group size). src and dst must not overlap.
int64_t repack_rows(PackedLayout layout, int64_t n, const void* src, void* dst, int64_t rows);

// Row `row` (0 .. group rows - 1) of the group starting at `group`, back in the ggml layout
// (row_size(type, n) bytes into dst).
void unpack_row(PackedLayout layout, int64_t n, const void* group, int row, void* dst);

}  // namespace edgelm
