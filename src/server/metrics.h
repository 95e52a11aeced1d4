// Server metrics in the Prometheus text exposition format (GET /metrics): request counts by
// endpoint and status, token counts, latency and time-to-first-token histograms, queue depth.
// Thread-safe.
//
//   Metrics m;
//   m.count_request("chat", 200);
//   m.observe_completion({.ttft_s = 0.05, .duration_s = 0.4, .prompt_tokens = 9,
//                         .completion_tokens = 32});
//   std::string text = m.render(/*queue_depth=*/0, /*active=*/1);
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace edgelm::server {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   30,  60,   120};
  void observe(double v);
  // "name_bucket{le=...} n" lines, then _sum and _count.
  std::string render(const std::string& name) const;
  uint64_t count() const { return count_; }

 private:
  std::array<uint64_t, kBounds.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct CompletionObservation {
  double ttft_s = -1;  // < 0: no token was produced
  double duration_s = 0;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  bool cancelled = false;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int http_status);
  void observe_completion(const CompletionObservation& o);
  std::string render(int queue_depth, int active) const;
  // For tests.
  uint64_t requests(const std::string& endpoint, int http_status) const;
  uint64_t cancelled() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t completion_tokens_ = 0;
  uint64_t cancelled_ = 0;
  Histogram duration_;
  Histogram ttft_;
};

}  // namespace edgelm::server
