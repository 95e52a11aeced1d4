// Highway F16 flash-attention steps (kernels/attention.h), bit-identical to the scalar ones in
// ref/attention.cpp. Hardware F16 conversions (x86 F16C on AVX2 and above, AArch64) round to
// nearest even like fp32_to_fp16; Highway 1.0.3 emulates them on SSE4/EMU128/SCALAR by
// truncation, so those targets use the scalar conversions. The value update is one float FMA
// (targets without FMA use the scalar std::fma). FusedRow runs a whole attention_row() per
// call (prefill attends 512 x 513 / 2 key rows per head and layer: per-key dispatch, the F16
// accumulator's store/reload and the three step calls cost more than the arithmetic), keys in
// blocks of 16 whose exps are one vector Exp (in double, rounded to float: std::exp's result
// except in rare near-ties, so the output equals the steps' but for rare last bits).
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include "kernels/attention.h"

#include <cmath>
#include <cstdint>

#include "kernels/simd/simd.h"
#include "quant/fp16.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/attention.cpp"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
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
  if constexpr (kHwF16 && HWY_NATIVE_FMA) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    const auto vs = hn::Set(df, s);
    for (; d + N <= n; d += N) {
      const auto a = hn::PromoteTo(df, hn::LoadU(dh, as_f16(acc + d)));
      const auto x = hn::PromoteTo(df, hn::LoadU(dh, as_f16(v + d)));
      hn::StoreU(hn::DemoteTo(dh, hn::MulAdd(x, vs, a)), dh, as_f16(acc + d));
    }
  }
  for (; d < n; ++d) acc[d] = fp32_to_fp16(std::fma(fp16_to_fp32(v[d]), s, fp16_to_fp32(acc[d])));
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

// attention_row() for hd = kNC * lanes (kNC = 0: any multiple of the lanes up to kMaxHd), keys
// in blocks of kBlock: the query promoted once, the F16 accumulator held as floats that are
// exactly F16 values (each step rounds through DemoteTo/PromoteTo, as storing and reloading
// would), no per-key dispatch. Per block: the scores (DotF16's sum, vec-dot.cpp, in the same
// order: even chunks of a 2-chunk stride into s0, odd ones into s1, a last odd chunk into s0),
// the running maximum each key sees, all the block's exps (rescale factors and weights) in one
// vector Exp, then the steps' updates key by key (rescale on a new maximum, F16 value FMA).
// Only the exp differs from the steps' std::exp, in rare last bits (tests/kernels bound the
// effect). Tried: one maximum update per block (a single rescale, weights against the block's
// maximum) was faster still (attention 1.9x instead of 1.5x) but rounds differently from the
// steps and llama.cpp everywhere and failed the greedy conformance against llama.cpp.
constexpr int64_t kMaxHd = 512;
constexpr int kBlock = 16;

// x rounded to float at this point: GCC contracts a * b + c into an FMA inside FMA-enabled
// target code (-ffp-contract=fast), which the scalar steps (baseline code) never do; the empty
// asm makes the product a value the compiler cannot fuse into a later add.
HWY_INLINE float Rounded(float x) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(x));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(x));
#else
  volatile float v = x;
  x = v;
#endif
  return x;
}

// x[b] = exp(-|s[b] - m[b]|), b in [0, kBlock): Highway's Exp in double, rounded to float,
// which is std::exp's float result (glibc's expf is within 0.502 ulp) except in rare near-ties.
HWY_INLINE void ExpNegAbsDiff(const float* s, const float* m, float* x) {
  const hn::CappedTag<double, kBlock> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int n = static_cast<int>(hn::Lanes(dd));
  for (int b = 0; b < kBlock; b += n) {
    const auto d =
        hn::Sub(hn::PromoteTo(dd, hn::LoadU(df, s + b)), hn::PromoteTo(dd, hn::LoadU(df, m + b)));
    hn::StoreU(hn::DemoteTo(df, hn::Exp(dd, hn::Neg(hn::Abs(d)))), df, x + b);
  }
}

template <int kNC, int kQ>
HWY_INLINE void FusedRowImpl(const uint16_t* q16, const uint16_t* k, size_t ks, const uint16_t* v,
                             size_t vs, int64_t n_kv, int64_t hd, float scale, float* out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  using V = decltype(hn::Zero(df));
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int nc = kNC > 0 ? kNC : static_cast<int>(hd / N);
  constexpr int kCap = kNC > 0 ? kNC : 64;
  V qv[kQ][kCap], acc[kQ][kCap];
  for (int e = 0; e < kQ; ++e) {
    for (int c = 0; c < nc; ++c) {
      qv[e][c] = hn::PromoteTo(df, hn::LoadU(dh, as_f16(q16 + e * hd + c * N)));
      acc[e][c] = hn::Zero(df);
    }
  }
  const int pairs = nc / 2;
  float M[kQ], S[kQ];
  for (int e = 0; e < kQ; ++e) M[e] = -INFINITY, S[e] = 0.0f;
  HWY_ALIGN float s[kQ][kBlock], mp[kQ][kBlock], x[kQ][kBlock];
  for (int64_t j0 = 0; j0 < n_kv; j0 += kBlock) {
    const int nb = static_cast<int>(n_kv - j0 < kBlock ? n_kv - j0 : kBlock);
    for (int b = 0; b < nb; ++b) {
      const hwy::float16_t* kj = as_f16(k + static_cast<size_t>(j0 + b) * ks);
      for (int e = 0; e < kQ; ++e) {
        auto s0 = hn::Zero(df), s1 = hn::Zero(df);
        for (int c = 0; c < pairs; ++c) {
          s0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, kj + 2 * c * N)), qv[e][2 * c], s0);
          s1 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, kj + (2 * c + 1) * N)), qv[e][2 * c + 1],
                          s1);
        }
        if (nc % 2 != 0)
          s0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, kj + (nc - 1) * N)), qv[e][nc - 1], s0);
        s[e][b] = Rounded(hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1))) * scale);
      }
    }
    // The per-key steps' online softmax, its exps batched: key b of the block sees the
    // running maximum mp[b] of the keys before it. A new maximum (s > mp) rescales by
    // exp(mp - s) and adds the value with weight 1; any other key adds it with weight
    // exp(s - mp). Either way the exp argument is -|s - mp|, all of the block's in one vector.
    for (int e = 0; e < kQ; ++e) {
      float m = M[e];
      for (int b = 0; b < nb; ++b) {
        mp[e][b] = m;
        m = s[e][b] > m ? s[e][b] : m;
      }
      M[e] = m;
      for (int b = nb; b < kBlock; ++b) s[e][b] = mp[e][b] = 0.0f;  // unused lanes
      ExpNegAbsDiff(s[e], mp[e], x[e]);
    }
    for (int b = 0; b < nb; ++b) {
      const hwy::float16_t* vj = as_f16(v + static_cast<size_t>(j0 + b) * vs);
      V vw[kQ];
      for (int e = 0; e < kQ; ++e) {
        float ms = 1.0f, w = 1.0f;
        if (s[e][b] > mp[e][b]) {
          ms = x[e][b];
          const auto vms = hn::Set(df, ms);
          for (int c = 0; c < nc; ++c)
            acc[e][c] = hn::PromoteTo(df, hn::DemoteTo(dh, hn::Mul(acc[e][c], vms)));
        } else {
          w = x[e][b];
        }
        vw[e] = hn::Set(df, w);
        S[e] = Rounded(S[e] * ms) + w;
      }
      for (int c = 0; c < nc; ++c) {
        const auto xv = hn::PromoteTo(df, hn::LoadU(dh, vj + c * N));
        for (int e = 0; e < kQ; ++e)
          acc[e][c] = hn::PromoteTo(df, hn::DemoteTo(dh, hn::MulAdd(xv, vw[e], acc[e][c])));
      }
    }
  }
  for (int e = 0; e < kQ; ++e) {
    const auto inv = hn::Set(df, S[e] == 0.0f ? 0.0f : 1.0f / S[e]);
    for (int c = 0; c < nc; ++c) hn::StoreU(hn::Mul(acc[e][c], inv), df, out + e * hd + c * N);
  }
}

// nq queries (q16: nq x hd halves, out: nq x hd floats) over the same keys and values (the
// query heads of one KV head): two at a time, so that two accumulator chains (each step is
// FMA -> F16 -> F32, latency-bound) overlap and the key/value rows are loaded once.
template <int kNC>
HWY_INLINE void FusedRowsNC(int nq, const uint16_t* q16, const uint16_t* k, size_t ks,
                            const uint16_t* v, size_t vs, int64_t n_kv, int64_t hd, float scale,
                            float* out) {
  int e = 0;
  for (; e + 2 <= nq; e += 2)
    FusedRowImpl<kNC, 2>(q16 + e * hd, k, ks, v, vs, n_kv, hd, scale, out + e * hd);
  if (e < nq) FusedRowImpl<kNC, 1>(q16 + e * hd, k, ks, v, vs, n_kv, hd, scale, out + e * hd);
}

bool FusedRow(int nq, const uint16_t* q16, const uint16_t* k, size_t ks, const uint16_t* v,
              size_t vs, int64_t n_kv, int64_t hd, float scale, float* out) {
#if HWY_TARGET == HWY_SCALAR
  (void)nq, (void)q16, (void)k, (void)ks, (void)v, (void)vs, (void)n_kv, (void)hd, (void)scale,
      (void)out;
  return false;
#else
  if constexpr (!kHwF16 || !HWY_NATIVE_FMA) {
    (void)nq, (void)q16, (void)k, (void)ks, (void)v, (void)vs, (void)n_kv, (void)hd, (void)scale,
        (void)out;
    return false;
  } else {
    const hn::ScalableTag<float> df;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    if (hd <= 0 || hd % N != 0 || hd > kMaxHd || hd / N > 64) return false;
    switch (hd / N) {
      case 2:
        FusedRowsNC<2>(nq, q16, k, ks, v, vs, n_kv, hd, scale, out);
        break;
      case 4:
        FusedRowsNC<4>(nq, q16, k, ks, v, vs, n_kv, hd, scale, out);
        break;
      case 8:
        FusedRowsNC<8>(nq, q16, k, ks, v, vs, n_kv, hd, scale, out);
        break;
      default:
        FusedRowsNC<0>(nq, q16, k, ks, v, vs, n_kv, hd, scale, out);
    }
    return true;
  }
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(ScaleF16);
HWY_EXPORT(MadF16);
HWY_EXPORT(F16ToF32Scaled);
HWY_EXPORT(FusedRow);

namespace {
void scale_f16(uint16_t* acc, float s, int64_t n) { HWY_DYNAMIC_DISPATCH(ScaleF16)(acc, s, n); }
void mad_f16(uint16_t* acc, const uint16_t* v, float s, int64_t n) {
  HWY_DYNAMIC_DISPATCH(MadF16)(acc, v, s, n);
}
void f16_to_f32_scaled(const uint16_t* acc, float s, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32Scaled)(acc, s, out, n);
}
// The fused kernel computes scores exactly as simd::vec_dot's F16 product on the same target,
// so it stands in only for that vec_dot.
bool fused_row(const Ops& ops, int nq, const uint16_t* q16, const uint16_t* k, size_t k_stride,
               const uint16_t* v, size_t v_stride, int64_t n_kv, int64_t hd, float scale,
               uint16_t* /*acc*/, float* out) {
  if (ops.vec_dot != &simd::vec_dot) return false;
  return HWY_DYNAMIC_DISPATCH(FusedRow)(nq, q16, k, k_stride, v, v_stride, n_kv, hd, scale, out);
}
}  // namespace

const AttnOps& attn_ops() {
  static const AttnOps ops{"simd", &scale_f16, &mad_f16, &f16_to_f32_scaled, &fused_row};
  return ops;
}

}  // namespace edgelm::simd
#endif  // HWY_ONCE
