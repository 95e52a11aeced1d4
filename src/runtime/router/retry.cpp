// Backoff and circuit breaker (see retry.h).
#include "runtime/router/retry.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace edgelm::router {

Backoff::Backoff(BackoffOptions options) : options_(options) {
  rng_.seed(options_.seed != 0 ? options_.seed : std::random_device{}());
}

double Backoff::cap_ms(int retry) const {
  const double cap = options_.base_ms * std::ldexp(1.0, std::clamp(retry, 0, 60));
  return std::min(options_.max_ms, cap);
}

double Backoff::delay_ms(int retry) {
  const double cap = cap_ms(retry);
  std::lock_guard<std::mutex> lock(mu_);
  std::uniform_real_distribution<double> dist(0.0, cap);
  return dist(rng_);
}

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
    case BreakerState::kClosed:
      break;
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options, ClockMs clock)
    : options_(options), clock_(std::move(clock)) {}

double CircuitBreaker::now() const {
  if (clock_) return clock_();
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool CircuitBreaker::allow() {
  std::lock_guard<std::mutex> lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now() - opened_at_ < options_.open_ms) return false;
      state_ = BreakerState::kHalfOpen;
      trial_in_flight_ = true;
      return true;
    case BreakerState::kHalfOpen:
      if (trial_in_flight_) return false;
      trial_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::record_success() {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = BreakerState::kClosed;
  failures_ = 0;
  trial_in_flight_ = false;
}

void CircuitBreaker::record_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_;
  trial_in_flight_ = false;
  if (state_ == BreakerState::kHalfOpen || failures_ >= options_.failure_threshold) {
    state_ = BreakerState::kOpen;
    opened_at_ = now();
  }
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == BreakerState::kOpen && now() - opened_at_ >= options_.open_ms) {
    return BreakerState::kHalfOpen;
  }
  return state_;
}

bool CircuitBreaker::would_allow() const {
  std::lock_guard<std::mutex> lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      return now() - opened_at_ >= options_.open_ms;
    case BreakerState::kHalfOpen:
      return !trial_in_flight_;
  }
  return false;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace edgelm::router
