// Per-request features (see features.h).
#include "runtime/monitor/features.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <set>

namespace edgelm::monitor {

double repeated_ngram_share(std::span<const int32_t> tokens, int n) {
  if (n <= 0 || tokens.size() < static_cast<size_t>(n) + 1) return 0;
  std::set<std::vector<int32_t>> seen;
  const size_t total = tokens.size() - static_cast<size_t>(n) + 1;
  size_t repeated = 0;
  for (size_t i = 0; i < total; ++i) {
    std::vector<int32_t> g(tokens.begin() + static_cast<ptrdiff_t>(i),
                           tokens.begin() + static_cast<ptrdiff_t>(i) + n);
    if (!seen.insert(std::move(g)).second) ++repeated;
  }
  return static_cast<double>(repeated) / static_cast<double>(total);
}

RequestFeatures features_from_result(const GenerateResult& r, std::string model,
                                     std::optional<std::string> prompt_text) {
  RequestFeatures f;
  f.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  f.model = std::move(model);
  f.source = "request";
  f.prompt_tokens = r.stats.prompt_tokens;
  f.output_tokens = static_cast<int>(r.tokens.size());
  if (!r.token_logprobs.empty()) {
    double s = 0;
    for (float v : r.token_logprobs) s += v;
    f.mean_logprob = s / static_cast<double>(r.token_logprobs.size());
  }
  if (!r.token_entropies.empty()) {
    double s = 0;
    for (float v : r.token_entropies) s += v;
    f.mean_entropy = s / static_cast<double>(r.token_entropies.size());
  }
  f.stop_reason = r.stop_reason;
  f.empty_output = std::all_of(r.text.begin(), r.text.end(), [](char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
  });
  f.repeated_ngram_share = repeated_ngram_share(r.tokens);
  f.latency_ms = r.stats.total_ms;
  f.ttft_ms = r.stats.ttft_ms;
  f.tokens_per_s = r.stats.decode_tps();
  if (prompt_text) {
    f.prompt_text = std::move(prompt_text);
    f.output_text = r.text;
  }
  return f;
}

const std::vector<std::string>& numeric_feature_names() {
  static const std::vector<std::string> kNames = {
      "prompt_tokens", "output_tokens", "mean_logprob", "mean_entropy", "repeated_ngram_share",
      "empty_output",  "stop_eog",      "latency_ms",   "ttft_ms",      "tokens_per_s"};
  return kNames;
}

std::optional<double> feature_value(const RequestFeatures& f, std::string_view name) {
  if (name == "prompt_tokens") return f.prompt_tokens;
  if (name == "output_tokens") return f.output_tokens;
  if (name == "mean_logprob") return f.mean_logprob;
  if (name == "mean_entropy") return f.mean_entropy;
  if (name == "repeated_ngram_share") return f.repeated_ngram_share;
  if (name == "empty_output") return f.empty_output ? 1.0 : 0.0;
  if (name == "stop_eog") return f.stop_reason == StopReason::kEog ? 1.0 : 0.0;
  if (name == "latency_ms") return f.latency_ms;
  if (name == "ttft_ms") return f.ttft_ms;
  if (name == "tokens_per_s") return f.tokens_per_s;
  return std::nullopt;
}

StatusOr<StopReason> parse_stop_reason(std::string_view name) {
  // Every enumerator, including ones added after this file (names are unique and stable).
  for (int i = 0; i < 32; ++i) {
    const auto r = static_cast<StopReason>(i);
    if (name == stop_reason_name(r)) return r;
  }
  return Status::invalid_argument(fmt::format(
      "unknown stop reason '{}' (expected eog, stop_string, max_tokens, context_full, cancelled, "
      "callback ...)",
      name));
}

nlohmann::json to_json(const RequestFeatures& f) {
  nlohmann::json j = {{"timestamp_ms", f.timestamp_ms},
                      {"model", f.model},
                      {"source", f.source},
                      {"prompt_tokens", f.prompt_tokens},
                      {"output_tokens", f.output_tokens},
                      {"mean_logprob", f.mean_logprob},
                      {"mean_entropy", f.mean_entropy},
                      {"stop_reason", stop_reason_name(f.stop_reason)},
                      {"empty_output", f.empty_output},
                      {"repeated_ngram_share", f.repeated_ngram_share},
                      {"latency_ms", f.latency_ms},
                      {"ttft_ms", f.ttft_ms},
                      {"tokens_per_s", f.tokens_per_s}};
  if (f.prompt_text) j["prompt_text"] = *f.prompt_text;
  if (f.output_text) j["output_text"] = *f.output_text;
  return j;
}

StatusOr<RequestFeatures> features_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("features: expected a JSON object");
  RequestFeatures f;
  try {
    f.timestamp_ms = j.value("timestamp_ms", int64_t{0});
    f.model = j.value("model", std::string());
    f.source = j.value("source", std::string("request"));
    f.prompt_tokens = j.value("prompt_tokens", 0);
    f.output_tokens = j.value("output_tokens", 0);
    f.mean_logprob = j.value("mean_logprob", 0.0);
    f.mean_entropy = j.value("mean_entropy", 0.0);
    ASSIGN_OR_RETURN(f.stop_reason,
                     parse_stop_reason(j.value("stop_reason", std::string("max_tokens"))));
    f.empty_output = j.value("empty_output", false);
    f.repeated_ngram_share = j.value("repeated_ngram_share", 0.0);
    f.latency_ms = j.value("latency_ms", 0.0);
    f.ttft_ms = j.value("ttft_ms", 0.0);
    f.tokens_per_s = j.value("tokens_per_s", 0.0);
    if (j.contains("prompt_text")) f.prompt_text = j["prompt_text"].get<std::string>();
    if (j.contains("output_text")) f.output_text = j["output_text"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("features: {}", e.what()));
  }
  return f;
}

}  // namespace edgelm::monitor
