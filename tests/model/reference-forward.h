// A plain double-precision forward pass of the llama / qwen2 transformer, written
// independently of src/model (no kernels, no op table, no KV cache): weights dequantized to
// doubles, straightforward loops, the whole sequence recomputed. The oracle for the model tests.
//
//   ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
//   ReferenceModel ref(*file);                      // check ref.error().empty()
//   std::vector<std::vector<double>> logits = ref.forward({1, 5, 7});   // one row per token
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "quant/quant.h"

namespace edgelm::testing {

class ReferenceModel {
 public:
  explicit ReferenceModel(const GgufFile& f) : f_(f) {
    arch_ = f.get_string("general.architecture").value_or("");
    neox_ = arch_ == "qwen2";
    auto u = [&](const std::string& k) {
      return static_cast<int64_t>(f.get_uint(arch_ + "." + k).value_or(0));
    };
    n_embd_ = u("embedding_length");
    n_layer_ = u("block_count");
    n_head_ = u("attention.head_count");
    n_head_kv_ = u("attention.head_count_kv");
    n_ff_ = u("feed_forward_length");
    head_dim_ = n_embd_ / n_head_;
    n_rot_ = u("rope.dimension_count");
    eps_ = f.get_float(arch_ + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
    base_ = f.get_float(arch_ + ".rope.freq_base").value_or(10000.0);
    const double factor = f.get_float(arch_ + ".rope.scaling.factor").value_or(0.0);
    freq_scale_ = factor > 0 ? 1.0 / factor : 1.0;
    tok_ = load("token_embd.weight", true);
    n_vocab_ = static_cast<int64_t>(tok_.size()) / n_embd_;
    out_norm_ = load("output_norm.weight", true);
    out_ = load("output.weight", false);
    if (out_.empty()) out_ = tok_;
    rope_freqs_ = load("rope_freqs.weight", false);
    for (int64_t l = 0; l < n_layer_; ++l) {
      const std::string p = fmt::format("blk.{}.", l);
      Layer L;
      L.attn_norm = load(p + "attn_norm.weight", true);
      L.wq = load(p + "attn_q.weight", true);
      L.wk = load(p + "attn_k.weight", true);
      L.wv = load(p + "attn_v.weight", true);
      L.bq = load(p + "attn_q.bias", false);
      L.bk = load(p + "attn_k.bias", false);
      L.bv = load(p + "attn_v.bias", false);
      L.wo = load(p + "attn_output.weight", true);
      L.ffn_norm = load(p + "ffn_norm.weight", true);
      L.gate = load(p + "ffn_gate.weight", true);
      L.up = load(p + "ffn_up.weight", true);
      L.down = load(p + "ffn_down.weight", true);
      layers_.push_back(std::move(L));
    }
  }

  const std::string& error() const { return error_; }
  int64_t n_vocab() const { return n_vocab_; }

  // Logits for every position of `tokens` (causal attention over the prefix).
  std::vector<std::vector<double>> forward(const std::vector<int32_t>& tokens) const {
    const int64_t T = static_cast<int64_t>(tokens.size());
    const int64_t E = n_embd_, H = n_head_, HKV = n_head_kv_, D = head_dim_;
    std::vector<std::vector<double>> x(T);
    for (int64_t t = 0; t < T; ++t)
      x[t].assign(tok_.begin() + tokens[t] * E, tok_.begin() + (tokens[t] + 1) * E);
    for (const Layer& L : layers_) {
      std::vector<std::vector<double>> q(T), k(T), v(T);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> xn = rms_norm(x[t], L.attn_norm);
        q[t] = matvec(L.wq, xn, H * D);
        k[t] = matvec(L.wk, xn, HKV * D);
        v[t] = matvec(L.wv, xn, HKV * D);
        add(q[t], L.bq), add(k[t], L.bk), add(v[t], L.bv);
        rope(q[t], H, t), rope(k[t], HKV, t);
      }
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> att(H * D, 0.0);
        for (int64_t h = 0; h < H; ++h) {
          const int64_t kh = h / (H / HKV);
          std::vector<double> s(t + 1);
          double mx = -1e300;
          for (int64_t j = 0; j <= t; ++j) {
            double d = 0;
            for (int64_t e = 0; e < D; ++e) d += q[t][h * D + e] * k[j][kh * D + e];
            s[j] = d / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, s[j]);
          }
          double sum = 0;
          for (double& e : s) sum += (e = std::exp(e - mx));
          for (int64_t j = 0; j <= t; ++j)
            for (int64_t e = 0; e < D; ++e) att[h * D + e] += s[j] / sum * v[j][kh * D + e];
        }
        std::vector<double> o = matvec(L.wo, att, E);
        for (int64_t e = 0; e < E; ++e) x[t][e] += o[e];
        std::vector<double> xn = rms_norm(x[t], L.ffn_norm);
        std::vector<double> g = matvec(L.gate, xn, n_ff_), u = matvec(L.up, xn, n_ff_);
        for (int64_t i = 0; i < n_ff_; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
        std::vector<double> d = matvec(L.down, g, E);
        for (int64_t e = 0; e < E; ++e) x[t][e] += d[e];
      }
    }
    std::vector<std::vector<double>> logits(T);
    for (int64_t t = 0; t < T; ++t) logits[t] = matvec(out_, rms_norm(x[t], out_norm_), n_vocab_);
    return logits;
  }

 private:
  struct Layer {
    std::vector<double> attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, gate, up, down;
  };

  std::vector<double> load(const std::string& name, bool required) {
    const GgufTensorInfo* t = f_.find_tensor(name);
    if (!t) {
      if (required) error_ += "missing " + name + "; ";
      return {};
    }
    std::vector<float> f(static_cast<size_t>(t->n_elements));
    Status st = dequantize_tensor(t->type, t->data, t->nbytes, t->n_elements, f.data(), name);
    if (!st.ok()) {
      error_ += st.to_string() + "; ";
      return {};
    }
    return std::vector<double>(f.begin(), f.end());
  }

  // W has `rows` rows of x.size() elements (ggml layout).
  static std::vector<double> matvec(const std::vector<double>& w, const std::vector<double>& x,
                                    int64_t rows) {
    const size_t n = x.size();
    std::vector<double> y(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += w[r * n + i] * x[i];
      y[r] = s;
    }
    return y;
  }
  static void add(std::vector<double>& y, const std::vector<double>& b) {
    for (size_t i = 0; i < b.size(); ++i) y[i] += b[i];
  }
  std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps_);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
    return y;
  }
  void rope(std::vector<double>& x, int64_t heads, int64_t pos) const {
    const int64_t half = n_rot_ / 2;
    for (int64_t h = 0; h < heads; ++h) {
      double* xh = x.data() + h * head_dim_;
      for (int64_t i = 0; i < half; ++i) {
        double theta =
            pos * std::pow(base_, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot_));
        if (!rope_freqs_.empty()) theta /= rope_freqs_[i];
        theta *= freq_scale_;
        const double c = std::cos(theta), s = std::sin(theta);
        const int64_t a = neox_ ? i : 2 * i, b = neox_ ? i + half : 2 * i + 1;
        const double x0 = xh[a], x1 = xh[b];
        xh[a] = x0 * c - x1 * s;
        xh[b] = x0 * s + x1 * c;
      }
    }
  }

  const GgufFile& f_;
  std::string arch_, error_;
  bool neox_ = false;
  int64_t n_embd_ = 0, n_layer_ = 0, n_head_ = 0, n_head_kv_ = 0, n_ff_ = 0, head_dim_ = 0,
          n_rot_ = 0, n_vocab_ = 0;
  double eps_ = 1e-5, base_ = 10000, freq_scale_ = 1;
  std::vector<double> tok_, out_norm_, out_, rope_freqs_;
  std::vector<Layer> layers_;
};

}  // namespace edgelm::testing
