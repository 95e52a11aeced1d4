// OpenAI-compatible request parsing and validation, kept free of sockets so it can be fuzzed and
// unit-tested: bytes in, a validated CompletionRequest or an OpenAI-style error out.
//
//   ParseResult r = parse_request(Endpoint::kChat, body);
//   if (!r.ok()) return reply(r.error->http_status, r.error->to_json());
//   const CompletionRequest& req = r.request;   // messages, sampling, limits, stream ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat-template.h"

namespace edgelm::server {

// {"error":{"message","type","param","code"}} with the HTTP status it is sent with.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
  std::string to_json() const;
};

// The OpenAI-style error for a Status from a backend (INVALID_ARGUMENT -> 400, OUT_OF_RANGE ->
// 400 context_length_exceeded, NOT_FOUND -> 404 model_not_found, RESOURCE_EXHAUSTED -> 503,
// CANCELLED -> 499, UNIMPLEMENTED -> 400, IO -> 502, others -> 500).
ApiError api_error_from_status(const Status& status);

enum class Endpoint { kChat, kCompletion };

// Limits the parser enforces.
struct RequestLimits {
  size_t max_body_bytes = 4u << 20;
  int max_depth = 64;  // JSON nesting
  size_t max_messages = 1024;
  size_t max_stop = 16;  // stop strings
  size_t max_stop_bytes = 256;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  std::vector<ChatMessage> messages;  // kChat
  std::string prompt;                 // kCompletion
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool echo = false;              // kCompletion: prepend the prompt to the text
  std::optional<int> max_tokens;  // max_tokens / max_completion_tokens; unset: server default
  float temperature = 1.0f;       // OpenAI defaults
  float top_p = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string user;
  // Routing (`edgelm serve --cloud`, tools/edgelm/serve-router.h), from the request headers
  // "x-edgelm-privacy" ("device-only" | "either") and "x-edgelm-prefer" ("device" | "cloud").
  std::string privacy;
  std::string route_prefer;
};

struct ParseResult {
  CompletionRequest request;
  std::optional<ApiError> error;
  bool ok() const { return !error.has_value(); }
};

// Parses and validates a /v1/chat/completions or /v1/completions body. Never throws; every
// failure is a 4xx ApiError naming the offending parameter.
ParseResult parse_request(Endpoint endpoint, std::string_view body,
                          const RequestLimits& limits = {});

}  // namespace edgelm::server
