// Perplexity and KL divergence on held-out text (see eval.h).
#include "runtime/monitor/eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "engine/engine.h"

namespace edgelm {

LogitsEvaluator::LogitsEvaluator(Executor& executor) {
  if (auto* ce = dynamic_cast<ContextExecutor*>(&executor)) {
    context_ = &ce->context();
  } else {
    executor_ = &executor;
  }
}

LogitsEvaluator::LogitsEvaluator(Context& context) : context_(&context) {}

StatusOr<std::span<const float>> LogitsEvaluator::eval(std::span<const int32_t> tokens,
                                                       size_t first) {
  if (tokens.empty()) return Status::invalid_argument("logits eval: no tokens");
  if (first > tokens.size()) {
    return Status::invalid_argument(
        fmt::format("logits eval: first row {} beyond {} tokens", first, tokens.size()));
  }
  if (n_past() + static_cast<int64_t>(tokens.size()) > n_ctx()) {
    return Status::out_of_range(fmt::format("logits eval: {} cached + {} tokens > n_ctx {}",
                                            n_past(), tokens.size(), n_ctx()));
  }
  const size_t V = static_cast<size_t>(n_vocab());
  if (context_ != nullptr) {
    if (first > 0) {
      RETURN_IF_ERROR(context_->eval(tokens.first(first)).status());
    }
    if (first == tokens.size()) return std::span<const float>();
    return context_->eval(tokens.subspan(first), /*all_logits=*/true);
  }
  rows_.resize((tokens.size() - first) * V);
  for (size_t i = 0; i < tokens.size(); ++i) {
    ASSIGN_OR_RETURN(std::span<const float> l, executor_->eval(tokens.subspan(i, 1)));
    if (l.size() != V) {
      return Status::internal(
          fmt::format("logits eval: executor returned {} logits, expected {}", l.size(), V));
    }
    if (i >= first) std::copy(l.begin(), l.end(), rows_.begin() + (i - first) * V);
  }
  return std::span<const float>(rows_);
}

void LogitsEvaluator::reset() {
  if (context_ != nullptr)
    context_->reset();
  else
    executor_->reset();
}

void LogitsEvaluator::truncate(int n) {
  if (context_ != nullptr)
    context_->truncate(n);
  else
    executor_->truncate(n);
}

int LogitsEvaluator::n_past() const {
  return context_ != nullptr ? context_->n_past() : executor_->n_past();
}
int LogitsEvaluator::n_ctx() const {
  return context_ != nullptr ? context_->n_ctx() : executor_->n_ctx();
}
int LogitsEvaluator::n_vocab() const {
  return context_ != nullptr ? context_->n_vocab() : executor_->n_vocab();
}

void log_softmax(std::span<const float> logits, std::vector<double>& out) {
  out.resize(logits.size());
  if (logits.empty()) return;
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - mx - log_sum;
}

double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double f = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * f;
}

int chunk_count(size_t n_tokens, const ChunkOptions& options) {
  if (options.n_ctx <= 0) return 0;
  int n = static_cast<int>(n_tokens / static_cast<size_t>(options.n_ctx));
  if (options.max_chunks > 0) n = std::min(n, options.max_chunks);
  return n;
}

namespace {

// Running sums of a per-position quantity: mean and standard error of the mean.
struct Moments {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double x) {
    sum += x;
    sum2 += x * x;
    ++n;
  }
  double mean() const { return n > 0 ? sum / static_cast<double>(n) : 0; }
  double stderr_mean() const {
    if (n < 2) return 0;
    const double m = mean();
    const double var = std::max(0.0, sum2 / static_cast<double>(n) - m * m);
    return std::sqrt(var / static_cast<double>(n - 1));
  }
};

PerplexityResult finish_ppl(const Moments& nll, int chunks) {
  PerplexityResult r;
  r.ln_ppl = nll.mean();
  r.ppl = std::exp(r.ln_ppl);
  r.ppl_stderr = r.ppl * nll.stderr_mean();
  r.tokens = nll.n;
  r.chunks = chunks;
  return r;
}

size_t argmax(const std::vector<double>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

StatusOr<TextEvalResult> evaluate_text(LogitsEvaluator& candidate, LogitsEvaluator* baseline,
                                       std::span<const int32_t> tokens, const ChunkOptions& options,
                                       const ChunkProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const int n_ctx = options.n_ctx;
  if (n_ctx < 4) {
    return Status::invalid_argument(fmt::format("eval: n_ctx must be >= 4, found {}", n_ctx));
  }
  if (n_ctx > candidate.n_ctx()) {
    return Status::invalid_argument(fmt::format(
        "eval: chunk size {} exceeds the candidate's context {}", n_ctx, candidate.n_ctx()));
  }
  if (baseline != nullptr) {
    if (n_ctx > baseline->n_ctx()) {
      return Status::invalid_argument(fmt::format(
          "eval: chunk size {} exceeds the baseline's context {}", n_ctx, baseline->n_ctx()));
    }
    if (baseline->n_vocab() != candidate.n_vocab()) {
      return Status::invalid_argument(fmt::format(
          "eval: the baseline's vocabulary has {} tokens, the candidate's {}: KL divergence "
          "needs the same vocabulary",
          baseline->n_vocab(), candidate.n_vocab()));
    }
  }
  const int n_chunk = chunk_count(tokens.size(), options);
  if (n_chunk < 1) {
    return Status::invalid_argument(
        fmt::format("eval: the text has {} tokens, fewer than one chunk of {} (use a longer text "
                    "or a smaller -c)",
                    tokens.size(), n_ctx));
  }
  const size_t V = static_cast<size_t>(candidate.n_vocab());
  for (size_t i = 0; i < static_cast<size_t>(n_chunk) * n_ctx; ++i) {
    if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= V) {
      return Status::out_of_range(fmt::format(
          "eval: token {} at position {} is outside the vocabulary [0, {})", tokens[i], i, V));
    }
  }

  const int first = n_ctx / 2;
  const size_t n_rows = static_cast<size_t>(n_ctx - 1 - first);
  Moments nll, nll_base, kl, same_top, dp;
  std::vector<double> kls;
  std::vector<float> base_rows;
  std::vector<double> lp, lp_base;
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  TextEvalResult result;

  for (int c = 0; c < n_chunk; ++c) {
    std::copy(tokens.begin() + static_cast<ptrdiff_t>(c) * n_ctx,
              tokens.begin() + static_cast<ptrdiff_t>(c + 1) * n_ctx, chunk.begin());
    if (options.bos_token >= 0) chunk[0] = options.bos_token;
    // Only rows [first, n_ctx - 1) are scored; the last token's logits predict nothing here.
    if (baseline != nullptr) {
      baseline->reset();
      ASSIGN_OR_RETURN(std::span<const float> b,
                       baseline->eval(std::span<const int32_t>(chunk), first));
      base_rows.assign(b.begin(), b.begin() + static_cast<ptrdiff_t>(n_rows * V));
    }
    candidate.reset();
    ASSIGN_OR_RETURN(std::span<const float> rows,
                     candidate.eval(std::span<const int32_t>(chunk), first));
    result.tokens_evaluated += n_ctx;
    for (size_t i = 0; i < n_rows; ++i) {
      const size_t next = static_cast<size_t>(chunk[first + i + 1]);
      log_softmax(rows.subspan(i * V, V), lp);
      nll.add(-lp[next]);
      if (baseline == nullptr) continue;
      log_softmax(std::span<const float>(base_rows).subspan(i * V, V), lp_base);
      nll_base.add(-lp_base[next]);
      double d = 0;
      for (size_t v = 0; v < V; ++v) {
        const double pb = std::exp(lp_base[v]);
        if (pb > 0) d += pb * (lp_base[v] - lp[v]);
      }
      d = std::max(d, 0.0);  // rounding can leave a tiny negative value
      kl.add(d);
      kls.push_back(d);
      same_top.add(argmax(lp) == argmax(lp_base) ? 1.0 : 0.0);
      dp.add(std::exp(lp[next]) - std::exp(lp_base[next]));
    }
    if (progress) {
      progress(c + 1, n_chunk, std::exp(nll.mean()),
               baseline != nullptr ? kl.mean() : std::numeric_limits<double>::quiet_NaN());
    }
  }

  result.ppl = finish_ppl(nll, n_chunk);
  if (baseline != nullptr) {
    result.baseline_ppl = finish_ppl(nll_base, n_chunk);
    KlResult k;
    k.mean = kl.mean();
    k.stderr_mean = kl.stderr_mean();
    std::sort(kls.begin(), kls.end());
    k.max = kls.back();
    k.min = kls.front();
    k.p99_9 = percentile_sorted(kls, 0.999);
    k.p99 = percentile_sorted(kls, 0.99);
    k.p95 = percentile_sorted(kls, 0.95);
    k.p90 = percentile_sorted(kls, 0.90);
    k.median = percentile_sorted(kls, 0.5);
    k.p10 = percentile_sorted(kls, 0.10);
    k.p5 = percentile_sorted(kls, 0.05);
    k.p1 = percentile_sorted(kls, 0.01);
    k.top1 = same_top.mean();
    k.top1_stderr = same_top.stderr_mean();
    k.delta_p_mean = dp.mean();
    k.delta_p_rms = std::sqrt(dp.n > 0 ? dp.sum2 / static_cast<double>(dp.n) : 0);
    k.ln_ppl_ratio = result.ppl.ln_ppl - result.baseline_ppl->ln_ppl;
    k.positions = kl.n;
    result.kl = k;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace edgelm
