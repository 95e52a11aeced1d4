// Tiled matrix-matrix products for prefill (m > 1 activation rows): simd::gemm_tile computes
// y[c * y_stride + r] = vec_dot(wt, n, w + r * w_stride, xq + c * x_stride) for a block of
// weight rows x activation rows. Micro-kernels hold an R x C tile of accumulators in registers
// (R = 4 weight rows, C = 4 activation rows) so each weight block is loaded/unpacked once per C
// activation rows and each activation block once per R weight rows. Kernels:
//   - AVX-512 VNNI (AVX3_DL): Q8_0 and Q4_0 (two 32-element blocks per zmm, vpdpbusd).
//   - AVX-512BW (AVX3, AVX3_DL): Q4_K, Q5_K, Q6_K (one 64-element chunk per zmm).
//   - AVX2 and AVX3 without VNNI: Q8_0 and Q4_0 (one block per ymm, maddubs; 4x2 tiles on AVX2).
//   - every non-scalar target: F16 (fp16 -> f32 promote, FMA).
// Anything else (other types or targets) runs the per-row simd::vec_dot_rows for each
// activation row, so gemm_tile is defined for every type vec_dot accepts.
// Results equal vec_dot up to float summation order (tests/kernels/simd-gemm-test.cpp).
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/simd/layout.h"
#include "kernels/simd/simd.h"

#ifndef EDGELM_SIMD_GEMM_DECL_
#define EDGELM_SIMD_GEMM_DECL_
namespace edgelm::simd {
extern const float* const kHalfToFloat;  // defined in vec-dot.cpp
}  // namespace edgelm::simd
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/gemm.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Per-row fallback: one vec_dot_rows call per activation row.
HWY_INLINE void GemmRowsFallback(GgmlType wt, int64_t n, const uint8_t* w, size_t ws, int64_t nrows,
                                 const uint8_t* x, size_t xs, int64_t ncols, float* y, size_t ys) {
  for (int64_t c = 0; c < ncols; ++c)
    simd::vec_dot_rows(wt, n, w, ws, nrows, x + static_cast<size_t>(c) * xs,
                       y + static_cast<size_t>(c) * ys);
}

// Runs Tile<R, C> over the (nrows x ncols) block in 4 x 4 steps, smaller tiles at the edges.
// Loop order: weight row group outer (its rows stay in L1), activation rows inner.
// kCols (4 or 2) is the widest tile: 2 where only 16 vector registers exist (AVX2).
template <template <int, int> class K, int kCols = 4>
HWY_INLINE void TileLoop(int64_t n, const uint8_t* w, size_t ws, int64_t nrows, const uint8_t* x,
                         size_t xs, int64_t ncols, float* y, size_t ys) {
  for (int64_t r = 0; r < nrows; r += 4) {
    const int64_t rn = std::min<int64_t>(4, nrows - r);
    const uint8_t* wr = w + static_cast<size_t>(r) * ws;
    for (int64_t c = 0; c < ncols; c += kCols) {
      const int64_t cn = std::min<int64_t>(kCols, ncols - c);
      const uint8_t* xc = x + static_cast<size_t>(c) * xs;
      float* yt = y + static_cast<size_t>(c) * ys + r;
#define EDGELM_TILE_CASE(RR)                                       \
  case RR:                                                         \
    switch (cn) {                                                  \
      case 4:                                                      \
        K<RR, kCols == 4 ? 4 : 1>::run(n, wr, ws, xc, xs, yt, ys); \
        break;                                                     \
      case 3:                                                      \
        K<RR, kCols == 4 ? 3 : 1>::run(n, wr, ws, xc, xs, yt, ys); \
        break;                                                     \
      case 2:                                                      \
        K<RR, 2>::run(n, wr, ws, xc, xs, yt, ys);                  \
        break;                                                     \
      default:                                                     \
        K<RR, 1>::run(n, wr, ws, xc, xs, yt, ys);                  \
    }                                                              \
    break;
      switch (rn) {
        EDGELM_TILE_CASE(4)
        EDGELM_TILE_CASE(3)
        EDGELM_TILE_CASE(2)
        EDGELM_TILE_CASE(1)
        default:
          break;
      }
#undef EDGELM_TILE_CASE
    }
  }
}

#if HWY_TARGET != HWY_SCALAR
// ---------------------------------------------------------------- F16 x F16 (all targets)
template <int R, int C>
struct TileF16 {
  static HWY_INLINE void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
    const hwy::float16_t* wp[R];
    const hwy::float16_t* xp[C];
    for (int r = 0; r < R; ++r) wp[r] = reinterpret_cast<const hwy::float16_t*>(w + r * ws);
    for (int c = 0; c < C; ++c) xp[c] = reinterpret_cast<const hwy::float16_t*>(x + c * xs);
    decltype(hn::Zero(df)) acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = hn::Zero(df);
    int64_t i = 0;
    for (; i + nl <= n; i += nl) {
      decltype(hn::Zero(df)) wv[R];
      for (int r = 0; r < R; ++r) wv[r] = hn::PromoteTo(df, hn::LoadU(dh, wp[r] + i));
      for (int c = 0; c < C; ++c) {
        const auto xv = hn::PromoteTo(df, hn::LoadU(dh, xp[c] + i));
        for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(wv[r], xv, acc[r][c]);
      }
    }
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < R; ++r) {
        float s = hn::GetLane(hn::SumOfLanes(df, acc[r][c]));
        const auto* wr = reinterpret_cast<const uint16_t*>(wp[r]);
        const auto* xr = reinterpret_cast<const uint16_t*>(xp[c]);
        for (int64_t k = i; k < n; ++k) s += f16_to_f32(wr[k]) * f16_to_f32(xr[k]);
        y[c * ys + r] = s;
      }
    }
  }
};
#endif  // HWY_TARGET != HWY_SCALAR

#if HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3_DL
#define EDGELM_GEMM_VNNI 1
// ---------------------------------------------------------------- AVX-512 VNNI Q8_0 / Q4_0
// EVEX vpdpbusd through inline asm (Highway 1.0.3 does not enable avx512vnni for AVX3_DL; the
// target guarantees it at runtime). acc += sum of 4 adjacent u8 * i8 products per int32 lane.
HWY_INLINE __m512i Dpbusd(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
HWY_INLINE float Half(uint16_t h) { return kHalfToFloat[h]; }
HWY_INLINE __m512i LoadPair(const void* a, const void* b) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
      _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}
// Lanes 0..7 = s0, lanes 8..15 = s1.
HWY_INLINE __m512 ScalePair(float s0, float s1) {
  return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

// Q8_0 x Q8_0: the activations are made unsigned (y + 128, an xor of the sign bit) so vpdpbusd
// takes them directly against the signed weights; the accumulator starts at -128 * sum(x) per
// lane (one vpdpbusd per weight block pair, shared by the C activation rows). Per (r, c) and
// 64 elements: vpdpbusd, cvt, mul (scales), fma.
template <int R, int C>
struct TileQ8_0 {
  static HWY_INLINE void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ8_0* wb[R];
    const BlockQ8_0* xb[C];
    for (int r = 0; r < R; ++r) wb[r] = reinterpret_cast<const BlockQ8_0*>(w + r * ws);
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_0*>(x + c * xs);
    const int64_t nb = n / kQK;
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
      const bool tail = i + 1 >= nb;
      const int64_t i1 = tail ? i : i + 1;
      __m512i wv[R], off[R];
      __m512 dw[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        wv[r] = LoadPair(wb[r][i].qs, wb[r][i1].qs);
        const __m512i sw = Dpbusd(_mm512_setzero_si512(), ones, wv[r]);
        off[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sw, 7));
        dw[r] = ScalePair(Half(wb[r][i].d), Half(wb[r][i1].d));
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m512i yu = _mm512_xor_si512(LoadPair(xb[c][i].qs, xb[c][i1].qs), sign);
        const __m512 dx = ScalePair(Half(xb[c][i].d), tail ? 0.0f : Half(xb[c][i1].d));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m512i p = Dpbusd(off[r], yu, wv[r]);
          acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(p), acc[r][c]);
        }
      }
    }
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) y[c * ys + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

// Q4_0 x Q8_0: 128-bit lanes hold [block0 & 0x0F, block0 & 0xF0, block1 & 0x0F, block1 & 0xF0]
// (unsigned, no shifts); lanes 4..7 of each block carry a factor 16 removed at the end. The
// offset term (8 resp. 128) * sum(y) starts the accumulator (per activation block pair, shared
// by the R weight rows).
HWY_INLINE __m512i LoadQ4Pair(const uint8_t* q0, const uint8_t* q1) {
  const __m256i t = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)), 1);
  const __m512i z =
      _mm512_shuffle_i64x2(_mm512_castsi256_si512(t), _mm512_castsi256_si512(t), 0x50);
  const __m512i mask = _mm512_broadcast_i64x4(
      _mm256_setr_m128i(_mm_set1_epi8(0x0F), _mm_set1_epi8(static_cast<char>(0xF0))));
  return _mm512_and_si512(z, mask);
}

template <int R, int C>
struct TileQ4_0 {
  static HWY_INLINE void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ4_0* wb[R];
    const BlockQ8_0* xb[C];
    for (int r = 0; r < R; ++r) wb[r] = reinterpret_cast<const BlockQ4_0*>(w + r * ws);
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_0*>(x + c * xs);
    const int64_t nb = n / kQK;
    const __m512i q4off = _mm512_broadcast_i64x4(
        _mm256_setr_m128i(_mm_set1_epi8(8), _mm_set1_epi8(static_cast<char>(128))));
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
      const bool tail = i + 1 >= nb;
      const int64_t i1 = tail ? i : i + 1;
      __m512i wv[R];
      __m512 dw[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        wv[r] = LoadQ4Pair(wb[r][i].qs, wb[r][i1].qs);
        dw[r] = ScalePair(Half(wb[r][i].d), Half(wb[r][i1].d));
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m512i yv = LoadPair(xb[c][i].qs, xb[c][i1].qs);
        const __m512i off =
            _mm512_sub_epi32(_mm512_setzero_si512(), Dpbusd(_mm512_setzero_si512(), q4off, yv));
        const __m512 dx = ScalePair(Half(xb[c][i].d), tail ? 0.0f : Half(xb[c][i1].d));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m512i p = Dpbusd(off, wv[r], yv);
          acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(p), acc[r][c]);
        }
      }
    }
    const __m512 unscale = _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f, 1, 1, 1,
                                          1, 0.0625f, 0.0625f, 0.0625f, 0.0625f);
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r)
        y[c * ys + r] = _mm512_reduce_add_ps(_mm512_mul_ps(acc[r][c], unscale));
  }
};
#else
#define EDGELM_GEMM_VNNI 0
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && HWY_TARGET != HWY_AVX3_DL
#define EDGELM_GEMM_AVX2 1
// ---------------------------------------------------------------- AVX2 / AVX3 Q8_0 / Q4_0
// One 32-element block per ymm (maddubs/madd, as the AVX2 vec_dot kernels). AVX2 has 16 ymm
// registers: tiles of 4 weight rows x 2 activation rows; AVX3 (32 registers): 4 x 4.
HWY_INLINE float Half2(uint16_t h) { return kHalfToFloat[h]; }
HWY_INLINE __m256i Load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Q8_0: |w| . sign(x, w) per (weight row, activation row).
template <int R, int C>
struct TileQ8_0x2 {
  static HWY_INLINE void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ8_0* wb[R];
    const BlockQ8_0* xb[C];
    for (int r = 0; r < R; ++r) wb[r] = reinterpret_cast<const BlockQ8_0*>(w + r * ws);
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_0*>(x + c * xs);
    const int64_t nb = n / kQK;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      __m256i wv[R], aw[R];
      __m256 dw[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        wv[r] = Load256(wb[r][i].qs);
        aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
        dw[r] = _mm256_set1_ps(Half2(wb[r][i].d));
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m256i xv = Load256(xb[c][i].qs);
        const __m256 dx = _mm256_set1_ps(Half2(xb[c][i].d));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256i p =
              _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, wv[r])), ones);
          acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(p), acc[r][c]);
        }
      }
    }
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) y[c * ys + r] = HsumF32x8(acc[r][c]);
  }
  static HWY_INLINE float HsumF32x8(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
};

// Q4_0: nibbles unpacked once per weight row (0..15), the offset 8 * x shared per activation
// row: (q - 8) . x = maddubs(q, x) - maddubs(8, x) in int16 (|.| <= 2 * 15 * 128: no
// saturation).
template <int R, int C>
struct TileQ4_0x2 {
  static HWY_INLINE void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ4_0* wb[R];
    const BlockQ8_0* xb[C];
    for (int r = 0; r < R; ++r) wb[r] = reinterpret_cast<const BlockQ4_0*>(w + r * ws);
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_0*>(x + c * xs);
    const int64_t nb = n / kQK;
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i eight = _mm256_set1_epi8(8);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      __m256i q[R];
      __m256 dw[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[r][i].qs));
        q[r] = _mm256_and_si256(
            _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1), m4);
        dw[r] = _mm256_set1_ps(Half2(wb[r][i].d));
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m256i xv = Load256(xb[c][i].qs);
        const __m256i ex = _mm256_maddubs_epi16(eight, xv);
        const __m256 dx = _mm256_set1_ps(Half2(xb[c][i].d));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256i p =
              _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(q[r], xv), ex), ones);
          acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(p), acc[r][c]);
        }
      }
    }
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) y[c * ys + r] = TileQ8_0x2<1, 1>::HsumF32x8(acc[r][c]);
  }
};
#if HWY_TARGET <= HWY_AVX3
constexpr int kAvx2Cols = 4;
#else
constexpr int kAvx2Cols = 2;
#endif
#else
#define EDGELM_GEMM_AVX2 0
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
#define EDGELM_GEMM_AVX512 1
// ---------------------------------------------------------------- AVX-512BW K-quants
// Same arithmetic as the vec_dot kernels (DotQ45K512 / DotQ6K512 in vec-dot.cpp): integer sums
// per super-block in the same order, so results are bitwise equal to vec_dot. Weights are
// unpacked (nibbles to bytes, 6-bit scales to per-lane vectors) once per 4-row group into a
// per-thread buffer and reused from L1/L2 for every activation row of the panel: unpacking
// costs about as much as the products, so unpacking per 4 x 4 tile (as a register-only tile
// must) spends half the time on it (Gemm4096 q4_K: 53 -> 80 GMAC/s, q6_K: 71 -> 79 on Zen4).
HWY_INLINE __m512i Halves(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
HWY_INLINE __m512i Dpwssd(__m512i acc, __m512i a, __m512i b) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}
HWY_INLINE float HalfK(uint16_t h) { return kHalfToFloat[h]; }

// Q4_K / Q5_K packed 6-bit scales/mins -> 8 scale bytes and 8 min bytes (see vec-dot.cpp).
HWY_INLINE void ScalesMinsK(const uint8_t* s, uint64_t* sc, uint64_t* m) {
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

// Q4_K / Q5_K, one unpacked super-block per row (576 bytes: 4 x 64 weights as bytes, their
// scales per int32 lane).
struct alignas(64) UnpackedQ45K {
  __m512i q[4];      // 64 u8 weights per chunk (with the fifth bit for Q5_K)
  __m512i scale[4];  // per-lane scales: float bits (VNNI) or int16 pairs
  __m128i mn16;      // 8 mins as int16
  float d, dmin;
};

template <bool kQ5>
HWY_INLINE void UnpackQ45K(const uint8_t* wrow, int64_t nb, UnpackedQ45K* out) {
  using Blk = std::conditional_t<kQ5, BlockQ5K, BlockQ4K>;
  const Blk* wb = reinterpret_cast<const Blk*>(wrow);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i nib_shift = Halves(_mm256_setzero_si256(), _mm256_set1_epi16(4));
  for (int64_t i = 0; i < nb; ++i) {
    const Blk& b = wb[i];
    UnpackedQ45K& u = out[i];
    u.d = HalfK(b.d);
    u.dmin = HalfK(b.dmin);
    uint64_t sc8, mn8;
    ScalesMinsK(b.scales, &sc8, &mn8);
    u.mn16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mn8)));
    const __m512i sc16 =
        _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc8))));
    __m512i hbits = _mm512_setzero_si512();
    if constexpr (kQ5)
      hbits = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i qb = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j)));
      __m512i q = _mm512_and_si512(_mm512_srlv_epi16(qb, nib_shift), m4);
      if constexpr (kQ5) {
        const __m512i hshift = Halves(_mm256_set1_epi16(static_cast<int16_t>(2 * j)),
                                      _mm256_set1_epi16(static_cast<int16_t>(2 * j + 1)));
        const __m512i h = _mm512_and_si512(_mm512_srlv_epi16(hbits, hshift), _mm512_set1_epi8(1));
        q = _mm512_or_si512(q, _mm512_slli_epi16(h, 4));
      }
      u.q[j] = q;
      const int k0 = 2 * j, k1 = 2 * j + 1;
      const __m512i idx =
          Halves(_mm256_set1_epi16(static_cast<int16_t>((2 * k0) | ((2 * k0 + 1) << 8))),
                 _mm256_set1_epi16(static_cast<int16_t>((2 * k1) | ((2 * k1 + 1) << 8))));
      __m512i sc = _mm512_shuffle_epi8(sc16, idx);
#if HWY_TARGET == HWY_AVX3_DL
      sc = _mm512_castps_si512(_mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(0xFFFF))));
#endif
      u.scale[j] = sc;
    }
  }
}

template <int R, int C>
struct TileQ45KU {
  // u[r]: row r's unpacked super-blocks; x: C activation rows (Q8_K).
  static HWY_INLINE void run(int64_t nb, const UnpackedQ45K* const* u, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ8K* xb[C];
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8K*>(x + c * xs);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      for (int c = 0; c < C; ++c) {
        const BlockQ8K& yb = xb[c][i];
        const __m128i pair =
            _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(yb.bsums)),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(yb.bsums + 8)));
        const __m512 dy = _mm512_set1_ps(yb.d);
        __m512i yv[4];
        for (int j = 0; j < 4; ++j) yv[j] = _mm512_loadu_si512(yb.qs + 64 * j);
        for (int r = 0; r < R; ++r) {
          const UnpackedQ45K& b = u[r][i];
#if HWY_TARGET == HWY_AVX3_DL
          __m512 sumf = _mm512_setzero_ps();
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j) {
            const __m512i dp = Dpbusd(_mm512_setzero_si512(), b.q[j], yv[j]);
            sumf = _mm512_fmadd_ps(_mm512_castsi512_ps(b.scale[j]), _mm512_cvtepi32_ps(dp), sumf);
          }
#else
          __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j)
            sumi = Dpwssd(sumi, _mm512_maddubs_epi16(b.q[j], yv[j]), b.scale[j]);
          const __m512 sumf = _mm512_cvtepi32_ps(sumi);
#endif
          const __m512 mins =
              _mm512_cvtepi32_ps(_mm512_zextsi128_si512(_mm_madd_epi16(pair, b.mn16)));
          acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(b.d), dy), sumf, acc[r][c]);
          acc[r][c] = _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_set1_ps(b.dmin), dy), mins, acc[r][c]);
        }
      }
    }
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) y[c * ys + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

// K-quant driver: per group of 4 weight rows, kUnpack writes each row's super-blocks into a
// per-thread buffer, then K<R, C> (C <= 4 activation rows) runs over the whole panel from it.
template <class U, void (*kUnpack)(const uint8_t*, int64_t, U*), template <int, int> class K>
HWY_INLINE void GemmUnpacked(int64_t n, const uint8_t* w, size_t ws, int64_t nrows,
                             const uint8_t* x, size_t xs, int64_t ncols, float* y, size_t ys) {
  const int64_t nb = n / kQKK;
  static thread_local std::vector<U> buf;
  if (buf.size() < static_cast<size_t>(4 * nb)) buf.resize(static_cast<size_t>(4 * nb));
  for (int64_t r = 0; r < nrows; r += 4) {
    const int64_t rn = std::min<int64_t>(4, nrows - r);
    const U* u[4];
    for (int64_t rr = 0; rr < rn; ++rr) {
      kUnpack(w + static_cast<size_t>(r + rr) * ws, nb, buf.data() + rr * nb);
      u[rr] = buf.data() + rr * nb;
    }
    for (int64_t c = 0; c < ncols; c += 4) {
      const int64_t cn = std::min<int64_t>(4, ncols - c);
      const uint8_t* xc = x + static_cast<size_t>(c) * xs;
      float* yt = y + static_cast<size_t>(c) * ys + r;
#define EDGELM_TILE_CASE(RR)                  \
  case RR:                                    \
    switch (cn) {                             \
      case 4:                                 \
        K<RR, 4>::run(nb, u, xc, xs, yt, ys); \
        break;                                \
      case 3:                                 \
        K<RR, 3>::run(nb, u, xc, xs, yt, ys); \
        break;                                \
      case 2:                                 \
        K<RR, 2>::run(nb, u, xc, xs, yt, ys); \
        break;                                \
      default:                                \
        K<RR, 1>::run(nb, u, xc, xs, yt, ys); \
    }                                         \
    break;
      switch (rn) {
        EDGELM_TILE_CASE(4)
        EDGELM_TILE_CASE(3)
        EDGELM_TILE_CASE(2)
        EDGELM_TILE_CASE(1)
        default:
          break;
      }
#undef EDGELM_TILE_CASE
    }
  }
}

// Q6_K: per 128-element half, A = elements 0..63 (low nibbles + qh bits 0-1 / 2-3), B =
// elements 64..127 (high nibbles + qh bits 4-5 / 6-7); one vpermw places the 16 scales.
struct alignas(64) UnpackedQ6K {
  __m512i qa[2], qb[2], sa[2], sb[2];
  __m256i sc16;
  float d;
};

HWY_INLINE void UnpackQ6K(const uint8_t* wrow, int64_t nb, UnpackedQ6K* out) {
  const BlockQ6K* wb = reinterpret_cast<const BlockQ6K*>(wrow);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(0x03);
  const __m512i sh_a = Halves(_mm256_setzero_si256(), _mm256_set1_epi16(2));
  const __m512i sh_b = Halves(_mm256_set1_epi16(4), _mm256_set1_epi16(6));
  for (int64_t i = 0; i < nb; ++i) {
    const BlockQ6K& b = wb[i];
    UnpackedQ6K& u = out[i];
    u.d = HalfK(b.d);
    u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m512i sc512 = _mm512_castsi256_si512(u.sc16);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(b.ql + 64 * half);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half)));
      u.qa[half] =
          _mm512_or_si512(_mm512_and_si512(ql, m4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_a), m2), 4));
      u.qb[half] =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_b), m2), 4));
      const int s0 = 8 * half;
      const __m512i ia = _mm512_setr_epi32(
          s0 * 0x10001, s0 * 0x10001, s0 * 0x10001, s0 * 0x10001, (s0 + 1) * 0x10001,
          (s0 + 1) * 0x10001, (s0 + 1) * 0x10001, (s0 + 1) * 0x10001, (s0 + 2) * 0x10001,
          (s0 + 2) * 0x10001, (s0 + 2) * 0x10001, (s0 + 2) * 0x10001, (s0 + 3) * 0x10001,
          (s0 + 3) * 0x10001, (s0 + 3) * 0x10001, (s0 + 3) * 0x10001);
      const __m512i ib = _mm512_add_epi16(ia, _mm512_set1_epi16(4));
      __m512i sa = _mm512_permutexvar_epi16(ia, sc512);
      __m512i sb = _mm512_permutexvar_epi16(ib, sc512);
#if HWY_TARGET == HWY_AVX3_DL
      sa =
          _mm512_castps_si512(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sa, 16), 16)));
      sb =
          _mm512_castps_si512(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sb, 16), 16)));
#endif
      u.sa[half] = sa;
      u.sb[half] = sb;
    }
  }
}

template <int R, int C>
struct TileQ6KU {
  static HWY_INLINE void run(int64_t nb, const UnpackedQ6K* const* u, const uint8_t* x, size_t xs,
                             float* y, size_t ys) {
    const BlockQ8K* xb[C];
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8K*>(x + c * xs);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      for (int c = 0; c < C; ++c) {
        const BlockQ8K& yb = xb[c][i];
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb.bsums));
        __m512i yv[4];
        for (int j = 0; j < 4; ++j) yv[j] = _mm512_loadu_si512(yb.qs + 64 * j);
        for (int r = 0; r < R; ++r) {
          const UnpackedQ6K& b = u[r][i];
          __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(
              _mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, b.sc16), 5)));
#if HWY_TARGET == HWY_AVX3_DL
          __m512 sumf = _mm512_cvtepi32_ps(sumi);
#pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            const __m512i pa = Dpbusd(_mm512_setzero_si512(), b.qa[half], yv[2 * half]);
            const __m512i pb = Dpbusd(_mm512_setzero_si512(), b.qb[half], yv[2 * half + 1]);
            sumf = _mm512_fmadd_ps(_mm512_castsi512_ps(b.sa[half]), _mm512_cvtepi32_ps(pa), sumf);
            sumf = _mm512_fmadd_ps(_mm512_castsi512_ps(b.sb[half]), _mm512_cvtepi32_ps(pb), sumf);
          }
#else
#pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            const __m512i pa = _mm512_maddubs_epi16(b.qa[half], yv[2 * half]);
            const __m512i pb = _mm512_maddubs_epi16(b.qb[half], yv[2 * half + 1]);
            sumi = Dpwssd(Dpwssd(sumi, pa, b.sa[half]), pb, b.sb[half]);
          }
          const __m512 sumf = _mm512_cvtepi32_ps(sumi);
#endif
          acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(b.d * yb.d), sumf, acc[r][c]);
        }
      }
    }
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) y[c * ys + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};
#else
#define EDGELM_GEMM_AVX512 0
#endif

void GemmTile(GgmlType wt, int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* xq,
              size_t x_stride, int64_t ncols, float* y, size_t y_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  switch (wt) {
#if HWY_TARGET != HWY_SCALAR
    case GgmlType::kF16:
      return TileLoop<TileF16>(n, wb, w_stride, nrows, xb, x_stride, ncols, y, y_stride);
#endif
#if EDGELM_GEMM_VNNI
    case GgmlType::kQ8_0:
      return TileLoop<TileQ8_0>(n, wb, w_stride, nrows, xb, x_stride, ncols, y, y_stride);
    case GgmlType::kQ4_0:
      return TileLoop<TileQ4_0>(n, wb, w_stride, nrows, xb, x_stride, ncols, y, y_stride);
#endif
#if EDGELM_GEMM_AVX2
    case GgmlType::kQ8_0:
      return TileLoop<TileQ8_0x2, kAvx2Cols>(n, wb, w_stride, nrows, xb, x_stride, ncols, y,
                                             y_stride);
    case GgmlType::kQ4_0:
      return TileLoop<TileQ4_0x2, kAvx2Cols>(n, wb, w_stride, nrows, xb, x_stride, ncols, y,
                                             y_stride);
#endif
#if EDGELM_GEMM_AVX512
    case GgmlType::kQ4_K:
      return GemmUnpacked<UnpackedQ45K, UnpackQ45K<false>, TileQ45KU>(n, wb, w_stride, nrows, xb,
                                                                      x_stride, ncols, y, y_stride);
    case GgmlType::kQ5_K:
      return GemmUnpacked<UnpackedQ45K, UnpackQ45K<true>, TileQ45KU>(n, wb, w_stride, nrows, xb,
                                                                     x_stride, ncols, y, y_stride);
    case GgmlType::kQ6_K:
      return GemmUnpacked<UnpackedQ6K, UnpackQ6K, TileQ6KU>(n, wb, w_stride, nrows, xb, x_stride,
                                                            ncols, y, y_stride);
#endif
    default:
      return GemmRowsFallback(wt, n, wb, w_stride, nrows, xb, x_stride, ncols, y, y_stride);
  }
}

// Whether GemmTile has a tiled kernel (not the fallback) for wt on this target.
bool GemmTiled(GgmlType wt) {
  switch (wt) {
#if HWY_TARGET != HWY_SCALAR
    case GgmlType::kF16:
      return true;
#endif
#if EDGELM_GEMM_VNNI
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return true;
#endif
#if EDGELM_GEMM_AVX2
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return true;
#endif
#if EDGELM_GEMM_AVX512
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
#endif
    default:
      return false;
  }
}

#undef EDGELM_GEMM_VNNI
#undef EDGELM_GEMM_AVX2
#undef EDGELM_GEMM_AVX512

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(GemmTile);
HWY_EXPORT(GemmTiled);

void gemm_tile(GgmlType wt, int64_t n, const void* w, size_t w_stride, int64_t nrows,
               const void* xq, size_t x_stride, int64_t ncols, float* y, size_t y_stride) {
  if (nrows <= 0 || ncols <= 0) return;
  if (!has_vec_dot(wt)) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = static_cast<const uint8_t*>(xq);
    for (int64_t c = 0; c < ncols; ++c)
      for (int64_t r = 0; r < nrows; ++r)
        y[static_cast<size_t>(c) * y_stride + static_cast<size_t>(r)] = ref_ops().vec_dot(
            wt, n, wb + static_cast<size_t>(r) * w_stride, xb + static_cast<size_t>(c) * x_stride);
    return;
  }
  HWY_DYNAMIC_DISPATCH(GemmTile)(wt, n, w, w_stride, nrows, xq, x_stride, ncols, y, y_stride);
}

bool gemm_tiled(GgmlType wt) { return HWY_DYNAMIC_DISPATCH(GemmTiled)(wt); }

}  // namespace edgelm::simd
#endif  // HWY_ONCE
