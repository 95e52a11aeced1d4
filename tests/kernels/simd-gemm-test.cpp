// simd::gemm_tile (the tiled prefill product) and matmul's m > 1 path vs per-row vec_dot, for
// every weight type with a SIMD vec_dot, on every Highway target of this CPU: odd activation
// counts (1..9, 17), weight row counts that are not a multiple of the 4-row tile, 1 and 3
// threads. Bound: |gemm - vec_dot| <= 2e-6 * sum |w_i x_i| (float summation order only).
// Also the products on weights repacked at load (kQ4_0x16, kQ8_0x16): vec_dot_packed, gemm_packed,
// dot_rows over cut groups and tail rows, and the ref table's exact unpacking path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/simd/simd.h"
#include "quant/quant.h"
#include "quant/repack.h"
#include "simd-util.h"

namespace edgelm {
namespace {

using testing::for_each_target;
using testing::random_floats;

constexpr double kRelBound = 2e-6;

struct Problem {
  GgmlType wt;
  int64_t n, rows, m;
  std::vector<uint8_t> w;   // rows x row_size(wt, n)
  std::vector<float> wf;    // dequantized weights
  std::vector<float> x;     // m x n activations
  std::vector<uint8_t> xq;  // m x row_size(vec_dot_type(wt), n), quantized by the SIMD table
  std::vector<float> xf;    // dequantized activations
  size_t w_row = 0, x_row = 0;
};

Problem make_problem(GgmlType wt, int64_t n, int64_t rows, int64_t m, uint32_t seed) {
  Problem p{wt, n, rows, m, {}, {}, {}, {}, {}};
  const GgmlType vt = vec_dot_type(wt);
  p.w_row = row_size(wt, n);
  p.x_row = row_size(vt, n);
  p.w.resize(p.w_row * static_cast<size_t>(rows));
  p.wf.resize(static_cast<size_t>(n * rows));
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> src = random_floats(n, seed + static_cast<uint32_t>(r), 0.05f);
    quantize_row(wt, src.data(), p.w.data() + r * p.w_row, n);
    dequantize_row(wt, p.w.data() + r * p.w_row, p.wf.data() + r * n, n);
  }
  p.x = random_floats(n * m, seed + 7919, 1.0f);
  p.xq.resize(p.x_row * static_cast<size_t>(m));
  p.xf.resize(static_cast<size_t>(n * m));
  for (int64_t c = 0; c < m; ++c) {
    simd::quantize_row(vt, p.x.data() + c * n, p.xq.data() + c * p.x_row, n);
    dequantize_row(vt, p.xq.data() + c * p.x_row, p.xf.data() + c * n, n);
  }
  return p;
}

double abs_dot(const Problem& p, int64_t r, int64_t c) {
  double s = 0;
  for (int64_t i = 0; i < p.n; ++i)
    s += std::fabs(static_cast<double>(p.wf[r * p.n + i]) * p.xf[c * p.n + i]);
  return s;
}

// Checks y (m x rows) against vec_dot of the same operands; returns the worst ratio to the bound.
double check(const Problem& p, const std::vector<float>& y, const char* what) {
  double worst = 0;
  for (int64_t c = 0; c < p.m; ++c) {
    for (int64_t r = 0; r < p.rows; ++r) {
      const float want =
          simd::vec_dot(p.wt, p.n, p.w.data() + r * p.w_row, p.xq.data() + c * p.x_row);
      const float got = y[static_cast<size_t>(c * p.rows + r)];
      const double scale = abs_dot(p, r, c);
      EXPECT_GT(scale, 0.0);
      const double err = std::fabs(static_cast<double>(got) - want);
      worst = std::max(worst, err / (kRelBound * scale));
      EXPECT_LE(err, kRelBound * scale)
          << what << " type " << type_traits(p.wt)->name << " n=" << p.n << " rows=" << p.rows
          << " m=" << p.m << " r=" << r << " c=" << c << " got " << got << " want " << want;
    }
  }
  return worst;
}

struct TypeCase {
  GgmlType wt;
  int64_t n;
};

const TypeCase kTypes[] = {
    {GgmlType::kQ8_0, 96},  {GgmlType::kQ4_0, 160}, {GgmlType::kQ4_K, 512}, {GgmlType::kQ5_K, 256},
    {GgmlType::kQ6_K, 512}, {GgmlType::kF16, 70},   {GgmlType::kF32, 33},   {GgmlType::kBF16, 48},
    {GgmlType::kQ8_0, 32},  {GgmlType::kQ4_0, 64},
};

TEST(SimdGemm, TileMatchesVecDotEveryTarget) {
  const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
  uint32_t seed = 100;
  for (const TypeCase& tc : kTypes) {
    for (int64_t rows : {1, 3, 6, 13}) {
      const Problem p = make_problem(tc.wt, tc.n, rows, 17, seed += 31);
      for_each_target([&](const char* target) {
        for (int64_t m : ms) {
          std::vector<float> y(static_cast<size_t>(m * rows), std::nanf(""));
          simd::gemm_tile(tc.wt, tc.n, p.w.data(), p.w_row, rows, p.xq.data(), p.x_row, m, y.data(),
                          static_cast<size_t>(rows));
          Problem q = p;
          q.m = m;
          check(q, y, target);
        }
      });
    }
  }
}

TEST(SimdGemm, TiledKernelsExistForMainTypes) {
  // x86: Q8_0 / Q4_0 / F16 are tiled from AVX2 up, K-quants on AVX-512 (AVX3, AVX3_DL); F16 on
  // every SIMD target. Prints the table so a regression to the per-row fallback is visible.
  for_each_target([&](const char* target) {
    for (GgmlType wt : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K,
                        GgmlType::kQ6_K, GgmlType::kF16}) {
      std::printf("[ gemm     ] %-8s %-5s %s\n", target, type_traits(wt)->name,
                  simd::gemm_tiled(wt) ? "tiled" : "per-row fallback");
    }
    const std::string t(target);
    if (t == "AVX2" || t == "AVX3" || t == "AVX3_DL") {
      EXPECT_TRUE(simd::gemm_tiled(GgmlType::kQ8_0));
      EXPECT_TRUE(simd::gemm_tiled(GgmlType::kQ4_0));
      EXPECT_TRUE(simd::gemm_tiled(GgmlType::kF16));
    }
    if (t == "AVX3" || t == "AVX3_DL") {
      EXPECT_TRUE(simd::gemm_tiled(GgmlType::kQ4_K));
      EXPECT_TRUE(simd::gemm_tiled(GgmlType::kQ6_K));
    }
  });
}

TEST(SimdGemm, MatmulPrefillMatchesVecDot) {
  const Ops& ops = *simd_ops_or_null();
  ASSERT_NE(ops.gemm_tile, nullptr);
  uint32_t seed = 900;
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    for (const TypeCase& tc : kTypes) {
      for (int64_t m : {2, 5, 9, 17}) {
        const int64_t rows = 23;
        Problem p = make_problem(tc.wt, tc.n, rows, m, seed += 17);
        std::vector<float> y(static_cast<size_t>(m * rows), std::nanf(""));
        std::vector<uint8_t> scratch;
        matmul(ops, pool, tc.wt, p.w.data(), rows, tc.n, p.x.data(), m, y.data(), scratch);
        check(p, y, "matmul");
      }
    }
  }
}

TEST(SimdGemm, MatmulLargePanelsMatchRef) {
  // n large enough that several activation panels are used (panel = 256 KiB / row bytes).
  const Ops& ops = *simd_ops_or_null();
  ThreadPool pool(3);
  for (GgmlType wt : {GgmlType::kQ4_0, GgmlType::kQ8_0}) {
    const int64_t n = 8192, rows = 10, m = 37;  // Q8_0 row 8704 B -> panel 28 rows
    Problem p = make_problem(wt, n, rows, m, 4242);
    std::vector<float> y(static_cast<size_t>(m * rows), std::nanf(""));
    std::vector<uint8_t> scratch;
    matmul(ops, pool, wt, p.w.data(), rows, n, p.x.data(), m, y.data(), scratch);
    check(p, y, "matmul-panels");
  }
}

// ---- Products on weights repacked at load (quant/repack.h, simd/packed.cpp).

constexpr PackedLayout kLayouts[] = {PackedLayout::kQ4_0x16, PackedLayout::kQ8_0x16};

// p's weights in `layout` (whole groups interleaved, tail rows as they are).
std::vector<uint8_t> repacked(const Problem& p, PackedLayout layout) {
  std::vector<uint8_t> out(p.w.size());
  repack_rows(layout, p.n, p.w.data(), out.data(), p.rows);
  return out;
}

TEST(SimdPacked, LayoutsOfferedOnX86) {
  for_each_target([&](const char* target) {
    const std::string t(target);
    const bool x86 = t == "AVX2" || t == "AVX3" || t == "AVX3_DL" || t == "AVX3_ZEN4";
    const bool vnni = t == "AVX3_DL" || t == "AVX3_ZEN4";
    std::printf("[ packed   ] %-8s q4_0 -> %s, q8_0 -> %s\n", target,
                packed_layout_name(simd::packed_layout(GgmlType::kQ4_0)),
                packed_layout_name(simd::packed_layout(GgmlType::kQ8_0)));
    EXPECT_EQ(simd::packed_layout(GgmlType::kQ4_0),
              x86 ? PackedLayout::kQ4_0x16 : PackedLayout::kNone);
    EXPECT_EQ(simd::packed_layout(GgmlType::kQ8_0),
              vnni ? PackedLayout::kQ8_0x16 : PackedLayout::kNone);
    for (GgmlType wt : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kF16})
      EXPECT_EQ(simd::packed_layout(wt), PackedLayout::kNone);
  });
}

TEST(SimdPacked, VecDotAndGemmMatchVecDotEveryTarget) {
  // n: 1 block (odd tail of the 2-block decode loop), 5 blocks, 32 blocks; 1-3 groups; m up to
  // 9 (4-column tiles plus 1-column edges). Targets without a fast kernel for a layout run the
  // unpacking loop, which must agree too.
  uint32_t seed = 5000;
  for (PackedLayout layout : kLayouts) {
    const GgmlType wt = packed_layout_type(layout);
    for (int64_t n : {32, 160, 1024}) {
      for (int64_t ngroups : {1, 3}) {
        const int64_t rows = 16 * ngroups;
        const Problem p = make_problem(wt, n, rows, 9, seed += 13);
        const std::vector<uint8_t> w = repacked(p, layout);
        for_each_target([&](const char* target) {
          const std::string what = std::string(target) + " " + packed_layout_name(layout);
          std::vector<float> y(static_cast<size_t>(rows), std::nanf(""));
          simd::vec_dot_packed(layout, n, w.data(), ngroups, p.xq.data(), y.data());
          Problem q = p;
          q.m = 1;
          check(q, y, what.c_str());
          for (int64_t m : {1, 3, 4, 5, 9}) {
            std::vector<float> ym(static_cast<size_t>(m * rows), std::nanf(""));
            simd::gemm_packed(layout, n, w.data(), ngroups, p.xq.data(), p.x_row, m, ym.data(),
                              static_cast<size_t>(rows));
            q.m = m;
            check(q, ym, what.c_str());
            // Decode and prefill agree bit for bit (a server session that reuses a cached
            // prompt decodes what a fresh one prefills; seeded sampling must not diverge).
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_EQ(ym[static_cast<size_t>(r)], y[static_cast<size_t>(r)])
                  << what << " m=" << m << " row " << r;
          }
        });
      }
    }
  }
}

TEST(SimdPacked, DotRowsAndMatmulHandleCutGroupsAndTailRows) {
  // 37 rows = 2 whole groups + 5 rows in the ggml layout; ranges that cut groups; matmul with
  // 1 and 3 threads, m = 1 (decode) and m > 1 (prefill).
  const int64_t n = 96, rows = 37;
  const Ops& ops = *simd_ops_or_null();
  ASSERT_NE(ops.vec_dot_packed, nullptr);
  for (PackedLayout layout : kLayouts) {
    SCOPED_TRACE(packed_layout_name(layout));
    const GgmlType wt = packed_layout_type(layout);
    const Problem p = make_problem(wt, n, rows, 17, 777);
    const std::vector<uint8_t> w = repacked(p, layout);
    const std::pair<int64_t, int64_t> ranges[] = {{0, 37}, {3, 29}, {16, 37}, {20, 21}, {32, 36}};
    for (auto [r0, r1] : ranges) {
      std::vector<float> y(static_cast<size_t>(rows), 0.0f);
      dot_rows(ops, wt, layout, n, w.data(), rows, r0, r1, p.xq.data(), y.data());
      for (int64_t r = 0; r < rows; ++r) {
        const float want = simd::vec_dot(wt, n, p.w.data() + r * p.w_row, p.xq.data());
        if (r < r0 || r >= r1) {
          EXPECT_EQ(y[r], 0.0f) << "row " << r << " outside [" << r0 << ", " << r1 << ") written";
        } else {
          EXPECT_NEAR(y[r], want, kRelBound * abs_dot(p, r, 0)) << "row " << r;
        }
      }
    }
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      for (int64_t m : {1, 2, 5, 17}) {
        Problem q = make_problem(wt, n, rows, m, 900 + static_cast<uint32_t>(m));
        const std::vector<uint8_t> wq = repacked(q, layout);
        std::vector<float> y(static_cast<size_t>(m * rows), std::nanf(""));
        std::vector<uint8_t> scratch;
        matmul(ops, pool, wt, wq.data(), rows, n, q.x.data(), m, y.data(), scratch, layout);
        check(q, y, "matmul-packed");
      }
    }
  }
}

TEST(SimdPacked, ReferenceTableRunsRepackedWeightsExactly) {
  // A table without packed kernels (ref) unpacks row by row: bit-identical to its own vec_dot on
  // the original rows, so the scalar oracle stays exact on a model repacked at load.
  const int64_t n = 64, rows = 35;
  for (PackedLayout layout : kLayouts) {
    const GgmlType wt = packed_layout_type(layout);
    const Problem p = make_problem(wt, n, rows, 3, 4321);
    const std::vector<uint8_t> w = repacked(p, layout);
    const Ops& ref = ref_ops();
    ThreadPool pool(2);
    std::vector<float> got(static_cast<size_t>(3 * rows)), want(got.size());
    std::vector<uint8_t> scratch;
    matmul(ref, pool, wt, w.data(), rows, n, p.x.data(), 3, got.data(), scratch, layout);
    matmul(ref, pool, wt, p.w.data(), rows, n, p.x.data(), 3, want.data(), scratch);
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(got[i], want[i]) << packed_layout_name(layout) << " " << i;
  }
}

}  // namespace
}  // namespace edgelm
