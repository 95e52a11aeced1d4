// Policy JSON parsing (fields, defaults, errors naming the key) and the sensor sources: a
// fake sysfs tree in a temp dir (thermal zones, power supplies, malformed files), pushed values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"
#include "test_util.h"

namespace edgelm::governor {
namespace {

namespace fs = std::filesystem;

TEST(Policy, EmptyObjectIsTheNonePolicy) {
  auto p = parse_policy("{}");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_FALSE(p->require_plugged);
  EXPECT_FALSE(p->max_temp_c.has_value());
  EXPECT_FALSE(p->battery_floor_pct.has_value());
  EXPECT_FALSE(p->token_budget.has_value());
  EXPECT_FALSE(p->throttle.has_value());
  EXPECT_EQ(p->sensor_interval_ms, 250);
  EXPECT_EQ(p->unknown_sensor, UnknownSensor::kRefuse);
  EXPECT_FALSE(p->sensors.has_value());  // the caller's default
}

TEST(Policy, ParsesEveryField) {
  auto p = parse_policy(R"({
    "name": "strict", "description": "x", "require_plugged": true, "battery_floor_pct": 20,
    "max_temp_c": 45, "resume_temp_c": 39, "min_cooldown_s": 90,
    "token_budget": {"tokens_per_s": 8, "burst": 32},
    "throttle": {"window": 8, "fraction": 0.6, "horizon_s": 120, "action": "defer",
                 "pause_ms": 1500},
    "sensor_interval_ms": 0, "unknown_sensor": "allow", "sensors": "push",
    "sysfs_root": "/tmp/x", "thermal_types": ["cpu", "soc"], "simulation": {"sample_s": 5}})");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->name, "strict");
  EXPECT_TRUE(p->require_plugged);
  EXPECT_DOUBLE_EQ(*p->battery_floor_pct, 20);
  EXPECT_DOUBLE_EQ(*p->max_temp_c, 45);
  EXPECT_DOUBLE_EQ(p->resume_temp(), 39);
  EXPECT_DOUBLE_EQ(p->min_cooldown_s, 90);
  EXPECT_DOUBLE_EQ(p->token_budget->tokens_per_s, 8);
  EXPECT_DOUBLE_EQ(p->token_budget->burst, 32);
  EXPECT_EQ(p->throttle->window, 8);
  EXPECT_DOUBLE_EQ(p->throttle->fraction, 0.6);
  EXPECT_DOUBLE_EQ(p->throttle->horizon_s, 120);
  EXPECT_EQ(p->throttle->action, ThrottleAction::kDefer);
  EXPECT_EQ(p->throttle->pause_ms, 1500);
  EXPECT_EQ(p->sensor_interval_ms, 0);
  EXPECT_EQ(p->unknown_sensor, UnknownSensor::kAllow);
  EXPECT_EQ(p->sensors, SensorSource::kPush);
  EXPECT_EQ(p->sysfs_root, "/tmp/x");
  EXPECT_EQ(p->thermal_types, (std::vector<std::string>{"cpu", "soc"}));
}

TEST(Policy, DefaultsOfOptionalParts) {
  auto p = parse_policy(R"({"max_temp_c": 50, "token_budget": {"tokens_per_s": 4}})");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_DOUBLE_EQ(p->resume_temp(), 45);       // max - 5
  EXPECT_DOUBLE_EQ(p->token_budget->burst, 4);  // max(1, rate)
}

void expect_error(const std::string& json, const std::string& needle) {
  auto p = parse_policy(json, "bad.json");
  ASSERT_FALSE(p.ok()) << json;
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("bad.json"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find(needle), std::string::npos) << p.status().message();
}

TEST(Policy, BadInputIsAClearError) {
  expect_error("{", "not valid JSON");
  expect_error("[1]", "expected a JSON object");
  expect_error(R"({"max_temp": 45})", "unknown key \"max_temp\"");
  expect_error(R"({"max_temp_c": "hot"})", "max_temp_c");
  expect_error(R"({"require_plugged": 1})", "require_plugged");
  expect_error(R"({"battery_floor_pct": 140})", "battery_floor_pct");
  expect_error(R"({"max_temp_c": 45, "resume_temp_c": 46})", "must be below max_temp_c");
  expect_error(R"({"resume_temp_c": 40})", "needs max_temp_c");
  expect_error(R"({"token_budget": {"burst": 3}})", "needs tokens_per_s");
  expect_error(R"({"token_budget": {"tokens_per_s": 3, "brust": 3}})", "token_budget.brust");
  expect_error(R"({"throttle": {"action": "panic"}})", "throttle.action");
  expect_error(R"({"throttle": {"fraction": 1.5}})", "fraction");
  expect_error(R"({"unknown_sensor": "maybe"})", "unknown_sensor");
  expect_error(R"({"sensors": "magic"})", "sensors");
  expect_error(R"({"thermal_types": [1]})", "thermal_types");
}

TEST(Policy, LoadPolicyNamesMissingFile) {
  auto p = load_policy("/nonexistent/policy.json");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("/nonexistent/policy.json"), std::string::npos);
}

TEST(Policy, ShippedPolicyFilesParse) {
  const fs::path dir = fs::path(EDGELM_SOURCE_DIR) / "bench" / "governor" / "policies";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto p = load_policy(e.path().string());
    EXPECT_TRUE(p.ok()) << e.path() << ": " << p.status().to_string();
    ++n;
  }
  EXPECT_GE(n, 4);
}

// A fake sysfs tree under a temp dir.
class FakeSysfs {
 public:
  FakeSysfs() : root_(edgelm::testing::temp_path("sysfs")) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~FakeSysfs() { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    const fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

TEST(SysfsSensor, ReadsThermalZonesAndPowerSupplies) {
  FakeSysfs t;
  t.write("class/thermal/thermal_zone0/temp", "41500\n");
  t.write("class/thermal/thermal_zone0/type", "acpitz\n");
  t.write("class/thermal/thermal_zone1/temp", "57250\n");
  t.write("class/thermal/thermal_zone1/type", "x86_pkg_temp\n");
  t.write("class/thermal/cooling_device0/type", "Processor\n");  // not a zone
  t.write("class/power_supply/AC/type", "Mains\n");
  t.write("class/power_supply/AC/online", "0\n");
  t.write("class/power_supply/BAT0/type", "Battery\n");
  t.write("class/power_supply/BAT0/capacity", "63\n");
  t.write("class/power_supply/BAT0/status", "Discharging\n");
  SysfsSensor s(t.root());
  auto r = s.read();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->zones.size(), 2u);
  EXPECT_EQ(r->zones[1].type, "x86_pkg_temp");
  ASSERT_TRUE(r->temp_c.has_value());
  EXPECT_DOUBLE_EQ(*r->temp_c, 57.25);  // the hottest zone
  ASSERT_TRUE(r->battery_pct.has_value());
  EXPECT_DOUBLE_EQ(*r->battery_pct, 63);
  ASSERT_TRUE(r->plugged.has_value());
  EXPECT_FALSE(*r->plugged);
  EXPECT_TRUE(r->warnings.empty());

  // Plug the charger in: the same sensor sees it on the next read.
  t.write("class/power_supply/AC/online", "1\n");
  r = s.read();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r->plugged);

  // A type filter considers only matching zones.
  SysfsSensor filtered(t.root(), {"ACPI"});
  r = filtered.read();
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->temp_c, 41.5);
}

TEST(SysfsSensor, BatteryChargingCountsAsPluggedWithoutMains) {
  FakeSysfs t;
  t.write("class/power_supply/battery/type", "Battery\n");
  t.write("class/power_supply/battery/capacity", "90\n");
  t.write("class/power_supply/battery/status", "Charging\n");
  auto r = SysfsSensor(t.root()).read();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r->plugged);
  EXPECT_FALSE(r->temp_c.has_value());  // no thermal class: unknown, not an error
}

TEST(SysfsSensor, MalformedFilesAreSkippedWithAWarning) {
  FakeSysfs t;
  t.write("class/thermal/thermal_zone0/temp", "hot\n");
  t.write("class/thermal/thermal_zone1/temp", "30000\n");
  t.write("class/power_supply/BAT0/type", "Battery\n");
  t.write("class/power_supply/BAT0/capacity", "250\n");
  auto r = SysfsSensor(t.root()).read();
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->temp_c, 30);
  EXPECT_FALSE(r->battery_pct.has_value());
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_NE(r->warnings[0].find("thermal_zone0/temp"), std::string::npos) << r->warnings[0];
  EXPECT_NE(r->warnings[0].find("'hot'"), std::string::npos);
}

TEST(SysfsSensor, MissingRootIsNotFound) {
  auto r = SysfsSensor("/nonexistent/sysfs").read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/sysfs"), std::string::npos);
}

TEST(PushedSensor, ReturnsWhatWasPushed) {
  PushedSensor s;
  auto r = s.read();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->temp_c.has_value());
  s.set_temperature(38.5);
  s.set_battery(12);
  s.set_plugged(true);
  r = s.read();
  EXPECT_DOUBLE_EQ(*r->temp_c, 38.5);
  EXPECT_DOUBLE_EQ(*r->battery_pct, 12);
  EXPECT_TRUE(*r->plugged);
  EXPECT_EQ(r->source, "push");
}

}  // namespace
}  // namespace edgelm::governor
