// A Session is one conversation: one KV cache (through an Executor) plus the token codec.
// generate() takes the WHOLE prompt each time (a plain prompt, or a whole chat rendered by its
// template); the longest prefix shared with what the cache already holds is reused, so a chat's
// earlier turns are not evaluated again. Text reaches the callback as it is generated, in
// complete UTF-8 characters, never including a stop string or anything after it.
//
//   Session s(std::move(executor), codec);
//   GenerateParams gp;  gp.max_tokens = 64;  gp.stop = {"\n\n"};
//   auto r = s.generate("Once upon a time", gp, [](std::string_view text, int32_t id) {
//     std::fwrite(text.data(), 1, text.size(), stdout);
//     return true;   // false stops generation
//   });
//   if (r.ok()) std::puts(r->stats.to_json().c_str());
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/executor.h"
#include "engine/stats.h"
#include "sampling/sampler.h"

namespace edgelm {

inline constexpr int32_t kNoToken = -1;

struct GenerateParams {
  // < 0: until an end-of-generation token, a stop string or a full context; 0: only evaluate
  // the prompt (warms the cache, e.g. for a system prompt).
  int max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool add_special = true;        // BOS etc. as the model's metadata asks
  bool parse_special = true;      // "<s>", "<|im_start|>" in the prompt become special tokens
  bool reuse_cache = true;        // keep the cached prefix shared with the previous prompt
  bool ignore_eog = false;        // keep going past end-of-generation tokens
  // Called before the prompt is evaluated (n_generated = 0) and before each decode step
  // (n_generated = tokens generated so far). Returning false stops generation with stop_reason
  // "governor"; it may sleep to pace tokens. runtime/governor/engine-hook.h builds one.
  std::function<bool(int n_generated)> before_token;
};

// Called once per generated token with the text that became final with it (may be empty
// while bytes are held back for UTF-8 or a possible stop string), and once more at the end with
// token == kNoToken if held text remains. Return false to stop (stop_reason "callback").
using TokenCallback = std::function<bool(std::string_view text, int32_t token)>;

struct GenerateResult {
  std::string text;             // everything released to the callback, concatenated
  std::vector<int32_t> tokens;  // generated ids (an end-of-generation token is not included)
  // One entry per id in `tokens`: the token's natural-log probability and the entropy (nats)
  // of the distribution it was drawn from, both from a log-softmax of the raw logits over the
  // whole vocabulary, before any sampling transform (temperature, top-k/p, penalties).
  std::vector<float> token_logprobs;
  std::vector<float> token_entropies;
  StopReason stop_reason = StopReason::kMaxTokens;
  GenerationStats stats;
};

// log p(token) and the entropy of softmax(logits), in nats, over all of `logits` (numerically
// stable; what GenerateResult::token_logprobs / token_entropies hold).
struct TokenLogprob {
  float logprob = 0;
  float entropy = 0;
};
TokenLogprob token_logprob(std::span<const float> logits, int32_t token);

class Session {
 public:
  // load_ms is copied into every result's stats.
  Session(std::unique_ptr<Executor> executor, std::shared_ptr<const TokenCodec> codec,
          double load_ms = 0);

  // Tokenizes `prompt` (GenerateParams::add_special / parse_special) and generates.
  // Errors: INVALID_ARGUMENT for an empty prompt; OUT_OF_RANGE when the prompt does not fit
  // the context (the message gives both sizes); whatever the executor reports.
  StatusOr<GenerateResult> generate(std::string_view prompt, const GenerateParams& params,
                                    const TokenCallback& on_token = {},
                                    const std::atomic<bool>* cancel = nullptr);
  StatusOr<GenerateResult> generate_tokens(std::span<const int32_t> prompt,
                                           const GenerateParams& params,
                                           const TokenCallback& on_token = {},
                                           const std::atomic<bool>* cancel = nullptr);

  // Asks the generation in progress (on another thread) to stop at the next token. A new
  // generate() clears the request.
  void cancel() { cancel_requested_.store(true); }

  // Forgets the cache.
  void reset();
  // Token ids the cache holds (prompt plus evaluated generated tokens).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  const GenerationStats& last_stats() const { return last_stats_; }
  Executor& executor() { return *executor_; }
  const TokenCodec& codec() const { return *codec_; }
  int n_ctx() const { return executor_->n_ctx(); }

 private:
  std::unique_ptr<Executor> executor_;
  std::shared_ptr<const TokenCodec> codec_;
  double load_ms_;
  std::vector<int32_t> cached_;
  GenerationStats last_stats_;
  std::atomic<bool> cancel_requested_{false};
};

}  // namespace edgelm
