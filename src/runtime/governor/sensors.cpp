// Sensor sources (see sensors.h).
#include "runtime/governor/sensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgelm::governor {

namespace fs = std::filesystem;

namespace {

// First line of a small sysfs file, whitespace trimmed; nullopt if unreadable.
std::optional<std::string> read_line(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::string s;
  std::getline(in, s);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::optional<long long> parse_int(const std::string& s) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Sorted entries of dir whose name starts with prefix ("" = all).
std::vector<fs::path> list_dir(const fs::path& dir, std::string_view prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

StatusOr<SensorReadings> SysfsSensor::read() {
  SensorReadings r;
  r.source = "sysfs";
  const fs::path thermal = fs::path(root_) / "class" / "thermal";
  const fs::path power = fs::path(root_) / "class" / "power_supply";
  std::error_code ec;
  const bool have_thermal = fs::is_directory(thermal, ec);
  const bool have_power = fs::is_directory(power, ec);
  if (!have_thermal && !have_power) {
    return Status::not_found(
        fmt::format("sysfs root '{}': neither class/thermal nor class/power_supply exists", root_));
  }
  for (const fs::path& zone : list_dir(thermal, "thermal_zone")) {
    auto temp = read_line(zone / "temp");
    if (!temp) continue;  // zones without a readable temp (disabled) are skipped
    auto milli = parse_int(*temp);
    if (!milli) {
      r.warnings.push_back(fmt::format("{}: expected an integer (millidegrees C), found '{}'",
                                       (zone / "temp").string(), *temp));
      continue;
    }
    ThermalZone z;
    z.name = zone.filename().string();
    z.type = read_line(zone / "type").value_or("");
    z.temp_c = static_cast<double>(*milli) / 1000.0;
    bool considered = thermal_types_.empty();
    for (const std::string& t : thermal_types_) {
      if (lower(z.type).find(lower(t)) != std::string::npos) considered = true;
    }
    if (considered && (!r.temp_c || z.temp_c > *r.temp_c)) r.temp_c = z.temp_c;
    r.zones.push_back(std::move(z));
  }
  bool any_supply = false, any_external = false;
  for (const fs::path& dir : list_dir(power, "")) {
    PowerSupply s;
    s.name = dir.filename().string();
    s.type = read_line(dir / "type").value_or("");
    s.status = read_line(dir / "status").value_or("");
    if (auto online = read_line(dir / "online")) {
      auto v = parse_int(*online);
      if (v) {
        s.online = *v != 0;
      } else {
        r.warnings.push_back(
            fmt::format("{}: expected 0 or 1, found '{}'", (dir / "online").string(), *online));
      }
    }
    if (auto cap = read_line(dir / "capacity")) {
      auto v = parse_int(*cap);
      if (v && *v >= 0 && *v <= 100) {
        s.capacity_pct = static_cast<double>(*v);
      } else {
        r.warnings.push_back(fmt::format("{}: expected a percentage 0..100, found '{}'",
                                         (dir / "capacity").string(), *cap));
      }
    }
    const bool battery = s.type == "Battery" || (s.type.empty() && s.capacity_pct.has_value());
    any_supply = true;
    if (battery) {
      if (!r.battery_pct && s.capacity_pct) r.battery_pct = s.capacity_pct;
      if (s.status == "Charging" || s.status == "Full") any_external = true;
    } else if (s.online.value_or(false)) {
      any_external = true;
    }
    r.supplies.push_back(std::move(s));
  }
  if (any_supply) r.plugged = any_external;
  return r;
}

void PushedSensor::set_temperature(double c) {
  std::lock_guard<std::mutex> lock(mu_);
  r_.temp_c = c;
}
void PushedSensor::set_battery(double pct) {
  std::lock_guard<std::mutex> lock(mu_);
  r_.battery_pct = pct;
}
void PushedSensor::set_plugged(bool plugged) {
  std::lock_guard<std::mutex> lock(mu_);
  r_.plugged = plugged;
}
void PushedSensor::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  r_ = SensorReadings{};
}
StatusOr<SensorReadings> PushedSensor::read() {
  std::lock_guard<std::mutex> lock(mu_);
  SensorReadings r = r_;
  r.source = "push";
  return r;
}

}  // namespace edgelm::governor
