// Prometheus text metrics (see metrics.h).
#include "server/metrics.h"

#include <fmt/format.h>

namespace edgelm::server {

void Histogram::observe(double v) {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (v <= kBounds[i]) ++buckets_[i];
  }
  ++count_;
  sum_ += v;
}

std::string Histogram::render(const std::string& name) const {
  std::string out;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], buckets_[i]);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
  return out;
}

void Metrics::count_request(const std::string& endpoint, int http_status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, http_status}];
}

void Metrics::observe_completion(const CompletionObservation& o) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += o.prompt_tokens;
  completion_tokens_ += o.completion_tokens;
  if (o.cancelled) ++cancelled_;
  duration_.observe(o.duration_s);
  if (o.ttft_s >= 0) ttft_.observe(o.ttft_s);
}

uint64_t Metrics::requests(const std::string& endpoint, int http_status) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find({endpoint, http_status});
  return it == requests_.end() ? 0 : it->second;
}

uint64_t Metrics::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

std::string Metrics::render(int queue_depth, int active) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP edgelm_requests_total HTTP requests by endpoint and status code.\n";
  out += "# TYPE edgelm_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("edgelm_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", key.first,
                       key.second, n);
  }
  out += "# HELP edgelm_prompt_tokens_total Prompt tokens of finished completions.\n";
  out += "# TYPE edgelm_prompt_tokens_total counter\n";
  out += fmt::format("edgelm_prompt_tokens_total {}\n", prompt_tokens_);
  out += "# HELP edgelm_completion_tokens_total Generated tokens of finished completions.\n";
  out += "# TYPE edgelm_completion_tokens_total counter\n";
  out += fmt::format("edgelm_completion_tokens_total {}\n", completion_tokens_);
  out += "# HELP edgelm_requests_cancelled_total Completions stopped by a client disconnect.\n";
  out += "# TYPE edgelm_requests_cancelled_total counter\n";
  out += fmt::format("edgelm_requests_cancelled_total {}\n", cancelled_);
  out += "# HELP edgelm_request_duration_seconds Completion time, admission to last byte.\n";
  out += "# TYPE edgelm_request_duration_seconds histogram\n";
  out += duration_.render("edgelm_request_duration_seconds");
  out += "# HELP edgelm_time_to_first_token_seconds Request arrival to the first token.\n";
  out += "# TYPE edgelm_time_to_first_token_seconds histogram\n";
  out += ttft_.render("edgelm_time_to_first_token_seconds");
  out += "# HELP edgelm_queue_depth Requests waiting for a free session.\n";
  out += "# TYPE edgelm_queue_depth gauge\n";
  out += fmt::format("edgelm_queue_depth {}\n", queue_depth);
  out += "# HELP edgelm_active_requests Requests being generated.\n";
  out += "# TYPE edgelm_active_requests gauge\n";
  out += fmt::format("edgelm_active_requests {}\n", active);
  return out;
}

}  // namespace edgelm::server
