// Highway F16 flash-attention steps (kernels/attention.h), bit-identical to the scalar ones in
// ref/attention.cpp. Hardware F16 conversions (x86 F16C on AVX2 and above, AArch64) round to
// nearest even like fp32_to_fp16; Highway 1.0.3 emulates them on SSE4/EMU128/SCALAR by
// truncation, so those targets use the scalar conversions. The value update goes through
// double lanes so that it rounds exactly like the scalar oracle (exact product, one double
// rounding of the sum, then float, then F16).
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include "kernels/attention.h"

#include <cstdint>

#include "quant/fp16.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/attention.cpp"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)) || \
    (HWY_ARCH_ARM_A64 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128)
constexpr bool kHwF16 = true;
#else
constexpr bool kHwF16 = false;
#endif

inline const hwy::float16_t* as_f16(const uint16_t* p) {
  return reinterpret_cast<const hwy::float16_t*>(p);
}
inline hwy::float16_t* as_f16(uint16_t* p) { return reinterpret_cast<hwy::float16_t*>(p); }

void ScaleF16(uint16_t* acc, float s, int64_t n) {
  int64_t d = 0;
  if constexpr (kHwF16) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    const auto vs = hn::Set(df, s);
    for (; d + N <= n; d += N) {
      const auto a = hn::PromoteTo(df, hn::LoadU(dh, as_f16(acc + d)));
      hn::StoreU(hn::DemoteTo(dh, hn::Mul(a, vs)), dh, as_f16(acc + d));
    }
  }
  for (; d < n; ++d) acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * s);
}

void MadF16(uint16_t* acc, const uint16_t* v, float s, int64_t n) {
  int64_t d = 0;
  if constexpr (kHwF16 && HWY_HAVE_FLOAT64) {
    const hn::ScalableTag<double> dd;
    const hn::Rebind<float, decltype(dd)> df;
    const hn::Rebind<hwy::float16_t, decltype(dd)> dh;
    const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
    const auto vs = hn::Set(dd, static_cast<double>(s));
    for (; d + N <= n; d += N) {
      const auto a = hn::PromoteTo(dd, hn::PromoteTo(df, hn::LoadU(dh, as_f16(acc + d))));
      const auto x = hn::PromoteTo(dd, hn::PromoteTo(df, hn::LoadU(dh, as_f16(v + d))));
      // x * s is exact in double, so fused or not the sum is rounded once.
      const auto r = hn::MulAdd(x, vs, a);
      hn::StoreU(hn::DemoteTo(dh, hn::DemoteTo(df, r)), dh, as_f16(acc + d));
    }
  }
  for (; d < n; ++d) {
    const double r = static_cast<double>(fp16_to_fp32(v[d])) * s + fp16_to_fp32(acc[d]);
    acc[d] = fp32_to_fp16(static_cast<float>(r));
  }
}

void F16ToF32Scaled(const uint16_t* acc, float s, float* out, int64_t n) {
  int64_t d = 0;
  if constexpr (kHwF16) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    const auto vs = hn::Set(df, s);
    for (; d + N <= n; d += N) {
      hn::StoreU(hn::Mul(hn::PromoteTo(df, hn::LoadU(dh, as_f16(acc + d))), vs), df, out + d);
    }
  }
  for (; d < n; ++d) out[d] = fp16_to_fp32(acc[d]) * s;
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(ScaleF16);
HWY_EXPORT(MadF16);
HWY_EXPORT(F16ToF32Scaled);

namespace {
void scale_f16(uint16_t* acc, float s, int64_t n) { HWY_DYNAMIC_DISPATCH(ScaleF16)(acc, s, n); }
void mad_f16(uint16_t* acc, const uint16_t* v, float s, int64_t n) {
  HWY_DYNAMIC_DISPATCH(MadF16)(acc, v, s, n);
}
void f16_to_f32_scaled(const uint16_t* acc, float s, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32Scaled)(acc, s, out, n);
}
}  // namespace

const AttnOps& attn_ops() {
  static const AttnOps ops{"simd", &scale_f16, &mad_f16, &f16_to_f32_scaled};
  return ops;
}

}  // namespace edgelm::simd
#endif  // HWY_ONCE
