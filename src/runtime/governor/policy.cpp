// Policy JSON parsing (see policy.h; fields documented in docs/governor.md).
#include "runtime/governor/policy.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace edgelm::governor {

using nlohmann::json;

namespace {

Status bad(std::string_view origin, std::string_view key, std::string_view what) {
  return Status::invalid_argument(fmt::format("{}: \"{}\": {}", origin, key, what));
}

Status check_keys(const json& obj, std::string_view origin, std::string_view where,
                  const std::set<std::string>& allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!allowed.count(it.key())) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      return Status::invalid_argument(fmt::format("{}: unknown key \"{}{}\" (expected one of: {})",
                                                  origin, where, it.key(), list));
    }
  }
  return Status::ok_status();
}

StatusOr<double> get_number(const json& obj, const std::string& key, std::string_view origin,
                            double lo, double hi) {
  const json& v = obj.at(key);
  if (!v.is_number()) return bad(origin, key, fmt::format("expected a number, found {}", v.dump()));
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi)) {
    return bad(origin, key, fmt::format("expected a value in [{}, {}], found {}", lo, hi, d));
  }
  return d;
}

StatusOr<bool> get_bool(const json& obj, const std::string& key, std::string_view origin) {
  const json& v = obj.at(key);
  if (!v.is_boolean())
    return bad(origin, key, fmt::format("expected true/false, found {}", v.dump()));
  return v.get<bool>();
}

StatusOr<std::string> get_string(const json& obj, const std::string& key, std::string_view origin) {
  const json& v = obj.at(key);
  if (!v.is_string()) return bad(origin, key, fmt::format("expected a string, found {}", v.dump()));
  return v.get<std::string>();
}

}  // namespace

const char* throttle_action_name(ThrottleAction a) {
  switch (a) {
    case ThrottleAction::kLog:
      return "log";
    case ThrottleAction::kDefer:
      return "defer";
    case ThrottleAction::kRefuse:
      return "refuse";
  }
  return "?";
}

StatusOr<GovernorPolicy> parse_policy(std::string_view json_text, std::string_view origin) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(fmt::format("{}: not valid JSON", origin));
  if (!j.is_object()) {
    return Status::invalid_argument(
        fmt::format("{}: expected a JSON object, found {}", origin, j.type_name()));
  }
  RETURN_IF_ERROR(check_keys(
      j, origin, "",
      {"name", "description", "require_plugged", "battery_floor_pct", "max_temp_c", "resume_temp_c",
       "min_cooldown_s", "token_budget", "throttle", "sensor_interval_ms", "unknown_sensor",
       "sensors", "sysfs_root", "thermal_types", "simulation"}));
  GovernorPolicy p;
  if (j.contains("name")) {
    ASSIGN_OR_RETURN(p.name, get_string(j, "name", origin));
  }
  if (j.contains("require_plugged")) {
    ASSIGN_OR_RETURN(p.require_plugged, get_bool(j, "require_plugged", origin));
  }
  if (j.contains("battery_floor_pct") && !j["battery_floor_pct"].is_null()) {
    ASSIGN_OR_RETURN(double v, get_number(j, "battery_floor_pct", origin, 0, 100));
    p.battery_floor_pct = v;
  }
  if (j.contains("max_temp_c") && !j["max_temp_c"].is_null()) {
    ASSIGN_OR_RETURN(double v, get_number(j, "max_temp_c", origin, -50, 200));
    p.max_temp_c = v;
  }
  if (j.contains("resume_temp_c") && !j["resume_temp_c"].is_null()) {
    if (!p.max_temp_c) return bad(origin, "resume_temp_c", "needs max_temp_c");
    ASSIGN_OR_RETURN(double v, get_number(j, "resume_temp_c", origin, -50, 200));
    if (v >= *p.max_temp_c) {
      return bad(origin, "resume_temp_c",
                 fmt::format("must be below max_temp_c ({}), found {}", *p.max_temp_c, v));
    }
    p.resume_temp_c = v;
  }
  if (j.contains("min_cooldown_s")) {
    ASSIGN_OR_RETURN(p.min_cooldown_s, get_number(j, "min_cooldown_s", origin, 0, 86400));
  }
  if (j.contains("token_budget") && !j["token_budget"].is_null()) {
    const json& b = j["token_budget"];
    if (!b.is_object()) return bad(origin, "token_budget", "expected an object");
    RETURN_IF_ERROR(check_keys(b, origin, "token_budget.", {"tokens_per_s", "burst"}));
    if (!b.contains("tokens_per_s")) return bad(origin, "token_budget", "needs tokens_per_s");
    TokenBudget tb;
    ASSIGN_OR_RETURN(tb.tokens_per_s, get_number(b, "tokens_per_s", origin, 1e-3, 1e6));
    tb.burst = std::max(1.0, tb.tokens_per_s);
    if (b.contains("burst")) {
      ASSIGN_OR_RETURN(tb.burst, get_number(b, "burst", origin, 1, 1e9));
    }
    p.token_budget = tb;
  }
  if (j.contains("throttle") && !j["throttle"].is_null()) {
    const json& t = j["throttle"];
    if (!t.is_object()) return bad(origin, "throttle", "expected an object");
    RETURN_IF_ERROR(check_keys(t, origin, "throttle.",
                               {"window", "fraction", "horizon_s", "action", "pause_ms"}));
    ThrottleDetect td;
    if (t.contains("window")) {
      ASSIGN_OR_RETURN(double w, get_number(t, "window", origin, 2, 100000));
      td.window = static_cast<int>(w);
    }
    if (t.contains("fraction")) {
      ASSIGN_OR_RETURN(td.fraction, get_number(t, "fraction", origin, 0.01, 0.99));
    }
    if (t.contains("horizon_s")) {
      ASSIGN_OR_RETURN(td.horizon_s, get_number(t, "horizon_s", origin, 1, 86400 * 7));
    }
    if (t.contains("pause_ms")) {
      ASSIGN_OR_RETURN(double ms, get_number(t, "pause_ms", origin, 1, 3600e3));
      td.pause_ms = static_cast<int64_t>(ms);
    }
    if (t.contains("action")) {
      ASSIGN_OR_RETURN(std::string a, get_string(t, "action", origin));
      if (a == "log") {
        td.action = ThrottleAction::kLog;
      } else if (a == "defer") {
        td.action = ThrottleAction::kDefer;
      } else if (a == "refuse") {
        td.action = ThrottleAction::kRefuse;
      } else {
        return bad(origin, "throttle.action",
                   fmt::format("expected \"log\", \"defer\" or \"refuse\", found \"{}\"", a));
      }
    }
    p.throttle = td;
  }
  if (j.contains("sensor_interval_ms")) {
    ASSIGN_OR_RETURN(double ms, get_number(j, "sensor_interval_ms", origin, 0, 3600e3));
    p.sensor_interval_ms = static_cast<int64_t>(ms);
  }
  if (j.contains("unknown_sensor")) {
    ASSIGN_OR_RETURN(std::string u, get_string(j, "unknown_sensor", origin));
    if (u == "allow") {
      p.unknown_sensor = UnknownSensor::kAllow;
    } else if (u == "refuse") {
      p.unknown_sensor = UnknownSensor::kRefuse;
    } else {
      return bad(origin, "unknown_sensor",
                 fmt::format("expected \"allow\" or \"refuse\", found \"{}\"", u));
    }
  }
  if (j.contains("sensors")) {
    ASSIGN_OR_RETURN(std::string s, get_string(j, "sensors", origin));
    if (s == "sysfs") {
      p.sensors = SensorSource::kSysfs;
    } else if (s == "push") {
      p.sensors = SensorSource::kPush;
    } else if (s == "none") {
      p.sensors = SensorSource::kNone;
    } else {
      return bad(origin, "sensors",
                 fmt::format("expected \"sysfs\", \"push\" or \"none\", found \"{}\"", s));
    }
  }
  if (j.contains("sysfs_root")) {
    ASSIGN_OR_RETURN(p.sysfs_root, get_string(j, "sysfs_root", origin));
  }
  if (j.contains("thermal_types")) {
    const json& t = j["thermal_types"];
    if (!t.is_array()) return bad(origin, "thermal_types", "expected an array of strings");
    for (const json& e : t) {
      if (!e.is_string()) {
        return bad(origin, "thermal_types",
                   fmt::format("expected an array of strings, found element {}", e.dump()));
      }
      p.thermal_types.push_back(e.get<std::string>());
    }
  }
  return p;
}

StatusOr<std::string> read_text_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::not_found(fmt::format("{}: no such file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io(fmt::format("{}: cannot open for reading", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::io(fmt::format("{}: read error", path));
  return ss.str();
}

StatusOr<GovernorPolicy> load_policy(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_policy(text, path);
}

}  // namespace edgelm::governor
