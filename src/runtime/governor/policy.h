// Governor policy: what the device may do, read from a JSON config file (every field is
// documented in docs/governor.md). Every field is optional; {} is the "none" policy (always
// allow). Unknown keys are errors, so a typo never silently disables a limit.
//
//   {"require_plugged": true, "max_temp_c": 45, "resume_temp_c": 40, "min_cooldown_s": 60,
//    "battery_floor_pct": 20, "token_budget": {"tokens_per_s": 8, "burst": 64},
//    "throttle": {"window": 16, "fraction": 0.6, "action": "refuse"}}
//
//   auto p = governor::load_policy("policy.json");       // or parse_policy(text, "<inline>")
//   if (!p.ok()) return p.status();
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace edgelm::governor {

enum class ThrottleAction { kLog, kDefer, kRefuse };
enum class UnknownSensor { kAllow, kRefuse };
enum class SensorSource { kSysfs, kPush, kNone };

struct TokenBudget {
  double tokens_per_s = 0;  // sustained rate (> 0)
  double burst = 0;         // bucket size in tokens (>= 1; default = max(1, tokens_per_s))
};

struct ThrottleDetect {
  int window = 16;         // token intervals in the sliding window (>= 2)
  double fraction = 0.7;   // flag when window speed < fraction x recent best (0 < f < 1)
  double horizon_s = 300;  // "recent best" = best window speed within this many seconds
  ThrottleAction action = ThrottleAction::kLog;
  int64_t pause_ms = 2000;  // kDefer: how long to pause when throttling is seen
};

struct GovernorPolicy {
  std::string name;  // free text, shown in logs and tables
  bool require_plugged = false;
  std::optional<double> battery_floor_pct;  // refuse below this unless plugged
  std::optional<double> max_temp_c;         // refuse at or above; starts a cool-down
  std::optional<double> resume_temp_c;      // cool-down ends at or below (default max - 5)
  double min_cooldown_s = 0;                // and not before this many seconds
  std::optional<TokenBudget> token_budget;  // pacing (token bucket)
  std::optional<ThrottleDetect> throttle;   // detection from the engine's own decode speed
  int64_t sensor_interval_ms = 250;         // sensors are read at most this often
  UnknownSensor unknown_sensor = UnknownSensor::kRefuse;  // a needed value the sensor lacks
  // Where a governor built from the config reads (absent: the caller's default: the CLI
  // reads sysfs, the C API takes pushed values).
  std::optional<SensorSource> sensors;
  std::string sysfs_root = "/sys";
  std::vector<std::string> thermal_types;  // SysfsSensor filter (empty = every zone)

  double resume_temp() const { return resume_temp_c.value_or(max_temp_c.value_or(0) - 5); }
};

// Parses a policy. `origin` names the source in messages ("policy.json"). The key
// "simulation" (see simulated-device.h) and "description" are accepted and ignored here.
// Errors: INVALID_ARGUMENT naming the file and the key (bad JSON, unknown key, wrong type,
// value out of range, resume_temp_c >= max_temp_c).
StatusOr<GovernorPolicy> parse_policy(std::string_view json_text,
                                      std::string_view origin = "<policy>");
// Reads and parses a file (NOT_FOUND / IO when it cannot be read).
StatusOr<GovernorPolicy> load_policy(const std::string& path);
// Reads a whole file as text (NOT_FOUND / IO).
StatusOr<std::string> read_text_file(const std::string& path);

const char* throttle_action_name(ThrottleAction a);  // "log", "defer", "refuse"

}  // namespace edgelm::governor
