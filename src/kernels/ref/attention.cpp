// Scalar F16 flash-attention steps (the oracle for simd/attention.cpp), attention_row() and
// best_attn_ops().
#include "kernels/attention.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "quant/fp16.h"

namespace edgelm {
namespace {

void ref_scale_f16(uint16_t* acc, float s, int64_t n) {
  for (int64_t d = 0; d < n; ++d) acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * s);
}

void ref_mad_f16(uint16_t* acc, const uint16_t* v, float s, int64_t n) {
  // One fused multiply-add in float (as ggml's F16 vec_mad: promote, FMA, round to F16).
  for (int64_t d = 0; d < n; ++d)
    acc[d] = fp32_to_fp16(std::fma(fp16_to_fp32(v[d]), s, fp16_to_fp32(acc[d])));
}

void ref_f16_to_f32_scaled(const uint16_t* acc, float s, float* out, int64_t n) {
  for (int64_t d = 0; d < n; ++d) out[d] = fp16_to_fp32(acc[d]) * s;
}

}  // namespace

const AttnOps& ref_attn_ops() {
  static const AttnOps ops{"ref", &ref_scale_f16, &ref_mad_f16, &ref_f16_to_f32_scaled, nullptr};
  return ops;
}

const AttnOps& best_attn_ops() {
  if (const char* env = std::getenv("EDGELM_KERNELS");
      env != nullptr && std::strcmp(env, "ref") == 0)
    return ref_attn_ops();
  return simd::attn_ops();
}

void attention_row(const AttnOps& a, const Ops& ops, const uint16_t* q16, const uint16_t* k,
                   size_t k_stride, const uint16_t* v, size_t v_stride, int64_t n_kv, int64_t hd,
                   float scale, uint16_t* acc, float* out) {
  if (a.row != nullptr && a.row(ops, 1, q16, k, k_stride, v, v_stride, n_kv, hd, scale, acc, out))
    return;
  std::memset(acc, 0, static_cast<size_t>(hd) * sizeof(uint16_t));
  float M = -INFINITY, S = 0.0f;
  for (int64_t j = 0; j < n_kv; ++j) {
    const float s =
        ops.vec_dot(GgmlType::kF16, hd, k + static_cast<size_t>(j) * k_stride, q16) * scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {
      const float m_old = M;
      M = s;
      ms = std::exp(m_old - M);
      a.scale_f16(acc, ms, hd);
    } else {
      vs = std::exp(s - M);
    }
    a.mad_f16(acc, v + static_cast<size_t>(j) * v_stride, vs, hd);
    S = S * ms + vs;
  }
  a.f16_to_f32_scaled(acc, S == 0.0f ? 0.0f : 1.0f / S, out, hd);
}

void attention_rows(const AttnOps& a, const Ops& ops, int nq, const uint16_t* q16,
                    const uint16_t* k, size_t k_stride, const uint16_t* v, size_t v_stride,
                    int64_t n_kv, int64_t hd, float scale, uint16_t* acc, float* out) {
  if (a.row != nullptr && a.row(ops, nq, q16, k, k_stride, v, v_stride, n_kv, hd, scale, acc, out))
    return;
  for (int e = 0; e < nq; ++e)
    attention_row(a, ops, q16 + static_cast<size_t>(e) * static_cast<size_t>(hd), k, k_stride, v,
                  v_stride, n_kv, hd, scale, acc,
                  out + static_cast<size_t>(e) * static_cast<size_t>(hd));
}

}  // namespace edgelm
