// Model quality on held-out text: perplexity computed as llama.cpp's llama-perplexity does, and
// the KL divergence / top-1 agreement of a candidate model's next-token distributions against a
// baseline model on the same text (like llama-perplexity --kl-divergence), streamed chunk by
// chunk so that no full set of distributions is ever stored.
//
// Protocol (llama.cpp perplexity.cpp): the whole text is tokenized once (BOS where the model
// adds one); it is cut into chunks of n_ctx tokens; each chunk's first token is replaced by BOS
// when the model adds BOS; each chunk runs from an empty cache and only its second half is
// scored: the logits at positions [n_ctx/2, n_ctx - 1) predict the tokens at [n_ctx/2 + 1,
// n_ctx). PPL = exp(mean NLL); log-softmax over the full vocabulary in double precision.
//
//   LogitsEvaluator cand(session->executor()), base(base_session->executor());
//   ChunkOptions co;  co.n_ctx = 512;  co.bos_token = tok.add_bos() ? tok.bos() : -1;
//   ASSIGN_OR_RETURN(TextEvalResult r, evaluate_text(cand, &base, ids, co));
//   fmt::print("PPL {:.3f}  mean KL {:.5f}  top-1 {:.2%}\n", r.ppl.ppl, r.kl->mean,
//              r.kl->top1);
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/executor.h"
#include "model/context.h"

namespace edgelm {

// Per-position logits from an Executor or a model Context. Over a Context (also the one inside
// an Engine's ContextExecutor) a batch runs as one forward pass returning every row; over any
// other Executor (test fakes) tokens are evaluated one at a time and the rows copied.
class LogitsEvaluator {
 public:
  explicit LogitsEvaluator(Executor& executor);
  explicit LogitsEvaluator(Context& context);

  // Appends `tokens` (non-empty) at position n_past() and returns the logits of tokens[first..]
  // as (tokens.size() - first) rows of n_vocab() floats, valid until the next call. The row
  // for tokens[i] predicts the token after it. first == tokens.size() returns no rows.
  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens, size_t first = 0);

  void reset();
  void truncate(int n);
  int n_past() const;
  int n_ctx() const;
  int n_vocab() const;

 private:
  Executor* executor_ = nullptr;
  Context* context_ = nullptr;
  std::vector<float> rows_;
};

// log-softmax of one logits row in double precision (max-subtracted, as llama.cpp does).
void log_softmax(std::span<const float> logits, std::vector<double>& out);

struct ChunkOptions {
  int n_ctx = 512;         // tokens per chunk; must be >= 4 and fit the evaluators' contexts
  int max_chunks = 0;      // 0: every full chunk of the text
  int32_t bos_token = -1;  // >= 0: replaces each chunk's first token (models that add BOS)
};

struct PerplexityResult {
  double ppl = 0;         // exp(mean NLL)
  double ln_ppl = 0;      // mean NLL (nats per token)
  double ppl_stderr = 0;  // ppl * standard error of the mean NLL (as llama.cpp prints "+/-")
  int64_t tokens = 0;     // tokens scored
  int chunks = 0;
};

// Candidate against baseline, over the same scored positions.
struct KlResult {
  double mean = 0, stderr_mean = 0;  // KL(baseline || candidate), nats
  double max = 0, p99_9 = 0, p99 = 0, p95 = 0, p90 = 0, median = 0, p10 = 0, p5 = 0, p1 = 0,
         min = 0;
  double top1 = 0, top1_stderr = 0;  // fraction of positions with the same most likely token
                                     // ("Same top p" in llama.cpp)
  double delta_p_mean = 0, delta_p_rms = 0;  // p_candidate(actual) - p_baseline(actual)
  double ln_ppl_ratio = 0;                   // ln(PPL(candidate) / PPL(baseline))
  int64_t positions = 0;
};

struct TextEvalResult {
  PerplexityResult ppl;                          // the candidate
  std::optional<PerplexityResult> baseline_ppl;  // with a baseline
  std::optional<KlResult> kl;                    // with a baseline
  double seconds = 0;                            // wall time of the whole evaluation
  int64_t tokens_evaluated = 0;                  // tokens run through the candidate
};

// Called after each chunk: chunks done, chunks in all, the candidate's PPL so far and (with a
// baseline) the mean KL so far (else NaN).
using ChunkProgress = std::function<void(int done, int total, double ppl, double mean_kl)>;

// Number of chunks evaluate_text() scores for a text of n_tokens (0 when it is too short).
int chunk_count(size_t n_tokens, const ChunkOptions& options);

// Perplexity of `candidate` on `tokens` and, when `baseline` is non-null, the baseline's
// perplexity and the KL / top-1 comparison. Both evaluators are reset per chunk. Errors:
// fewer tokens than one chunk, n_ctx < 4 or beyond an evaluator's context, different vocabulary
// sizes, a token outside the vocabulary, or what the evaluators report.
StatusOr<TextEvalResult> evaluate_text(LogitsEvaluator& candidate, LogitsEvaluator* baseline,
                                       std::span<const int32_t> tokens, const ChunkOptions& options,
                                       const ChunkProgress& progress = {});

// Linear-interpolation percentile (q in [0, 1]) of sorted values; 0 for an empty vector.
double percentile_sorted(const std::vector<double>& sorted, double q);

}  // namespace edgelm
