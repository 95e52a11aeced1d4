// `edgelm serve --monitor`: completions -> feature rows (see request-monitor.h).
#include "server/request-monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace edgelm::server {

namespace {

std::string prompt_text_of(const CompletionRequest& r) {
  if (r.endpoint == Endpoint::kCompletion) return r.prompt;
  std::string s;
  for (const auto& m : r.messages) s += fmt::format("{}: {}\n", m.role, m.content);
  return s;
}

bool blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}

}  // namespace

std::optional<monitor::RequestFeatures> features_of_completion(const FinishedCompletion& c,
                                                               bool with_text) {
  if (!c.outcome.ok()) return std::nullopt;
  const CompletionOutcome& o = *c.outcome;
  const std::string model = o.answered_by_model.empty() ? c.request.model : o.answered_by_model;
  monitor::RequestFeatures f;
  if (o.generation) {
    // The engine's own figures, as in the canary baseline (latency: the generation itself).
    f = monitor::features_from_result(*o.generation, model);
  } else {
    // A backend without the engine's figures (e.g. the cloud): what the server saw.
    f.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    f.model = model;
    f.output_tokens = o.completion_tokens;
    f.stop_reason = o.finish_reason == FinishReason::kLength      ? StopReason::kMaxTokens
                    : o.finish_reason == FinishReason::kCancelled ? StopReason::kCancelled
                                                                  : StopReason::kEog;
    f.latency_ms = c.duration_s * 1000.0;
    f.ttft_ms = c.ttft_s >= 0 ? c.ttft_s * 1000.0 : 0.0;
    const double decode_s = c.duration_s - std::max(0.0, c.ttft_s);
    f.tokens_per_s =
        decode_s > 0 && o.completion_tokens > 1 ? (o.completion_tokens - 1) / decode_s : 0.0;
  }
  f.source = o.ran_on == "cloud" ? "cloud" : "request";
  f.prompt_tokens = o.prompt_tokens;
  f.empty_output = blank(o.text);  // the generation's text was moved into o.text
  if (with_text) {
    f.prompt_text = prompt_text_of(c.request);
    f.output_text = o.text;
  } else {
    f.prompt_text.reset();
    f.output_text.reset();
  }
  return f;
}

StatusOr<std::unique_ptr<RequestMonitor>> RequestMonitor::open(
    const RequestMonitorOptions& options) {
  if (options.db_path.empty()) return Status::invalid_argument("--monitor: no database path");
  monitor::StoreOptions so;
  so.max_rows = options.max_rows;
  so.keep_text = options.keep_text;
  auto store = monitor::FeatureStore::open(options.db_path, so);
  if (!store.ok()) return store.status().with_context("--monitor");
  monitor::RecorderOptions ro;
  ro.max_queue = options.max_queue;
  return std::make_unique<RequestMonitor>(monitor::AsyncRecorder::over_store(std::move(*store), ro),
                                          options.keep_text, options.db_path);
}

RequestMonitor::RequestMonitor(std::unique_ptr<monitor::AsyncRecorder> recorder, bool keep_text,
                               std::string label)
    : recorder_(std::move(recorder)), keep_text_(keep_text), label_(std::move(label)) {}

void RequestMonitor::record(const FinishedCompletion& c) {
  auto f = features_of_completion(c, keep_text_);
  if (!f) {
    not_recorded_.fetch_add(1);
    return;
  }
  recorder_->submit(std::move(*f));
}

CompletionHook RequestMonitor::hook() {
  return [this](const FinishedCompletion& c) { record(c); };
}

std::string RequestMonitor::metrics_text() const {
  const monitor::RecorderStats s = recorder_->stats();
  return fmt::format(
      "# HELP edgelm_monitor_rows_written_total Requests recorded in the quality monitor store.\n"
      "# TYPE edgelm_monitor_rows_written_total counter\n"
      "edgelm_monitor_rows_written_total {}\n"
      "# HELP edgelm_monitor_rows_dropped_total Requests not recorded: the writer's queue was "
      "full.\n"
      "# TYPE edgelm_monitor_rows_dropped_total counter\n"
      "edgelm_monitor_rows_dropped_total {}\n"
      "# HELP edgelm_monitor_store_errors_total Rows the monitor store failed to write.\n"
      "# TYPE edgelm_monitor_store_errors_total counter\n"
      "edgelm_monitor_store_errors_total {}\n"
      "# HELP edgelm_monitor_requests_not_recorded_total Failed completions (no features).\n"
      "# TYPE edgelm_monitor_requests_not_recorded_total counter\n"
      "edgelm_monitor_requests_not_recorded_total {}\n",
      s.written, s.dropped, s.errors, not_recorded_.load());
}

std::function<std::string()> RequestMonitor::metrics_hook() {
  return [this] { return metrics_text(); };
}

}  // namespace edgelm::server
