// F16 flash-attention steps, as llama.cpp's CPU flash attention computes them: the running
// value sum of the online softmax is kept in F16 and rounded once per step. Two tables whose
// steps give bit-identical results: ref_attn_ops() (scalar, quant/fp16.h conversions) and
// best_attn_ops() (Highway, simd/attention.cpp; F16C/NEON/SVE conversions where they round to
// nearest even exactly like fp32_to_fp16, the scalar conversions on targets where Highway
// emulates them); the Highway table's fused `row` runs the same steps with a vector exp that
// may differ from std::exp in rare last bits. attention_row() runs one query row over a range
// of cached keys/values.
//
//   const AttnOps& a = best_attn_ops();
//   a.scale_f16(acc, ms, hd);            // acc[d] = f16(f32(acc[d]) * ms)
//   a.mad_f16(acc, v_row, vs, hd);       // acc[d] = f16(fmaf(f32(v[d]), vs, f32(acc[d])))
//   attention_row(a, ops, q16, k, k_stride, v, v_stride, n_kv, hd, scale, acc, out);
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace edgelm {

struct AttnOps {
  const char* name;  // "ref" or "simd"
  // acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * s), d in [0, n).
  void (*scale_f16)(uint16_t* acc, float s, int64_t n);
  // acc[d] = fp32_to_fp16(fmaf(fp16_to_fp32(v[d]), s, fp16_to_fp32(acc[d]))): one rounding to
  // float of the exact v * s + acc (ggml's F16 vec_mad on FMA hardware), then F16.
  void (*mad_f16)(uint16_t* acc, const uint16_t* v, float s, int64_t n);
  // out[d] = fp16_to_fp32(acc[d]) * s.
  void (*f16_to_f32_scaled)(const uint16_t* acc, float s, float* out, int64_t n);
  // Optional (may be nullptr): attention_rows() in one call (scores, softmax and value sum
  // fused, the F16 accumulators kept in registers, two queries interleaved, the exps of a
  // block of keys in one vector Exp), the three steps above with ops.vec_dot's scores; equal
  // to them except where the vector exp's last bit differs from std::exp's (rare; bounded in
  // tests/kernels). Returns false, writing nothing, when it cannot run (another ops.vec_dot,
  // an unsupported hd or target); the steps run instead.
  bool (*row)(const Ops& ops, int nq, const uint16_t* q16, const uint16_t* k, size_t k_stride,
              const uint16_t* v, size_t v_stride, int64_t n_kv, int64_t hd, float scale,
              uint16_t* acc, float* out) = nullptr;
};

const AttnOps& ref_attn_ops();
// The Highway table (every call dispatches to the current target); ref_attn_ops() when the
// environment variable EDGELM_KERNELS is "ref".
const AttnOps& best_attn_ops();

// Causal flash attention of one query row (q16: hd F16 values, the query rounded to F16) over
// keys/values j in [0, n_kv) at k + j * k_stride, v + j * v_stride (F16, hd each): scores
// ops.vec_dot(kF16, hd, k_j, q16) * scale, online softmax, running value sum in F16 (`acc`, hd
// halves of scratch), out = acc / sum of weights (hd floats).
void attention_row(const AttnOps& a, const Ops& ops, const uint16_t* q16, const uint16_t* k,
                   size_t k_stride, const uint16_t* v, size_t v_stride, int64_t n_kv, int64_t hd,
                   float scale, uint16_t* acc, float* out);
// attention_row() for nq queries that share the keys, values and n_kv (the query heads of one
// KV head): q16 holds nq x hd halves, out nq x hd floats; results equal nq attention_row calls.
void attention_rows(const AttnOps& a, const Ops& ops, int nq, const uint16_t* q16,
                    const uint16_t* k, size_t k_stride, const uint16_t* v, size_t v_stride,
                    int64_t n_kv, int64_t hd, float scale, uint16_t* acc, float* out);

namespace simd {
// The Highway attention steps for the current target (tests: run under force_target).
const AttnOps& attn_ops();
}  // namespace simd

}  // namespace edgelm
