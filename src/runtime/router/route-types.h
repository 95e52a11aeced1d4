// The router's vocabulary: a request with its privacy class and hints, where an answer ran
// (RouteTarget) and why (RouteDecision: reasons and every attempt, device and cloud), as JSON.
//
//   RouteRequest req;
//   req.messages = {{"user", "Summarise this contract"}};
//   req.privacy = PrivacyClass::kDeviceOnly;          // never leaves the device
//   RouteResult r = router.handle(req, on_delta);
//   std::puts(r.decision.to_json().c_str());
//   // {"target":"device","reasons":["privacy: device-only"],"attempts":[{"target":"device",...}]}
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat-template.h"

namespace edgelm::router {

// kDeviceOnly: the request (prompt and answer) must never leave the device.
enum class PrivacyClass { kEither, kDeviceOnly };
enum class RouteTarget { kNone, kDevice, kCloud };

const char* privacy_class_name(PrivacyClass p);  // "either", "device-only"
// Accepts "either", "device-only" (also "device_only", "private", "local").
StatusOr<PrivacyClass> parse_privacy_class(std::string_view s);
const char* route_target_name(RouteTarget t);  // "none", "device", "cloud"

struct RouteHints {
  std::string prefer;  // "", "device" or "cloud": the caller's preference (honoured if allowed)
  std::string task;    // free text such as "chat", "code", "math"; see RouterConfig::cloud_tasks
  std::string difficulty;  // "", "easy" or "hard": the caller's own estimate
};

struct RouteRequest {
  std::vector<ChatMessage> messages;  // a chat request; the device renders it with its template
  std::string prompt;                 // a plain prompt, used when messages is empty
  PrivacyClass privacy = PrivacyClass::kEither;
  RouteHints hints;
  int max_tokens = 128;
  float temperature = 0.0f;  // <= 0: greedy
  bool stream = false;       // cloud: stream with SSE, deltas reach the callback as they arrive
  std::string cloud_model;   // "model" sent to the cloud; "" = CloudOptions::model
};

// One try on one side (each cloud HTTP try is its own attempt).
struct RouteAttempt {
  RouteTarget target = RouteTarget::kNone;
  bool ok = false;
  std::string error;    // "" when ok
  int http_status = 0;  // cloud only; 0 = no HTTP response
  double ms = 0;
};

struct RouteDecision {
  RouteTarget target = RouteTarget::kNone;  // where the answer came from; kNone = failed
  std::vector<std::string> reasons;         // why, in the order the policy and fallbacks ran
  std::vector<RouteAttempt> attempts;
  PrivacyClass privacy = PrivacyClass::kEither;
  int prompt_tokens = 0;              // 0 = not measured (no device probe)
  std::optional<double> uncertainty;  // the probe's signal, when measured
  std::optional<double> threshold;    // the threshold it was compared with
  // {"target":..., "privacy":..., "reasons":[...], "attempts":[{"target","ok","error",
  //  "http_status","ms"}], "prompt_tokens":..., "uncertainty":..., "threshold":...}
  std::string to_json() const;
};

// Receives answer text as it is produced. Return false to stop.
using DeltaCallback = std::function<bool(std::string_view text)>;

// Token counts of an answer, OpenAI's "usage": the device's own counts, or what the cloud reported.
struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

struct RouteResult {
  Status status;              // OK, or why no answer could be produced (also in decision.reasons)
  std::string text;           // the whole answer (including any partial cloud text kept)
  std::string finish_reason;  // "stop", "length", "cancelled"
  // Summed over the sides that produced text (a device answer the cloud continued counts both);
  // prompt_tokens is the first side's.
  Usage usage;
  RouteDecision decision;
};

// The text of a request as one prompt for logs and length checks: the messages' contents or the
// plain prompt.
std::string request_text(const RouteRequest& req);

}  // namespace edgelm::router
