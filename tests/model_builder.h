// Tiny random llama-family models for tests, written with the project's GgufWriter: arch
// "llama" (SPM-like minimal vocabulary metadata) or "qwen2" (q/k/v biases, BPE-like metadata),
// tied or separate output, any supported matrix type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K). Weights are Gaussian (never zero), deterministic per seed.
// Header-only: include it from any test that links edgelm_gguf and edgelm_quant.
//
//   TinyModelSpec spec;  spec.arch = "qwen2";  spec.matrix_type = GgmlType::kQ4_K;
//   std::string path = edgelm::testing::temp_path("tiny-qwen2-q4k.gguf");
//   ASSERT_TRUE(write_tiny_model(spec, path).ok());
//   auto model = Model::load(path);  ...  std::filesystem::remove(path);
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/writer.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace edgelm::testing {

struct TinyModelSpec {
  std::string arch = "llama";  // "llama" or "qwen2"
  int64_t n_vocab = 96;
  int64_t n_embd = 256;  // K-quants need row lengths that are multiples of 256
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t n_ff = 256;
  int64_t n_ctx_train = 64;
  int64_t n_rot = 0;                      // 0: head_dim
  GgmlType matrix_type = GgmlType::kF32;  // all 2-D tensors (token_embd/output included)
  bool tied_output = false;
  bool qkv_bias = false;  // forced on for qwen2
  float rope_freq_base = 10000.0f;
  float rope_scale_factor = 0;  // > 0: linear RoPE scaling (positions / factor)
  bool rope_freqs = false;      // add a rope_freqs.weight tensor (Llama 3.1-style factors)
  float rms_eps = 1e-5f;
  uint64_t seed = 1;
};

namespace model_builder_internal {

inline std::vector<float> gaussian(std::mt19937_64& rng, size_t n, double mean, double stddev) {
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) {
    double d = dist(rng);
    if (d == 0.0) d = stddev * 1e-3;  // never an exact zero
    x = static_cast<float>(d);
  }
  return v;
}

inline Status add_matrix(GgufWriter& w, std::mt19937_64& rng, const std::string& name,
                         GgmlType type, int64_t ne0, int64_t ne1, double stddev) {
  std::vector<float> f = gaussian(rng, static_cast<size_t>(ne0 * ne1), 0.0, stddev);
  const size_t rb = row_size(type, ne0);
  std::vector<uint8_t> bytes(rb * static_cast<size_t>(ne1));
  for (int64_t r = 0; r < ne1; ++r) {
    RETURN_IF_ERROR(
        quantize_tensor(type, f.data() + r * ne0, ne0, bytes.data() + r * rb, rb, name));
  }
  return w.add_tensor(name, type, {ne0, ne1}, bytes);
}

inline Status add_vector(GgufWriter& w, std::mt19937_64& rng, const std::string& name, int64_t n,
                         double mean, double stddev) {
  std::vector<float> f = gaussian(rng, static_cast<size_t>(n), mean, stddev);
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(f.data()),
                                 f.size() * sizeof(float));
  return w.add_tensor(name, GgmlType::kF32, {n}, bytes);
}

}  // namespace model_builder_internal

// Builds the GGUF bytes of a tiny model.
inline Status build_tiny_model(const TinyModelSpec& s, GgufWriter& w) {
  using namespace model_builder_internal;
  const bool qwen = s.arch == "qwen2";
  const int64_t head_dim = s.n_embd / s.n_head;
  const int64_t n_rot = s.n_rot ? s.n_rot : head_dim;
  const std::string a = s.arch;
  w.set_string("general.architecture", a);
  w.set_string("general.name", fmt::format("tiny-{}-{}", a, type_name(s.matrix_type)));
  w.set_u32(a + ".context_length", static_cast<uint32_t>(s.n_ctx_train));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(n_rot));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_f32(a + ".rope.freq_base", s.rope_freq_base);
  if (s.rope_scale_factor > 0) {
    w.set_string(a + ".rope.scaling.type", "linear");
    w.set_f32(a + ".rope.scaling.factor", s.rope_scale_factor);
  }

  // Minimal vocabulary metadata: control tokens first, then byte-ish pieces.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  for (int64_t i = 0; i < s.n_vocab; ++i) {
    if (i == 0)
      tokens.push_back(qwen ? "!" : "<unk>"), types.push_back(qwen ? 1 : 2);
    else if (i == 1)
      tokens.push_back("<s>"), types.push_back(3);
    else if (i == 2)
      tokens.push_back("</s>"), types.push_back(3);
    else
      tokens.push_back(fmt::format("t{}", i)), types.push_back(1);
    scores.push_back(-static_cast<float>(i));
  }
  w.set_string("tokenizer.ggml.model", qwen ? "gpt2" : "llama");
  w.set_array_string("tokenizer.ggml.tokens", tokens);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  if (qwen) {
    w.set_string("tokenizer.ggml.pre", "qwen2");
    w.set_array_string("tokenizer.ggml.merges", {"t 1", "t 2"});
  } else {
    w.set_array_f32("tokenizer.ggml.scores", scores);
  }
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);

  std::mt19937_64 rng(s.seed);
  const GgmlType t = s.matrix_type;
  const int64_t E = s.n_embd, Q = head_dim * s.n_head, KV = head_dim * s.n_head_kv, F = s.n_ff;
  const double in_e = 1.0 / std::sqrt(static_cast<double>(E));
  RETURN_IF_ERROR(add_matrix(w, rng, "token_embd.weight", t, E, s.n_vocab, 1.0));
  RETURN_IF_ERROR(add_vector(w, rng, "output_norm.weight", E, 1.0, 0.2));
  if (!s.tied_output) RETURN_IF_ERROR(add_matrix(w, rng, "output.weight", t, E, s.n_vocab, in_e));
  if (s.rope_freqs) {
    std::vector<float> ff(static_cast<size_t>(n_rot / 2));
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + static_cast<float>(i % 4);
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(ff.data()),
                                   ff.size() * sizeof(float));
    RETURN_IF_ERROR(w.add_tensor("rope_freqs.weight", GgmlType::kF32, {n_rot / 2}, bytes));
  }
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    RETURN_IF_ERROR(add_vector(w, rng, p + "attn_norm.weight", E, 1.0, 0.2));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "attn_q.weight", t, E, Q, in_e * 2));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "attn_k.weight", t, E, KV, in_e * 2));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "attn_v.weight", t, E, KV, in_e));
    if (qwen || s.qkv_bias) {
      RETURN_IF_ERROR(add_vector(w, rng, p + "attn_q.bias", Q, 0.0, 0.5));
      RETURN_IF_ERROR(add_vector(w, rng, p + "attn_k.bias", KV, 0.0, 0.5));
      RETURN_IF_ERROR(add_vector(w, rng, p + "attn_v.bias", KV, 0.0, 0.5));
    }
    RETURN_IF_ERROR(
        add_matrix(w, rng, p + "attn_output.weight", t, Q, E, 1.0 / std::sqrt(double(Q))));
    RETURN_IF_ERROR(add_vector(w, rng, p + "ffn_norm.weight", E, 1.0, 0.2));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "ffn_gate.weight", t, E, F, in_e));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "ffn_up.weight", t, E, F, in_e));
    RETURN_IF_ERROR(add_matrix(w, rng, p + "ffn_down.weight", t, F, E, 1.0 / std::sqrt(double(F))));
  }
  return Status::ok_status();
}

// Writes a tiny model to `path` (atomically).
inline Status write_tiny_model(const TinyModelSpec& spec, const std::string& path) {
  GgufWriter w;
  RETURN_IF_ERROR(build_tiny_model(spec, w));
  return w.write(path);
}

}  // namespace edgelm::testing
