#include "model/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "base/log.h"
#include "kernels/attention.h"
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
      observe_(options.observe),
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
  attn_ops_ = std::strncmp(ops_->name, "ref", 3) == 0 ? &ref_attn_ops() : &best_attn_ops();
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  thread_scratch_.resize(static_cast<size_t>(pool_->num_threads()));
  for (ThreadScratch& s : thread_scratch_) {
    s.q16.resize(row_size(GgmlType::kF16, hp.head_dim * hp.n_gqa()));
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

void Context::apply_rope(float* x, int64_t n_heads, int pos) const {
  const HParams& hp = model_.hparams();
  const int64_t half = hp.n_rot / 2;
  const float* c = rope_cos_.data() + static_cast<size_t>(pos) * half;
  const float* s = rope_sin_.data() + static_cast<size_t>(pos) * half;
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
  const AttnOps& aops = *attn_ops_;
  const size_t KVs = static_cast<size_t>(hp.n_embd_kv());
  // One job per (row, KV head): its gqa query heads share the keys and values and run
  // together. Causal rows cost pos0 + i + 1 keys each, so contiguous chunks of rows would leave
  // the last thread most of the work: part t takes jobs t, t + T, t + 2T, ... (row-major over
  // KV heads), which splits every row's heads evenly.
  const int64_t n_head_kv = n_head / gqa;
  const size_t n_jobs = static_cast<size_t>(m * n_head_kv);
  const size_t T = std::min(static_cast<size_t>(pool_->num_threads()), n_jobs);
  pool_->parallel_for(T, [&](size_t t_begin, size_t t_end, int thread) {
    ThreadScratch& ts = thread_scratch_[static_cast<size_t>(thread)];
    for (size_t t = t_begin; t < t_end; ++t) {
      for (size_t job = t; job < n_jobs; job += T) {
        const int64_t i = static_cast<int64_t>(job) / n_head_kv;
        const int64_t kvh = static_cast<int64_t>(job) % n_head_kv;
        const int64_t q_off = i * Q + kvh * gqa * hd;
        ops.quantize_row(GgmlType::kF16, q_.data() + q_off, ts.q16.data(), gqa * hd);
        const auto* q16 = reinterpret_cast<const uint16_t*>(ts.q16.data());
        attention_rows(aops, ops, static_cast<int>(gqa), q16, kv_.k_row(layer, 0) + kvh * hd, KVs,
                       kv_.v_row(layer, 0) + kvh * hd, KVs, /*n_kv=*/pos0 + i + 1, hd, scale,
                       ts.acc16.data(), attn_.data() + q_off);
      }
    }
  });
}

void Context::ensure_rope(int n_pos) {
  // RoPE angles per position, as ggml computes them: theta_i = p * base^(-2i/n_rot), in float,
  // by repeated multiplication; divided by the optional frequency factors, times freq_scale.
  // Cached per position (each position's values depend on nothing else).
  const HParams& hp = model_.hparams();
  const Weights& w = model_.weights();
  const int64_t half = hp.n_rot / 2;
  if (n_pos <= rope_valid_) return;
  rope_cos_.resize(static_cast<size_t>(n_pos * half));
  rope_sin_.resize(static_cast<size_t>(n_pos * half));
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot));
  for (int p = rope_valid_; p < n_pos; ++p) {
    float theta = static_cast<float>(p);
    for (int64_t k = 0; k < half; ++k) {
      const float ff = w.rope_freqs ? w.rope_freqs.f32()[k] : 1.0f;
      const float t = hp.rope_freq_scale * (theta / ff);
      rope_cos_[static_cast<size_t>(p * half + k)] = std::cos(t);
      rope_sin_[static_cast<size_t>(p * half + k)] = std::sin(t);
      theta *= theta_scale;
    }
  }
  rope_valid_ = n_pos;
}

void Context::matvec(std::initializer_list<MatVec> mvs, const float* x) {
  // One activation row against several matrices sharing the input: x quantized once on the
  // caller, then every matrix's rows in one pool job. vec_dot_rows/vec_dot per row range, so
  // results are bit-identical to matmul with m = 1.
  const Ops& ops = *ops_;
  const GgmlType vt = vec_dot_type(mvs.begin()->t->type);
  const int64_t n = mvs.begin()->t->ne0;
  size_t total = 0;
  for (const MatVec& mv : mvs) {
    if (vec_dot_type(mv.t->type) != vt || mv.t->ne0 != n) {
      for (const MatVec& m1 : mvs)
        matmul(ops, *pool_, m1.t->type, m1.t->data, m1.t->ne1, m1.t->ne0, x, 1, m1.y, mm_scratch_,
               m1.t->layout);
      return;
    }
    total += static_cast<size_t>(mv.t->ne1);
  }
  const void* xq = x;
  if (vt != GgmlType::kF32) {
    const size_t need = row_size(vt, n);
    if (mm_scratch_.size() < need) mm_scratch_.resize(need);
    ops.quantize_row(vt, x, mm_scratch_.data(), n);
    xq = mm_scratch_.data();
  }
  pool_->parallel_for(
      total,
      [&](size_t b, size_t e, int) {
        size_t off = 0;
        for (const MatVec& mv : mvs) {
          const size_t rows = static_cast<size_t>(mv.t->ne1);
          const size_t lo = std::max(b, off), hi = std::min(e, off + rows);
          if (lo < hi) dot_rows(*mv.t, lo - off, hi - off, xq, mv.y);
          off += rows;
        }
      },
      16);
}

void Context::dot_rows(const TensorRef& t, size_t r0, size_t r1, const void* xq, float* y) const {
  edgelm::dot_rows(*ops_, t.type, t.layout, t.ne0, t.data, t.ne1, static_cast<int64_t>(r0),
                   static_cast<int64_t>(r1), xq, y);
}

void Context::ffn_swiglu_m1(const TensorRef& gate, const TensorRef& up, const float* x) {
  // Decode: gate and up rows for the same range in one job, then swiglu on that range. Ranges
  // start at multiples of 64, so the SIMD swiglu splits vector and tail lanes exactly as one
  // call over the whole row would.
  const Ops& ops = *ops_;
  const GgmlType vt = vec_dot_type(gate.type);
  const int64_t n = gate.ne0, F = gate.ne1;
  if (vec_dot_type(up.type) != vt || up.ne0 != n || up.ne1 != F) {
    matvec({{&gate, gate_.data()}, {&up, up_.data()}}, x);
    ops.swiglu(gate_.data(), up_.data(), h_.data(), F);
    return;
  }
  const void* xq = x;
  if (vt != GgmlType::kF32) {
    const size_t need = row_size(vt, n);
    if (mm_scratch_.size() < need) mm_scratch_.resize(need);
    ops.quantize_row(vt, x, mm_scratch_.data(), n);
    xq = mm_scratch_.data();
  }
  pool_->parallel_for(
      static_cast<size_t>(F),
      [&](size_t b, size_t e, int) {
        dot_rows(gate, b, e, xq, gate_.data());
        dot_rows(up, b, e, xq, up_.data());
        ops.swiglu(gate_.data() + b, up_.data() + b, h_.data() + b, static_cast<int64_t>(e - b));
      },
      64);
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

  ensure_rope(pos0 + m);

  auto add_bias = [&](float* y, const TensorRef& b, int64_t n) {
    if (!b) return;
    const float* bd = b.f32();
    for (int i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] += bd[j];
  };
  auto mm = [&](const TensorRef& t, const float* x, int64_t rows_m, float* y) {
    if (rows_m == 1) {
      matvec({{&t, y}}, x);
    } else {
      matmul(ops, pool, t.type, t.data, t.ne1, t.ne0, x, rows_m, y, mm_scratch_, t.layout);
    }
  };

  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    for (int i = 0; i < m; ++i)
      ops.rms_norm(x_.data() + i * E, L.attn_norm.f32(), xn_.data() + i * E, E, hp.rms_eps);
    if (observe_) observe_(static_cast<int>(l), 0, xn_.data(), m, E);
    if (m == 1) {
      matvec({{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}}, xn_.data());
    } else {
      mm(L.wq, xn_.data(), m, q_.data());
      mm(L.wk, xn_.data(), m, k_.data());
      mm(L.wv, xn_.data(), m, v_.data());
    }
    add_bias(q_.data(), L.bq, Q);
    add_bias(k_.data(), L.bk, KV);
    add_bias(v_.data(), L.bv, KV);
    for (int i = 0; i < m; ++i) {
      apply_rope(q_.data() + i * Q, hp.n_head, pos0 + i);
      apply_rope(k_.data() + i * KV, hp.n_head_kv, pos0 + i);
      kv_.store(l, pos0 + i, k_.data() + i * KV, v_.data() + i * KV);
    }
    attention(static_cast<int>(l), m, pos0);
    mm(L.wo, attn_.data(), m, o_.data());
    for (size_t j = 0; j < static_cast<size_t>(m * E); ++j) x_[j] += o_[j];

    for (int i = 0; i < m; ++i)
      ops.rms_norm(x_.data() + i * E, L.ffn_norm.f32(), xn_.data() + i * E, E, hp.rms_eps);
    if (observe_) observe_(static_cast<int>(l), 1, xn_.data(), m, E);
    if (m == 1) {
      ffn_swiglu_m1(L.ffn_gate, L.ffn_up, xn_.data());
    } else {
      mm(L.ffn_gate, xn_.data(), m, gate_.data());
      mm(L.ffn_up, xn_.data(), m, up_.data());
      ops.swiglu(gate_.data(), up_.data(), h_.data(), m * F);
    }
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
