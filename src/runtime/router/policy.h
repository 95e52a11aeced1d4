// The routing policy: a pure function from what is known about a request and the system
// (privacy class, hints, the governor's verdict, the device's capability and load state, the
// cloud's availability, the prompt's length and the local model's uncertainty on it) to a plan:
// which side answers first, whether the other side may take over on failure, and the reasons.
// The thresholds live in RouterConfig, which `edgelm route calibrate` writes as JSON.
//
//   RouterConfig cfg;  cfg.uncertainty_threshold = 7.9;  // nats, from calibration
//   Signals s;  s.privacy = PrivacyClass::kEither;  s.device_loaded = true; ...
//   Plan p = decide(cfg, s);
//   if (p.need_probe) { s.uncertainty = probe(); p = decide(cfg, s); }
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/router/device.h"
#include "runtime/router/route-types.h"

namespace edgelm::router {

struct RouterConfig {
  // Uncertainty signal measured on the device before answering: "entropy" (of the next-token
  // distribution after the prompt), "nll" (mean NLL of the prompt's last tokens) or "none".
  std::string signal = "entropy";
  // Requests whose signal exceeds this go to the cloud; unset = the signal is not used.
  std::optional<double> uncertainty_threshold;
  int max_device_prompt_tokens = 4096;     // longer prompts go to the cloud
  size_t max_device_prompt_chars = 16384;  // checked before tokenizing
  double min_device_tps = 0;               // measured decode speed below this -> cloud (0 = off)
  // The device needs at least this much available RAM (bytes; 0 = not checked).
  uint64_t min_available_ram_bytes = 0;
  std::vector<std::string> cloud_tasks;  // task hints that always go to the cloud

  std::string to_json() const;
  // Unknown keys are ignored; wrong types are errors naming the key.
  static StatusOr<RouterConfig> from_json(const std::string& text);
  static StatusOr<RouterConfig> load(const std::string& path);
};

// What the governor says about running a request on the device now.
struct GovernorVerdict {
  bool allow = true;
  std::string reason;  // why not (or a note when allowed)
};
// Asked before any device work (probe included). Unset = always allow.
using GovernorCheck = std::function<GovernorVerdict(const RouteRequest&)>;

struct Signals {
  PrivacyClass privacy = PrivacyClass::kEither;
  RouteHints hints;
  bool device_loaded = false;
  GovernorVerdict governor;
  DeviceCapability capability;
  bool cloud_available = false;
  std::string cloud_unavailable_reason;
  size_t prompt_chars = 0;
  int prompt_tokens = 0;              // 0 = not measured yet
  std::optional<double> uncertainty;  // measured signal
  std::string probe_error;            // the probe failed
};

struct Plan {
  RouteTarget primary = RouteTarget::kNone;  // kNone: no side can answer (see reasons)
  bool fallback_allowed = false;             // the other side may take over on failure
  bool need_probe = false;  // device chosen tentatively: measure uncertainty, then decide again
  std::vector<std::string> reasons;
};

Plan decide(const RouterConfig& config, const Signals& s);

}  // namespace edgelm::router
