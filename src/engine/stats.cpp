// GenerationStats JSON rendering (see stats.h).
#include "engine/stats.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace edgelm {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog:
      return "eog";
    case StopReason::kStopString:
      return "stop_string";
    case StopReason::kMaxTokens:
      return "max_tokens";
    case StopReason::kContextFull:
      return "context_full";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kCallback:
      return "callback";
    case StopReason::kGovernor:
      return "governor";
  }
  return "unknown";
}

namespace {
// Milliseconds and rates rounded to 3 decimals: readable, and still exact enough.
double r3(double v) { return std::round(v * 1000.0) / 1000.0; }
}  // namespace

std::string GenerationStats::to_json() const {
  nlohmann::ordered_json j;
  j["load_ms"] = r3(load_ms);
  j["ttft_ms"] = r3(ttft_ms);
  j["prompt_tokens"] = prompt_tokens;
  j["cached_tokens"] = cached_tokens;
  j["prefill_tokens"] = prefill_tokens;
  j["prefill_ms"] = r3(prefill_ms);
  j["prefill_tps"] = r3(prefill_tps());
  j["decode_tokens"] = decode_tokens;
  j["decode_ms"] = r3(decode_ms);
  j["decode_tps"] = r3(decode_tps());
  j["generated_tokens"] = generated_tokens;
  j["total_ms"] = r3(total_ms);
  j["peak_rss_bytes"] = peak_rss_bytes;
  j["stop_reason"] = stop_reason_name(stop_reason);
  j["seed"] = seed;
  j["n_ctx"] = n_ctx;
  j["n_threads"] = n_threads;
  return j.dump();
}

}  // namespace edgelm
