// The governor: decides whether the device may run the model now, from its sensors and a
// policy. The engine consults it before a request (before_request) and before every decode
// step (before_token, through the hook of engine-hook.h); each answer is a Decision
// {allow / defer (wait delay_ms, then ask again) / refuse (stop, route elsewhere), reason}.
// Changes of decision are logged with their reason (base/log.h, info level; pacing at debug).
//
// Time is passed in (seconds on any monotonic clock), so the same code runs on the wall
// clock in the engine and on simulated time in simulate.h. Thread-safe.
//
//   auto policy = governor::load_policy("policy.json");
//   governor::Governor g(*policy, std::make_shared<governor::SysfsSensor>("/sys"));
//   governor::Decision d = g.before_request(now_s());
//   if (d.action == governor::Action::kRefuse) route_to_cloud(d.reason);
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"

namespace edgelm::governor {

enum class Action { kAllow = 0, kDefer = 1, kRefuse = 2 };
const char* action_name(Action a);  // "allow", "defer", "refuse"

struct Decision {
  Action action = Action::kAllow;
  int64_t delay_ms = 0;  // kDefer: wait this long, then ask again
  std::string reason;    // human-readable, names the values ("temperature 46.2 C >= max 45 C")
  // Short machine-readable cause: "ok", "unplugged", "battery", "max_temp", "cooldown",
  // "budget", "throttle", "no_sensor" (a needed value is unknown or the sensor failed).
  std::string code = "ok";

  bool allowed() const { return action == Action::kAllow; }
};

// What the governor knows now (for `edgelm governor status`, the simulator and tests).
struct GovernorState {
  SensorReadings readings;
  bool have_readings = false;
  bool cooling = false;
  double cooldown_since_s = 0;
  double bucket_tokens = 0;  // token budget level (0 without a budget)
  double window_tps = 0;     // decode speed over the last `window` intervals (0 = not full)
  double best_tps = 0;       // recent best window speed
  bool throttled = false;
  Decision last;
};

// The sensor a policy names (policy.sensors, else `fallback`): a SysfsSensor over
// policy.sysfs_root and policy.thermal_types, a PushedSensor, or a NullSensor.
std::shared_ptr<Sensor> make_sensor(const GovernorPolicy& policy, SensorSource fallback);

class Governor {
 public:
  Governor(GovernorPolicy policy, std::shared_ptr<Sensor> sensor);

  // Before a request starts (no budget consumed): refuse when unplugged / battery low / too
  // hot / cooling down, defer while the token bucket holds less than one token.
  Decision before_request(double now_s);
  // Before decode step n_generated (tokens produced so far in this generation). Same checks,
  // and consumes one token from the budget when it allows.
  Decision before_token(int n_generated, double now_s);
  // The engine's own decode speed: one token took interval_s of compute (pacing excluded).
  void observe_token_interval(double interval_s, double now_s);
  // A generation ended or is about to start. The throttle window persists across generations
  // (speed is a property of the device); callers report only decode intervals, never idle gaps.
  void end_generation();

  GovernorState state() const;
  const GovernorPolicy& policy() const { return policy_; }
  // Forces the next decision to read the sensor, whatever sensor_interval_ms says.
  void invalidate_readings();

 private:
  Decision decide_locked(double now_s, bool consume);
  void refresh_locked(double now_s);
  void refill_locked(double now_s);
  Decision finish_locked(Decision d);

  GovernorPolicy policy_;
  std::shared_ptr<Sensor> sensor_;
  mutable std::mutex mu_;
  SensorReadings readings_;
  bool have_readings_ = false;
  bool sensor_failed_ = false;
  std::string sensor_error_;
  double last_read_s_ = 0;
  bool cooling_ = false;
  double cooldown_since_s_ = 0;
  double bucket_ = 0;
  double bucket_time_s_ = 0;
  bool bucket_init_ = false;
  // Throttle detection: last `window` intervals, and a monotonic deque of (time, speed) for
  // the maximum over the horizon.
  std::deque<double> intervals_;
  double interval_sum_ = 0;
  std::deque<std::pair<double, double>> best_;
  double window_tps_ = 0;
  bool throttled_ = false;
  double throttle_until_s_ = 0;  // kRefuse: new requests refused until then
  Decision last_;
  std::string last_logged_;
};

}  // namespace edgelm::governor
