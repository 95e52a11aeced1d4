// Reference rms_norm, softmax, swiglu and axpy against straightforward double versions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace edgelm {
namespace {

std::vector<float> gauss(int64_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  v[0] = v[0] == 0.0f ? sigma : v[0];
  return v;
}

// Relative bound of one float rounding of a double result (plus a tiny absolute floor).
void expect_rounded(float got, double want, const char* what, int64_t i) {
  EXPECT_LE(std::fabs(got - want), 1.2e-7 * std::fabs(want) + 1e-37) << what << " at " << i;
}

// rms_norm follows ggml's float steps (scale rounded to float, then x * scale and * w in float):
// three roundings of a double result at most.
void expect_rounded3(float got, double want, const char* what, int64_t i) {
  EXPECT_LE(std::fabs(got - want), 3.6e-7 * std::fabs(want) + 1e-37) << what << " at " << i;
}

TEST(RefElementwise, RmsNorm) {
  for (int64_t n : {1, 7, 4096}) {
    const auto x = gauss(n, 1, 3.0f), w = gauss(n, 2, 1.0f);
    const float eps = 1e-5f;
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    std::vector<float> y(n), y0(n);
    ref_ops().rms_norm(x.data(), w.data(), y.data(), n, eps);
    ref_ops().rms_norm(x.data(), nullptr, y0.data(), n, eps);
    for (int64_t i = 0; i < n; ++i) {
      expect_rounded3(y[i], x[i] * inv * w[i], "rms_norm", i);
      expect_rounded3(y0[i], x[i] * inv, "rms_norm (no weight)", i);
    }
  }
  // In place is allowed; tiny inputs are dominated by eps.
  std::vector<float> t = {1e-6f, -2e-6f};
  ref_ops().rms_norm(t.data(), nullptr, t.data(), 2, 1e-5f);
  EXPECT_NEAR(t[0], 1e-6 / std::sqrt(2.5e-12 + 1e-5), 1e-9);
}

TEST(RefElementwise, SoftmaxStableAndNormalized) {
  for (int64_t n : {1, 5, 1000}) {
    auto x = gauss(n, 3, 4.0f);
    x[n / 2] = 80.0f;  // exp(80) overflows float: must be handled by the max shift
    std::vector<double> e(n);
    double mx = -1e300, sum = 0;
    for (float v : x) mx = std::max(mx, static_cast<double>(v));
    for (int64_t i = 0; i < n; ++i) sum += e[i] = std::exp(x[i] - mx);
    auto y = x;
    ref_ops().softmax(y.data(), n);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      expect_rounded(y[i], e[i] / sum, "softmax", i);
      total += y[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-6);
    // Shift invariance.
    auto z = x;
    for (float& v : z) v += 1000.0f;
    ref_ops().softmax(z.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(z[i], y[i], 1e-4 * y[i] + 1e-30);
  }
  // Masked entries get exactly zero.
  std::vector<float> m = {1.0f, -std::numeric_limits<float>::infinity(), 1.0f};
  ref_ops().softmax(m.data(), 3);
  EXPECT_EQ(m[1], 0.0f);
  EXPECT_FLOAT_EQ(m[0], 0.5f);
}

TEST(RefElementwise, Swiglu) {
  const int64_t n = 513;
  auto g = gauss(n, 4, 3.0f), u = gauss(n, 5, 1.0f);
  g[0] = -100.0f;  // exp(100) in the denominator: silu -> -0
  g[1] = 100.0f;
  std::vector<float> y(n);
  ref_ops().swiglu(g.data(), u.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    expect_rounded(y[i], gi / (1.0 + std::exp(-gi)) * u[i], "swiglu", i);
    EXPECT_TRUE(std::isfinite(y[i]));
  }
}

TEST(RefElementwise, Axpy) {
  const int64_t n = 300;
  const auto x = gauss(n, 6, 1.0f);
  auto y = gauss(n, 7, 1.0f);
  const auto y0 = y;
  ref_ops().axpy(-0.37f, x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i)
    expect_rounded(y[i], static_cast<double>(y0[i]) + static_cast<double>(-0.37f) * x[i], "axpy",
                   i);
}

}  // namespace
}  // namespace edgelm
