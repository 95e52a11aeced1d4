// The cloud side of the router: any OpenAI-compatible endpoint, reached with libcurl
// (POST <url>/v1/chat/completions, plain JSON or streamed with SSE), with connect and total
// timeouts, retries with jittered exponential backoff and a circuit breaker. A stream that ends
// without "data: [DONE]" or a finish_reason is a failure ("stream cut"); text already delivered
// stays in the outcome so the caller can continue it elsewhere (it is never retried, which
// would repeat it).
//
//   CloudOptions co;  co.url = "http://127.0.0.1:8081";  co.api_key = "sk-...";
//   CloudClient cloud(co);
//   RouteRequest req;  req.messages = {{"user", "Hello"}};  req.stream = true;
//   CloudOutcome out = cloud.complete(req, [](std::string_view t) { fputs(...); return true; });
//   if (!out.status.ok()) ...;   // out.tries: one entry per HTTP try
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/router/retry.h"
#include "runtime/router/route-types.h"

namespace edgelm::router {

struct CloudOptions {
  std::string url;      // base URL: "http://host:port", "https://api.example.com/v1" ...
  std::string api_key;  // sent as "Authorization: Bearer <key>" when set
  // "model" sent when the request names none; "" = the first id of GET <url>/v1/models (asked
  // once, e.g. what a second `edgelm serve` serves), or "default" when that fails.
  std::string model;
  int connect_timeout_ms = 2000;
  int timeout_ms = 60000;  // whole try (connect + answer)
  // A try that receives fewer than 1 byte/s for this long fails (stalled stream); 0 = off.
  int stall_timeout_s = 10;
  BackoffOptions backoff;
  BreakerOptions breaker;
};

struct CloudOutcome {
  Status status;              // OK or the last try's error
  std::string text;           // the answer (on failure: text already delivered, if any)
  std::string finish_reason;  // as the cloud sent it ("stop", "length")
  Usage usage;                // as the cloud reported it (zeros when it did not)
  std::vector<RouteAttempt> tries;
};

// The interface the Router uses (tests substitute fakes).
class CloudBackend {
 public:
  virtual ~CloudBackend() = default;
  virtual CloudOutcome complete(const RouteRequest& req, const DeltaCallback& on_delta) = 0;
  // Configured and the breaker would let a request through (no side effects).
  virtual bool available() const = 0;
  // Why available() is false ("" when it is true).
  virtual std::string unavailable_reason() const = 0;
};

class CloudClient : public CloudBackend {
 public:
  explicit CloudClient(CloudOptions options, CircuitBreaker::ClockMs clock = {});
  CloudOutcome complete(const RouteRequest& req, const DeltaCallback& on_delta) override;
  bool available() const override;
  std::string unavailable_reason() const override;
  const CircuitBreaker& breaker() const { return breaker_; }
  const CloudOptions& options() const { return options_; }
  // The full endpoint: url + "/v1/chat/completions" (no doubled "/v1").
  std::string endpoint() const;
  // The JSON body sent for `req` (messages, or the prompt as one user message).
  std::string request_body(const RouteRequest& req) const;

 private:
  struct TryResult;
  TryResult try_once(const RouteRequest& req, const DeltaCallback& on_delta);
  std::string model_for(const RouteRequest& req);
  CloudOptions options_;
  std::mutex model_mu_;
  std::string discovered_model_;
  Backoff backoff_;
  CircuitBreaker breaker_;
};

// Incremental parser of an OpenAI chat-completions SSE stream: feed() raw bytes as they come;
// content deltas go to the callback; done() after "data: [DONE]" or a finish_reason.
class SseParser {
 public:
  explicit SseParser(DeltaCallback on_delta) : on_delta_(std::move(on_delta)) {}
  // Returns an error for a malformed event; sets stopped() when the callback returned false.
  Status feed(std::string_view bytes);
  bool done() const { return done_; }
  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }
  const std::string& finish_reason() const { return finish_reason_; }
  // From a chunk's "usage" object (a usage-only chunk with stream_options.include_usage).
  const Usage& usage() const { return usage_; }
  int events() const { return events_; }

 private:
  Status handle_event(std::string_view data);
  DeltaCallback on_delta_;
  std::string buf_, text_, finish_reason_;
  Usage usage_;
  bool done_ = false, stopped_ = false;
  int events_ = 0;
};

}  // namespace edgelm::router
