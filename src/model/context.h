// An inference context over a Model: the F16 KV cache, a thread pool and scratch buffers
// (allocated once at creation), and the forward pass of the llama-family transformer.
// eval() runs a batch of tokens at positions [n_past, n_past + len) (prefill is one batched
// pass: matrix products with m = len) and returns the logits of the last token, or of every
// token. Products go through the kernels op table, with activations quantized to the weight
// type's vec_dot type as ggml does; attention follows llama.cpp's CPU flash attention (its
// default): F16 query and keys, online softmax, F16 value accumulator. So numbers track
// llama.cpp's closely.
// The Model must outlive the Context. Not thread-safe: one caller at a time.
//
//   ASSIGN_OR_RETURN(auto ctx, Context::create(*model, {.n_ctx = 2048}));
//   ASSIGN_OR_RETURN(auto logits, ctx->eval(prompt_ids));     // n_vocab floats
//   int32_t next = argmax(logits);
//   ASSIGN_OR_RETURN(logits, ctx->eval({&next, 1}));          // decode one token
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/threadpool.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "model/kv-cache.h"
#include "model/model.h"

namespace edgelm {

struct ContextOptions {
  int n_ctx = 0;             // 0: min(training context, 4096)
  int n_threads = 0;         // 0: physical cores
  const Ops* ops = nullptr;  // nullptr: best_ops()
  int n_batch = 0;           // tokens per forward pass (larger evals are split); 0: min(n_ctx, 512)
  // Optional activation observer (calibration, model/awq.h): called in each layer with the
  // RMS-normalized input of the q/k/v products (site 0) and of the gate/up products (site 1),
  // m rows of n floats. Empty: no calls.
  std::function<void(int layer, int site, const float* x, int m, int64_t n)> observe = nullptr;
};

// Number of physical cores (logical CPUs sharing a core counted once); at least 1.
int physical_core_count();

class Context {
 public:
  static StatusOr<std::unique_ptr<Context>> create(const Model& model,
                                                   const ContextOptions& options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs `tokens` at positions [n_past, n_past + size) and advances n_past. Returns the last
  // token's logits (n_vocab floats) or, with all_logits, size x n_vocab floats (row i for
  // tokens[i]). The span stays valid until the next eval. Errors (nothing is changed): empty
  // input, a token id outside [0, n_vocab), or n_past + size > n_ctx.
  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens, bool all_logits = false);

  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  int n_batch() const { return n_batch_; }
  int n_vocab() const { return static_cast<int>(model_.hparams().n_vocab); }
  int n_threads() const { return pool_->num_threads(); }
  const Ops& ops() const { return *ops_; }
  const Model& model() const { return model_; }
  size_t kv_cache_bytes() const { return kv_.bytes(); }

  // Forgets everything: the next eval starts at position 0.
  void reset() { n_past_ = 0; }
  // Keeps the first n positions of the cache (n >= n_past is a no-op, n < 0 acts as 0).
  void truncate(int n);

 private:
  Context(const Model& model, const ContextOptions& options, int n_ctx, int n_batch, int n_threads);
  // One forward pass over m <= n_batch tokens at positions [n_past, n_past + m). Writes
  // logits for rows [out_first, m) to `out` (row-major, n_vocab each).
  void forward(const int32_t* tokens, int m, int out_first, float* out);
  void attention(int layer, int m, int pos0);
  void apply_rope(float* x, int64_t n_heads, int pos) const;
  // Fills the RoPE cos/sin tables for positions [0, n_pos).
  void ensure_rope(int n_pos);
  // Decode (one activation row x): y = W x for every (W, y), all in one pool job.
  struct MatVec {
    const TensorRef* t;
    float* y;
  };
  void matvec(std::initializer_list<MatVec> mvs, const float* x);
  // Decode: h_ = swiglu(gate x, up x) in one pool job.
  void ffn_swiglu_m1(const TensorRef& gate, const TensorRef& up, const float* x);
  // y[r] = W[r] . xq for rows [r0, r1).
  void dot_rows(const TensorRef& t, size_t r0, size_t r1, const void* xq, float* y) const;

  const Model& model_;
  const Ops* ops_;
  std::function<void(int, int, const float*, int, int64_t)> observe_;
  int n_ctx_;
  int n_batch_;
  int n_past_ = 0;
  std::unique_ptr<ThreadPool> pool_;
  KvCache kv_;

  // Scratch, allocated once (sized for n_batch tokens).
  std::vector<float> x_, xn_, q_, k_, v_, attn_, o_, gate_, up_, h_;
  std::vector<float> rope_cos_, rope_sin_;  // n_rot/2 per position, [0, rope_valid_)
  int rope_valid_ = 0;
  const AttnOps* attn_ops_ = nullptr;
  std::vector<float> logits_;        // n_vocab, grows for all_logits
  std::vector<uint8_t> mm_scratch_;  // quantized activations for matmul
  struct ThreadScratch {
    std::vector<uint8_t> q16;     // the query in F16 (head_dim halves)
    std::vector<uint16_t> acc16;  // F16 running sum of weighted values (head_dim)
  };
  std::vector<ThreadScratch> thread_scratch_;
};

}  // namespace edgelm
