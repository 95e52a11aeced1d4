// Generation loop (see session.h).
#include "engine/session.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/cpu.h"
#include "engine/text-stream.h"

namespace edgelm {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

TokenLogprob token_logprob(std::span<const float> logits, int32_t token) {
  TokenLogprob out;
  if (logits.empty()) return out;
  const float mx = *std::max_element(logits.begin(), logits.end());
  double z = 0, zx = 0;  // sum exp(x - mx), sum exp(x - mx) * (x - mx)
  for (float x : logits) {
    const double d = static_cast<double>(x) - mx;
    const double e = std::exp(d);
    if (e == 0) continue;  // also skips -inf logits (0 * -inf would be NaN)
    z += e;
    zx += e * d;
  }
  const double log_z = std::log(z);
  if (token >= 0 && static_cast<size_t>(token) < logits.size()) {
    out.logprob = static_cast<float>(static_cast<double>(logits[token]) - mx - log_z);
  }
  out.entropy = static_cast<float>(log_z - zx / z);  // H = log Z - E[x - mx]
  return out;
}

Session::Session(std::unique_ptr<Executor> executor, std::shared_ptr<const TokenCodec> codec,
                 double load_ms)
    : executor_(std::move(executor)), codec_(std::move(codec)), load_ms_(load_ms) {}

void Session::reset() {
  executor_->reset();
  cached_.clear();
}

StatusOr<GenerateResult> Session::generate(std::string_view prompt, const GenerateParams& params,
                                           const TokenCallback& on_token,
                                           const std::atomic<bool>* cancel) {
  if (prompt.empty()) return Status::invalid_argument("generate: the prompt is empty");
  ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                   codec_->encode(prompt, params.add_special, params.parse_special));
  return generate_tokens(ids, params, on_token, cancel);
}

StatusOr<GenerateResult> Session::generate_tokens(std::span<const int32_t> prompt,
                                                  const GenerateParams& params,
                                                  const TokenCallback& on_token,
                                                  const std::atomic<bool>* cancel) {
  cancel_requested_.store(false);
  const auto t_start = Clock::now();
  if (prompt.empty()) return Status::invalid_argument("generate: the prompt has no tokens");
  const int n_ctx = executor_->n_ctx();
  const int n_vocab = executor_->n_vocab();
  if (static_cast<int64_t>(prompt.size()) > n_ctx) {
    return Status::out_of_range(
        fmt::format("the prompt has {} tokens but the context holds only {} (raise n_ctx / -c)",
                    prompt.size(), n_ctx));
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= n_vocab) {
      return Status::invalid_argument(
          fmt::format("prompt token {} at position {} is outside the vocabulary [0, {})", prompt[i],
                      i, n_vocab));
    }
  }

  // Reuse the cached prefix; at least one prompt token must be evaluated to get logits.
  size_t common = 0;
  if (params.reuse_cache) {
    const size_t lim = std::min(cached_.size(), prompt.size());
    while (common < lim && cached_[common] == prompt[common]) ++common;
    if (common == prompt.size()) --common;
  }
  if (common < static_cast<size_t>(executor_->n_past())) {
    if (common == 0) {
      executor_->reset();
    } else {
      executor_->truncate(static_cast<int>(common));
    }
  }
  cached_.resize(common);

  GenerateResult result;
  GenerationStats& st = result.stats;
  st.load_ms = load_ms_;
  st.prompt_tokens = static_cast<int>(prompt.size());
  st.cached_tokens = static_cast<int>(common);
  st.n_ctx = n_ctx;
  st.n_threads = executor_->n_threads();

  SamplerChain sampler = make_sampler_chain(params.sampling);
  st.seed = sampler.seed();
  for (int32_t t : prompt) sampler.accept(t);

  // The before_token hook (e.g. the governor) may refuse before any work is done.
  if (params.before_token && !params.before_token(0)) {
    st.stop_reason = result.stop_reason = StopReason::kGovernor;
    st.total_ms = ms_since(t_start);
    last_stats_ = st;
    return result;
  }

  // Prefill.
  const auto t_prefill = Clock::now();
  auto rest = prompt.subspan(common);
  auto logits_or = executor_->eval(rest);
  if (!logits_or.ok()) {
    // The cache may hold a partial prompt now; start clean next time.
    reset();
    return logits_or.status().with_context("prefill");
  }
  std::span<const float> logits = *logits_or;
  cached_.insert(cached_.end(), rest.begin(), rest.end());
  st.prefill_tokens = static_cast<int>(rest.size());
  st.prefill_ms = ms_since(t_prefill);

  TextStream stream(params.stop);
  auto emit = [&](const std::string& text, int32_t id) -> bool {
    result.text += text;
    return on_token ? on_token(text, id) : true;
  };

  Clock::time_point t_first{};
  StopReason reason = StopReason::kMaxTokens;
  while (params.max_tokens != 0) {
    if ((cancel != nullptr && cancel->load()) || cancel_requested_.load()) {
      reason = StopReason::kCancelled;
      break;
    }
    if (logits.size() != static_cast<size_t>(n_vocab)) {
      return Status::internal(fmt::format("executor returned {} logits, expected n_vocab = {}",
                                          logits.size(), n_vocab));
    }
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    ++st.generated_tokens;
    if (st.generated_tokens == 1) {
      t_first = Clock::now();
      st.ttft_ms = std::chrono::duration<double, std::milli>(t_first - t_start).count();
    }
    if (!params.ignore_eog && codec_->is_eog(id)) {
      reason = StopReason::kEog;
      break;
    }
    result.tokens.push_back(id);
    const TokenLogprob lp = token_logprob(logits, id);
    result.token_logprobs.push_back(lp.logprob);
    result.token_entropies.push_back(lp.entropy);
    const std::string text = stream.push(codec_->token_to_piece(id));
    if (stream.stopped()) {
      if (!text.empty()) emit(text, id);
      reason = StopReason::kStopString;
      break;
    }
    if (!emit(text, id)) {
      reason = StopReason::kCallback;
      break;
    }
    if (params.max_tokens > 0 && static_cast<int>(result.tokens.size()) >= params.max_tokens) {
      reason = StopReason::kMaxTokens;
      break;
    }
    if (executor_->n_past() >= n_ctx) {
      reason = StopReason::kContextFull;
      break;
    }
    if (params.before_token && !params.before_token(static_cast<int>(result.tokens.size()))) {
      reason = StopReason::kGovernor;
      break;
    }
    const int32_t one[1] = {id};
    auto next = executor_->eval(one);
    if (!next.ok()) return next.status().with_context("decode");
    logits = *next;
    cached_.push_back(id);
    ++st.decode_tokens;
  }
  if (reason != StopReason::kStopString) {
    const std::string tail = stream.finish();
    if (!tail.empty()) emit(tail, kNoToken);
  }
  if (st.generated_tokens > 0) st.decode_ms = ms_since(t_first);
  st.total_ms = ms_since(t_start);
  st.stop_reason = reason;
  st.peak_rss_bytes = peak_rss_bytes();
  result.stop_reason = reason;
  last_stats_ = st;
  return result;
}

}  // namespace edgelm
