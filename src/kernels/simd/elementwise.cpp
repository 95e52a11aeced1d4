// SIMD float row ops of the transformer: rms_norm, softmax, swiglu, axpy (same contracts as
// the Ops fields). exp comes from Highway's contrib/math (max rel. error ~1e-7 in float).
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <cmath>
#include <cstdint>

#include "kernels/simd/simd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/elementwise.cpp"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// As ggml (and the reference): squares in float summed in double, the mean and the scale in
// float. The normalized row then matches the reference bit for bit almost always, so the 8-bit
// activation quantization that follows lands on the same steps.
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  const hn::ScalableTag<float> df;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;  // as many floats as dd has doubles
  const int64_t nd = static_cast<int64_t>(hn::Lanes(dd));
  auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
  int64_t i = 0;
  for (; i + 2 * nd <= n; i += 2 * nd) {
    const auto a = hn::LoadU(dh, x + i), b = hn::LoadU(dh, x + i + nd);
    s0 = hn::Add(s0, hn::PromoteTo(dd, hn::Mul(a, a)));
    s1 = hn::Add(s1, hn::PromoteTo(dd, hn::Mul(b, b)));
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  const auto vs = hn::Set(df, scale);
  i = 0;
  for (; i + nl <= n; i += nl) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, w + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const hn::ScalableTag<float> df;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  float mx = x[0];
  int64_t i = 0;
  if (n >= nl) {
    auto vm = hn::LoadU(df, x);
    for (i = nl; i + nl <= n; i += nl) vm = hn::Max(vm, hn::LoadU(df, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(df, vm));
  }
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const auto vmx = hn::Set(df, mx);
  auto vsum = hn::Zero(df);
  i = 0;
  for (; i + nl <= n; i += nl) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    vsum = hn::Add(vsum, e);
    hn::StoreU(e, df, x + i);
  }
  double sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const auto vinv = hn::Set(df, inv);
  i = 0;
  for (; i + nl <= n; i += nl) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

void Swiglu(const float* gate, const float* up, float* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f);
  int64_t i = 0;
  for (; i + nl <= n; i += nl) {
    const auto g = hn::LoadU(df, gate + i);
    // silu(g) = g / (1 + exp(-g)); exp overflow to inf gives g / inf = -0 as expected.
    const auto silu = hn::Div(g, hn::Add(one, hn::Exp(df, hn::Neg(g))));
    hn::StoreU(hn::Mul(silu, hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const auto va = hn::Set(df, a);
  int64_t i = 0;
  for (; i + nl <= n; i += nl) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(Softmax);
HWY_EXPORT(Swiglu);
HWY_EXPORT(Axpy);

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, y, n, eps);
}
void softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, out, n);
}
void axpy(float a, const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Axpy)(a, x, y, n); }

}  // namespace edgelm::simd
#endif  // HWY_ONCE
