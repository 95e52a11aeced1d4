// Helpers for the llama.cpp conformance tests: log-softmax over the full vocabulary (double
// accumulation, as llama.cpp's perplexity and llama-server's n_probs do), top-k, and the
// golden file paths (../shared/golden/conformance, ../shared/models).
//
//   std::vector<double> lp = log_softmax(logits);
//   std::vector<int32_t> top = top_k(lp, 5);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace edgelm::testing {

// The six conformance models every perplexity test runs over (../shared/models/<name>.gguf).
inline constexpr const char* kPerplexityModels[] = {"conf-llama-spm-f16",  "conf-llama-spm-q8_0",
                                                    "conf-llama-spm-q4_0", "conf-llama-spm-q4_k_m",
                                                    "conf-llama3-bpe-f16", "conf-qwen2-f16"};

// A GoogleTest parameter name for a model name ('-' and '.' become '_').
inline std::string model_param_name(const char* model) {
  std::string n = model;
  for (char& ch : n)
    if (ch == '-' || ch == '.') ch = '_';
  return n;
}

inline std::vector<double> log_softmax(std::span<const float> logits) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double log_sum = std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - mx - log_sum;
  return out;
}

inline std::vector<int32_t> top_k(const std::vector<double>& v, int k) {
  std::vector<int32_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

}  // namespace edgelm::testing
