// `edgelm serve --monitor DB --canary BASELINE [--canary-every SECONDS]`: while the server is
// idle, re-runs the baseline's canary set on the served model every so often, stores its
// generations in the monitor store (source "canary") and prints the comparison (perplexity
// ratio, greedy agreement, token overlap, feature drift) and any alarm on stderr. A request
// arriving during a run stops it (may_run_now is asked before each canary generation).
//
//   auto canary = ServeCanary::start({.baseline = "b.json", .db = "m.db", .every_s = 600},
//                                    backend.engine(), [&] { return backend.active() == 0; });
//   ...  canary.reset();   // stops the thread (cancels a run in progress)
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "runtime/monitor/monitor.h"

namespace edgelm::cli {

struct ServeCanaryOptions {
  std::string baseline;  // baseline JSON with canary prompts (or a release manifest)
  std::string db;        // the --monitor store
  double every_s = 600;  // seconds between runs
};

class ServeCanary {
 public:
  // Loads the baseline (it must carry canary prompts) and opens the store; errors name the file.
  static StatusOr<std::unique_ptr<ServeCanary>> start(const ServeCanaryOptions& options,
                                                      const Engine& engine,
                                                      std::function<bool()> idle);
  ~ServeCanary();
  int runs() const { return runs_.load(); }
  int alarms() const { return alarms_.load(); }

 private:
  ServeCanary(const Engine& engine, std::function<bool()> idle, double every_s)
      : engine_(engine), idle_(std::move(idle)), every_s_(every_s) {}
  void loop();

  const Engine& engine_;
  std::function<bool()> idle_;
  double every_s_;
  std::unique_ptr<monitor::Monitor> monitor_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<int> runs_{0};
  std::atomic<int> alarms_{0};
  std::thread thread_;
};

}  // namespace edgelm::cli
