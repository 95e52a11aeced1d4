// SIMD dot products of one weight row with one quantized activation row (ggml semantics), one
// source compiled for every Highway target. Quantized products use integer arithmetic on the
// 8-bit activations: on x86 AVX2/AVX-512 through maddubs/madd (and VNNI vpdpbusd/vpdpwssd on
// AVX3_DL), elsewhere through portable Highway ops on 16-byte units (NEON dotprod / SVE sdot
// when the target has them). Entry points are in kernels/simd/simd.h.
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/simd/layout.h"
#include "kernels/simd/simd.h"

#ifndef EDGELM_SIMD_VEC_DOT_TABLE_
#define EDGELM_SIMD_VEC_DOT_TABLE_
namespace edgelm::simd {
// fp16 bits -> float for every half value (256 KiB; block scales touch a few lines of it).
extern const float* const kHalfToFloat;
}  // namespace edgelm::simd
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/vec-dot.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define EDGELM_SIMD_X86 1
#else
#define EDGELM_SIMD_X86 0
#endif

#if HWY_TARGET == HWY_AVX3_DL
#define EDGELM_VNNI 1
#else
#define EDGELM_VNNI 0
#endif
#define EDGELM_KERNEL_ATTR

#if HWY_TARGET != HWY_SCALAR
// ---------------------------------------------------------------- float rows (all targets)

EDGELM_KERNEL_ATTR float DotF32(int64_t n, const float* a, const float* b) {
  const hn::ScalableTag<float> df;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  auto s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * nl <= n; i += 4 * nl) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + nl), hn::LoadU(df, b + i + nl), s1);
    s2 = hn::MulAdd(hn::LoadU(df, a + i + 2 * nl), hn::LoadU(df, b + i + 2 * nl), s2);
    s3 = hn::MulAdd(hn::LoadU(df, a + i + 3 * nl), hn::LoadU(df, b + i + 3 * nl), s3);
  }
  for (; i + nl <= n; i += nl) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

EDGELM_KERNEL_ATTR float DotF16(int64_t n, const uint16_t* a, const uint16_t* b) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const auto* ha = reinterpret_cast<const hwy::float16_t*>(a);
  const auto* hb = reinterpret_cast<const hwy::float16_t*>(b);
  auto s0 = hn::Zero(df), s1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * nl <= n; i += 2 * nl) {
    s0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, ha + i)),
                    hn::PromoteTo(df, hn::LoadU(dh, hb + i)), s0);
    s1 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, ha + i + nl)),
                    hn::PromoteTo(df, hn::LoadU(dh, hb + i + nl)), s1);
  }
  for (; i + nl <= n; i += nl) {
    s0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, ha + i)),
                    hn::PromoteTo(df, hn::LoadU(dh, hb + i)), s0);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += f16_to_f32(a[i]) * f16_to_f32(b[i]);
  return sum;
}

EDGELM_KERNEL_ATTR float DotBF16(int64_t n, const uint16_t* a, const uint16_t* b) {
  const hn::ScalableTag<float> df;
  const hn::Repartition<hwy::bfloat16_t, decltype(df)> db;  // 2x lanes of df
  const int64_t nb = static_cast<int64_t>(hn::Lanes(db));
  const auto* ba = reinterpret_cast<const hwy::bfloat16_t*>(a);
  const auto* bb = reinterpret_cast<const hwy::bfloat16_t*>(b);
  auto s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * nb <= n; i += 2 * nb) {
    s0 = hn::ReorderWidenMulAccumulate(df, hn::LoadU(db, ba + i), hn::LoadU(db, bb + i), s0, s1);
    s2 = hn::ReorderWidenMulAccumulate(df, hn::LoadU(db, ba + i + nb), hn::LoadU(db, bb + i + nb),
                                       s2, s3);
  }
  for (; i + nb <= n; i += nb) {
    s0 = hn::ReorderWidenMulAccumulate(df, hn::LoadU(db, ba + i), hn::LoadU(db, bb + i), s0, s1);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) sum += bf16_to_f32(a[i]) * bf16_to_f32(b[i]);
  return sum;
}

#if EDGELM_SIMD_X86
// ---------------------------------------------------------------- x86 AVX2 / AVX-512 paths
// AVX2: 256-bit registers, one 32-element block (or K-quant 32-element chunk) per register.
// AVX3 / AVX3_DL (AVX-512BW, + VNNI): the *512 kernels below take Q8_0, Q4_K, Q5_K, Q6_K (and
// Q4_0 with VNNI) two blocks / one 64-element chunk per zmm; that halves the instruction count,
// which is what limits these loops (they are front-end bound, also on Zen4's 2x256-bit units).

HWY_INLINE float HsumF32(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// Block scales: a table lookup (one load) is cheaper than vmovd + vcvtph2ps, which compete
// with the vector shuffles for the same port on Intel cores.
HWY_INLINE float HalfToF32(uint16_t h) { return kHalfToFloat[h]; }

#if EDGELM_VNNI
// AVX-512 VNNI (EVEX) through inline asm: Highway 1.0.3 compiles AVX3_DL with the VEX-only
// "avxvnni" feature (Alder Lake, not Ice Lake) and without avx512vnni, so the intrinsics would
// either not compile or come out VEX-encoded. AVX3_DL guarantees AVX512_VNNI + VL at runtime.
HWY_INLINE __m256i Vpdpbusd(__m256i acc, __m256i u, __m256i s) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
HWY_INLINE __m256i Vpdpwssd(__m256i acc, __m256i a, __m256i b) {
  asm("%{evex%} vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}
#endif

// Sums of 4 adjacent u8*i8 products per int32 lane, added to acc. u must be < 128 on the
// non-VNNI path (maddubs saturates pairs at int16).
HWY_INLINE __m256i DotU8I8Acc(__m256i acc, __m256i u, __m256i s) {
#if EDGELM_VNNI
  return Vpdpbusd(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Signed i8*i8 via |a| * sign(b, a).
HWY_INLINE __m256i DotI8I8(__m256i a, __m256i b) {
  return DotU8I8Acc(_mm256_setzero_si256(), _mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

// acc += pairs(p16) * scale16 (int16 pairs summed into int32 lanes).
HWY_INLINE __m256i MaddAcc(__m256i acc, __m256i p16, __m256i s16) {
#if EDGELM_VNNI
  return Vpdpwssd(acc, p16, s16);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, s16));
#endif
}

#if HWY_TARGET <= HWY_AVX3
// ---- AVX-512 (zmm): two 32-element blocks per register.
HWY_INLINE __m512i Halves512(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
HWY_INLINE __m512i LoadPair256(const void* a, const void* b) {
  return Halves512(_mm256_loadu_si256(static_cast<const __m256i*>(a)),
                   _mm256_loadu_si256(static_cast<const __m256i*>(b)));
}
// Lanes 0..7 = s0, lanes 8..15 = s1.
HWY_INLINE __m512 ScalePair(float s0, float s1) {
  return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}
#if EDGELM_VNNI
HWY_INLINE __m512i Vpdpbusd512(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
#endif

// Q8_0: |x| . sign(y, x) (AVX-512 has no vpsignb: negate y under the sign mask of x), two
// blocks per zmm. R rows share the activation pair loads and scale conversions; the 1-row and
// 4-row kernels run this same code, so their results are bitwise equal.
HWY_INLINE __m512i DotQ8_0Pair(__m512i xv, __m512i yv) {
  const __m512i sy = _mm512_mask_sub_epi8(yv, _mm512_movepi8_mask(xv), _mm512_setzero_si512(), yv);
#if EDGELM_VNNI
  return Vpdpbusd512(_mm512_setzero_si512(), _mm512_abs_epi8(xv), sy);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(xv), sy), _mm512_set1_epi16(1));
#endif
}

// Blocks i0, i1 of R rows into acc (i1 == i0 with scale 0 for a tail block).
template <int R>
HWY_INLINE void Q8_0PairStep(const BlockQ8_0* const* x, const BlockQ8_0* y, int64_t i0, int64_t i1,
                             bool tail, __m512* acc) {
  const __m512i yv = LoadPair256(y[i0].qs, y[i1].qs);
  const float dy0 = HalfToF32(y[i0].d);
  const float dy1 = tail ? 0.0f : HalfToF32(y[i1].d);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m512i p = DotQ8_0Pair(LoadPair256(x[r][i0].qs, x[r][i1].qs), yv);
    acc[r] = _mm512_fmadd_ps(ScalePair(HalfToF32(x[r][i0].d) * dy0, HalfToF32(x[r][i1].d) * dy1),
                             _mm512_cvtepi32_ps(p), acc[r]);
  }
}

template <int R>
HWY_INLINE void DotQ8_0Rows512(int64_t n, const uint8_t* w, size_t stride, const void* xq,
                               float* out) {
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const BlockQ8_0* x[R];
  for (int r = 0; r < R; ++r) x[r] = reinterpret_cast<const BlockQ8_0*>(w + r * stride);
  const int64_t nb = n / kQK;
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    Q8_0PairStep<R>(x, y, i, i + 1, false, acc0);
    Q8_0PairStep<R>(x, y, i + 2, i + 3, false, acc1);
  }
  for (; i < nb; ++i) Q8_0PairStep<R>(x, y, i, i, true, acc0);
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}

HWY_INLINE float DotQ8_0_512(int64_t n, const void* w, const void* xq) {
  float out;
  DotQ8_0Rows512<1>(n, static_cast<const uint8_t*>(w), 0, xq, &out);
  return out;
}

#if EDGELM_VNNI
// Q4_0 pair with the masked-nibble VNNI trick (see LoadQ4Scaled): 128-bit lanes hold
// [block0 & 0x0F, block0 & 0xF0, block1 & 0x0F, block1 & 0xF0].
HWY_INLINE __m512i LoadQ4PairScaled(const uint8_t* q0, const uint8_t* q1) {
  const __m256i t = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)), 1);
  const __m512i z =
      _mm512_shuffle_i64x2(_mm512_castsi256_si512(t), _mm512_castsi256_si512(t), 0x50);
  const __m512i mask = _mm512_broadcast_i64x4(
      _mm256_setr_m128i(_mm_set1_epi8(0x0F), _mm_set1_epi8(static_cast<char>(0xF0))));
  return _mm512_and_si512(z, mask);
}
HWY_INLINE __m512i Q4Offset512() {
  return _mm512_broadcast_i64x4(
      _mm256_setr_m128i(_mm_set1_epi8(8), _mm_set1_epi8(static_cast<char>(128))));
}
HWY_INLINE float HsumQ4Acc512(__m512 acc) {
  const __m512 unscale = _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f, 1, 1, 1, 1,
                                        0.0625f, 0.0625f, 0.0625f, 0.0625f);
  return _mm512_reduce_add_ps(_mm512_mul_ps(acc, unscale));
}

// R rows x one block pair (i0, i1; i1 == i0 with s1 = 0 for a tail block).
template <int R>
HWY_INLINE void Q4_0PairStep(const BlockQ4_0* const* x, const BlockQ8_0* y, int64_t i0, int64_t i1,
                             bool tail, __m512* acc) {
  const __m512i yv = LoadPair256(y[i0].qs, y[i1].qs);
  const __m512i ey = Vpdpbusd512(_mm512_setzero_si512(), Q4Offset512(), yv);
  const float dy0 = HalfToF32(y[i0].d);
  const float dy1 = tail ? 0.0f : HalfToF32(y[i1].d);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m512i p = _mm512_sub_epi32(
        Vpdpbusd512(_mm512_setzero_si512(), LoadQ4PairScaled(x[r][i0].qs, x[r][i1].qs), yv), ey);
    acc[r] = _mm512_fmadd_ps(ScalePair(HalfToF32(x[r][i0].d) * dy0, HalfToF32(x[r][i1].d) * dy1),
                             _mm512_cvtepi32_ps(p), acc[r]);
  }
}

// R rows; the single-row and 4-row kernels share this code, so results are bitwise equal.
template <int R>
HWY_INLINE void DotQ4_0Rows512(int64_t n, const uint8_t* w, size_t stride, const void* xq,
                               float* out) {
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const BlockQ4_0* x[R];
  for (int r = 0; r < R; ++r) x[r] = reinterpret_cast<const BlockQ4_0*>(w + r * stride);
  const int64_t nb = n / kQK;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    if constexpr (R > 1) {
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(x[r] + i + 24), _MM_HINT_T0);
    }
    Q4_0PairStep<R>(x, y, i, i + 1, false, acc);
  }
  if (i < nb) Q4_0PairStep<R>(x, y, i, i, true, acc);
  for (int r = 0; r < R; ++r) out[r] = HsumQ4Acc512(acc[r]);
}
#endif  // EDGELM_VNNI
#endif  // HWY_TARGET <= HWY_AVX3

EDGELM_KERNEL_ATTR float DotQ8_0(int64_t n, const void* w, const void* xq) {
#if HWY_TARGET <= HWY_AVX3
  return DotQ8_0_512(n, w, xq);
#endif
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const int64_t nb = n / kQK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs)));
    const __m256i p1 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i + 1].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i + 1].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i].d) * HalfToF32(y[i].d)),
                           _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i + 1].d) * HalfToF32(y[i + 1].d)),
                           _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p0 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i].d) * HalfToF32(y[i].d)),
                           _mm256_cvtepi32_ps(p0), acc0);
  }
  return HsumF32(_mm256_add_ps(acc0, acc1));
}

// 16 packed nibble bytes -> 32 bytes: low nibbles (elements 0..15) then high (16..31).
HWY_INLINE __m256i UnpackQ4(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

#if EDGELM_VNNI
// VNNI: vpdpbusd takes u8 up to 255 without saturation, so the high nibbles need no shift: the
// 16 packed bytes are broadcast to both halves and masked with 0x0F (low half, elements 0..15)
// and 0xF0 (high half, 16 * elements 16..31). Lanes 4..7 of every block sum (and so of the
// accumulators) carry a factor 16, removed once at the end (exact: a power of two). The
// offset term sum(8*y) becomes 8*sum(y) in lanes 0..3 and 128*sum(y) in lanes 4..7.
HWY_INLINE __m256i Q4NibbleMask() {
  return _mm256_setr_m128i(_mm_set1_epi8(0x0F), _mm_set1_epi8(static_cast<char>(0xF0)));
}
HWY_INLINE __m256i Q4Offset() {
  return _mm256_setr_m128i(_mm_set1_epi8(8), _mm_set1_epi8(static_cast<char>(128)));
}
HWY_INLINE __m256i LoadQ4Scaled(const uint8_t* qs) {
  return _mm256_and_si256(
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs))),
      Q4NibbleMask());
}
HWY_INLINE float HsumQ4Acc(__m256 acc) {
  return HsumF32(
      _mm256_mul_ps(acc, _mm256_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f)));
}
#else
HWY_INLINE float HsumQ4Acc(__m256 acc) { return HsumF32(acc); }
#endif

HWY_INLINE __m256i DotQ4Block(const uint8_t* qs, const int8_t* ys) {
  const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys));
#if EDGELM_VNNI
  const __m256i qy = Vpdpbusd(_mm256_setzero_si256(), LoadQ4Scaled(qs), y);
  const __m256i ey = Vpdpbusd(_mm256_setzero_si256(), Q4Offset(), y);
  return _mm256_sub_epi32(qy, ey);
#else
  const __m256i q = UnpackQ4(qs);  // 0..15
  const __m256i p16 =
      _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(_mm256_set1_epi8(8), y));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
#endif
}

EDGELM_KERNEL_ATTR float DotQ4_0(int64_t n, const void* w, const void* xq) {
#if EDGELM_VNNI
  float out;
  DotQ4_0Rows512<1>(n, static_cast<const uint8_t*>(w), 0, xq, &out);
  return out;
#endif
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const int64_t nb = n / kQK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = DotQ4Block(x[i].qs, y[i].qs);
    const __m256i p1 = DotQ4Block(x[i + 1].qs, y[i + 1].qs);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i].d) * HalfToF32(y[i].d)),
                           _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i + 1].d) * HalfToF32(y[i + 1].d)),
                           _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p0 = DotQ4Block(x[i].qs, y[i].qs);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[i].d) * HalfToF32(y[i].d)),
                           _mm256_cvtepi32_ps(p0), acc0);
  }
  return HsumQ4Acc(_mm256_add_ps(acc0, acc1));
}

// Four Q4_0 rows against one activation row: the activation loads, its scale conversion and
// its offset term 8*sum(y) are shared by the rows. Accumulates in the same order as DotQ4_0
// (even blocks / odd blocks), so results are bitwise identical to four DotQ4_0 calls.
HWY_INLINE void Q4_0x4Step(const BlockQ8_0& yb, const BlockQ4_0* const* x, int64_t i, __m256* acc) {
  const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb.qs));
  const float dy = HalfToF32(yb.d);
#if EDGELM_VNNI
  const __m256i ey = Vpdpbusd(_mm256_setzero_si256(), Q4Offset(), yv);
#else
  const __m256i ey = _mm256_maddubs_epi16(_mm256_set1_epi8(8), yv);
#endif
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
#if EDGELM_VNNI
    const __m256i p =
        _mm256_sub_epi32(Vpdpbusd(_mm256_setzero_si256(), LoadQ4Scaled(x[r][i].qs), yv), ey);
#else
    const __m256i q = UnpackQ4(x[r][i].qs);
    const __m256i p =
        _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(q, yv), ey), _mm256_set1_epi16(1));
#endif
    acc[r] =
        _mm256_fmadd_ps(_mm256_set1_ps(HalfToF32(x[r][i].d) * dy), _mm256_cvtepi32_ps(p), acc[r]);
  }
}

HWY_INLINE void DotQ4_0x4(int64_t n, const uint8_t* w, size_t stride, const void* xq, float* out) {
#if EDGELM_VNNI
  return DotQ4_0Rows512<4>(n, w, stride, xq, out);
#endif
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const BlockQ4_0* x[4];
  for (int r = 0; r < 4; ++r) x[r] = reinterpret_cast<const BlockQ4_0*>(w + r * stride);
  const int64_t nb = n / kQK;
  __m256 acc0[4], acc1[4];
  for (int r = 0; r < 4; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    // Four interleaved row streams defeat the hardware prefetcher on some cores: help it.
    for (int r = 0; r < 4; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(x[r] + i + 24), _MM_HINT_T0);
    Q4_0x4Step(y[i], x, i, acc0);
    Q4_0x4Step(y[i + 1], x, i + 1, acc1);
  }
  if (i < nb) Q4_0x4Step(y[i], x, i, acc0);
  for (int r = 0; r < 4; ++r) out[r] = HsumQ4Acc(_mm256_add_ps(acc0[r], acc1[r]));
}

// Q4_K / Q5_K packed 6-bit scales/mins (12 bytes) -> 8 scales and 8 mins as bytes, in word
// arithmetic (no byte stores: their reload would stall on store forwarding).
//   sc[0..3] = s[0..3] & 63                  m[0..3] = s[4..7] & 63
//   sc[4..7] = s[8..11] & 15 | (s[0..3] >> 6) << 4
//   m[4..7]  = s[8..11] >> 4 | (s[4..7] >> 6) << 4
HWY_INLINE void UnpackScalesMinsK(const uint8_t* s, uint64_t* sc, uint64_t* m) {
  uint32_t w[3];
  std::memcpy(w, s, 12);
  const uint32_t k6 = 0x3F3F3F3Fu, k4 = 0x0F0F0F0Fu, k2 = 0x03030303u;
  const uint32_t sc_lo = w[0] & k6;
  const uint32_t m_lo = w[1] & k6;
  const uint32_t sc_hi = (w[2] & k4) | (((w[0] >> 6) & k2) << 4);
  const uint32_t m_hi = ((w[2] >> 4) & k4) | (((w[1] >> 6) & k2) << 4);
  *sc = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  *m = m_lo | (static_cast<uint64_t>(m_hi) << 32);
}

// sum_j m[j] * (bsums[2j] + bsums[2j+1]), m packed as 8 bytes.
HWY_INLINE int32_t MinsDotBsums(uint64_t m8, const int16_t* bsums) {
  const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums));
  const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8));
  const __m128i pair = _mm_hadd_epi16(b0, b1);  // 8 sums of 32 activations
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(m8)));
  __m128i p = _mm_madd_epi16(pair, m16);
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
  return _mm_cvtsi128_si32(p);
}

// int16 lanes all equal to scale k of the 8 int16 scales held (twice) in sc16.
HWY_INLINE __m256i ScaleK(__m256i sc16, int k) {
  const __m256i idx = _mm256_set1_epi16(static_cast<int16_t>((2 * k) | ((2 * k + 1) << 8)));
  return _mm256_shuffle_epi8(sc16, idx);
}

template <bool kQ5>
HWY_INLINE float DotQ45KImpl(int64_t n, const void* w, const void* xq) {
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const int64_t nb = n / kQKK;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float acc_m = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* qs;
    const uint8_t* scales;
    uint16_t dh, dminh;
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kQ5) {
      const auto& b = static_cast<const BlockQ5K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
      hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    } else {
      const auto& b = static_cast<const BlockQ4K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
    }
    const float d = HalfToF32(dh) * y[i].d;
    const float dmin = HalfToF32(dminh) * y[i].d;
    uint64_t sc8, mn8;
    UnpackScalesMinsK(scales, &sc8, &mn8);
    acc_m += dmin * static_cast<float>(MinsDotBsums(mn8, y[i].bsums));
    const __m256i sc16 = _mm256_broadcastsi128_si256(
        _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc8))));
    const int8_t* ys = y[i].qs;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kQ5) {
        const __m256i one = _mm256_set1_epi8(1);
        lo = _mm256_or_si256(
            lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4));
        hi = _mm256_or_si256(
            hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4));
      }
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys + 64 * j + 32));
      sumi = MaddAcc(sumi, _mm256_maddubs_epi16(lo, y0), ScaleK(sc16, 2 * j));
      sumi = MaddAcc(sumi, _mm256_maddubs_epi16(hi, y1), ScaleK(sc16, 2 * j + 1));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return HsumF32(acc) - acc_m;
}

#if HWY_TARGET <= HWY_AVX3
// AVX-512BW: one 64-element chunk (two sub-blocks) per zmm. The 32 packed bytes are broadcast
// to both halves and shifted by 0 (low nibbles, sub-block 2j) or 4 (high, 2j+1) per half with
// one variable shift; the scale vector holds sc[2j] in the low half and sc[2j+1] in the high.
#if EDGELM_VNNI
HWY_INLINE __m512i Vpdpwssd512(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}
#endif

template <bool kQ5>
HWY_INLINE float DotQ45K512(int64_t n, const void* w, const void* xq) {
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const int64_t nb = n / kQKK;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i nib_shift = Halves512(_mm256_setzero_si256(), _mm256_set1_epi16(4));
  __m512 acc = _mm512_setzero_ps();
  float acc_m = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* qs;
    const uint8_t* scales;
    uint16_t dh, dminh;
    __m512i hbits = _mm512_setzero_si512();
    if constexpr (kQ5) {
      const auto& b = static_cast<const BlockQ5K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
      hbits = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
    } else {
      const auto& b = static_cast<const BlockQ4K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
    }
    const float d = HalfToF32(dh) * y[i].d;
    const float dmin = HalfToF32(dminh) * y[i].d;
    uint64_t sc8, mn8;
    UnpackScalesMinsK(scales, &sc8, &mn8);
    acc_m += dmin * static_cast<float>(MinsDotBsums(mn8, y[i].bsums));
    const __m512i sc16 =
        _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc8))));
    const int8_t* ys = y[i].qs;
    __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i qb =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j)));
      __m512i q = _mm512_and_si512(_mm512_srlv_epi16(qb, nib_shift), m4);
      if constexpr (kQ5) {
        const __m512i hshift = Halves512(_mm256_set1_epi16(static_cast<int16_t>(2 * j)),
                                         _mm256_set1_epi16(static_cast<int16_t>(2 * j + 1)));
        const __m512i h = _mm512_and_si512(_mm512_srlv_epi16(hbits, hshift), _mm512_set1_epi8(1));
        q = _mm512_or_si512(q, _mm512_slli_epi16(h, 4));
      }
      const __m512i yv = _mm512_loadu_si512(ys + 64 * j);
      const int k0 = 2 * j, k1 = 2 * j + 1;
      const __m512i idx =
          Halves512(_mm256_set1_epi16(static_cast<int16_t>((2 * k0) | ((2 * k0 + 1) << 8))),
                    _mm256_set1_epi16(static_cast<int16_t>((2 * k1) | ((2 * k1 + 1) << 8))));
      const __m512i scale = _mm512_shuffle_epi8(sc16, idx);
      const __m512i p = _mm512_maddubs_epi16(q, yv);
#if EDGELM_VNNI
      sumi = Vpdpwssd512(sumi, p, scale);
#else
      sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scale));
#endif
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc) - acc_m;
}
#endif  // HWY_TARGET <= HWY_AVX3

EDGELM_KERNEL_ATTR float DotQ4K(int64_t n, const void* w, const void* xq) {
#if HWY_TARGET <= HWY_AVX3
  return DotQ45K512<false>(n, w, xq);
#else
  return DotQ45KImpl<false>(n, w, xq);
#endif
}
EDGELM_KERNEL_ATTR float DotQ5K(int64_t n, const void* w, const void* xq) {
#if HWY_TARGET <= HWY_AVX3
  return DotQ45K512<true>(n, w, xq);
#else
  return DotQ45KImpl<true>(n, w, xq);
#endif
}

#if HWY_TARGET <= HWY_AVX3
// AVX-512BW Q6_K: per 128-element half, zmm A = elements 0..63 (ql[0..63] low nibbles + qh
// bits 0-1 / 2-3), zmm B = elements 64..127 (high nibbles + qh bits 4-5 / 6-7). After maddubs
// each 128-bit lane holds one 16-element sub-block, so one vpermw places the scales.
HWY_INLINE float DotQ6K512(int64_t n, const void* w, const void* xq) {
  const auto* x = static_cast<const BlockQ6K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const int64_t nb = n / kQKK;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(0x03);
  const __m512i sh_a = Halves512(_mm256_setzero_si256(), _mm256_set1_epi16(2));
  const __m512i sh_b = Halves512(_mm256_set1_epi16(4), _mm256_set1_epi16(6));
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const float d = HalfToF32(x[i].d) * y[i].d;
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    // Stored values are q+32: subtract 32 * sum_s sc_s * bsum_s.
    __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(
        _mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5)));
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    const int8_t* ys = y[i].qs;
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * half);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * half)));
      const __m512i qa =
          _mm512_or_si512(_mm512_and_si512(ql, m4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_a), m2), 4));
      const __m512i qb =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_b), m2), 4));
      const int s0 = 8 * half;
      const __m512i ia = _mm512_setr_epi32(
          s0 * 0x10001, s0 * 0x10001, s0 * 0x10001, s0 * 0x10001, (s0 + 1) * 0x10001,
          (s0 + 1) * 0x10001, (s0 + 1) * 0x10001, (s0 + 1) * 0x10001, (s0 + 2) * 0x10001,
          (s0 + 2) * 0x10001, (s0 + 2) * 0x10001, (s0 + 2) * 0x10001, (s0 + 3) * 0x10001,
          (s0 + 3) * 0x10001, (s0 + 3) * 0x10001, (s0 + 3) * 0x10001);
      const __m512i ib = _mm512_add_epi16(ia, _mm512_set1_epi16(4));
      const __m512i ya = _mm512_loadu_si512(ys + 128 * half);
      const __m512i yb = _mm512_loadu_si512(ys + 128 * half + 64);
      const __m512i pa = _mm512_maddubs_epi16(qa, ya);
      const __m512i pb = _mm512_maddubs_epi16(qb, yb);
      const __m512i sa = _mm512_permutexvar_epi16(ia, sc512);
      const __m512i sb = _mm512_permutexvar_epi16(ib, sc512);
#if EDGELM_VNNI
      sumi = Vpdpwssd512(Vpdpwssd512(sumi, pa, sa), pb, sb);
#else
      sumi = _mm512_add_epi32(
          sumi, _mm512_add_epi32(_mm512_madd_epi16(pa, sa), _mm512_madd_epi16(pb, sb)));
#endif
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
#endif  // HWY_TARGET <= HWY_AVX3

EDGELM_KERNEL_ATTR float DotQ6K(int64_t n, const void* w, const void* xq) {
#if HWY_TARGET <= HWY_AVX3
  return DotQ6K512(n, w, xq);
#endif
  const auto* x = static_cast<const BlockQ6K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const int64_t nb = n / kQKK;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const float d = HalfToF32(x[i].d) * y[i].d;
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    // Offset: the stored 6-bit values are q+32, so subtract 32 * sum_s sc_s * bsum_s.
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    __m256i sumi =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
    // Scale-pair vectors: int16 lanes 0..7 = sc[2k], lanes 8..15 = sc[2k+1] (sign-extended by
    // duplicating the byte into both halves of each lane and shifting right arithmetically).
    const __m256i scb = _mm256_broadcastsi128_si256(sc8);
    const int8_t* ys = y[i].qs;
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * half));
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                             _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
      for (int k = 0; k < 4; ++k) {
        const int s = 8 * half + 2 * k;  // scales s (elements 0..15) and s+1 (16..31)
        const __m256i idx = _mm256_setr_m128i(_mm_set1_epi8(static_cast<char>(s)),
                                              _mm_set1_epi8(static_cast<char>(s + 1)));
        const __m256i scale = _mm256_srai_epi16(_mm256_shuffle_epi8(scb, idx), 8);
        const __m256i yv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys + 128 * half + 32 * k));
        sumi = MaddAcc(sumi, _mm256_maddubs_epi16(q[k], yv), scale);
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return HsumF32(acc);
}

#else  // !EDGELM_SIMD_X86
// ---------------------------------------------------------------- portable Highway paths
// 16-byte units (one Q6_K sub-block, half a Q8_0 block): every lane of a unit shares a scale,
// so the order in which a target accumulates products into int32 lanes does not matter.

using D8 = hn::CappedTag<int8_t, 16>;
using DU8 = hn::RebindToUnsigned<D8>;
using D32 = hn::Repartition<int32_t, D8>;
using DF = hn::Repartition<float, D8>;
using V8 = hn::Vec<D8>;
using V32 = hn::Vec<D32>;

// acc + sum of a*b over the unit (int8 x int8 -> int32 lanes, any lane placement).
HWY_INLINE V32 DotI8(V32 acc, V8 a, V8 b) {
#if HWY_TARGET == HWY_NEON && defined(__ARM_FEATURE_DOTPROD)
  return V32(vdotq_s32(acc.raw, a.raw, b.raw));
#elif HWY_TARGET == HWY_SVE || HWY_TARGET == HWY_SVE2 || HWY_TARGET == HWY_SVE_256 || \
    HWY_TARGET == HWY_SVE2_128
  return svdot_s32(acc, a, b);
#else
  const D8 d8;
  const D32 d32;
  const hn::Half<D8> dh;
  const hn::Rebind<int16_t, decltype(dh)> d16;
  auto s1 = hn::Zero(d32);
  acc = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LowerHalf(dh, a)),
                                      hn::PromoteTo(d16, hn::LowerHalf(dh, b)), acc, s1);
  acc = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::UpperHalf(dh, a)),
                                      hn::PromoteTo(d16, hn::UpperHalf(dh, b)), acc, s1);
  (void)d8;
  return hn::Add(acc, s1);
#endif
}

HWY_INLINE float SumF(hn::Vec<DF> v) { return hn::GetLane(hn::SumOfLanes(DF(), v)); }

// Loads 16 bytes of a unit (the capped tag may hold fewer lanes on exotic targets; callers
// step by Lanes()).
HWY_INLINE V8 LoadI8(const int8_t* p) { return hn::LoadU(D8(), p); }
HWY_INLINE hn::Vec<DU8> LoadU8(const uint8_t* p) { return hn::LoadU(DU8(), p); }

EDGELM_KERNEL_ATTR float DotQ8_0(int64_t n, const void* w, const void* xq) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const D32 d32;
  const DF df;
  const int nl = static_cast<int>(hn::Lanes(D8()));
  auto acc = hn::Zero(df);
  for (int64_t i = 0; i < n / kQK; ++i) {
    auto s = hn::Zero(d32);
    for (int k = 0; k < kQK; k += nl) s = DotI8(s, LoadI8(x[i].qs + k), LoadI8(y[i].qs + k));
    acc =
        hn::MulAdd(hn::ConvertTo(df, s), hn::Set(df, f16_to_f32(x[i].d) * f16_to_f32(y[i].d)), acc);
  }
  return SumF(acc);
}

EDGELM_KERNEL_ATTR float DotQ4_0(int64_t n, const void* w, const void* xq) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xq);
  const D8 d8;
  const DU8 du8;
  const D32 d32;
  const DF df;
  const int nl = static_cast<int>(hn::Lanes(d8));
  const auto m4 = hn::Set(du8, 0x0F);
  const auto eight = hn::Set(d8, 8);
  auto acc = hn::Zero(df);
  for (int64_t i = 0; i < n / kQK; ++i) {
    auto s = hn::Zero(d32);
    for (int k = 0; k < kQK / 2; k += nl) {
      const auto q = LoadU8(x[i].qs + k);
      const auto lo = hn::Sub(hn::BitCast(d8, hn::And(q, m4)), eight);
      const auto hi = hn::Sub(hn::BitCast(d8, hn::ShiftRight<4>(q)), eight);
      s = DotI8(s, lo, LoadI8(y[i].qs + k));
      s = DotI8(s, hi, LoadI8(y[i].qs + kQK / 2 + k));
    }
    acc =
        hn::MulAdd(hn::ConvertTo(df, s), hn::Set(df, f16_to_f32(x[i].d) * f16_to_f32(y[i].d)), acc);
  }
  return SumF(acc);
}

HWY_INLINE void UnpackScalesMinsK(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    m[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

template <bool kQ5>
HWY_INLINE float DotQ45KImpl(int64_t n, const void* w, const void* xq) {
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const D8 d8;
  const DU8 du8;
  const D32 d32;
  const int nl = static_cast<int>(hn::Lanes(d8));
  const auto m4 = hn::Set(du8, 0x0F);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* qs;
    const uint8_t* scales;
    const uint8_t* qh = nullptr;
    uint16_t dh, dminh;
    if constexpr (kQ5) {
      const auto& b = static_cast<const BlockQ5K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin, qh = b.qh;
    } else {
      const auto& b = static_cast<const BlockQ4K*>(w)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
    }
    uint8_t sc[8], mn[8];
    UnpackScalesMinsK(scales, sc, mn);
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    const int8_t* ys = y[i].qs;
    auto sumi = hn::Zero(d32);
    for (int j = 0; j < 4; ++j) {
      auto s_lo = hn::Zero(d32), s_hi = hn::Zero(d32);
      for (int k = 0; k < 32; k += nl) {
        const auto q = LoadU8(qs + 32 * j + k);
        auto lo = hn::And(q, m4);
        auto hi = hn::ShiftRight<4>(q);
        if constexpr (kQ5) {
          const auto h = LoadU8(qh + k);
          const auto sixteen = hn::Set(du8, 16);
          lo = hn::Or(
              lo, hn::IfThenElseZero(
                      hn::TestBit(h, hn::Set(du8, static_cast<uint8_t>(1u << (2 * j)))), sixteen));
          hi = hn::Or(hi, hn::IfThenElseZero(
                              hn::TestBit(h, hn::Set(du8, static_cast<uint8_t>(1u << (2 * j + 1)))),
                              sixteen));
        }
        s_lo = DotI8(s_lo, hn::BitCast(d8, lo), LoadI8(ys + 64 * j + k));
        s_hi = DotI8(s_hi, hn::BitCast(d8, hi), LoadI8(ys + 64 * j + 32 + k));
      }
      sumi = hn::Add(sumi, hn::Mul(s_lo, hn::Set(d32, sc[2 * j])));
      sumi = hn::Add(sumi, hn::Mul(s_hi, hn::Set(d32, sc[2 * j + 1])));
    }
    const int32_t total = hn::GetLane(hn::SumOfLanes(d32, sumi));
    sum += f16_to_f32(dh) * y[i].d * static_cast<float>(total) -
           f16_to_f32(dminh) * y[i].d * static_cast<float>(summ);
  }
  return sum;
}

EDGELM_KERNEL_ATTR float DotQ4K(int64_t n, const void* w, const void* xq) {
  return DotQ45KImpl<false>(n, w, xq);
}
EDGELM_KERNEL_ATTR float DotQ5K(int64_t n, const void* w, const void* xq) {
  return DotQ45KImpl<true>(n, w, xq);
}

EDGELM_KERNEL_ATTR float DotQ6K(int64_t n, const void* w, const void* xq) {
  const auto* x = static_cast<const BlockQ6K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xq);
  const D8 d8;
  const DU8 du8;
  const D32 d32;
  const int nl = static_cast<int>(hn::Lanes(d8));
  const auto m4 = hn::Set(du8, 0x0F);
  const auto m2 = hn::Set(du8, 0x03);
  const auto off = hn::Set(d8, 32);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    auto sumi = hn::Zero(d32);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const uint8_t* qh = x[i].qh + 32 * half;
      const int8_t* sc = x[i].scales + 8 * half;
      const int8_t* ys = y[i].qs + 128 * half;
      for (int l0 = 0; l0 < 32; l0 += 16) {  // sub-blocks of 16: scale index is = l0/16
        const int is = l0 / 16;
        auto s0 = hn::Zero(d32), s1 = hn::Zero(d32), s2 = hn::Zero(d32), s3 = hn::Zero(d32);
        for (int k = 0; k < 16; k += nl) {
          const int l = l0 + k;
          const auto a = LoadU8(ql + l);
          const auto b = LoadU8(ql + l + 32);
          const auto h = LoadU8(qh + l);
          const auto q1 = hn::Or(hn::And(a, m4), hn::ShiftLeft<4>(hn::And(h, m2)));
          const auto q2 =
              hn::Or(hn::And(b, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), m2)));
          const auto q3 =
              hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), m2)));
          const auto q4 = hn::Or(hn::ShiftRight<4>(b), hn::ShiftLeft<4>(hn::ShiftRight<6>(h)));
          s0 = DotI8(s0, hn::Sub(hn::BitCast(d8, q1), off), LoadI8(ys + l));
          s1 = DotI8(s1, hn::Sub(hn::BitCast(d8, q2), off), LoadI8(ys + l + 32));
          s2 = DotI8(s2, hn::Sub(hn::BitCast(d8, q3), off), LoadI8(ys + l + 64));
          s3 = DotI8(s3, hn::Sub(hn::BitCast(d8, q4), off), LoadI8(ys + l + 96));
        }
        sumi = hn::Add(sumi, hn::Mul(s0, hn::Set(d32, sc[is + 0])));
        sumi = hn::Add(sumi, hn::Mul(s1, hn::Set(d32, sc[is + 2])));
        sumi = hn::Add(sumi, hn::Mul(s2, hn::Set(d32, sc[is + 4])));
        sumi = hn::Add(sumi, hn::Mul(s3, hn::Set(d32, sc[is + 6])));
      }
    }
    sum += f16_to_f32(x[i].d) * y[i].d * static_cast<float>(hn::GetLane(hn::SumOfLanes(d32, sumi)));
  }
  return sum;
}

#endif  // EDGELM_SIMD_X86
#endif  // HWY_TARGET != HWY_SCALAR

// ---------------------------------------------------------------- dispatch within a target

#if HWY_TARGET == HWY_SCALAR
// One lane: nothing to gain over the reference kernels.
HWY_INLINE float VecDotOne(GgmlType wt, int64_t n, const void* w, const void* xq) {
  return ref_ops().vec_dot(wt, n, w, xq);
}
#else

HWY_INLINE float VecDotOne(GgmlType wt, int64_t n, const void* w, const void* xq) {
  switch (wt) {
    case GgmlType::kF32:
      return DotF32(n, static_cast<const float*>(w), static_cast<const float*>(xq));
    case GgmlType::kF16:
      return DotF16(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(xq));
    case GgmlType::kBF16:
      return DotBF16(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(xq));
    case GgmlType::kQ8_0:
      return DotQ8_0(n, w, xq);
    case GgmlType::kQ4_0:
      return DotQ4_0(n, w, xq);
    case GgmlType::kQ4_K:
      return DotQ4K(n, w, xq);
    case GgmlType::kQ5_K:
      return DotQ5K(n, w, xq);
    case GgmlType::kQ6_K:
      return DotQ6K(n, w, xq);
    default:
      return std::nanf("");  // callers check has_vec_dot() first
  }
}
#endif  // HWY_TARGET == HWY_SCALAR

float VecDot(GgmlType wt, int64_t n, const void* w, const void* xq) {
  return VecDotOne(wt, n, w, xq);
}

template <float (*kDot)(int64_t, const void*, const void*)>
HWY_INLINE void RowsLoop(int64_t n, const uint8_t* w, size_t stride, int64_t nrows, const void* xq,
                         float* y) {
  for (int64_t r = 0; r < nrows; ++r) y[r] = kDot(n, w + r * stride, xq);
}

void VecDotRows(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                const void* xq, float* y) {
  const auto* wb = static_cast<const uint8_t*>(w);
#if HWY_TARGET == HWY_SCALAR
  for (int64_t r = 0; r < nrows; ++r) y[r] = VecDotOne(wt, n, wb + r * row_stride, xq);
#else
  switch (wt) {
    case GgmlType::kQ8_0:
      // DotQ8_0Rows512<4> is ~15% faster on L2-resident rows but ~30% slower streaming a
      // 4096x4096 matrix from memory on Zen4 (four row streams), which is the decode case.
      return RowsLoop<DotQ8_0>(n, wb, row_stride, nrows, xq, y);
    case GgmlType::kQ4_0: {
#if EDGELM_SIMD_X86
      int64_t r = 0;
      for (; r + 4 <= nrows; r += 4) DotQ4_0x4(n, wb + r * row_stride, row_stride, xq, y + r);
      return RowsLoop<DotQ4_0>(n, wb + r * row_stride, row_stride, nrows - r, xq, y + r);
#else
      return RowsLoop<DotQ4_0>(n, wb, row_stride, nrows, xq, y);
#endif
    }
    case GgmlType::kQ4_K:
      return RowsLoop<DotQ4K>(n, wb, row_stride, nrows, xq, y);
    case GgmlType::kQ5_K:
      return RowsLoop<DotQ5K>(n, wb, row_stride, nrows, xq, y);
    case GgmlType::kQ6_K:
      return RowsLoop<DotQ6K>(n, wb, row_stride, nrows, xq, y);
    default:
      for (int64_t r = 0; r < nrows; ++r) y[r] = VecDotOne(wt, n, wb + r * row_stride, xq);
  }
#endif
}

int64_t CurrentTarget() { return HWY_TARGET; }

#undef EDGELM_SIMD_X86
#undef EDGELM_KERNEL_ATTR
#undef EDGELM_VNNI

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

namespace {
const float* make_half_table() {
  static float table[65536];
  for (uint32_t h = 0; h < 65536; ++h) table[h] = f16_to_f32(static_cast<uint16_t>(h));
  return table;
}
}  // namespace
const float* const kHalfToFloat = make_half_table();

HWY_EXPORT(VecDot);
HWY_EXPORT(VecDotRows);
HWY_EXPORT(CurrentTarget);

bool has_vec_dot(GgmlType wt) {
  switch (wt) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

float vec_dot(GgmlType wt, int64_t n, const void* w, const void* xq) {
  if (!has_vec_dot(wt)) return ref_ops().vec_dot(wt, n, w, xq);
  return HWY_DYNAMIC_DISPATCH(VecDot)(wt, n, w, xq);
}

void vec_dot_rows(GgmlType wt, int64_t n, const void* w, size_t row_stride, int64_t nrows,
                  const void* xq, float* y) {
  if (!has_vec_dot(wt)) {
    const auto* wb = static_cast<const uint8_t*>(w);
    for (int64_t r = 0; r < nrows; ++r) y[r] = ref_ops().vec_dot(wt, n, wb + r * row_stride, xq);
    return;
  }
  HWY_DYNAMIC_DISPATCH(VecDotRows)(wt, n, w, row_stride, nrows, xq, y);
}

int64_t current_target() { return HWY_DYNAMIC_DISPATCH(CurrentTarget)(); }

}  // namespace edgelm::simd
#endif  // HWY_ONCE
