#include "model/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "base/log.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

int read_int_file(const std::filesystem::path& p, int def) {
  std::ifstream f(p);
  int v = def;
  if (!(f >> v)) return def;
  return v;
}

}  // namespace

int physical_core_count() {
  static const int kCount = [] {
    std::set<std::pair<int, int>> cores;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/devices/system/cpu", ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() < 4 || name.compare(0, 3, "cpu") != 0 ||
          !std::all_of(name.begin() + 3, name.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      if (read_int_file(e.path() / "online", 1) == 0) continue;
      int core = read_int_file(e.path() / "topology/core_id", -1);
      int pkg = read_int_file(e.path() / "topology/physical_package_id", -1);
      if (core < 0) continue;
      cores.insert({pkg, core});
    }
    int n = static_cast<int>(cores.size());
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, n);
  }();
  return kCount;
}

StatusOr<std::unique_ptr<Context>> Context::create(const Model& model,
                                                   const ContextOptions& options) {
  const HParams& hp = model.hparams();
  if (options.n_ctx < 0) {
    return Status::invalid_argument(
        fmt::format("Context::create: n_ctx = {}, expected >= 0", options.n_ctx));
  }
  if (options.n_threads < 0) {
    return Status::invalid_argument(
        fmt::format("Context::create: n_threads = {}, expected >= 0", options.n_threads));
  }
  if (options.n_batch < 0) {
    return Status::invalid_argument(
        fmt::format("Context::create: n_batch = {}, expected >= 0", options.n_batch));
  }
  int n_ctx = options.n_ctx;
  if (n_ctx == 0) n_ctx = static_cast<int>(std::min<int64_t>(hp.n_ctx_train, 4096));
  if (n_ctx > hp.n_ctx_train) {
    EDGELM_LOG_WARN("n_ctx = {} exceeds the model's training context {} of {}", n_ctx,
                    hp.n_ctx_train, model.path());
  }
  int n_batch = options.n_batch == 0 ? std::min(n_ctx, 512) : std::min(options.n_batch, n_ctx);
  int n_threads = options.n_threads == 0 ? physical_core_count() : options.n_threads;
  const size_t kv_bytes =
      static_cast<size_t>(2 * hp.n_layer * n_ctx * hp.n_embd_kv()) * sizeof(uint16_t);
  if (kv_bytes / 2 / sizeof(uint16_t) / static_cast<size_t>(n_ctx) !=
      static_cast<size_t>(hp.n_layer * hp.n_embd_kv())) {
    return Status::resource_exhausted(
        fmt::format("Context::create: KV cache for n_ctx = {} overflows", n_ctx));
  }
  return std::unique_ptr<Context>(new Context(model, options, n_ctx, n_batch, n_threads));
}

Context::Context(const Model& model, const ContextOptions& options, int n_ctx, int n_batch,
                 int n_threads)
    : model_(model),
      ops_(options.ops ? options.ops : &best_ops()),
      n_ctx_(n_ctx),
      n_batch_(n_batch),
      pool_(std::make_unique<ThreadPool>(n_threads)) {
  const HParams& hp = model.hparams();
  kv_ = KvCache(hp.n_layer, n_ctx, hp.n_embd_kv());
  const size_t B = static_cast<size_t>(n_batch);
  x_.resize(B * hp.n_embd);
  xn_.resize(B * hp.n_embd);
  q_.resize(B * hp.n_embd_q());
  k_.resize(B * hp.n_embd_kv());
  v_.resize(B * hp.n_embd_kv());
  attn_.resize(B * hp.n_embd_q());
  o_.resize(B * hp.n_embd);
  gate_.resize(B * hp.n_ff);
  up_.resize(B * hp.n_ff);
  h_.resize(B * hp.n_ff);
  rope_cos_.resize(B * hp.n_rot / 2);
  rope_sin_.resize(B * hp.n_rot / 2);
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  thread_scratch_.resize(static_cast<size_t>(pool_->num_threads()));
  for (ThreadScratch& s : thread_scratch_) {
    s.q16.resize(row_size(GgmlType::kF16, hp.head_dim));
    s.acc16.resize(static_cast<size_t>(hp.head_dim));
  }
}

Context::~Context() = default;

void Context::truncate(int n) {
  n = std::max(0, n);
  if (n < n_past_) n_past_ = n;
}

StatusOr<std::span<const float>> Context::eval(std::span<const int32_t> tokens, bool all_logits) {
  const HParams& hp = model_.hparams();
  if (tokens.empty()) return Status::invalid_argument("Context::eval: no tokens");
  if (static_cast<int64_t>(n_past_) + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return Status::out_of_range(fmt::format("n_ctx exceeded: n_past {} + {} tokens = {} > n_ctx {}",
                                            n_past_, tokens.size(), n_past_ + tokens.size(),
                                            n_ctx_));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp.n_vocab) {
      return Status::out_of_range(
          fmt::format("token id {} at index {} is out of range [0, {})", tokens[i], i, hp.n_vocab));
    }
  }
  const int n = static_cast<int>(tokens.size());
  const size_t V = static_cast<size_t>(hp.n_vocab);
  if (all_logits && logits_.size() < static_cast<size_t>(n) * V)
    logits_.resize(static_cast<size_t>(n) * V);
  for (int start = 0; start < n; start += n_batch_) {
    const int m = std::min(n_batch_, n - start);
    const bool last = start + m == n;
    if (all_logits) {
      forward(tokens.data() + start, m, 0, logits_.data() + static_cast<size_t>(start) * V);
    } else {
      forward(tokens.data() + start, m, last ? m - 1 : m, logits_.data());
    }
    n_past_ += m;
  }
  return std::span<const float>(logits_.data(), all_logits ? static_cast<size_t>(n) * V : V);
}

void Context::apply_rope(float* x, int64_t n_heads, int row) const {
  const HParams& hp = model_.hparams();
  const int64_t half = hp.n_rot / 2;
  const float* c = rope_cos_.data() + static_cast<size_t>(row) * half;
  const float* s = rope_sin_.data() + static_cast<size_t>(row) * half;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * hp.head_dim;
    if (hp.rope_type == RopeType::kNeox) {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = xh[i], x1 = xh[i + half];
        xh[i] = x0 * c[i] - x1 * s[i];
        xh[i + half] = x0 * s[i] + x1 * c[i];
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
        xh[2 * i] = x0 * c[i] - x1 * s[i];
        xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
      }
    }
  }
}

void Context::attention(int layer, int m, int pos0) {
  const HParams& hp = model_.hparams();
  const int64_t hd = hp.head_dim, n_head = hp.n_head, gqa = hp.n_gqa();
  const int64_t Q = hp.n_embd_q();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const Ops& ops = *ops_;
  // llama.cpp's CPU flash attention (its default), one query row at a time: the query rounded
  // to F16 (the F16 keys' vec_dot type), scores scaled in F32, online softmax whose running
  // value sum is kept in F16 (rescaled on a new maximum, v * exp(s - max) added with one
  // rounding per step), divided by the F32 sum of weights at the end.
  pool_->parallel_for(static_cast<size_t>(m * n_head), [&](size_t begin, size_t end, int thread) {
    ThreadScratch& ts = thread_scratch_[static_cast<size_t>(thread)];
    uint16_t* acc = ts.acc16.data();
    for (size_t job = begin; job < end; ++job) {
      const int64_t i = static_cast<int64_t>(job) / n_head, h = static_cast<int64_t>(job) % n_head;
      const int64_t kvh = h / gqa;
      const int64_t n_kv = pos0 + i + 1;  // causal: positions [0, pos]
      ops.quantize_row(GgmlType::kF16, q_.data() + i * Q + h * hd, ts.q16.data(), hd);
      std::fill(acc, acc + hd, uint16_t{0});
      float M = -INFINITY, S = 0.0f;
      for (int64_t j = 0; j < n_kv; ++j) {
        const float s =
            ops.vec_dot(GgmlType::kF16, hd, kv_.k_row(layer, j) + kvh * hd, ts.q16.data()) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
          const float m_old = M;
          M = s;
          ms = std::exp(m_old - M);
          for (int64_t d = 0; d < hd; ++d) acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * ms);
        } else {
          vs = std::exp(s - M);
        }
        const uint16_t* v = kv_.v_row(layer, j) + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) {
          // Fused multiply-add, rounded once to F16 (double holds the product exactly).
          const double r = static_cast<double>(fp16_to_fp32(v[d])) * vs + fp16_to_fp32(acc[d]);
          acc[d] = fp32_to_fp16(static_cast<float>(r));
        }
        S = S * ms + vs;
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      float* out = attn_.data() + i * Q + h * hd;
      for (int64_t d = 0; d < hd; ++d) out[d] = fp16_to_fp32(acc[d]) * inv;
    }
  });
}

void Context::forward(const int32_t* tokens, int m, int out_first, float* out) {
  const HParams& hp = model_.hparams();
  const Weights& w = model_.weights();
  const Ops& ops = *ops_;
  ThreadPool& pool = *pool_;
  const int64_t E = hp.n_embd, Q = hp.n_embd_q(), KV = hp.n_embd_kv(), F = hp.n_ff;
  const int pos0 = n_past_;

  // Token embeddings (rows of token_embd, dequantized).
  for (int i = 0; i < m; ++i) {
    dequantize_row(w.token_embd.type, w.token_embd.row(tokens[i]), x_.data() + i * E, E);
  }

  // RoPE angles per position, as ggml computes them: theta_i = p * base^(-2i/n_rot), in float,
  // by repeated multiplication; divided by the optional frequency factors, times freq_scale.
  const int64_t half = hp.n_rot / 2;
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot));
  for (int i = 0; i < m; ++i) {
    float theta = static_cast<float>(pos0 + i);
    for (int64_t k = 0; k < half; ++k) {
      const float ff = w.rope_freqs ? w.rope_freqs.f32()[k] : 1.0f;
      const float t = hp.rope_freq_scale * (theta / ff);
      rope_cos_[static_cast<size_t>(i * half + k)] = std::cos(t);
      rope_sin_[static_cast<size_t>(i * half + k)] = std::sin(t);
      theta *= theta_scale;
    }
  }

  auto add_bias = [&](float* y, const TensorRef& b, int64_t n) {
    if (!b) return;
    const float* bd = b.f32();
    for (int i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] += bd[j];
  };
  auto mm = [&](const TensorRef& t, const float* x, int64_t rows_m, float* y) {
    matmul(ops, pool, t.type, t.data, t.ne1, t.ne0, x, rows_m, y, mm_scratch_);
  };

  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    for (int i = 0; i < m; ++i)
      ops.rms_norm(x_.data() + i * E, L.attn_norm.f32(), xn_.data() + i * E, E, hp.rms_eps);
    mm(L.wq, xn_.data(), m, q_.data());
    mm(L.wk, xn_.data(), m, k_.data());
    mm(L.wv, xn_.data(), m, v_.data());
    add_bias(q_.data(), L.bq, Q);
    add_bias(k_.data(), L.bk, KV);
    add_bias(v_.data(), L.bv, KV);
    for (int i = 0; i < m; ++i) {
      apply_rope(q_.data() + i * Q, hp.n_head, i);
      apply_rope(k_.data() + i * KV, hp.n_head_kv, i);
      kv_.store(l, pos0 + i, k_.data() + i * KV, v_.data() + i * KV);
    }
    attention(static_cast<int>(l), m, pos0);
    mm(L.wo, attn_.data(), m, o_.data());
    for (size_t j = 0; j < static_cast<size_t>(m * E); ++j) x_[j] += o_[j];

    for (int i = 0; i < m; ++i)
      ops.rms_norm(x_.data() + i * E, L.ffn_norm.f32(), xn_.data() + i * E, E, hp.rms_eps);
    mm(L.ffn_gate, xn_.data(), m, gate_.data());
    mm(L.ffn_up, xn_.data(), m, up_.data());
    ops.swiglu(gate_.data(), up_.data(), h_.data(), m * F);
    mm(L.ffn_down, h_.data(), m, o_.data());
    for (size_t j = 0; j < static_cast<size_t>(m * E); ++j) x_[j] += o_[j];
  }

  const int n_out = m - out_first;
  if (n_out <= 0) return;
  for (int i = 0; i < n_out; ++i) {
    ops.rms_norm(x_.data() + (out_first + i) * E, w.output_norm.f32(), xn_.data() + i * E, E,
                 hp.rms_eps);
  }
  mm(w.output, xn_.data(), n_out, out);
}

}  // namespace edgelm
