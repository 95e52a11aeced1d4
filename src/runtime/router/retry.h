// Retries with jittered exponential backoff ("full jitter": a uniform delay in
// [0, min(max_ms, base_ms * 2^retry)]) and a circuit breaker (closed -> open after
// failure_threshold consecutive failures -> half-open after open_ms, where one trial request is
// let through -> closed on success, open again on failure). The clock is injectable for tests.
//
//   Backoff backoff({.max_retries = 2, .base_ms = 100, .max_ms = 2000});
//   CircuitBreaker breaker({.failure_threshold = 3, .open_ms = 5000});
//   for (int retry = 0;; ++retry) {
//     if (!breaker.allow()) break;                    // open: do not even try
//     if (try_once()) { breaker.record_success(); break; }
//     breaker.record_failure();
//     if (retry == backoff.options().max_retries) break;
//     sleep_ms(backoff.delay_ms(retry));
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <random>

namespace edgelm::router {

struct BackoffOptions {
  int max_retries = 2;   // tries after the first
  double base_ms = 100;  // cap of the first delay
  double max_ms = 2000;  // cap of any delay
  uint64_t seed = 0;     // 0: from std::random_device
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {});
  // Delay before retry number `retry` (0 = the first retry): uniform in [0, cap(retry)].
  double delay_ms(int retry);
  // min(max_ms, base_ms * 2^retry).
  double cap_ms(int retry) const;
  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* breaker_state_name(BreakerState s);  // "closed", "open", "half-open"

struct BreakerOptions {
  int failure_threshold = 3;  // consecutive failures that open the breaker
  double open_ms = 5000;      // how long it stays open before a trial request
};

class CircuitBreaker {
 public:
  using ClockMs = std::function<double()>;  // monotonic milliseconds
  explicit CircuitBreaker(BreakerOptions options = {}, ClockMs clock = {});

  // Whether a request may go now. Closed: yes. Open: no until open_ms have passed, then the
  // breaker turns half-open and lets exactly one trial through (further calls say no until the
  // trial's result is recorded).
  bool allow();
  void record_success();
  void record_failure();
  // The state as allow() would see it (open whose time has passed reads as half-open).
  BreakerState state() const;
  // Whether allow() would say yes now (no side effects).
  bool would_allow() const;
  int consecutive_failures() const;

 private:
  double now() const;
  BreakerOptions options_;
  ClockMs clock_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  int failures_ = 0;
  double opened_at_ = 0;
  bool trial_in_flight_ = false;
};

}  // namespace edgelm::router
