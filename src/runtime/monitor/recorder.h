// Records per-request features off the caller's hot path: a small bounded queue drained by one
// writer thread into a FeatureStore (or any sink). submit() never blocks and never fails the
// caller: when the queue is full the row is dropped, and a sink error (disk full, a damaged
// database) is counted and logged (first error, then every 100th), never returned. Used by
// `edgelm serve --monitor` to record every request (docs/monitor.md).
//
//   ASSIGN_OR_RETURN(auto store, FeatureStore::open("monitor.db", StoreOptions{}));
//   auto rec = AsyncRecorder::over_store(std::move(store));
//   rec->submit(features_from_result(result, "model-v3"));   // returns at once
//   rec->flush();                                            // wait until written (tests)
//   RecorderStats s = rec->stats();                          // written, dropped, errors
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "runtime/monitor/features.h"
#include "runtime/monitor/store.h"

namespace edgelm::monitor {

struct RecorderOptions {
  size_t max_queue = 256;  // rows waiting to be written; more are dropped (counted)
};

struct RecorderStats {
  uint64_t submitted = 0;  // submit() calls
  uint64_t written = 0;    // rows the sink accepted
  uint64_t dropped = 0;    // refused because the queue was full
  uint64_t errors = 0;     // rows the sink failed to write
  std::string last_error;  // the newest sink error ("" = none)
};

// Where rows go; an error is counted, the row is lost, the recorder goes on.
using RowSink = std::function<Status(const RequestFeatures&)>;

class AsyncRecorder {
 public:
  // Starts the writer thread. `sink` must be safe to call from that thread.
  AsyncRecorder(RowSink sink, RecorderOptions options = {});
  // Writes into `store` (kept alive by the recorder).
  static std::unique_ptr<AsyncRecorder> over_store(std::unique_ptr<FeatureStore> store,
                                                   RecorderOptions options = {});
  // Writes what is queued, then stops the thread.
  ~AsyncRecorder();
  AsyncRecorder(const AsyncRecorder&) = delete;
  AsyncRecorder& operator=(const AsyncRecorder&) = delete;

  // Queues one row; false (and counted as dropped) when the queue is full. Never blocks on the
  // sink.
  bool submit(RequestFeatures f);
  // Waits until every row queued so far has been handed to the sink.
  void flush();
  RecorderStats stats() const;

 private:
  void run();

  RowSink sink_;
  RecorderOptions options_;
  std::shared_ptr<FeatureStore> store_;  // over_store: owned here, used by sink_
  mutable std::mutex mu_;
  std::condition_variable cv_;       // rows queued, or stopping
  std::condition_variable idle_cv_;  // queue drained
  std::deque<RequestFeatures> queue_;
  bool busy_ = false;  // the writer holds a row outside the queue
  bool stop_ = false;
  RecorderStats stats_;
  std::thread thread_;
};

}  // namespace edgelm::monitor
