// quant/repack.h: the kQ4_0x16 layout round-trips every row (whole groups and tail rows), keeps
// the byte size, and really interleaves (a packed group differs from the ggml bytes).
#include "quant/repack.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/quant.h"

namespace edgelm {
namespace {

TEST(Repack, Q4_0x16RoundTripsEveryRow) {
  for (int64_t n : {32, 96, 256}) {
    for (int64_t rows : {15, 16, 37, 48}) {
      const size_t row_bytes = row_size(GgmlType::kQ4_0, n);
      std::vector<uint8_t> src(row_bytes * static_cast<size_t>(rows));
      std::mt19937 rng(static_cast<uint32_t>(n * 100 + rows));
      for (auto& b : src) b = static_cast<uint8_t>(rng());
      std::vector<uint8_t> dst(src.size(), 0xAB);
      const int64_t packed = repack_rows(PackedLayout::kQ4_0x16, n, src.data(), dst.data(), rows);
      EXPECT_EQ(packed, rows / 16 * 16);
      std::vector<uint8_t> row(row_bytes);
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* want = src.data() + static_cast<size_t>(r) * row_bytes;
        if (r < packed) {
          const int64_t g = r / 16 * 16;
          unpack_row(PackedLayout::kQ4_0x16, n, dst.data() + static_cast<size_t>(g) * row_bytes,
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

TEST(Repack, LayoutNames) {
  EXPECT_STREQ(packed_layout_name(PackedLayout::kQ4_0x16), "q4_0x16");
  EXPECT_STREQ(packed_layout_name(PackedLayout::kNone), "none");
  EXPECT_EQ(packed_group_rows(PackedLayout::kQ4_0x16), 16);
  EXPECT_EQ(packed_group_rows(PackedLayout::kNone), 0);
  EXPECT_EQ(packed_layout_type(PackedLayout::kQ4_0x16), GgmlType::kQ4_0);
}

}  // namespace
}  // namespace edgelm
