// Activation-aware scaling for 4-bit quantization, in the spirit of AWQ: run the F16/F32 model
// over calibration tokens, collect the mean |activation| a_j of every input channel j of each
// layer's q/k/v input (after attn_norm) and gate/up input (after ffn_norm), and per layer and
// site pick s_j = a_j^alpha (alpha from a small grid, 0 = plain quantization) that minimizes
// the products' error ||X (W - Q(W*s)/s)^T||^2 on sampled activation rows X. The matrices are
// then quantized as W*s and the RMSNorm weight divided by s (QuantizeOptions::column_scales /
// norm_divisors), so the output is still a plain llama GGUF that any reader runs unchanged.
//
//   ASSIGN_OR_RETURN(auto model, Model::load("in-f16.gguf"));
//   AwqOptions ao;  ao.preset = QuantPreset::kQ4_0;
//   ASSIGN_OR_RETURN(AwqResult awq, compute_awq_scales(*model, calibration_ids, ao));
//   qo.column_scales = awq.column_scales;  qo.norm_divisors = awq.norm_divisors;
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "model/quantize-model.h"

namespace edgelm {

struct AwqOptions {
  QuantPreset preset = QuantPreset::kQ4_0;
  int n_ctx = 256;        // calibration chunk length (tokens)
  int max_tokens = 2048;  // calibration tokens used at most
  int max_samples = 128;  // activation rows kept per layer and site for the error search
  std::vector<float> alphas = {0.0f, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f};
  int n_threads = 0;  // forward pass threads; 0: physical cores
};

struct AwqLayerChoice {
  int layer = 0;
  int site = 0;          // 0: attn_norm -> q/k/v, 1: ffn_norm -> gate/up
  float alpha = 0;       // chosen exponent (0: unscaled)
  double err_plain = 0;  // error of plain quantization on the samples
  double err_best = 0;   // error with the chosen scales
};

struct AwqResult {
  std::map<std::string, std::vector<float>> column_scales;
  std::map<std::string, std::vector<float>> norm_divisors;
  std::vector<AwqLayerChoice> choices;
  int tokens = 0;  // calibration tokens run
};

// `model` must hold float (F32/F16/BF16) matrices. tokens: the calibration text's ids.
StatusOr<AwqResult> compute_awq_scales(const Model& model, const std::vector<int32_t>& tokens,
                                       const AwqOptions& options);

}  // namespace edgelm
