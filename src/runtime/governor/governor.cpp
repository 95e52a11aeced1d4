// Governor decisions (see governor.h).
#include "runtime/governor/governor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/log.h"

namespace edgelm::governor {

const char* action_name(Action a) {
  switch (a) {
    case Action::kAllow:
      return "allow";
    case Action::kDefer:
      return "defer";
    case Action::kRefuse:
      return "refuse";
  }
  return "?";
}

namespace {

Decision refuse(std::string code, std::string reason) {
  Decision d;
  d.action = Action::kRefuse;
  d.code = std::move(code);
  d.reason = std::move(reason);
  return d;
}

Decision defer(std::string code, int64_t delay_ms, std::string reason) {
  Decision d;
  d.action = Action::kDefer;
  d.delay_ms = delay_ms;
  d.code = std::move(code);
  d.reason = std::move(reason);
  return d;
}

}  // namespace

std::shared_ptr<Sensor> make_sensor(const GovernorPolicy& policy, SensorSource fallback) {
  switch (policy.sensors.value_or(fallback)) {
    case SensorSource::kSysfs:
      return std::make_shared<SysfsSensor>(policy.sysfs_root, policy.thermal_types);
    case SensorSource::kPush:
      return std::make_shared<PushedSensor>();
    case SensorSource::kNone:
      break;
  }
  return std::make_shared<NullSensor>();
}

Governor::Governor(GovernorPolicy policy, std::shared_ptr<Sensor> sensor)
    : policy_(std::move(policy)), sensor_(std::move(sensor)) {
  if (!sensor_) sensor_ = std::make_shared<NullSensor>();
}

void Governor::invalidate_readings() {
  std::lock_guard<std::mutex> lock(mu_);
  have_readings_ = false;
}

void Governor::refresh_locked(double now_s) {
  const double interval = static_cast<double>(policy_.sensor_interval_ms) / 1000.0;
  if (have_readings_ && now_s >= last_read_s_ && now_s - last_read_s_ < interval) return;
  auto r = sensor_->read();
  have_readings_ = true;
  last_read_s_ = now_s;
  if (r.ok()) {
    readings_ = std::move(*r);
    sensor_failed_ = false;
    sensor_error_.clear();
  } else {
    readings_ = SensorReadings{};
    sensor_failed_ = true;
    sensor_error_ = r.status().to_string();
  }
}

void Governor::refill_locked(double now_s) {
  if (!policy_.token_budget) return;
  const TokenBudget& b = *policy_.token_budget;
  if (!bucket_init_) {
    bucket_ = b.burst;
    bucket_time_s_ = now_s;
    bucket_init_ = true;
    return;
  }
  if (now_s > bucket_time_s_) {
    bucket_ = std::min(b.burst, bucket_ + (now_s - bucket_time_s_) * b.tokens_per_s);
    bucket_time_s_ = now_s;
  }
}

Decision Governor::decide_locked(double now_s, bool consume) {
  refresh_locked(now_s);
  const SensorReadings& r = readings_;
  const bool refuse_unknown = policy_.unknown_sensor == UnknownSensor::kRefuse;
  const std::string why_unknown =
      sensor_failed_ ? fmt::format(" (sensor error: {})", sensor_error_) : std::string();

  if (policy_.require_plugged) {
    if (!r.plugged) {
      if (refuse_unknown) {
        return refuse("no_sensor",
                      "power state unknown and the policy requires external power" + why_unknown);
      }
    } else if (!*r.plugged) {
      return refuse("unplugged", "on battery: the policy runs the model only while plugged in");
    }
  }
  if (policy_.battery_floor_pct && !r.plugged.value_or(false)) {
    if (!r.battery_pct) {
      if (refuse_unknown) {
        return refuse("no_sensor", fmt::format("battery level unknown (floor {:.0f}%){}",
                                               *policy_.battery_floor_pct, why_unknown));
      }
    } else if (*r.battery_pct < *policy_.battery_floor_pct) {
      return refuse("battery", fmt::format("battery {:.0f}% < floor {:.0f}% on battery power",
                                           *r.battery_pct, *policy_.battery_floor_pct));
    }
  }
  if (policy_.max_temp_c) {
    const double max_c = *policy_.max_temp_c;
    if (!r.temp_c) {
      if (refuse_unknown) {
        return refuse("no_sensor",
                      fmt::format("temperature unknown (max {:.1f} C){}", max_c, why_unknown));
      }
    } else if (*r.temp_c >= max_c) {
      if (!cooling_) {
        cooling_ = true;
        cooldown_since_s_ = now_s;
      }
      return refuse("max_temp",
                    fmt::format("temperature {:.1f} C >= max {:.1f} C; cool-down until "
                                "<= {:.1f} C and at least {:.0f} s",
                                *r.temp_c, max_c, policy_.resume_temp(), policy_.min_cooldown_s));
    } else if (cooling_) {
      const double elapsed = now_s - cooldown_since_s_;
      if (*r.temp_c <= policy_.resume_temp() && elapsed >= policy_.min_cooldown_s) {
        cooling_ = false;
        EDGELM_LOG_INFO("governor: cool-down over after {:.0f} s at {:.1f} C", elapsed, *r.temp_c);
      } else {
        return refuse(
            "cooldown",
            fmt::format("cool-down: {:.1f} C (resume at <= {:.1f} C), {:.0f} s of at "
                        "least {:.0f} s",
                        *r.temp_c, policy_.resume_temp(), elapsed, policy_.min_cooldown_s));
      }
    }
  }
  std::string note;
  if (policy_.throttle) {
    const ThrottleDetect& t = *policy_.throttle;
    const double best = best_.empty() ? 0 : best_.front().second;
    if (throttled_ || now_s < throttle_until_s_) {
      const std::string what =
          throttled_ ? fmt::format(
                           "throttling detected: decode {:.1f} t/s < {:.2f} x recent best "
                           "{:.1f} t/s",
                           window_tps_, t.fraction, best)
                     : fmt::format("throttled recently: pausing until {:.0f} ms from now",
                                   (throttle_until_s_ - now_s) * 1000);
      if (t.action == ThrottleAction::kRefuse) {
        if (throttled_) throttle_until_s_ = now_s + static_cast<double>(t.pause_ms) / 1000.0;
        throttled_ = false;
        intervals_.clear();
        interval_sum_ = 0;
        return refuse("throttle", what);
      }
      if (t.action == ThrottleAction::kDefer && throttled_) {
        throttled_ = false;  // measure afresh after the pause
        intervals_.clear();
        interval_sum_ = 0;
        return defer("throttle", t.pause_ms, what);
      }
      if (throttled_) note = what;
    }
  }
  if (policy_.token_budget) {
    refill_locked(now_s);
    if (bucket_ < 1.0) {
      const double wait_s = (1.0 - bucket_) / policy_.token_budget->tokens_per_s;
      const auto ms = static_cast<int64_t>(std::ceil(wait_s * 1000.0));
      return defer("budget", std::max<int64_t>(1, ms),
                   fmt::format("token budget {:.1f} t/s: bucket empty, next token in {} ms",
                               policy_.token_budget->tokens_per_s, std::max<int64_t>(1, ms)));
    }
    if (consume) bucket_ -= 1.0;
  }
  Decision d;
  d.code = note.empty() ? "ok" : "throttle";
  d.reason = note.empty() ? "within policy" : note;
  return d;
}

Decision Governor::finish_locked(Decision d) {
  const std::string key = fmt::format("{}:{}", action_name(d.action), d.code);
  if (key != last_logged_) {
    if (d.code == "budget") {
      EDGELM_LOG_DEBUG("governor: {} ({})", action_name(d.action), d.reason);
    } else {
      EDGELM_LOG_INFO("governor: {} ({})", action_name(d.action), d.reason);
    }
    last_logged_ = key;
  }
  last_ = d;
  return d;
}

Decision Governor::before_request(double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  return finish_locked(decide_locked(now_s, /*consume=*/false));
}

Decision Governor::before_token(int /*n_generated*/, double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  return finish_locked(decide_locked(now_s, /*consume=*/true));
}

void Governor::observe_token_interval(double interval_s, double now_s) {
  if (!(interval_s > 0)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!policy_.throttle) return;
  const ThrottleDetect& t = *policy_.throttle;
  intervals_.push_back(interval_s);
  interval_sum_ += interval_s;
  while (static_cast<int>(intervals_.size()) > t.window) {
    interval_sum_ -= intervals_.front();
    intervals_.pop_front();
  }
  if (static_cast<int>(intervals_.size()) < t.window) {
    window_tps_ = 0;
    return;
  }
  window_tps_ = interval_sum_ > 0 ? t.window / interval_sum_ : 0;
  // Sliding-window maximum over the horizon (monotonic deque: decreasing speeds).
  while (!best_.empty() && best_.front().first < now_s - t.horizon_s) best_.pop_front();
  while (!best_.empty() && best_.back().second <= window_tps_) best_.pop_back();
  best_.emplace_back(now_s, window_tps_);
  const double best = best_.front().second;
  const bool was = throttled_;
  throttled_ = window_tps_ < t.fraction * best;
  if (throttled_ != was) {
    EDGELM_LOG_INFO("governor: {} (decode {:.1f} t/s, recent best {:.1f} t/s, fraction {:.2f})",
                    throttled_ ? "throttling detected" : "throttling over", window_tps_, best,
                    t.fraction);
  }
}

void Governor::end_generation() {
  std::lock_guard<std::mutex> lock(mu_);
  // The window keeps its intervals (speed is a device property across requests); only the
  // gap between generations is not a token interval, and the hook does not report it.
}

GovernorState Governor::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  GovernorState s;
  s.readings = readings_;
  s.have_readings = have_readings_;
  s.cooling = cooling_;
  s.cooldown_since_s = cooldown_since_s_;
  s.bucket_tokens = bucket_;
  s.window_tps = window_tps_;
  s.best_tps = best_.empty() ? 0 : best_.front().second;
  s.throttled = throttled_;
  s.last = last_;
  return s;
}

}  // namespace edgelm::governor
