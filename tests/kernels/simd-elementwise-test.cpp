// SIMD rms_norm, softmax, swiglu and axpy vs the reference kernels on random rows (lengths that
// exercise vector bodies and scalar tails), on every Highway target of this CPU.
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

// max_i |a_i - b_i| / max(max_i |b_i|, tiny)
double norm_err(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    s = std::max(s, static_cast<double>(std::fabs(b[i])));
  }
  return m / s;
}

const int64_t kLengths[] = {1, 7, 16, 67, 4096, 4099};

TEST(SimdElementwise, RmsNorm) {
  for (int64_t n : kLengths) {
    const auto x = random_floats(n, 1 + static_cast<uint32_t>(n), 2.0f);
    const auto w = random_floats(n, 2 + static_cast<uint32_t>(n), 1.0f);
    std::vector<float> want(static_cast<size_t>(n));
    ref_ops().rms_norm(x.data(), w.data(), want.data(), n, 1e-5f);
    for_each_target([&](const char* target) {
      std::vector<float> got(static_cast<size_t>(n));
      simd::rms_norm(x.data(), w.data(), got.data(), n, 1e-5f);
      EXPECT_LE(norm_err(got, want), 1e-6) << "n=" << n;
    });
  }
}

// The normalized row feeds the 8-bit activation quantizer, where a last-bit difference can move
// a value by a whole step (and perplexity by 0.1% on the conformance models): SIMD and
// reference take the same float steps, so their outputs are identical, not just close.
TEST(SimdElementwise, RmsNormBitIdenticalToReference) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const int64_t n = 1024 + seed;
    const auto x = random_floats(n, 100 + seed, 3.0f);
    const auto w = random_floats(n, 200 + seed, 1.0f);
    std::vector<float> want(static_cast<size_t>(n));
    ref_ops().rms_norm(x.data(), w.data(), want.data(), n, 1e-6f);
    for_each_target([&](const char* target) {
      std::vector<float> got(static_cast<size_t>(n));
      simd::rms_norm(x.data(), w.data(), got.data(), n, 1e-6f);
      int differ = 0;
      for (int64_t i = 0; i < n; ++i) differ += got[i] != want[i];
      EXPECT_EQ(differ, 0) << "seed " << seed << " n=" << n;
    });
  }
}

TEST(SimdElementwise, Softmax) {
  for (int64_t n : kLengths) {
    auto x = random_floats(n, 3 + static_cast<uint32_t>(n), 4.0f);
    x[static_cast<size_t>(n) / 2] = 60.0f;  // a large logit: needs the max subtraction
    std::vector<float> want = x;
    ref_ops().softmax(want.data(), n);
    for_each_target([&](const char* target) {
      std::vector<float> got = x;
      simd::softmax(got.data(), n);
      EXPECT_LE(norm_err(got, want), 1e-5) << "n=" << n;
      double sum = 0;
      for (float v : got) sum += v;
      EXPECT_NEAR(sum, 1.0, 1e-5) << "n=" << n;
    });
  }
}

TEST(SimdElementwise, Swiglu) {
  for (int64_t n : kLengths) {
    auto g = random_floats(n, 4 + static_cast<uint32_t>(n), 3.0f);
    g[0] = -100.0f;  // exp overflow path
    const auto u = random_floats(n, 5 + static_cast<uint32_t>(n), 1.0f);
    std::vector<float> want(static_cast<size_t>(n));
    ref_ops().swiglu(g.data(), u.data(), want.data(), n);
    for_each_target([&](const char* target) {
      std::vector<float> got(static_cast<size_t>(n));
      simd::swiglu(g.data(), u.data(), got.data(), n);
      EXPECT_LE(norm_err(got, want), 1e-6) << "n=" << n;
      for (size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(std::isfinite(got[i])) << i;
    });
  }
}

TEST(SimdElementwise, Axpy) {
  for (int64_t n : kLengths) {
    const auto x = random_floats(n, 6 + static_cast<uint32_t>(n), 1.0f);
    const auto y0 = random_floats(n, 7 + static_cast<uint32_t>(n), 1.0f);
    std::vector<float> want = y0;
    ref_ops().axpy(-0.75f, x.data(), want.data(), n);
    for_each_target([&](const char* target) {
      std::vector<float> got = y0;
      simd::axpy(-0.75f, x.data(), got.data(), n);
      EXPECT_LE(norm_err(got, want), 1e-6) << "n=" << n;
    });
  }
}

TEST(SimdDispatch, OpsTableIsComplete) {
  const Ops* ops = simd_ops_or_null();
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(std::string(ops->name).rfind("simd:", 0), 0u) << ops->name;
  EXPECT_NE(std::string(ops->name), "simd:Unknown");
  EXPECT_NE(ops->quantize_row, nullptr);
  EXPECT_NE(ops->vec_dot, nullptr);
  EXPECT_NE(ops->rms_norm, nullptr);
  EXPECT_NE(ops->softmax, nullptr);
  EXPECT_NE(ops->swiglu, nullptr);
  EXPECT_NE(ops->axpy, nullptr);
  EXPECT_EQ(simd_ops_or_null(), ops);  // one table
  // Types without a SIMD path still work (forwarded to ref).
  const GgmlType wt = GgmlType::kQ4_1;
  EXPECT_FALSE(simd::has_vec_dot(wt));
  const auto w = random_floats(64, 11, 0.1f);
  const auto x = random_floats(64, 12, 1.0f);
  std::vector<uint8_t> wq(row_size(wt, 64)), xq(row_size(vec_dot_type(wt), 64));
  quantize_row(wt, w.data(), wq.data(), 64);
  ops->quantize_row(vec_dot_type(wt), x.data(), xq.data(), 64);
  EXPECT_EQ(ops->vec_dot(wt, 64, wq.data(), xq.data()),
            ref_ops().vec_dot(wt, 64, wq.data(), xq.data()));
  for_each_target([&](const char* target) {
    const Ops local = simd::make_ops();
    EXPECT_EQ(std::string(local.name), std::string("simd:") + target);
  });
}

}  // namespace
}  // namespace edgelm
