// A simulated device and a synthetic workload, for tests and what-if runs
// (`edgelm governor simulate`). The thermal model (docs/governor.md):
//   - heat: each generated token adds heat_per_token_c x freq degrees (energy per token falls
//     with the clock, as with DVFS);
//   - cooling: Newton's law toward ambient, T <- T_a + (T - T_a) exp(-dt / tau_s), exact over
//     any step;
//   - throttling: above throttle_temp_c the clock drops, freq = max(min_freq,
//     1 - throttle_slope x (T - throttle_temp_c)), and decode speed = base_tps x freq;
//   - battery: drains drain_pct_per_token per token on battery, charges charge_pct_per_s
//     while plugged; plugged follows a schedule (e.g. charger pulled at minute 10).
// The workload: requests arrive every 60 / requests_per_min seconds, each wanting
// tokens_per_request tokens; one runs at a time (FIFO). A request the governor refuses goes to
// the cloud; one it defers waits (at most max_wait_s, then the cloud); one refused while
// running stops there (its remaining tokens go to the cloud too).
//
//   auto cfg = governor::parse_simulation(json_text, "policy.json");   // "simulation" key
//   auto run = governor::simulate(policy, *cfg, 30 * 60);
//   for (const auto& m : run.minutes) fmt::print("{} {:.1f}\n", m.minute, m.temp_end_c);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/governor/governor.h"
#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"

namespace edgelm::governor {

struct DeviceModel {
  double ambient_c = 25;
  double initial_temp_c = 30;
  double tau_s = 150;              // cooling time constant (Newton's law)
  double heat_per_token_c = 0.03;  // degrees per token at full clock
  double base_tps = 20;            // decode speed at full clock
  double throttle_temp_c = 50;     // the clock drops above this
  double throttle_slope = 0.05;    // clock fraction lost per degree above it
  double min_freq = 0.35;          // lowest clock fraction
  double initial_battery_pct = 80;
  double drain_pct_per_token = 0.002;
  double charge_pct_per_s = 0.01;
};

struct PlugChange {
  double at_s = 0;
  bool plugged = true;
};

struct Workload {
  double requests_per_min = 4;
  int tokens_per_request = 200;
  double max_wait_s = 60;
};

struct SimulationConfig {
  DeviceModel device;
  Workload workload;
  std::vector<PlugChange> plug_schedule;  // sorted by time; plugged before the first change
  bool initially_plugged = true;
  double sample_s = 10;  // CSV / trace sample period
};

// The "simulation" object of a policy file (absent = defaults). INVALID_ARGUMENT naming the
// key for unknown keys, wrong types and out-of-range values.
StatusOr<SimulationConfig> parse_simulation(std::string_view json_text,
                                            std::string_view origin = "<policy>");

// The device: advances in time, generates tokens, and is the governor's Sensor.
class SimulatedDevice : public Sensor {
 public:
  SimulatedDevice(DeviceModel model, std::vector<PlugChange> schedule, bool initially_plugged);
  StatusOr<SensorReadings> read() override;

  double now_s() const { return t_; }
  double temp_c() const { return temp_; }
  double battery_pct() const { return battery_; }
  bool plugged() const { return plugged_; }
  double freq() const;  // clock fraction now (1 = full)
  double tps() const { return model_.base_tps * freq(); }

  // Idle for dt seconds (cooling, charging).
  void idle(double dt);
  // Generates one token: takes 1 / tps() seconds; returns that time.
  double generate_token();

 private:
  void advance(double dt, double heat_c, int tokens);
  DeviceModel model_;
  std::vector<PlugChange> schedule_;
  bool initially_plugged_;
  double t_ = 0;
  double temp_;
  double battery_;
  bool plugged_;
};

// One minute of the run (requests are counted in the minute they are decided).
struct MinuteRow {
  int minute = 0;  // 1-based
  double temp_end_c = 0;
  double temp_max_c = 0;
  double tokens_per_s = 0;  // tokens generated on the device / 60
  double decode_tps = 0;    // device decode speed while generating (0 = idle all minute)
  int served = 0;           // requests started on the device
  int deferred = 0;         // of those, started after waiting (deferred at least once)
  int refused = 0;          // sent to the cloud at arrival / after waiting too long
  int stopped = 0;          // refused while running (rest of the answer from the cloud)
  bool plugged_end = true;
  double battery_end_pct = 0;
  double cooldown_s = 0;   // seconds of the minute in cool-down
  double throttled_s = 0;  // seconds of the minute flagged as throttled
};

// A sample every sample_s seconds, and the ground truth at every token (for tests).
struct TraceSample {
  double t_s = 0;
  double temp_c = 0;
  double tps = 0;           // device speed at that moment
  double tokens_per_s = 0;  // tokens generated in the last sample period / period
  bool plugged = true;
  double battery_pct = 0;
  bool cooling = false;
  int cumulative_device = 0, cumulative_deferred = 0, cumulative_cloud = 0;
  int cumulative_tokens = 0;  // device tokens so far
};

struct TokenEvent {
  double t_s = 0;           // when the token started
  double dt_s = 0;          // how long it took
  double temp_c = 0;        // device temperature when it started
  double temp_after_c = 0;  // and when it ended
  bool plugged = true;
  double battery_pct = 0;
};

struct SimulationResult {
  std::vector<MinuteRow> minutes;
  std::vector<TraceSample> samples;
  std::vector<TokenEvent> tokens;  // every device token
  int total_tokens = 0;
  int requests = 0, served = 0, deferred = 0, refused = 0, stopped = 0;
  double max_temp_c = 0;
};

// Runs `duration_s` seconds of the workload on the simulated device under `policy`.
SimulationResult simulate(const GovernorPolicy& policy, const SimulationConfig& config,
                          double duration_s);

// CSV of the samples: time_min,temp_c,decode_tps,tokens_per_s,plugged,battery_pct,cooling,
// device_requests,deferred_requests,cloud_requests,device_tokens (cumulative counts).
std::string samples_csv(const SimulationResult& r);
// The per-minute table (markdown).
std::string minutes_table(const SimulationResult& r);

}  // namespace edgelm::governor
