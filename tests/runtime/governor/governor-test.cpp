// Governor decisions from pushed sensor values on explicit time: plugged-in-only, battery
// floor, maximum temperature with cool-down (hysteresis and minimum time), the token bucket,
// throttle detection from observed token intervals, unknown sensors, the sensor interval.
#include "runtime/governor/governor.h"

#include <gtest/gtest.h>

namespace edgelm::governor {
namespace {

GovernorPolicy policy_from(const std::string& json) {
  auto p = parse_policy(json);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? *p : GovernorPolicy{};
}

struct G {
  std::shared_ptr<PushedSensor> sensor = std::make_shared<PushedSensor>();
  std::unique_ptr<Governor> gov;
  explicit G(const std::string& json) {
    GovernorPolicy p = policy_from(json);
    p.sensor_interval_ms = 0;  // read on every decision unless a test says otherwise
    gov = std::make_unique<Governor>(p, sensor);
  }
};

TEST(Governor, NonePolicyAllowsWithoutSensors) {
  Governor g(GovernorPolicy{}, nullptr);
  Decision d = g.before_request(0);
  EXPECT_EQ(d.action, Action::kAllow);
  EXPECT_EQ(g.before_token(5, 1).action, Action::kAllow);
}

TEST(Governor, PluggedInOnly) {
  G g(R"({"require_plugged": true})");
  Decision d = g.gov->before_request(0);
  EXPECT_EQ(d.action, Action::kRefuse);  // unknown power state, fail closed
  EXPECT_EQ(d.code, "no_sensor");
  g.sensor->set_plugged(true);
  EXPECT_EQ(g.gov->before_request(1).action, Action::kAllow);
  g.sensor->set_plugged(false);
  d = g.gov->before_token(3, 2);
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.code, "unplugged");
  EXPECT_NE(d.reason.find("plugged in"), std::string::npos) << d.reason;
  EXPECT_EQ(g.gov->state().last.code, "unplugged");
}

TEST(Governor, UnknownSensorCanBeAllowed) {
  G g(R"({"require_plugged": true, "max_temp_c": 50, "unknown_sensor": "allow"})");
  EXPECT_EQ(g.gov->before_request(0).action, Action::kAllow);
}

TEST(Governor, BatteryFloorAppliesOnlyOnBattery) {
  G g(R"({"battery_floor_pct": 20})");
  g.sensor->set_plugged(false);
  g.sensor->set_battery(35);
  EXPECT_EQ(g.gov->before_request(0).action, Action::kAllow);
  g.sensor->set_battery(19);
  Decision d = g.gov->before_request(1);
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.code, "battery");
  EXPECT_NE(d.reason.find("19%"), std::string::npos) << d.reason;
  g.sensor->set_plugged(true);
  EXPECT_EQ(g.gov->before_request(2).action, Action::kAllow);
}

TEST(Governor, MaxTemperatureStartsACoolDown) {
  G g(R"({"max_temp_c": 45, "resume_temp_c": 40, "min_cooldown_s": 60})");
  g.sensor->set_temperature(44.9);
  EXPECT_EQ(g.gov->before_request(0).action, Action::kAllow);
  g.sensor->set_temperature(45.0);
  Decision d = g.gov->before_token(10, 10);
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.code, "max_temp");
  EXPECT_TRUE(g.gov->state().cooling);
  // Below max but above the resume temperature: still cooling (hysteresis).
  g.sensor->set_temperature(42);
  d = g.gov->before_request(20);
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.code, "cooldown");
  // Cool enough but the minimum time has not passed (started at t=10).
  g.sensor->set_temperature(38);
  EXPECT_EQ(g.gov->before_request(69).code, "cooldown");
  // Both conditions hold.
  d = g.gov->before_request(70);
  EXPECT_EQ(d.action, Action::kAllow) << d.reason;
  EXPECT_FALSE(g.gov->state().cooling);
}

TEST(Governor, TokenBucketPacesAtTheSustainedRate) {
  G g(R"({"token_budget": {"tokens_per_s": 10, "burst": 3}})");
  double t = 0;
  // The burst passes at once.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.gov->before_token(i, t).action, Action::kAllow);
  Decision d = g.gov->before_token(3, t);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.code, "budget");
  EXPECT_EQ(d.delay_ms, 100);
  // before_request does not consume: a request waits for one token too.
  EXPECT_EQ(g.gov->before_request(t).action, Action::kDefer);
  // Following the delays, 50 tokens take 5 s.
  int allowed = 0;
  while (allowed < 50) {
    d = g.gov->before_token(allowed, t);
    if (d.action == Action::kAllow) {
      ++allowed;
    } else {
      ASSERT_EQ(d.action, Action::kDefer);
      t += static_cast<double>(d.delay_ms) / 1000.0;
    }
  }
  EXPECT_NEAR(t, 5.0, 0.11);
}

TEST(Governor, ThrottleDetectionFromDecodeSpeed) {
  G g(R"({"throttle": {"window": 4, "fraction": 0.7, "horizon_s": 100, "action": "log"}})");
  double t = 0;
  auto feed = [&](double interval, int n) {
    for (int i = 0; i < n; ++i) {
      t += interval;
      g.gov->observe_token_interval(interval, t);
    }
  };
  feed(0.05, 8);  // 20 t/s
  EXPECT_FALSE(g.gov->state().throttled);
  EXPECT_NEAR(g.gov->state().best_tps, 20, 1e-6);
  feed(0.0625, 8);  // 16 t/s = 0.8 x best: not throttled
  EXPECT_FALSE(g.gov->state().throttled);
  feed(0.1, 8);  // 10 t/s = 0.5 x best
  EXPECT_TRUE(g.gov->state().throttled);
  Decision d = g.gov->before_token(1, t);
  EXPECT_EQ(d.action, Action::kAllow);  // "log" only reports it
  EXPECT_EQ(d.code, "throttle");
  EXPECT_NE(d.reason.find("throttling"), std::string::npos) << d.reason;
  // The best ages out of the horizon: 10 t/s becomes the norm.
  feed(0.1, 1100);
  EXPECT_FALSE(g.gov->state().throttled);
  EXPECT_NEAR(g.gov->state().best_tps, 10, 1e-6);
}

TEST(Governor, ThrottleRefuseStopsAndPausesNewRequests) {
  G g(R"({"throttle": {"window": 4, "fraction": 0.7, "action": "refuse", "pause_ms": 5000}})");
  double t = 0;
  for (int i = 0; i < 8; ++i) g.gov->observe_token_interval(0.05, t += 0.05);
  for (int i = 0; i < 4; ++i) g.gov->observe_token_interval(0.2, t += 0.2);
  Decision d = g.gov->before_token(12, t);
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.code, "throttle");
  EXPECT_EQ(g.gov->before_request(t + 1).action, Action::kRefuse);  // paused
  EXPECT_EQ(g.gov->before_request(t + 5.1).action, Action::kAllow);
}

TEST(Governor, ThrottleDeferPauses) {
  G g(R"({"throttle": {"window": 4, "fraction": 0.7, "action": "defer", "pause_ms": 1500}})");
  double t = 0;
  for (int i = 0; i < 8; ++i) g.gov->observe_token_interval(0.05, t += 0.05);
  for (int i = 0; i < 4; ++i) g.gov->observe_token_interval(0.2, t += 0.2);
  Decision d = g.gov->before_token(12, t);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.delay_ms, 1500);
  // Measured afresh after the pause.
  EXPECT_EQ(g.gov->before_token(12, t + 1.5).action, Action::kAllow);
}

TEST(Governor, SensorIsReadAtMostEverySensorInterval) {
  auto sensor = std::make_shared<PushedSensor>();
  GovernorPolicy p = policy_from(R"({"require_plugged": true, "sensor_interval_ms": 1000})");
  Governor g(p, sensor);
  sensor->set_plugged(true);
  EXPECT_EQ(g.before_request(0).action, Action::kAllow);
  sensor->set_plugged(false);
  EXPECT_EQ(g.before_token(1, 0.5).action, Action::kAllow);  // cached reading
  EXPECT_EQ(g.before_token(2, 1.0).action, Action::kRefuse);
  sensor->set_plugged(true);
  g.invalidate_readings();
  EXPECT_EQ(g.before_token(3, 1.1).action, Action::kAllow);
}

}  // namespace
}  // namespace edgelm::governor
