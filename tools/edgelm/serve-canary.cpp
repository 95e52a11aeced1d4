// Idle-time canary runs for `edgelm serve` (see serve-canary.h).
#include "serve-canary.h"

#include <fmt/format.h>

#include <chrono>

namespace edgelm::cli {

StatusOr<std::unique_ptr<ServeCanary>> ServeCanary::start(const ServeCanaryOptions& options,
                                                          const Engine& engine,
                                                          std::function<bool()> idle) {
  if (!(options.every_s > 0)) {
    return Status::invalid_argument(
        fmt::format("--canary-every must be > 0 seconds, got {}", options.every_s));
  }
  if (options.db.empty()) {
    return Status::invalid_argument("--canary needs --monitor DB (canary rows are stored there)");
  }
  auto baseline = monitor::load_baseline(options.baseline);
  if (!baseline.ok()) return baseline.status().with_context("--canary");
  if (baseline->canary.empty()) {
    return Status::invalid_argument(fmt::format(
        "--canary {}: the baseline has no canary prompts (make it with `edgelm monitor baseline "
        "-m MODEL --canary FILE`; a --from-db baseline has features only)",
        options.baseline));
  }
  auto mon = monitor::Monitor::open(options.db);
  if (!mon.ok()) return mon.status().with_context("--canary");
  std::unique_ptr<ServeCanary> c(new ServeCanary(engine, std::move(idle), options.every_s));
  c->monitor_ = std::move(*mon);
  c->monitor_->set_baseline(std::move(*baseline));
  c->monitor_->on_alert([](const monitor::Alert& a) {
    fmt::print(stderr, "edgelm: canary ALARM {}: {}\n", a.kind, a.message);
  });
  c->thread_ = std::thread([p = c.get()] { p->loop(); });
  return c;
}

ServeCanary::~ServeCanary() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServeCanary::loop() {
  const auto period = std::chrono::duration<double>(every_s_);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, period, [&] { return stop_.load(); })) return;
    }
    auto may_run = [&] { return !stop_.load() && idle_(); };
    auto rep = monitor_->maybe_run_canary(engine_, may_run, &stop_);
    if (!rep.ok()) {
      fmt::print(stderr, "edgelm: canary run failed: {}\n", rep.status().to_string());
      continue;
    }
    if (!rep->has_value()) continue;  // busy: try at the next period
    const monitor::CanaryReport& r = **rep;
    ++runs_;
    if (r.alarm) ++alarms_;
    fmt::print(stderr,
               "edgelm: canary: perplexity ratio {:.3f}, greedy agreement {:.3f}, token overlap "
               "{:.3f}: {}\n",
               r.perplexity_ratio, r.agreement, r.overlap, r.alarm ? "ALARM" : "no alarm");
  }
}

}  // namespace edgelm::cli
