// SIMD vec_dot / vec_dot_rows vs the reference kernels and vs a float dot of the dequantized
// rows, for every weight type with a SIMD path, on every Highway target of this CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/simd/simd.h"
#include "quant/quant.h"
#include "simd-util.h"

namespace edgelm {
namespace {

using testing::for_each_target;
using testing::random_floats;

struct Case {
  GgmlType wt;
  int64_t n;
};

// Quantized weight rows and one quantized activation row, plus their dequantized values.
struct Operands {
  std::vector<uint8_t> w;   // nrows rows of row_size(wt, n)
  std::vector<uint8_t> xq;  // row_size(vec_dot_type(wt), n)
  std::vector<float> wf, xf;
  size_t stride;
};

Operands make_operands(GgmlType wt, int64_t n, int64_t nrows, uint32_t seed) {
  Operands o;
  const GgmlType vt = vec_dot_type(wt);
  o.stride = row_size(wt, n);
  o.w.resize(o.stride * static_cast<size_t>(nrows));
  o.wf.resize(static_cast<size_t>(n * nrows));
  for (int64_t r = 0; r < nrows; ++r) {
    const std::vector<float> src = random_floats(n, seed + static_cast<uint32_t>(r), 0.05f);
    quantize_row(wt, src.data(), o.w.data() + r * o.stride, n);
    dequantize_row(wt, o.w.data() + r * o.stride, o.wf.data() + r * n, n);
  }
  const std::vector<float> x = random_floats(n, seed + 1000, 1.0f);
  o.xq.resize(row_size(vt, n));
  ref_ops().quantize_row(vt, x.data(), o.xq.data(), n);
  o.xf.resize(static_cast<size_t>(n));
  dequantize_row(vt, o.xq.data(), o.xf.data(), n);
  return o;
}

// sum |w_i x_i| in double: the scale against which rounding differences are measured.
double abs_dot(const float* w, const float* x, int64_t n, double* exact) {
  double s = 0, e = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += std::fabs(static_cast<double>(w[i]) * x[i]);
    e += static_cast<double>(w[i]) * x[i];
  }
  *exact = e;
  return s;
}

class SimdVecDot : public ::testing::TestWithParam<Case> {};

TEST_P(SimdVecDot, MatchesRefAndDequantizedDot) {
  const auto [wt, n] = GetParam();
  ASSERT_TRUE(simd::has_vec_dot(wt));
  constexpr int64_t kRows = 11;  // multi-row kernels (4 at a time) plus a remainder
  const Operands o = make_operands(wt, n, kRows, 17u + static_cast<uint32_t>(wt));
  // Integer block sums are exact on both sides; only float accumulation order differs.
  const double kRefBound = 2e-6;
  const double kExactBound = 2e-5;  // vs double-precision dot of the dequantized values
  for_each_target([&](const char* target) {
    std::vector<float> rows(kRows);
    simd::vec_dot_rows(wt, n, o.w.data(), o.stride, kRows, o.xq.data(), rows.data());
    for (int64_t r = 0; r < kRows; ++r) {
      const void* wr = o.w.data() + r * o.stride;
      const float got = simd::vec_dot(wt, n, wr, o.xq.data());
      const float want = ref_ops().vec_dot(wt, n, wr, o.xq.data());
      double exact = 0;
      const double scale = abs_dot(o.wf.data() + r * n, o.xf.data(), n, &exact);
      ASSERT_GT(scale, 0.0);
      EXPECT_LE(std::fabs(got - want) / scale, kRefBound)
          << type_name(wt) << " n=" << n << " row " << r << " simd=" << got << " ref=" << want;
      EXPECT_LE(std::fabs(got - exact) / scale, kExactBound)
          << type_name(wt) << " n=" << n << " row " << r << " simd=" << got << " exact=" << exact;
      // Multi-row kernels may sum blocks in another order than the one-row kernel.
      EXPECT_LE(std::fabs(rows[static_cast<size_t>(r)] - got) / scale, kRefBound)
          << type_name(wt) << " n=" << n << " row " << r << " vec_dot_rows=" << rows[r]
          << " vec_dot=" << got;
    }
  });
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(type_name(info.param.wt)) + "_" + std::to_string(info.param.n);
}

INSTANTIATE_TEST_SUITE_P(Types, SimdVecDot,
                         ::testing::Values(Case{GgmlType::kQ8_0, 32}, Case{GgmlType::kQ8_0, 96},
                                           Case{GgmlType::kQ8_0, 4096}, Case{GgmlType::kQ4_0, 32},
                                           Case{GgmlType::kQ4_0, 96}, Case{GgmlType::kQ4_0, 4096},
                                           Case{GgmlType::kQ4_K, 256}, Case{GgmlType::kQ4_K, 4096},
                                           Case{GgmlType::kQ5_K, 256}, Case{GgmlType::kQ5_K, 4096},
                                           Case{GgmlType::kQ6_K, 256}, Case{GgmlType::kQ6_K, 4096},
                                           Case{GgmlType::kF16, 1}, Case{GgmlType::kF16, 77},
                                           Case{GgmlType::kF16, 4096}, Case{GgmlType::kBF16, 3},
                                           Case{GgmlType::kBF16, 77}, Case{GgmlType::kBF16, 4096},
                                           Case{GgmlType::kF32, 5}, Case{GgmlType::kF32, 77},
                                           Case{GgmlType::kF32, 4096}),
                         case_name);

// Extreme but legal blocks: every quant at its range limit, activations at +-127.
TEST(SimdVecDotExtremes, SaturationFreeAtRangeLimits) {
  constexpr int64_t n = 512;
  for (GgmlType wt :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    std::vector<float> wsrc(n), x(n);
    for (int64_t i = 0; i < n; ++i) {
      wsrc[i] = (i % 3 == 0) ? -1.0f : 1.0f;
      x[i] = (i % 2 == 0) ? -1.0f : 1.0f;
      if (i % 7 == 0) x[i] = wsrc[i];  // same-sign runs make large partial sums
    }
    std::vector<uint8_t> w(row_size(wt, n)), xq(row_size(vec_dot_type(wt), n));
    quantize_row(wt, wsrc.data(), w.data(), n);
    ref_ops().quantize_row(vec_dot_type(wt), x.data(), xq.data(), n);
    const float want = ref_ops().vec_dot(wt, n, w.data(), xq.data());
    for_each_target([&](const char* target) {
      const float got = simd::vec_dot(wt, n, w.data(), xq.data());
      EXPECT_NEAR(got, want, 1e-4 * n) << type_name(wt);
    });
  }
}

}  // namespace
}  // namespace edgelm
