// SIMD quantization of activation rows to the vec_dot types (Q8_0, Q8_K, F16, BF16; F32 is a
// copy), ggml semantics: Q8_0 d = amax/127 stored as fp16, q = round(x/d); Q8_K d = max/-127
// (max = the element of largest magnitude), q = min(127, round(x/d)), bsums over 16. Rounding
// is to nearest even (ggml's nearest_int); ties may differ from roundf by one step.
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <cstdint>
#include <cstring>

#include "kernels/simd/layout.h"
#include "kernels/simd/simd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/quantize.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 16>;

HWY_INLINE void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int nl = static_cast<int>(hn::Lanes(df));
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    auto vmax = hn::Zero(df);
    for (int k = 0; k < kQK; k += nl) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + k)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    const auto vid = hn::Set(df, id);
    for (int k = 0; k < kQK; k += nl) {
      const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), vid));
      hn::StoreU(hn::DemoteTo(d8, q), d8, y[i].qs + k);
    }
    (void)di;
  }
}

HWY_INLINE void QuantizeQ8K(const float* x, BlockQ8K* y, int64_t n) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int nl = static_cast<int>(hn::Lanes(df));
  const auto v127 = hn::Set(di, 127);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    auto vmax = hn::LoadU(df, xb), vmin = vmax;
    for (int k = nl; k < kQKK; k += nl) {
      const auto v = hn::LoadU(df, xb + k);
      vmax = hn::Max(vmax, v);
      vmin = hn::Min(vmin, v);
    }
    const float hi = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float lo = hn::GetLane(hn::MinOfLanes(df, vmin));
    const float max = hi >= -lo ? hi : lo;  // the value of largest magnitude
    if (max == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8K));
      continue;
    }
    const float iscale = -127.0f / max;
    const auto vis = hn::Set(df, iscale);
    for (int k = 0; k < kQKK; k += nl) {
      const auto q = hn::Min(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), vis)), v127);
      hn::StoreU(hn::DemoteTo(d8, q), d8, y[i].qs + k);
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y[i].qs[16 * j + k];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

HWY_INLINE void QuantizeF16(const float* x, uint16_t* y, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  auto* hy = reinterpret_cast<hwy::float16_t*>(y);
  int64_t i = 0;
#if HWY_TARGET != HWY_SSE4 && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SCALAR
  // Native conversions (F16C, NEON, SVE) round to nearest even; Highway's emulation on targets
  // without them does not, so those take the scalar loop below.
  for (; i + nl <= n; i += nl) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, hy + i);
#else
  (void)dh, (void)hy, (void)nl;
#endif
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

// Round-to-nearest-even bf16 (ggml's conversion) in integer arithmetic; NaN handled in scalar.
HWY_INLINE void QuantizeBF16(const float* x, uint16_t* y, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(df)> d16;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const auto round = hn::Set(du, 0x7FFFu);
  const auto one = hn::Set(du, 1u);
  int64_t i = 0;
  for (; i + nl <= n; i += nl) {
    const auto v = hn::LoadU(df, x + i);
    if (!hn::AllTrue(df, hn::Eq(v, v))) {  // NaN in this vector: scalar path keeps it NaN
      for (int64_t k = 0; k < nl; ++k) y[i + k] = f32_to_bf16(x[i + k]);
      continue;
    }
    const auto u = hn::BitCast(du, v);
    const auto r =
        hn::ShiftRight<16>(hn::Add(u, hn::Add(round, hn::And(hn::ShiftRight<16>(u), one))));
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, r)), d16, y + i);
  }
  for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void QuantizeRow(GgmlType type, const float* x, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::kQ8_0:
      return QuantizeQ8_0(x, static_cast<BlockQ8_0*>(dst), n);
    case GgmlType::kQ8_K:
      return QuantizeQ8K(x, static_cast<BlockQ8K*>(dst), n);
    case GgmlType::kF16:
      return QuantizeF16(x, static_cast<uint16_t*>(dst), n);
    case GgmlType::kBF16:
      return QuantizeBF16(x, static_cast<uint16_t*>(dst), n);
    case GgmlType::kF32:
      std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
      return;
    default:
      return;  // callers check has_quantize_row() first
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(QuantizeRow);

bool has_quantize_row(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ8_K:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kF32:
      return true;
    default:
      return false;
  }
}

void quantize_row(GgmlType type, const float* x, void* dst, int64_t n) {
  if (!has_quantize_row(type)) return ref_ops().quantize_row(type, x, dst, n);
  HWY_DYNAMIC_DISPATCH(QuantizeRow)(type, x, dst, n);
}

}  // namespace edgelm::simd
#endif  // HWY_ONCE
