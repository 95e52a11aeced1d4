// Products on weights repacked at load into quant/repack.h's interleaved layouts (16 rows
// interleaved 4 bytes at a time): one 512-bit load holds a lane per row, so one broadcast of 4
// activation bytes feeds 16 rows, the 16 block scales convert in one instruction, and no
// horizontal sum is left at the end. That is a fraction of the instructions per weight block of
// the row-by-row kernels in vec-dot.cpp, which decode was limited by.
//   - kQ4_0x16: AVX-512 (VNNI or not), AVX2 on two 8-row halves.
//   - kQ8_0x16 (bytes stored as q + 128, so vpdpbusd's unsigned operand is the weight and the
//     offset 128 * sum(activation block) is shared by all rows): AVX-512 VNNI.
// Other layout/target pairs unpack row by row (correct, slow; packed_layout() never asks those
// targets to repack). Decode (vec_dot_packed) and prefill (gemm_packed) give bit-identical
// results for the same activation row; both equal vec_dot up to float summation order
// (tests/kernels/simd-gemm-test.cpp, SimdPacked.*).
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/simd/layout.h"
#include "kernels/simd/simd.h"
#include "quant/repack.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/packed.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::simd {
namespace HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define EDGELM_PACKED_X86 1
#else
#define EDGELM_PACKED_X86 0
#endif
#if HWY_TARGET == HWY_AVX3_DL
#define EDGELM_PACKED_VNNI 1
#else
#define EDGELM_PACKED_VNNI 0
#endif

constexpr int kG = 16;  // rows per group
#if EDGELM_PACKED_X86
constexpr size_t kQOff = 32;  // quant bytes after the 16 fp16 scales of a group block
#endif

// Per-block terms of activation rows that every weight row shares: the scale as float and the
// offset mult * sum(q) (the products use unsigned weights: Q4_0 nibbles 0..15 = q + 8, Q8_0
// bytes q + 128; the offset takes that back off).
struct ActTerms {
  std::vector<float> d;
  std::vector<int32_t> off;
  void fill(int64_t nb, const uint8_t* xq, size_t x_stride, int64_t ncols, int32_t mult) {
    d.resize(static_cast<size_t>(nb * ncols));
    off.resize(static_cast<size_t>(nb * ncols));
    for (int64_t c = 0; c < ncols; ++c) {
      const auto* y = reinterpret_cast<const BlockQ8_0*>(xq + static_cast<size_t>(c) * x_stride);
      for (int64_t b = 0; b < nb; ++b) {
        int32_t s = 0;
        for (int j = 0; j < kQK; ++j) s += y[b].qs[j];
        d[static_cast<size_t>(c * nb + b)] = f16_to_f32(y[b].d);
        off[static_cast<size_t>(c * nb + b)] = mult * s;
      }
    }
  }
};

HWY_INLINE int32_t Load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if EDGELM_PACKED_X86 && HWY_TARGET <= HWY_AVX3
#if EDGELM_PACKED_VNNI
// EVEX vpdpbusd through inline asm (see vec-dot.cpp: Highway 1.0.3's AVX3_DL flags lack
// avx512vnni).
HWY_INLINE __m512i Dpbusd(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
#endif

// One block of a kQ4_0x16 group, unpacked: lo[k] = elements 4k..4k+3 of each row (lane), hi[k]
// = elements 16+4k..16+4k+3, as 16 * nibble with VNNI (no shift: vpdpbusd takes u8 up to 255;
// the factor 16 is shifted out of the exact integer sum) or as the nibble without.
struct Q4Block16 {
  static constexpr size_t kBytes = 288;
  static constexpr int32_t kOffset = 8;
  __m512i lo[4], hi[4];
  HWY_INLINE explicit Q4Block16(const uint8_t* q) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_loadu_si512(q + 64 * k);
      lo[k] = _mm512_and_si512(v, m4);
#if EDGELM_PACKED_VNNI
      hi[k] = _mm512_andnot_si512(m4, v);
#else
      hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#endif
    }
  }
  // Exact integer block products of the 16 rows with activation block yq, offset removed.
  HWY_INLINE __m512i dot(const int8_t* yq, int32_t off) const {
    __m512i a = _mm512_setzero_si512(), h = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      const __m512i yl = _mm512_set1_epi32(Load4(yq + 4 * k));
      const __m512i yh = _mm512_set1_epi32(Load4(yq + 16 + 4 * k));
#if EDGELM_PACKED_VNNI
      a = Dpbusd(a, lo[k], yl);
      h = Dpbusd(h, hi[k], yh);
#else
      const __m512i one = _mm512_set1_epi16(1);
      a = _mm512_add_epi32(a, _mm512_madd_epi16(_mm512_maddubs_epi16(lo[k], yl), one));
      h = _mm512_add_epi32(h, _mm512_madd_epi16(_mm512_maddubs_epi16(hi[k], yh), one));
#endif
    }
#if EDGELM_PACKED_VNNI
    h = _mm512_srai_epi32(h, 4);
#endif
    return _mm512_sub_epi32(_mm512_add_epi32(a, h), _mm512_set1_epi32(off));
  }
};

#if EDGELM_PACKED_VNNI
// One block of a kQ8_0x16 group: v[k] = bytes q + 128 of elements 4k..4k+3 of each row.
struct Q8Block16 {
  static constexpr size_t kBytes = 544;
  static constexpr int32_t kOffset = 128;
  __m512i v[8];
  HWY_INLINE explicit Q8Block16(const uint8_t* q) {
    for (int k = 0; k < 8; ++k) v[k] = _mm512_loadu_si512(q + 64 * k);
  }
  HWY_INLINE __m512i dot(const int8_t* yq, int32_t off) const {
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
      a = Dpbusd(a, v[k], _mm512_set1_epi32(Load4(yq + 4 * k)));
      b = Dpbusd(b, v[k + 1], _mm512_set1_epi32(Load4(yq + 4 * k + 4)));
    }
    return _mm512_sub_epi32(_mm512_add_epi32(a, b), _mm512_set1_epi32(off));
  }
};
#endif

HWY_INLINE __m512 Scales16(const uint8_t* blk) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
}

// 16 rows of one group x C activation rows (columns); out[c * ys + r].
template <class W, int C>
HWY_INLINE void GroupTile(int64_t nb, const uint8_t* g, const uint8_t* xq, size_t xs,
                          const float* d, const int32_t* off, float* out, size_t ys) {
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + static_cast<size_t>(b) * W::kBytes;
    const W w(blk + kQOff);
    const __m512 ws = Scales16(blk);
    for (int c = 0; c < C; ++c) {
      const auto* y = reinterpret_cast<const BlockQ8_0*>(xq + static_cast<size_t>(c) * xs);
      const size_t t = static_cast<size_t>(c * nb + b);
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(ws, _mm512_set1_ps(d[t])),
                               _mm512_cvtepi32_ps(w.dot(y[b].qs, off[t])), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + static_cast<size_t>(c) * ys, acc[c]);
}

template <class W>
HWY_INLINE void GroupsGemm(int64_t n, const uint8_t* wb, int64_t ngroups, const uint8_t* xb,
                           size_t x_stride, int64_t ncols, float* y, size_t y_stride) {
  const int64_t nb = n / kQK;
  const size_t group_bytes = static_cast<size_t>(nb) * W::kBytes;
  thread_local ActTerms t;
  t.fill(nb, xb, x_stride, ncols, W::kOffset);
  // Group outer (its 16 rows stay in L1), activation rows inner, 4 at a time. Decode
  // (ncols = 1) runs the same 1-column tile as prefill's edge columns, so the two give
  // bit-identical results (a session that reuses a cached prompt must sample what a fresh one
  // samples).
  for (int64_t g = 0; g < ngroups; ++g) {
    const uint8_t* gw = wb + static_cast<size_t>(g) * group_bytes;
    int64_t c = 0;
    for (; c + 4 <= ncols; c += 4) {
      GroupTile<W, 4>(nb, gw, xb + static_cast<size_t>(c) * x_stride, x_stride, t.d.data() + c * nb,
                      t.off.data() + c * nb, y + static_cast<size_t>(c) * y_stride + g * kG,
                      y_stride);
    }
    for (; c < ncols; ++c) {
      GroupTile<W, 1>(nb, gw, xb + static_cast<size_t>(c) * x_stride, x_stride, t.d.data() + c * nb,
                      t.off.data() + c * nb, y + static_cast<size_t>(c) * y_stride + g * kG,
                      y_stride);
    }
  }
}

#elif EDGELM_PACKED_X86
// AVX2, kQ4_0x16: each group as two halves of 8 rows (32 bytes of every 64-byte chunk, 8
// scales).
HWY_INLINE void GroupDotQ4Avx2(int64_t nb, const uint8_t* g, const BlockQ8_0* y, const float* d,
                               const int32_t* off, float* out) {
  constexpr size_t kBytes = 288;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi16(1);
  for (int h = 0; h < 2; ++h) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = g + static_cast<size_t>(b) * kBytes;
      __m256i a = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i v =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQOff + 64 * k + 32 * h));
        const __m256i yl = _mm256_set1_epi32(Load4(y[b].qs + 4 * k));
        const __m256i yh = _mm256_set1_epi32(Load4(y[b].qs + 16 + 4 * k));
        const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(v, m4), yl);
        const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), yh);
        a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_add_epi16(lo, hi), one));
      }
      a = _mm256_sub_epi32(a, _mm256_set1_epi32(off[b]));
      const __m256 ws =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * h)));
      acc = _mm256_fmadd_ps(_mm256_mul_ps(ws, _mm256_set1_ps(d[b])), _mm256_cvtepi32_ps(a), acc);
    }
    _mm256_storeu_ps(out + 8 * h, acc);
  }
}
#endif

// Whether this target has a fast kernel for `layout` (else the generic unpacking loop runs).
HWY_INLINE bool Fast(PackedLayout layout) {
  if (layout == PackedLayout::kQ4_0x16) return EDGELM_PACKED_X86 != 0;
  if (layout == PackedLayout::kQ8_0x16) return EDGELM_PACKED_VNNI != 0;
  return false;
}

int32_t LayoutFor(GgmlType wt) {
  for (PackedLayout l : {PackedLayout::kQ4_0x16, PackedLayout::kQ8_0x16})
    if (packed_layout_type(l) == wt && Fast(l)) return static_cast<int32_t>(l);
  return static_cast<int32_t>(PackedLayout::kNone);
}

// Rows of whole groups, one at a time through the unpacked ggml layout.
HWY_INLINE void GenericDot(PackedLayout layout, int64_t n, const uint8_t* wb, int64_t ngroups,
                           const void* xq, float* y) {
  const GgmlType wt = packed_layout_type(layout);
  const size_t row_bytes = row_size(wt, n);
  std::vector<uint8_t> row(row_bytes);
  for (int64_t g = 0; g < ngroups; ++g) {
    for (int r = 0; r < kG; ++r) {
      unpack_row(layout, n, wb + static_cast<size_t>(g) * kG * row_bytes, r, row.data());
      y[g * kG + r] = simd::vec_dot(wt, n, row.data(), xq);
    }
  }
}

void VecDotPacked(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                  float* y) {
  const auto* wb = static_cast<const uint8_t*>(w);
#if EDGELM_PACKED_X86 && HWY_TARGET <= HWY_AVX3
  const auto* xb = static_cast<const uint8_t*>(xq);
  if (layout == PackedLayout::kQ4_0x16)
    return GroupsGemm<Q4Block16>(n, wb, ngroups, xb, 0, 1, y, 0);
#if EDGELM_PACKED_VNNI
  if (layout == PackedLayout::kQ8_0x16)
    return GroupsGemm<Q8Block16>(n, wb, ngroups, xb, 0, 1, y, 0);
#endif
#elif EDGELM_PACKED_X86
  if (layout == PackedLayout::kQ4_0x16) {
    const int64_t nb = n / kQK;
    thread_local ActTerms t;
    t.fill(nb, static_cast<const uint8_t*>(xq), 0, 1, 8);
    for (int64_t g = 0; g < ngroups; ++g)
      GroupDotQ4Avx2(nb, wb + static_cast<size_t>(g) * nb * 288, static_cast<const BlockQ8_0*>(xq),
                     t.d.data(), t.off.data(), y + g * kG);
    return;
  }
#endif
  GenericDot(layout, n, wb, ngroups, xq, y);
}

void GemmPacked(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                size_t x_stride, int64_t ncols, float* y, size_t y_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
#if EDGELM_PACKED_X86 && HWY_TARGET <= HWY_AVX3
  if (layout == PackedLayout::kQ4_0x16)
    return GroupsGemm<Q4Block16>(n, wb, ngroups, xb, x_stride, ncols, y, y_stride);
#if EDGELM_PACKED_VNNI
  if (layout == PackedLayout::kQ8_0x16)
    return GroupsGemm<Q8Block16>(n, wb, ngroups, xb, x_stride, ncols, y, y_stride);
#endif
#endif
  for (int64_t c = 0; c < ncols; ++c)
    VecDotPacked(layout, n, wb, ngroups, xb + static_cast<size_t>(c) * x_stride,
                 y + static_cast<size_t>(c) * y_stride);
}

#undef EDGELM_PACKED_X86
#undef EDGELM_PACKED_VNNI

}  // namespace HWY_NAMESPACE
}  // namespace edgelm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgelm::simd {

HWY_EXPORT(LayoutFor);
HWY_EXPORT(VecDotPacked);
HWY_EXPORT(GemmPacked);

PackedLayout packed_layout(GgmlType wt) {
  return static_cast<PackedLayout>(HWY_DYNAMIC_DISPATCH(LayoutFor)(wt));
}

void vec_dot_packed(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                    float* y) {
  HWY_DYNAMIC_DISPATCH(VecDotPacked)(layout, n, w, ngroups, xq, y);
}

void gemm_packed(PackedLayout layout, int64_t n, const void* w, int64_t ngroups, const void* xq,
                 size_t x_stride, int64_t ncols, float* y, size_t y_stride) {
  HWY_DYNAMIC_DISPATCH(GemmPacked)(layout, n, w, ngroups, xq, x_stride, ncols, y, y_stride);
}

}  // namespace edgelm::simd
#endif  // HWY_ONCE
