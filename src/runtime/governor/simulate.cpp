// Simulated device, workload and report rendering (see simulate.h).
#include "runtime/governor/simulate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace edgelm::governor {

using nlohmann::json;

namespace {

Status check_keys(const json& obj, std::string_view origin, std::string_view where,
                  const std::set<std::string>& allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!allowed.count(it.key())) {
      return Status::invalid_argument(
          fmt::format("{}: unknown key \"{}{}\"", origin, where, it.key()));
    }
  }
  return Status::ok_status();
}

// Reads obj[key] into *out when present; checks range.
Status read_number(const json& obj, const char* key, std::string_view origin,
                   std::string_view where, double lo, double hi, double* out) {
  if (!obj.contains(key)) return Status::ok_status();
  const json& v = obj.at(key);
  if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi)) {
    return Status::invalid_argument(
        fmt::format("{}: \"{}{}\": expected a number in [{}, {}], "
                    "found {}",
                    origin, where, key, lo, hi, v.dump()));
  }
  *out = v.get<double>();
  return Status::ok_status();
}

}  // namespace

StatusOr<SimulationConfig> parse_simulation(std::string_view json_text, std::string_view origin) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(fmt::format("{}: not valid JSON", origin));
  SimulationConfig c;
  if (!j.is_object() || !j.contains("simulation")) return c;
  const json& s = j["simulation"];
  if (!s.is_object()) {
    return Status::invalid_argument(fmt::format("{}: \"simulation\": expected an object", origin));
  }
  RETURN_IF_ERROR(
      check_keys(s, origin, "simulation.",
                 {"device", "workload", "plugged_at_start", "plug_schedule", "sample_s"}));
  RETURN_IF_ERROR(read_number(s, "sample_s", origin, "simulation.", 0.1, 3600, &c.sample_s));
  if (s.contains("plugged_at_start")) {
    if (!s["plugged_at_start"].is_boolean()) {
      return Status::invalid_argument(
          fmt::format("{}: \"simulation.plugged_at_start\": expected true/false", origin));
    }
    c.initially_plugged = s["plugged_at_start"].get<bool>();
  }
  if (s.contains("device")) {
    const json& d = s["device"];
    if (!d.is_object()) {
      return Status::invalid_argument(
          fmt::format("{}: \"simulation.device\": expected an object", origin));
    }
    RETURN_IF_ERROR(check_keys(d, origin, "simulation.device.",
                               {"ambient_c", "initial_temp_c", "tau_s", "heat_per_token_c",
                                "base_tps", "throttle_temp_c", "throttle_slope", "min_freq",
                                "initial_battery_pct", "drain_pct_per_token", "charge_pct_per_s"}));
    DeviceModel& m = c.device;
    const std::string_view w = "simulation.device.";
    RETURN_IF_ERROR(read_number(d, "ambient_c", origin, w, -50, 100, &m.ambient_c));
    RETURN_IF_ERROR(read_number(d, "initial_temp_c", origin, w, -50, 150, &m.initial_temp_c));
    RETURN_IF_ERROR(read_number(d, "tau_s", origin, w, 0.1, 1e6, &m.tau_s));
    RETURN_IF_ERROR(read_number(d, "heat_per_token_c", origin, w, 0, 10, &m.heat_per_token_c));
    RETURN_IF_ERROR(read_number(d, "base_tps", origin, w, 0.01, 1e5, &m.base_tps));
    RETURN_IF_ERROR(read_number(d, "throttle_temp_c", origin, w, -50, 200, &m.throttle_temp_c));
    RETURN_IF_ERROR(read_number(d, "throttle_slope", origin, w, 0, 10, &m.throttle_slope));
    RETURN_IF_ERROR(read_number(d, "min_freq", origin, w, 0.01, 1, &m.min_freq));
    RETURN_IF_ERROR(
        read_number(d, "initial_battery_pct", origin, w, 0, 100, &m.initial_battery_pct));
    RETURN_IF_ERROR(
        read_number(d, "drain_pct_per_token", origin, w, 0, 100, &m.drain_pct_per_token));
    RETURN_IF_ERROR(read_number(d, "charge_pct_per_s", origin, w, 0, 100, &m.charge_pct_per_s));
  }
  if (s.contains("workload")) {
    const json& wl = s["workload"];
    if (!wl.is_object()) {
      return Status::invalid_argument(
          fmt::format("{}: \"simulation.workload\": expected an object", origin));
    }
    RETURN_IF_ERROR(check_keys(wl, origin, "simulation.workload.",
                               {"requests_per_min", "tokens_per_request", "max_wait_s"}));
    const std::string_view w = "simulation.workload.";
    RETURN_IF_ERROR(
        read_number(wl, "requests_per_min", origin, w, 0.01, 1e4, &c.workload.requests_per_min));
    double tokens = c.workload.tokens_per_request;
    RETURN_IF_ERROR(read_number(wl, "tokens_per_request", origin, w, 1, 1e6, &tokens));
    c.workload.tokens_per_request = static_cast<int>(tokens);
    RETURN_IF_ERROR(read_number(wl, "max_wait_s", origin, w, 0, 1e6, &c.workload.max_wait_s));
  }
  if (s.contains("plug_schedule")) {
    const json& ps = s["plug_schedule"];
    if (!ps.is_array()) {
      return Status::invalid_argument(
          fmt::format("{}: \"simulation.plug_schedule\": expected an array", origin));
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      const json& e = ps[i];
      const std::string where = fmt::format("simulation.plug_schedule[{}].", i);
      if (!e.is_object()) {
        return Status::invalid_argument(
            fmt::format("{}: \"{}\": expected {{\"at_min\": M, \"plugged\": B}}", origin, where));
      }
      RETURN_IF_ERROR(check_keys(e, origin, where, {"at_min", "plugged"}));
      if (!e.contains("at_min") || !e.contains("plugged") || !e["plugged"].is_boolean()) {
        return Status::invalid_argument(fmt::format(
            "{}: \"{}\": needs \"at_min\" (number) and \"plugged\" (true/false)", origin, where));
      }
      double at_min = 0;
      RETURN_IF_ERROR(read_number(e, "at_min", origin, where, 0, 1e6, &at_min));
      c.plug_schedule.push_back({at_min * 60.0, e["plugged"].get<bool>()});
    }
    std::stable_sort(c.plug_schedule.begin(), c.plug_schedule.end(),
                     [](const PlugChange& a, const PlugChange& b) { return a.at_s < b.at_s; });
  }
  return c;
}

SimulatedDevice::SimulatedDevice(DeviceModel model, std::vector<PlugChange> schedule,
                                 bool initially_plugged)
    : model_(model),
      schedule_(std::move(schedule)),
      initially_plugged_(initially_plugged),
      temp_(model.initial_temp_c),
      battery_(model.initial_battery_pct),
      plugged_(initially_plugged) {}

StatusOr<SensorReadings> SimulatedDevice::read() {
  SensorReadings r;
  r.source = "simulated";
  r.temp_c = temp_;
  r.battery_pct = battery_;
  r.plugged = plugged_;
  return r;
}

double SimulatedDevice::freq() const {
  if (temp_ <= model_.throttle_temp_c) return 1.0;
  return std::max(model_.min_freq, 1.0 - model_.throttle_slope * (temp_ - model_.throttle_temp_c));
}

void SimulatedDevice::advance(double dt, double heat_c, int tokens) {
  temp_ += heat_c;
  temp_ = model_.ambient_c + (temp_ - model_.ambient_c) * std::exp(-dt / model_.tau_s);
  if (plugged_) {
    battery_ = std::min(100.0, battery_ + model_.charge_pct_per_s * dt);
  } else {
    battery_ = std::max(0.0, battery_ - model_.drain_pct_per_token * tokens);
  }
  t_ += dt;
  bool p = initially_plugged_;
  for (const PlugChange& c : schedule_) {
    if (c.at_s <= t_ + 1e-9) p = c.plugged;
  }
  plugged_ = p;
}

void SimulatedDevice::idle(double dt) {
  if (dt > 0) advance(dt, 0, 0);
}

double SimulatedDevice::generate_token() {
  const double f = freq();
  const double dt = 1.0 / (model_.base_tps * f);
  advance(dt, model_.heat_per_token_c * f, 1);
  return dt;
}

SimulationResult simulate(const GovernorPolicy& policy, const SimulationConfig& config,
                          double duration_s) {
  auto dev = std::make_shared<SimulatedDevice>(config.device, config.plug_schedule,
                                               config.initially_plugged);
  Governor gov(policy, dev);
  SimulationResult res;
  const int n_minutes = std::max(1, static_cast<int>(std::ceil(duration_s / 60.0)));
  const int n_samples = std::max(1, static_cast<int>(std::ceil(duration_s / config.sample_s)));
  res.minutes.resize(static_cast<size_t>(n_minutes));
  for (int i = 0; i < n_minutes; ++i) res.minutes[static_cast<size_t>(i)].minute = i + 1;
  res.samples.resize(static_cast<size_t>(n_samples));
  std::vector<double> gen_time(static_cast<size_t>(n_minutes), 0.0);
  std::vector<int> gen_tokens(static_cast<size_t>(n_minutes), 0);
  std::vector<int> sample_tokens(static_cast<size_t>(n_samples), 0);
  res.max_temp_c = dev->temp_c();

  struct Request {
    double arrival = 0;
    bool deferred = false;
  };
  std::deque<Request> queue;
  const double gap = 60.0 / config.workload.requests_per_min;
  double next_arrival = 0;
  bool running = false;
  bool running_deferred = false;
  int n_done = 0;

  while (dev->now_s() < duration_s) {
    const double t0 = dev->now_s();
    const auto mi = static_cast<size_t>(std::min<double>(n_minutes - 1, std::floor(t0 / 60.0)));
    MinuteRow& row = res.minutes[mi];
    while (next_arrival <= t0) {
      queue.push_back({next_arrival, false});
      ++res.requests;
      next_arrival += gap;
    }
    while (!queue.empty() && t0 - queue.front().arrival > config.workload.max_wait_s) {
      queue.pop_front();
      ++row.refused;
      ++res.refused;
    }
    int tokens_now = 0;
    if (!running) {
      if (queue.empty()) {
        dev->idle(std::clamp(next_arrival - t0, 1e-3, 1.0));
      } else {
        Decision d = gov.before_request(t0);
        if (d.action == Action::kAllow) {
          running = true;
          running_deferred = queue.front().deferred;
          queue.pop_front();
          n_done = 0;
          ++row.served;
          ++res.served;
          if (running_deferred) {
            ++row.deferred;
            ++res.deferred;
          }
        } else if (d.action == Action::kRefuse) {
          queue.pop_front();
          ++row.refused;
          ++res.refused;
          continue;  // decide the next queued request at the same instant
        } else {
          queue.front().deferred = true;
          dev->idle(std::clamp(static_cast<double>(d.delay_ms) / 1000.0, 1e-3, 1.0));
        }
      }
    } else {
      Decision d = gov.before_token(n_done, t0);
      if (d.action == Action::kAllow) {
        TokenEvent ev;
        ev.t_s = t0;
        ev.temp_c = dev->temp_c();
        ev.plugged = dev->plugged();
        ev.battery_pct = dev->battery_pct();
        ev.dt_s = dev->generate_token();
        ev.temp_after_c = dev->temp_c();
        gov.observe_token_interval(ev.dt_s, dev->now_s());
        res.tokens.push_back(ev);
        ++res.total_tokens;
        tokens_now = 1;
        gen_time[mi] += ev.dt_s;
        ++gen_tokens[mi];
        if (++n_done >= config.workload.tokens_per_request) running = false;
      } else if (d.action == Action::kDefer) {
        dev->idle(std::clamp(static_cast<double>(d.delay_ms) / 1000.0, 1e-3, 1.0));
      } else {
        running = false;
        ++row.stopped;
        ++res.stopped;
      }
    }
    // Per-step bookkeeping, attributed to the minute / sample where the step began.
    const double dt = dev->now_s() - t0;
    const GovernorState gs = gov.state();
    row.temp_end_c = dev->temp_c();
    row.temp_max_c = std::max(row.temp_max_c, dev->temp_c());
    row.plugged_end = dev->plugged();
    row.battery_end_pct = dev->battery_pct();
    if (gs.cooling) row.cooldown_s += dt;
    if (gs.throttled) row.throttled_s += dt;
    res.max_temp_c = std::max(res.max_temp_c, dev->temp_c());
    const auto si =
        static_cast<size_t>(std::min<double>(n_samples - 1, std::floor(t0 / config.sample_s)));
    TraceSample& s = res.samples[si];
    s.t_s = static_cast<double>(si + 1) * config.sample_s;
    s.temp_c = dev->temp_c();
    s.tps = dev->tps();
    sample_tokens[si] += tokens_now;
    s.plugged = dev->plugged();
    s.battery_pct = dev->battery_pct();
    s.cooling = s.cooling || gs.cooling;
    s.cumulative_device = res.served;
    s.cumulative_deferred = res.deferred;
    s.cumulative_cloud = res.refused + res.stopped;
    s.cumulative_tokens = res.total_tokens;
  }
  for (size_t i = 0; i < res.minutes.size(); ++i) {
    res.minutes[i].tokens_per_s = gen_tokens[i] / 60.0;
    res.minutes[i].decode_tps = gen_time[i] > 0 ? gen_tokens[i] / gen_time[i] : 0;
  }
  for (size_t i = 0; i < res.samples.size(); ++i) {
    res.samples[i].tokens_per_s = sample_tokens[i] / config.sample_s;
  }
  return res;
}

std::string samples_csv(const SimulationResult& r) {
  std::string out =
      "time_min,temp_c,decode_tps,tokens_per_s,plugged,battery_pct,cooling,device_requests,"
      "deferred_requests,cloud_requests,device_tokens\n";
  for (const TraceSample& s : r.samples) {
    out += fmt::format("{:.3f},{:.2f},{:.2f},{:.2f},{},{:.1f},{},{},{},{},{}\n", s.t_s / 60.0,
                       s.temp_c, s.tps, s.tokens_per_s, s.plugged ? 1 : 0, s.battery_pct,
                       s.cooling ? 1 : 0, s.cumulative_device, s.cumulative_deferred,
                       s.cumulative_cloud, s.cumulative_tokens);
  }
  return out;
}

std::string minutes_table(const SimulationResult& r) {
  std::string out =
      "| min | temp C (end / max) | tok/s | decode t/s | on device | deferred | refused | "
      "stopped | plugged | battery % | cool-down s |\n"
      "|----:|-------------------:|------:|-----------:|----------:|---------:|--------:|"
      "--------:|:-------:|----------:|------------:|\n";
  for (const MinuteRow& m : r.minutes) {
    out += fmt::format(
        "| {} | {:.1f} / {:.1f} | {:.1f} | {:.1f} | {} | {} | {} | {} | {} | {:.0f} "
        "| {:.0f} |\n",
        m.minute, m.temp_end_c, m.temp_max_c, m.tokens_per_s, m.decode_tps, m.served, m.deferred,
        m.refused, m.stopped, m.plugged_end ? "yes" : "no", m.battery_end_pct, m.cooldown_s);
  }
  out += fmt::format(
      "\nrequests {}: on device {} (deferred first {}), refused {}, stopped mid-answer {}; "
      "device tokens {}; max temperature {:.2f} C\n",
      r.requests, r.served, r.deferred, r.refused, r.stopped, r.total_tokens, r.max_temp_c);
  return out;
}

}  // namespace edgelm::governor
