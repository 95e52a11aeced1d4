// The routing policy (see policy.h).
#include "runtime/router/policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace edgelm::router {

std::string RouterConfig::to_json() const {
  nlohmann::ordered_json j;
  j["signal"] = signal;
  if (uncertainty_threshold) {
    j["uncertainty_threshold"] = *uncertainty_threshold;
  } else {
    j["uncertainty_threshold"] = nullptr;
  }
  j["max_device_prompt_tokens"] = max_device_prompt_tokens;
  j["max_device_prompt_chars"] = max_device_prompt_chars;
  j["min_device_tps"] = min_device_tps;
  j["min_available_ram_bytes"] = min_available_ram_bytes;
  j["cloud_tasks"] = cloud_tasks;
  return j.dump(2);
}

StatusOr<RouterConfig> RouterConfig::from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("router config: not a JSON object");
  }
  RouterConfig c;
  auto bad = [](const char* key, const char* expected) {
    return Status::invalid_argument(
        fmt::format("router config: key '{}' must be {}", key, expected));
  };
  if (j.contains("signal")) {
    if (!j["signal"].is_string()) return bad("signal", "a string");
    c.signal = j["signal"].get<std::string>();
    if (c.signal != "entropy" && c.signal != "nll" && c.signal != "none") {
      return Status::invalid_argument(
          fmt::format("router config: signal '{}': expected 'entropy', 'nll' or 'none'", c.signal));
    }
  }
  if (j.contains("uncertainty_threshold") && !j["uncertainty_threshold"].is_null()) {
    if (!j["uncertainty_threshold"].is_number()) return bad("uncertainty_threshold", "a number");
    c.uncertainty_threshold = j["uncertainty_threshold"].get<double>();
  }
  if (j.contains("max_device_prompt_tokens")) {
    if (!j["max_device_prompt_tokens"].is_number_integer()) {
      return bad("max_device_prompt_tokens", "an integer");
    }
    c.max_device_prompt_tokens = j["max_device_prompt_tokens"].get<int>();
  }
  if (j.contains("max_device_prompt_chars")) {
    if (!j["max_device_prompt_chars"].is_number_unsigned()) {
      return bad("max_device_prompt_chars", "a non-negative integer");
    }
    c.max_device_prompt_chars = j["max_device_prompt_chars"].get<size_t>();
  }
  if (j.contains("min_device_tps")) {
    if (!j["min_device_tps"].is_number()) return bad("min_device_tps", "a number");
    c.min_device_tps = j["min_device_tps"].get<double>();
  }
  if (j.contains("min_available_ram_bytes")) {
    if (!j["min_available_ram_bytes"].is_number_unsigned()) {
      return bad("min_available_ram_bytes", "a non-negative integer");
    }
    c.min_available_ram_bytes = j["min_available_ram_bytes"].get<uint64_t>();
  }
  if (j.contains("cloud_tasks")) {
    if (!j["cloud_tasks"].is_array()) return bad("cloud_tasks", "an array of strings");
    for (const auto& t : j["cloud_tasks"]) {
      if (!t.is_string()) return bad("cloud_tasks", "an array of strings");
      c.cloud_tasks.push_back(t.get<std::string>());
    }
  }
  return c;
}

StatusOr<RouterConfig> RouterConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("router config '{}': cannot open", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  auto c = from_json(ss.str());
  if (!c.ok()) return c.status().with_context(path);
  return c;
}

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

std::string device_block(const RouterConfig& c, const Signals& s) {
  if (!s.device_loaded) return "no model is loaded on the device";
  if (!s.governor.allow) {
    return "the governor refuses device work: " +
           (s.governor.reason.empty() ? std::string("(no reason given)") : s.governor.reason);
  }
  if (c.min_available_ram_bytes > 0 && s.capability.ram_available_bytes > 0 &&
      s.capability.ram_available_bytes < c.min_available_ram_bytes) {
    return fmt::format("available RAM {:.0f} MiB < required {:.0f} MiB",
                       s.capability.ram_available_bytes / kMiB, c.min_available_ram_bytes / kMiB);
  }
  return "";
}

}  // namespace

Plan decide(const RouterConfig& c, const Signals& s) {
  Plan p;
  const std::string blocked = device_block(c, s);
  if (s.privacy == PrivacyClass::kDeviceOnly) {
    p.reasons.push_back("privacy: device-only (the cloud is never used)");
    if (!blocked.empty()) {
      p.reasons.push_back("device unavailable: " + blocked);
      return p;
    }
    p.primary = RouteTarget::kDevice;
    return p;
  }
  if (!s.cloud_available) {
    p.reasons.push_back("cloud unavailable: " + s.cloud_unavailable_reason);
    if (!blocked.empty()) {
      p.reasons.push_back("device unavailable: " + blocked);
      return p;
    }
    p.primary = RouteTarget::kDevice;
    return p;
  }
  if (!blocked.empty()) {
    p.reasons.push_back("device unavailable: " + blocked);
    p.primary = RouteTarget::kCloud;
    return p;
  }
  p.fallback_allowed = true;
  auto to = [&](RouteTarget t, std::string why) {
    p.primary = t;
    p.reasons.push_back(std::move(why));
    return p;
  };
  if (s.hints.prefer == "cloud") return to(RouteTarget::kCloud, "hint: prefer cloud");
  if (s.hints.prefer == "device") return to(RouteTarget::kDevice, "hint: prefer device");
  if (!s.hints.task.empty() &&
      std::find(c.cloud_tasks.begin(), c.cloud_tasks.end(), s.hints.task) != c.cloud_tasks.end()) {
    return to(RouteTarget::kCloud, fmt::format("task '{}' is a cloud task", s.hints.task));
  }
  if (s.hints.difficulty == "hard") return to(RouteTarget::kCloud, "hint: difficulty hard");
  if (s.hints.difficulty == "easy") return to(RouteTarget::kDevice, "hint: difficulty easy");
  if (s.prompt_chars > c.max_device_prompt_chars) {
    return to(RouteTarget::kCloud, fmt::format("prompt of {} chars > device limit {}",
                                               s.prompt_chars, c.max_device_prompt_chars));
  }
  if (s.prompt_tokens > c.max_device_prompt_tokens) {
    return to(RouteTarget::kCloud, fmt::format("prompt of {} tokens > device limit {}",
                                               s.prompt_tokens, c.max_device_prompt_tokens));
  }
  if (c.min_device_tps > 0 && s.capability.decode_tps > 0 &&
      s.capability.decode_tps < c.min_device_tps) {
    return to(RouteTarget::kCloud, fmt::format("measured device speed {:.1f} tok/s < {:.1f}",
                                               s.capability.decode_tps, c.min_device_tps));
  }
  if (c.uncertainty_threshold && c.signal != "none") {
    if (!s.probe_error.empty()) {
      return to(RouteTarget::kCloud, "uncertainty probe failed: " + s.probe_error);
    }
    if (!s.uncertainty) {
      p.primary = RouteTarget::kDevice;
      p.need_probe = true;
      return p;
    }
    if (*s.uncertainty > *c.uncertainty_threshold) {
      return to(RouteTarget::kCloud, fmt::format("{} {:.4f} > threshold {:.4f}", c.signal,
                                                 *s.uncertainty, *c.uncertainty_threshold));
    }
    return to(RouteTarget::kDevice, fmt::format("{} {:.4f} <= threshold {:.4f}", c.signal,
                                                *s.uncertainty, *c.uncertainty_threshold));
  }
  return to(RouteTarget::kDevice, "default: device (no uncertainty threshold set)");
}

}  // namespace edgelm::router
