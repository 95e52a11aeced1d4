// Reference rms_norm, softmax, swiglu, axpy and the activation quantizers, evaluated in double.
#include <cmath>
#include <limits>

#include "kernels/ref/ref.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace edgelm::ref {

// Activations are rounded as ggml's runtime rounds them (its SIMD quantize_row_q8_0 rounds to
// nearest even), not as its file quantizer does (roundf, half away from zero): this is the
// oracle for the SIMD path and for llama.cpp, whose logits it is compared with.
void quantize_row(GgmlType type, const float* x, void* dst, int64_t n) {
  if (type != GgmlType::kQ8_0) return edgelm::quantize_row(type, x, dst, n);
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float* xb = x + i * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyintf(xb[j] * id));
  }
}

// As ggml: squares in float summed in double, the mean and the scale in float, applied in
// float. The 8-bit quantization of the normalized row is sensitive to its last bits.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n <= 0) return;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * scale;
    y[i] = w != nullptr ? v * w[i] : v;
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  if (max == -std::numeric_limits<float>::infinity()) {  // all masked: uniform, as a limit
    for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / static_cast<float>(n);
    return;
  }
  double sum = 0;
  // Two passes in double so the result is rounded once; the exponentials are recomputed.
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - max) / sum);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>(static_cast<double>(y[i]) + static_cast<double>(a) * x[i]);
}

}  // namespace edgelm::ref
