// Plugs a Governor into the engine's per-token hook (engine/session.h
// GenerateParams::before_token, a std::function<bool(int n_generated)>) without linking the
// engine: this header only builds the std::function.
//
// The hook is called before the prompt is evaluated (n_generated = 0: before_request checks)
// and before every decode step. It measures the decode time between calls (its own sleeps
// excluded) for throttle detection, sleeps while the governor defers (token budget pacing,
// throttle pauses), and returns false when the governor refuses: generation then stops with
// stop reason "governor"; `outcome->last` holds the refusal and its reason.
//
//   auto outcome = std::make_shared<governor::HookOutcome>();
//   GenerateParams gp;
//   gp.before_token = governor::make_before_token_hook(gov, outcome);
//   auto r = session.generate(prompt, gp);
//   if (r->stop_reason == StopReason::kGovernor) log(outcome->last.reason);
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "runtime/governor/governor.h"

namespace edgelm::governor {

struct HookOutcome {
  Decision last;         // the last decision (a refusal when the hook stopped generation)
  int64_t slept_ms = 0;  // total pacing / pause time
  int deferrals = 0;     // defer decisions obeyed
  int calls = 0;
};

struct HookClock {
  // Seconds on a monotonic clock; default steady_clock.
  std::function<double()> now;
  // Sleeps; default std::this_thread::sleep_for.
  std::function<void(int64_t ms)> sleep;
};

inline std::function<bool(int)> make_before_token_hook(std::shared_ptr<Governor> gov,
                                                       std::shared_ptr<HookOutcome> outcome = {},
                                                       HookClock clock = {}) {
  if (!outcome) outcome = std::make_shared<HookOutcome>();
  if (!clock.now) {
    clock.now = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
  if (!clock.sleep) {
    clock.sleep = [](int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  }
  auto last_return = std::make_shared<double>(-1);
  return [gov = std::move(gov), outcome, clock, last_return](int n_generated) -> bool {
    ++outcome->calls;
    double now = clock.now();
    if (n_generated == 0) {
      gov->end_generation();
      Decision d = gov->before_request(now);
      if (d.action == Action::kRefuse) {
        outcome->last = d;
        return false;
      }
    } else if (*last_return >= 0) {
      gov->observe_token_interval(now - *last_return, now);
    }
    for (;;) {
      Decision d = gov->before_token(n_generated, now);
      outcome->last = d;
      if (d.action == Action::kAllow) break;
      if (d.action == Action::kRefuse) {
        gov->end_generation();
        return false;
      }
      const int64_t ms = std::max<int64_t>(1, d.delay_ms);
      clock.sleep(ms);
      outcome->slept_ms += ms;
      ++outcome->deferrals;
      now = clock.now();
    }
    *last_return = clock.now();
    return true;
  };
}

}  // namespace edgelm::governor
