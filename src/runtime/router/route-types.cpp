// RouteDecision JSON and the name tables (see route-types.h).
#include "runtime/router/route-types.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace edgelm::router {

const char* privacy_class_name(PrivacyClass p) {
  return p == PrivacyClass::kDeviceOnly ? "device-only" : "either";
}

StatusOr<PrivacyClass> parse_privacy_class(std::string_view s) {
  if (s == "either" || s == "any" || s.empty()) return PrivacyClass::kEither;
  if (s == "device-only" || s == "device_only" || s == "private" || s == "local") {
    return PrivacyClass::kDeviceOnly;
  }
  return Status::invalid_argument(
      fmt::format("privacy class '{}': expected 'device-only' or 'either'", s));
}

const char* route_target_name(RouteTarget t) {
  switch (t) {
    case RouteTarget::kDevice:
      return "device";
    case RouteTarget::kCloud:
      return "cloud";
    case RouteTarget::kNone:
      break;
  }
  return "none";
}

std::string RouteDecision::to_json() const {
  nlohmann::ordered_json j;
  j["target"] = route_target_name(target);
  j["privacy"] = privacy_class_name(privacy);
  j["reasons"] = reasons;
  nlohmann::ordered_json atts = nlohmann::ordered_json::array();
  for (const RouteAttempt& a : attempts) {
    nlohmann::ordered_json o;
    o["target"] = route_target_name(a.target);
    o["ok"] = a.ok;
    o["error"] = a.error;
    o["http_status"] = a.http_status;
    o["ms"] = std::round(a.ms * 10) / 10;
    atts.push_back(std::move(o));
  }
  j["attempts"] = std::move(atts);
  j["prompt_tokens"] = prompt_tokens;
  if (uncertainty) {
    j["uncertainty"] = *uncertainty;
  } else {
    j["uncertainty"] = nullptr;
  }
  if (threshold) {
    j["threshold"] = *threshold;
  } else {
    j["threshold"] = nullptr;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string request_text(const RouteRequest& req) {
  if (req.messages.empty()) return req.prompt;
  std::string s;
  for (const ChatMessage& m : req.messages) {
    if (!s.empty()) s += '\n';
    s += m.content;
  }
  return s;
}

}  // namespace edgelm::router
