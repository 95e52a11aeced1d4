// Generation statistics, reported as ONE JSON line with stable key names (scripts parse it):
//
//   {"load_ms":12.1,"ttft_ms":8.4,"prompt_tokens":5,"cached_tokens":0,"prefill_tokens":5,
//    "prefill_ms":7.9,"prefill_tps":632.9,"decode_tokens":31,"decode_ms":120.2,"decode_tps":257.9,
//    "generated_tokens":32,"total_ms":128.6,"peak_rss_bytes":51380224,"stop_reason":"max_tokens",
//    "seed":0,"n_ctx":512,"n_threads":2}
//
// Meanings: load_ms = model + tokenizer load; ttft_ms = generate() start to the first sampled
// token (prefill + one sample); prompt_tokens = prompt length; cached_tokens = prompt tokens
// reused from the KV cache (not evaluated); prefill_* = the evaluated prompt tokens and their
// time; decode_* = single-token evaluations after the first sampled token, timed from the first
// token to the end; generated_tokens = tokens sampled (an end-of-generation token included);
// peak_rss_bytes = process peak resident memory (VmHWM); stop_reason = one of eog, stop_string,
// max_tokens, context_full, cancelled, callback, governor.
//
//   GenerationStats st = result.stats;   std::puts(st.to_json().c_str());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgelm {

enum class StopReason {
  kEog,
  kStopString,
  kMaxTokens,
  kContextFull,
  kCancelled,
  kCallback,
  kGovernor,  // GenerateParams::before_token returned false
};
const char* stop_reason_name(StopReason r);  // "eog", "stop_string", ...

struct GenerationStats {
  double load_ms = 0;
  double ttft_ms = 0;
  int prompt_tokens = 0;
  int cached_tokens = 0;
  int prefill_tokens = 0;
  double prefill_ms = 0;
  int decode_tokens = 0;
  double decode_ms = 0;
  int generated_tokens = 0;
  double total_ms = 0;
  size_t peak_rss_bytes = 0;
  StopReason stop_reason = StopReason::kMaxTokens;
  uint64_t seed = 0;
  int n_ctx = 0;
  int n_threads = 0;

  double prefill_tps() const { return prefill_ms > 0 ? prefill_tokens * 1000.0 / prefill_ms : 0; }
  double decode_tps() const { return decode_ms > 0 ? decode_tokens * 1000.0 / decode_ms : 0; }
  // One line of JSON, no trailing newline, keys in the order shown above.
  std::string to_json() const;
};

}  // namespace edgelm
