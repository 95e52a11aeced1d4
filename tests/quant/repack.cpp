// quant/repack.h: the kQ4_0x16 and kQ8_0x16 layouts round-trip every row (whole groups and tail
// rows), keep the byte size, and really interleave (a packed group differs from the ggml bytes).
#include "quant/repack.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/quant.h"

namespace edgelm {
namespace {

TEST(Repack, RoundTripsEveryRow) {
  for (PackedLayout layout : {PackedLayout::kQ4_0x16, PackedLayout::kQ8_0x16}) {
    SCOPED_TRACE(packed_layout_name(layout));
    const GgmlType wt = packed_layout_type(layout);
    for (int64_t n : {32, 96, 256}) {
      for (int64_t rows : {15, 16, 37, 48}) {
        const size_t row_bytes = row_size(wt, n);
        std::vector<uint8_t> src(row_bytes * static_cast<size_t>(rows));
        std::mt19937 rng(static_cast<uint32_t>(n * 100 + rows));
        for (auto& b : src) b = static_cast<uint8_t>(rng());
        std::vector<uint8_t> dst(src.size(), 0xAB);
        const int64_t packed = repack_rows(layout, n, src.data(), dst.data(), rows);
        EXPECT_EQ(packed, rows / 16 * 16);
        std::vector<uint8_t> row(row_bytes);
        for (int64_t r = 0; r < rows; ++r) {
          const uint8_t* want = src.data() + static_cast<size_t>(r) * row_bytes;
          if (r < packed) {
            const int64_t g = r / 16 * 16;
            unpack_row(layout, n, dst.data() + static_cast<size_t>(g) * row_bytes,
                       static_cast<int>(r - g), row.data());
            EXPECT_EQ(std::memcmp(row.data(), want, row_bytes), 0) << "n=" << n << " row " << r;
          } else {
            EXPECT_EQ(std::memcmp(dst.data() + static_cast<size_t>(r) * row_bytes, want, row_bytes),
                      0)
                << "tail row " << r << " moved";
          }
        }
        if (packed > 0) {
          EXPECT_NE(std::memcmp(dst.data(), src.data(), 16 * row_bytes), 0);
        }
      }
    }
  }
}

TEST(Repack, LayoutNames) {
  EXPECT_STREQ(packed_layout_name(PackedLayout::kQ4_0x16), "q4_0x16");
  EXPECT_STREQ(packed_layout_name(PackedLayout::kNone), "none");
  EXPECT_EQ(packed_group_rows(PackedLayout::kQ4_0x16), 16);
  EXPECT_EQ(packed_group_rows(PackedLayout::kNone), 0);
  EXPECT_EQ(packed_layout_type(PackedLayout::kQ4_0x16), GgmlType::kQ4_0);
  EXPECT_STREQ(packed_layout_name(PackedLayout::kQ8_0x16), "q8_0x16");
  EXPECT_EQ(packed_group_rows(PackedLayout::kQ8_0x16), 16);
  EXPECT_EQ(packed_layout_type(PackedLayout::kQ8_0x16), GgmlType::kQ8_0);
}

}  // namespace
}  // namespace edgelm
