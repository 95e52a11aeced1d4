// matmul(): every output equals the single-row vec_dot of the quantized activation row, with 1
// and 3 threads, for the ref table and for best_ops() (exactly, or within 2e-6 * sum |w x| where
// the table has the tiled prefill path gemm_tile); scratch reuse; best_ops() selection.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  v[0] = v[0] == 0.0f ? hi : v[0];
  return v;
}

// y[i * rows + r] computed one row at a time.
std::vector<float> rowwise(const Ops& ops, GgmlType wt, const std::vector<uint8_t>& w, int64_t rows,
                           int64_t n, const std::vector<float>& x, int64_t m) {
  const GgmlType vt = vec_dot_type(wt);
  std::vector<float> y(static_cast<size_t>(rows * m));
  std::vector<uint8_t> xq(row_size(vt, n));
  for (int64_t i = 0; i < m; ++i) {
    ops.quantize_row(vt, x.data() + i * n, xq.data(), n);
    for (int64_t r = 0; r < rows; ++r)
      y[i * rows + r] = ops.vec_dot(wt, n, w.data() + r * row_size(wt, n), xq.data());
  }
  return y;
}

class RefMatmul : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RefMatmul, EqualsSingleRowResultsWithOneAndThreeThreads) {
  const GgmlType wt = GetParam();
  const int64_t bs = type_traits(wt)->block_size;
  const int64_t n = bs == 256 ? 512 : 96, rows = 37, m = 3;
  std::vector<uint8_t> w(row_size(wt, n) * rows);
  const std::vector<float> wsrc = uniform(n * rows, 11, -0.1f, 0.1f);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row(wt, wsrc.data() + r * n, w.data() + r * row_size(wt, n), n);
  const std::vector<float> x = uniform(n * m, 12, -2.0f, 2.0f);

  for (const Ops* ops : {&ref_ops(), &best_ops()}) {
    const std::vector<float> want = rowwise(*ops, wt, w, rows, n, x, m);
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      std::vector<uint8_t> scratch;
      std::vector<float> y(static_cast<size_t>(rows * m), -1.0f);
      matmul(*ops, pool, wt, w.data(), rows, n, x.data(), m, y.data(), scratch);
      if (ops->gemm_tile == nullptr) {
        EXPECT_EQ(y, want) << type_name(wt) << " " << ops->name << " threads " << threads;
      } else {
        // The tiled prefill path (Ops::gemm_tile) may sum in another float order: equal up
        // to 2e-6 * sum |w_i x_i| (tests/kernels/simd-gemm-test.cpp checks it per target).
        std::vector<float> wf(static_cast<size_t>(n));
        for (int64_t r = 0; r < rows; ++r) {
          dequantize_row(wt, w.data() + r * row_size(wt, n), wf.data(), n);
          for (int64_t i = 0; i < m; ++i) {
            double scale = 0;
            for (int64_t k = 0; k < n; ++k) scale += std::fabs(double{wf[k]} * x[i * n + k]);
            EXPECT_NEAR(y[i * rows + r], want[i * rows + r], 2e-6 * scale)
                << type_name(wt) << " " << ops->name << " threads " << threads;
          }
        }
      }
      // m = 1 (decode) with the same, now larger, scratch.
      std::vector<float> y1(static_cast<size_t>(rows), -1.0f);
      matmul(*ops, pool, wt, w.data(), rows, n, x.data(), 1, y1.data(), scratch);
      EXPECT_EQ(y1, std::vector<float>(want.begin(), want.begin() + rows)) << ops->name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, RefMatmul,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                                           GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,
                                           GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ4_K,
                                           GgmlType::kQ5_K, GgmlType::kQ6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(type_name(info.param));
                         });

TEST(RefMatmulPrefill, ManyRowsAndActivations) {
  const GgmlType wt = GgmlType::kQ4_K;
  const int64_t n = 256, rows = 100, m = 9;
  std::vector<uint8_t> w(row_size(wt, n) * rows);
  const std::vector<float> wsrc = uniform(n * rows, 21, -1.0f, 1.0f);
  quantize_row(wt, wsrc.data(), w.data(), n * rows);  // K-quant rows are independent blocks
  const std::vector<float> x = uniform(n * m, 22, -1.0f, 1.0f);
  const std::vector<float> want = rowwise(ref_ops(), wt, w, rows, n, x, m);
  ThreadPool pool(3);
  std::vector<uint8_t> scratch;
  std::vector<float> y(static_cast<size_t>(rows * m));
  matmul(ref_ops(), pool, wt, w.data(), rows, n, x.data(), m, y.data(), scratch);
  EXPECT_EQ(y, want);
  EXPECT_GE(scratch.size(), row_size(GgmlType::kQ8_K, n) * m);
}

TEST(RefBestOps, EnvironmentOverrideAndSimdHook) {
  const char* old = std::getenv("EDGELM_KERNELS");
  const std::string saved = old ? old : "";
  setenv("EDGELM_KERNELS", "ref", 1);
  EXPECT_EQ(&best_ops(), &ref_ops());
  EXPECT_STREQ(best_ops().name, "ref");
  unsetenv("EDGELM_KERNELS");
  if (const Ops* s = simd_ops_or_null()) {
    EXPECT_EQ(&best_ops(), s);
    EXPECT_NE(std::string(best_ops().name), "ref");
  } else {
    EXPECT_EQ(&best_ops(), &ref_ops());
  }
  if (old) setenv("EDGELM_KERNELS", saved.c_str(), 1);
  // The ref table is complete.
  const Ops& r = ref_ops();
  EXPECT_NE(r.quantize_row, nullptr);
  EXPECT_NE(r.vec_dot, nullptr);
  EXPECT_NE(r.rms_norm, nullptr);
  EXPECT_NE(r.softmax, nullptr);
  EXPECT_NE(r.swiglu, nullptr);
  EXPECT_NE(r.axpy, nullptr);
  EXPECT_EQ(r.vec_dot_rows, nullptr);  // see kernels.h
  EXPECT_EQ(r.gemm_tile, nullptr);     // ref matmul stays the per-row oracle
}

}  // namespace
}  // namespace edgelm
