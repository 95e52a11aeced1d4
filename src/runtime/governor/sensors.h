// Device sensors behind one interface: temperature, battery level, charger state. Three
// sources: the Linux/Android sysfs tree (thermal zones and power supplies; the root is
// configurable so tests point it at a fake tree), values pushed by the app (platforms whose
// thermal APIs are not files: iOS, Android's PowerManager, through the C API), and the
// simulated device (simulated-device.h).
//
//   SysfsSensor sysfs("/sys");                       // or a temp dir holding class/thermal/...
//   auto r = sysfs.read();
//   if (r.ok() && r->temp_c) fmt::print("{:.1f} C\n", *r->temp_c);
//
//   auto pushed = std::make_shared<PushedSensor>();
//   pushed->set_temperature(41.5);  pushed->set_plugged(false);  pushed->set_battery(63);
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace edgelm::governor {

struct ThermalZone {
  std::string name;  // directory name, "thermal_zone0"
  std::string type;  // contents of `type` ("x86_pkg_temp", "cpu-thermal", ...), "" if absent
  double temp_c = 0;
};

struct PowerSupply {
  std::string name;  // directory name, "BAT0", "AC", "usb"
  std::string type;  // "Battery", "Mains", "USB", ... ("" if absent)
  std::optional<bool> online;
  std::optional<double> capacity_pct;
  std::string status;  // "Charging", "Discharging", "Full", "Not charging", ... ("" if absent)
};

// One reading. An absent value means the source does not know it (no thermal zone, no
// battery); the policy says what an unknown value means (GovernorPolicy::unknown_sensor).
struct SensorReadings {
  std::optional<double> temp_c;       // the hottest zone considered
  std::optional<double> battery_pct;  // 0..100
  std::optional<bool> plugged;        // on external power
  std::string source;                 // "sysfs", "push", "simulated"
  std::vector<ThermalZone> zones;     // sysfs only: every zone read
  std::vector<PowerSupply> supplies;  // sysfs only
  std::vector<std::string> warnings;  // files that could not be parsed (skipped)
};

class Sensor {
 public:
  virtual ~Sensor() = default;
  virtual StatusOr<SensorReadings> read() = 0;
};

// Reads <root>/class/thermal/thermal_zone*/{temp,type} (millidegrees Celsius) and
// <root>/class/power_supply/*/{type,online,capacity,status}.
// temp_c = the hottest zone whose type contains one of `thermal_types` (case-insensitive;
// empty = every zone). plugged = a non-battery supply (Mains, USB, Wireless...) reports
// online = 1, or a battery reports status Charging/Full; false when supplies exist and none
// does; unknown when there are no supplies. battery_pct = capacity of the first battery.
// Errors: NOT_FOUND when <root>/class exists for neither thermal nor power_supply (the
// message names the root). Unparsable files are skipped with a warning in the reading.
class SysfsSensor : public Sensor {
 public:
  explicit SysfsSensor(std::string root = "/sys", std::vector<std::string> thermal_types = {})
      : root_(std::move(root)), thermal_types_(std::move(thermal_types)) {}
  StatusOr<SensorReadings> read() override;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::vector<std::string> thermal_types_;
};

// Values pushed by the app; thread-safe (push from any thread, read from the engine's).
class PushedSensor : public Sensor {
 public:
  void set_temperature(double c);
  void set_battery(double pct);
  void set_plugged(bool plugged);
  void clear();
  StatusOr<SensorReadings> read() override;

 private:
  std::mutex mu_;
  SensorReadings r_;
};

// Always empty readings (policy checks that need values see "unknown").
class NullSensor : public Sensor {
 public:
  StatusOr<SensorReadings> read() override {
    SensorReadings r;
    r.source = "none";
    return r;
  }
};

}  // namespace edgelm::governor
