#include "model/awq.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "model/context.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

struct SiteStats {
  std::vector<double> abs_sum;  // per channel
  int64_t rows = 0;
  std::vector<float> samples;  // kept rows, n_embd each
  int64_t n_samples = 0;
};

std::vector<float> dequantize_all(const TensorRef& t) {
  std::vector<float> w(static_cast<size_t>(t.ne0 * t.ne1));
  for (int64_t r = 0; r < t.ne1; ++r) dequantize_row(t.type, t.row(r), w.data() + r * t.ne0, t.ne0);
  return w;
}

// ||X (W - Q(W*s)/s)^T||^2 over the sample rows X, W given as floats (rows x n).
double product_error(const std::vector<float>& w, int64_t rows, int64_t n, GgmlType qt,
                     const std::vector<float>& s, const std::vector<float>& x, int64_t n_x) {
  std::vector<float> row(static_cast<size_t>(n)), deq(static_cast<size_t>(n));
  std::vector<uint8_t> q(row_size(qt, n));
  double err = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w.data() + r * n;
    for (int64_t j = 0; j < n; ++j) row[j] = wr[j] * s[j];
    quantize_row(qt, row.data(), q.data(), n);
    dequantize_row(qt, q.data(), deq.data(), n);
    for (int64_t j = 0; j < n; ++j) deq[j] = wr[j] - deq[j] / s[j];  // W - W_eff
    for (int64_t i = 0; i < n_x; ++i) {
      const float* xi = x.data() + i * n;
      double d = 0;
      for (int64_t j = 0; j < n; ++j) d += static_cast<double>(xi[j]) * deq[j];
      err += d * d;
    }
  }
  return err;
}

}  // namespace

StatusOr<AwqResult> compute_awq_scales(const Model& model, const std::vector<int32_t>& tokens,
                                       const AwqOptions& options) {
  const HParams& hp = model.hparams();
  const int64_t E = hp.n_embd;
  const int n_layer = static_cast<int>(hp.n_layer);
  if (tokens.size() < 2) {
    return Status::invalid_argument(
        fmt::format("awq: {} calibration tokens; need at least 2", tokens.size()));
  }
  ASSIGN_OR_RETURN(std::vector<TensorQuantPlan> plan,
                   plan_quantization(model.gguf(), options.preset));
  std::map<std::string, GgmlType> dst;
  for (const TensorQuantPlan& p : plan) dst[p.name] = p.dst_type;

  // 1. Activations.
  std::vector<SiteStats> stats(static_cast<size_t>(n_layer) * 2);
  for (SiteStats& s : stats) s.abs_sum.assign(static_cast<size_t>(E), 0.0);
  const int n_tok = std::min<int>(static_cast<int>(tokens.size()), options.max_tokens);
  const int stride = std::max(1, n_tok / std::max(1, options.max_samples));
  ContextOptions co;
  co.n_ctx = options.n_ctx;
  co.n_threads = options.n_threads;
  co.observe = [&](int layer, int site, const float* x, int m, int64_t n) {
    SiteStats& st = stats[static_cast<size_t>(layer * 2 + site)];
    for (int i = 0; i < m; ++i) {
      const float* xi = x + i * n;
      for (int64_t j = 0; j < n; ++j) st.abs_sum[j] += std::fabs(xi[j]);
      if (st.rows % stride == 0 && st.n_samples < options.max_samples) {
        st.samples.insert(st.samples.end(), xi, xi + n);
        ++st.n_samples;
      }
      ++st.rows;
    }
  };
  ASSIGN_OR_RETURN(auto ctx, Context::create(model, co));
  for (int pos = 0; pos < n_tok; pos += ctx->n_ctx()) {
    const int len = std::min(ctx->n_ctx(), n_tok - pos);
    ctx->reset();
    auto r = ctx->eval(std::span<const int32_t>(tokens.data() + pos, static_cast<size_t>(len)));
    if (!r.ok()) return r.status().with_context("awq: calibration forward pass");
  }

  // 2. Per layer and site, the exponent with the smallest product error.
  AwqResult result;
  result.tokens = n_tok;
  const Weights& w = model.weights();
  for (int l = 0; l < n_layer; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    for (int site = 0; site < 2; ++site) {
      SiteStats& st = stats[static_cast<size_t>(l * 2 + site)];
      std::vector<std::pair<std::string, const TensorRef*>> mats;
      if (site == 0) {
        mats = {{p + "attn_q.weight", &L.wq},
                {p + "attn_k.weight", &L.wk},
                {p + "attn_v.weight", &L.wv}};
      } else {
        mats = {{p + "ffn_gate.weight", &L.ffn_gate}, {p + "ffn_up.weight", &L.ffn_up}};
      }
      std::vector<std::vector<float>> fw;
      for (const auto& [name, t] : mats) {
        if (t->type != GgmlType::kF32 && t->type != GgmlType::kF16 && t->type != GgmlType::kBF16) {
          return Status::invalid_argument(
              fmt::format("awq: tensor '{}' is {}; calibration needs an F32/F16/BF16 model", name,
                          type_name(t->type)));
        }
        fw.push_back(dequantize_all(*t));
      }
      std::vector<float> mean(static_cast<size_t>(E));
      for (int64_t j = 0; j < E; ++j)
        mean[j] = static_cast<float>(std::max(st.abs_sum[j] / std::max<int64_t>(1, st.rows), 1e-6));
      AwqLayerChoice choice{l, site, 0, 0, 0};
      std::vector<float> best(static_cast<size_t>(E), 1.0f);
      double best_err = -1;
      for (float alpha : options.alphas) {
        std::vector<float> s(static_cast<size_t>(E));
        float mx = 0, mn = 1e30f;
        for (int64_t j = 0; j < E; ++j) {
          s[j] = std::pow(mean[j], alpha);
          mx = std::max(mx, s[j]);
          mn = std::min(mn, s[j]);
        }
        const float norm = std::sqrt(mx * mn);
        for (float& v : s) v /= norm;
        double err = 0;
        for (size_t k = 0; k < mats.size(); ++k) {
          err += product_error(fw[k], mats[k].second->ne1, E, dst[mats[k].first], s, st.samples,
                               st.n_samples);
        }
        if (alpha == 0.0f) choice.err_plain = err;
        if (best_err < 0 || err < best_err) {
          best_err = err;
          best = s;
          choice.alpha = alpha;
        }
      }
      choice.err_best = best_err;
      result.choices.push_back(choice);
      if (choice.alpha == 0.0f) continue;
      for (const auto& m : mats) result.column_scales[m.first] = best;
      result.norm_divisors[p + (site == 0 ? "attn_norm.weight" : "ffn_norm.weight")] = best;
    }
  }
  return result;
}

}  // namespace edgelm
