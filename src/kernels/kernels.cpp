// vec_dot_type(), best_ops() (SIMD when linked, EDGELM_KERNELS=ref override), matmul() and
// dot_rows() (ggml rows or weights repacked at load).
#include "kernels/kernels.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>

namespace edgelm {

GgmlType vec_dot_type(GgmlType weight) {
  switch (weight) {
    case GgmlType::kF32:
      return GgmlType::kF32;
    case GgmlType::kF16:
      return GgmlType::kF16;
    case GgmlType::kBF16:
      return GgmlType::kBF16;
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:  // ggml: Q8_1; here Q8_0 with an exact min term (kernels.h)
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
      return GgmlType::kQ8_0;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return GgmlType::kQ8_K;
    default:
      return GgmlType::kF32;  // no product defined; vec_dot_supported() says false
  }
}

const Ops& best_ops() {
  if (const char* env = std::getenv("EDGELM_KERNELS");
      env != nullptr && std::strcmp(env, "ref") == 0)
    return ref_ops();
  if (const Ops* s = simd_ops_or_null()) return *s;
  return ref_ops();
}

void dot_rows(const Ops& ops, GgmlType wt, PackedLayout layout, int64_t n, const void* w,
              int64_t rows, int64_t r0, int64_t r1, const void* xq, float* y) {
  const size_t w_row = row_size(wt, n);
  const auto* wb = static_cast<const uint8_t*>(w);
  auto plain = [&](int64_t a, int64_t b) {
    if (a >= b) return;
    if (ops.vec_dot_rows != nullptr) {
      ops.vec_dot_rows(wt, n, wb + static_cast<size_t>(a) * w_row, w_row, b - a, xq, y + a);
    } else {
      for (int64_t i = a; i < b; ++i)
        y[i] = ops.vec_dot(wt, n, wb + static_cast<size_t>(i) * w_row, xq);
    }
  };
  const int64_t G = packed_group_rows(layout);
  if (G == 0) return plain(r0, r1);
  const int64_t packed_end = rows / G * G;  // rows past it keep the ggml layout
  const int64_t pe = std::min(r1, packed_end);
  thread_local std::vector<uint8_t> row;
  auto one = [&](int64_t i) {  // a row of a group that is cut, or a table without packed kernels
    row.resize(w_row);
    const int64_t g = i / G * G;
    unpack_row(layout, n, wb + static_cast<size_t>(g) * w_row, static_cast<int>(i - g), row.data());
    y[i] = ops.vec_dot(wt, n, row.data(), xq);
  };
  int64_t r = r0;
  if (ops.vec_dot_packed != nullptr) {
    for (; r < pe && r % G != 0; ++r) one(r);
    const int64_t ng = r < pe ? (pe - r) / G : 0;
    if (ng > 0) {
      ops.vec_dot_packed(layout, n, wb + static_cast<size_t>(r) * w_row, ng, xq, y + r);
      r += ng * G;
    }
  }
  for (; r < pe; ++r) one(r);
  plain(std::max(r0, packed_end), r1);
}

void matmul(const Ops& ops, ThreadPool& pool, GgmlType wt, const void* w, int64_t rows, int64_t n,
            const float* x, int64_t m, float* y, std::vector<uint8_t>& scratch,
            PackedLayout layout) {
  if (rows <= 0 || m <= 0) return;
  const GgmlType vt = vec_dot_type(wt);
  const size_t w_row = row_size(wt, n);
  const size_t x_row = row_size(vt, n);
  assert(vec_dot_supported(wt));
  assert(static_cast<int64_t>(type_traits(wt)->block_size) > 0 &&
         n % static_cast<int64_t>(type_traits(wt)->block_size) == 0);

  // Quantize every activation row once.
  const uint8_t* xq;
  if (vt == GgmlType::kF32) {
    xq = reinterpret_cast<const uint8_t*>(x);
  } else {
    const size_t need = x_row * static_cast<size_t>(m);
    if (scratch.size() < need) scratch.resize(need);
    uint8_t* dst = scratch.data();
    pool.parallel_for(static_cast<size_t>(m), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i)
        ops.quantize_row(vt, x + i * static_cast<size_t>(n), dst + i * x_row, n);
    });
    xq = scratch.data();
  }

  const auto* wb = static_cast<const uint8_t*>(w);
  // Batched paths walk the activations in panels that stay in L2 (~256 KiB).
  constexpr size_t kPanelBytes = size_t{256} << 10;
  const size_t panel = std::max<size_t>(4, (kPanelBytes / x_row) & ~size_t{3});
  const size_t mm = static_cast<size_t>(m);
  if (const int64_t G = packed_group_rows(layout); G > 0) {
    // Repacked weights: groups across threads; per thread, activation panels, whole groups
    // through gemm_packed, any other row through dot_rows.
    const int64_t packed_end = rows / G * G;
    pool.parallel_for(
        static_cast<size_t>(rows),
        [&](size_t b, size_t e, int) {
          const auto rb = static_cast<int64_t>(b), re = static_cast<int64_t>(e);
          for (size_t c0 = 0; c0 < mm; c0 += panel) {
            const size_t cn = std::min(panel, mm - c0);
            int64_t r = rb;
            if (ops.gemm_packed != nullptr && m > 1 && rb % G == 0) {
              const int64_t ng = (std::min(re, packed_end) - rb) / G;
              if (ng > 0) {
                ops.gemm_packed(layout, n, wb + b * w_row, ng, xq + c0 * x_row, x_row,
                                static_cast<int64_t>(cn), y + c0 * static_cast<size_t>(rows) + b,
                                static_cast<size_t>(rows));
                r += ng * G;
              }
            }
            if (r >= re) continue;
            for (size_t c = c0; c < c0 + cn; ++c)
              dot_rows(ops, wt, layout, n, w, rows, r, re, xq + c * x_row,
                       y + c * static_cast<size_t>(rows));
          }
        },
        static_cast<size_t>(G));
    return;
  }
  if (m > 1 && ops.gemm_tile != nullptr) {
    // Prefill: weight rows across threads (multiples of the 4-row register tile); each thread
    // walks the activation panels, and gemm_tile reuses every weight block from registers for
    // 4 activation rows (and each activation block for 4 weight rows) while a 4-row weight
    // group stays in L1.
    pool.parallel_for(
        static_cast<size_t>(rows),
        [&](size_t b, size_t e, int) {
          for (size_t c0 = 0; c0 < mm; c0 += panel) {
            const size_t cn = std::min(panel, mm - c0);
            ops.gemm_tile(wt, n, wb + b * w_row, w_row, static_cast<int64_t>(e - b),
                          xq + c0 * x_row, x_row, static_cast<int64_t>(cn),
                          y + c0 * static_cast<size_t>(rows) + b, static_cast<size_t>(rows));
          }
        },
        4);
    return;
  }

  // Weight rows across threads; within a thread, tiles of kTile rows stay in cache while every
  // activation row passes over them.
  constexpr size_t kTile = 16;
  pool.parallel_for(
      static_cast<size_t>(rows),
      [&](size_t b, size_t e, int) {
        for (size_t r0 = b; r0 < e; r0 += kTile) {
          const auto r1 = static_cast<int64_t>(std::min(e, r0 + kTile));
          for (size_t i = 0; i < mm; ++i)
            dot_rows(ops, wt, PackedLayout::kNone, n, w, rows, static_cast<int64_t>(r0), r1,
                     xq + i * x_row, y + i * static_cast<size_t>(rows));
        }
      },
      kTile);
}

}  // namespace edgelm
