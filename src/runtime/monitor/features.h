// Per-request features for quality-drift monitoring: lengths, mean token log-probability and
// entropy, stop reason, empty or repetitive output, latency and speed. Computed from a
// GenerateResult (engine/session.h); no raw text unless the caller puts it in (opt-in).
//
//   auto r = session->generate(prompt, gp);
//   RequestFeatures f = features_from_result(*r, "tiny-llama-v3");
//   double v = *feature_value(f, "mean_logprob");
//   store->add(f);
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/session.h"

namespace edgelm::monitor {

struct RequestFeatures {
  int64_t timestamp_ms = 0;  // Unix time in milliseconds
  std::string model;         // model name or version the request ran on
  std::string source;        // "request" (production traffic) or "canary"
  int prompt_tokens = 0;
  int output_tokens = 0;    // generated ids (end-of-generation token not counted)
  double mean_logprob = 0;  // mean natural-log probability of the output tokens (0: none)
  double mean_entropy = 0;  // mean entropy (nats) of the distributions they came from
  StopReason stop_reason = StopReason::kMaxTokens;
  bool empty_output = false;        // no text, or only whitespace
  double repeated_ngram_share = 0;  // share of output 3-grams already seen earlier in it
  double latency_ms = 0;            // whole request (GenerationStats::total_ms)
  double ttft_ms = 0;
  double tokens_per_s = 0;  // decode speed
  // Raw text: only kept when the application opts in (StoreOptions::keep_text).
  std::optional<std::string> prompt_text;
  std::optional<std::string> output_text;
};

// Features of one generation. The texts are filled only when given (opt-in).
RequestFeatures features_from_result(const GenerateResult& r, std::string model = "",
                                     std::optional<std::string> prompt_text = std::nullopt);

// Share of the n-grams of `tokens` that already occurred earlier in the same sequence
// (0 for fewer than n + 1 tokens). "a b c a b c" with n = 3: 1 of 4 3-grams ("a b c") repeats.
double repeated_ngram_share(std::span<const int32_t> tokens, int n = 3);

// Names of the numeric features drift tests can compare, in a fixed order:
// prompt_tokens, output_tokens, mean_logprob, mean_entropy, repeated_ngram_share,
// empty_output (0/1), stop_eog (0/1: ended by end-of-generation), latency_ms, ttft_ms,
// tokens_per_s.
const std::vector<std::string>& numeric_feature_names();
// The value of a named numeric feature; nullopt for an unknown name.
std::optional<double> feature_value(const RequestFeatures& f, std::string_view name);

nlohmann::json to_json(const RequestFeatures& f);
StatusOr<RequestFeatures> features_from_json(const nlohmann::json& j);
// "eog" -> kEog ...; INVALID_ARGUMENT naming the value otherwise.
StatusOr<StopReason> parse_stop_reason(std::string_view name);

}  // namespace edgelm::monitor
