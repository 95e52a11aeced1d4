// The quality monitor behind `edgelm serve --monitor DB`: every finished completion becomes one
// row of features (runtime/monitor/features.h: lengths, mean token log-probability and
// entropy, stop reason, empty/repeated output, latency, tokens/s, model) in the bounded SQLite
// store, written by a background thread (runtime/monitor/recorder.h) after the response has
// been sent. A full queue or a store error never fails or delays a request: it is counted (and
// shown on /metrics) and logged. Raw text is stored only with keep_text. Answers that a router
// sent to the cloud are stored with source "cloud", so the drift tests (which compare
// source "request" rows with the device model's baseline) leave them out.
//
//   RequestMonitorOptions mo;  mo.db_path = "monitor.db";
//   ASSIGN_OR_RETURN(auto mon, RequestMonitor::open(mo));   // clear error if it cannot open
//   ServerOptions so;  so.on_completion = mon->hook();  so.extra_metrics = mon->metrics_hook();
//   HttpServer http(backend, so);
//   ...  mon->flush();   // at shutdown: rows still queued are written
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "runtime/monitor/features.h"
#include "runtime/monitor/recorder.h"
#include "server/http-server.h"

namespace edgelm::server {

struct RequestMonitorOptions {
  std::string db_path;
  int64_t max_rows = 10000;  // the store keeps the newest max_rows rows
  bool keep_text = false;    // store prompt and answer text (opt-in)
  size_t max_queue = 256;    // rows waiting for the writer; more are dropped (counted)
};

// The features of one finished completion; nullopt when it failed (an error, not an answer).
// The model is the one that answered (CompletionOutcome::answered_by_model, else the request's).
// With `with_text` the prompt (chat: "role: content" lines) and the answer are included.
std::optional<monitor::RequestFeatures> features_of_completion(const FinishedCompletion& c,
                                                               bool with_text);

class RequestMonitor {
 public:
  // Opens (or creates) the store. Errors name the path: cannot open, not an SQLite database
  // (the file is left as it was), a newer schema, max_rows <= 0.
  static StatusOr<std::unique_ptr<RequestMonitor>> open(const RequestMonitorOptions& options);
  // Over any recorder (tests inject failing sinks).
  RequestMonitor(std::unique_ptr<monitor::AsyncRecorder> recorder, bool keep_text,
                 std::string label);

  // Queues the completion's features; returns at once.
  void record(const FinishedCompletion& c);
  CompletionHook hook();
  // Prometheus lines: edgelm_monitor_rows_written_total, _rows_dropped_total,
  // _store_errors_total, _requests_not_recorded_total (failed completions).
  std::string metrics_text() const;
  std::function<std::string()> metrics_hook();
  void flush() { recorder_->flush(); }
  monitor::RecorderStats stats() const { return recorder_->stats(); }
  uint64_t not_recorded() const { return not_recorded_.load(); }
  const std::string& label() const { return label_; }

 private:
  std::unique_ptr<monitor::AsyncRecorder> recorder_;
  bool keep_text_ = false;
  std::string label_;  // the store's path, for messages
  std::atomic<uint64_t> not_recorded_{0};
};

}  // namespace edgelm::server
