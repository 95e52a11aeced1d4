// The OpenAI-compatible HTTP server (cpp-httplib): POST /v1/chat/completions and
// /v1/completions (JSON or server-sent events with "stream": true), GET /v1/models, /health,
// /metrics (Prometheus text). Requests go to a Backend (backend.h); errors are OpenAI-style
// JSON ({"error":{"message","type","param","code"}}). A client that disconnects cancels its
// generation. With an API key every route but /health needs "Authorization: Bearer KEY".
//
//   HttpServer server(backend, {.host = "127.0.0.1", .port = 8080});
//   RETURN_IF_ERROR(server.bind());       // port() is known from here (port 0 = any free)
//   std::thread t([&] { (void)server.serve(); });
//   ...  server.stop();  t.join();
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "server/backend.h"
#include "server/metrics.h"
#include "server/request.h"

namespace httplib {
class Server;
class DataSink;
}  // namespace httplib

namespace edgelm::server {

struct Job;  // one admitted completion (http-server.cpp)

// One finished completion, handed to ServerOptions::on_completion once its answer has been
// written (or the client left) and just before the response is closed, on the connection's
// thread: keep it short (e.g. queue it); a client has seen the hook run when its response ends.
struct FinishedCompletion {
  const CompletionRequest& request;
  const StatusOr<CompletionOutcome>& outcome;
  double duration_s = 0;  // from the request's arrival to the end of generation
  double ttft_s = -1;     // to the first text; < 0: none
};
using CompletionHook = std::function<void(const FinishedCompletion&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;         // 0: any free port
  std::string api_key;     // "": no authentication
  RequestLimits limits;    // limits.max_body_bytes also caps what the socket accepts
  int n_http_threads = 0;  // connection threads; 0 = 64
  int read_timeout_s = 30;
  int write_timeout_s = 30;
  CompletionHook on_completion;                // e.g. the quality monitor (request-monitor.h)
  std::function<std::string()> extra_metrics;  // appended to GET /metrics (Prometheus text)
};

class HttpServer {
 public:
  HttpServer(Backend& backend, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket. Errors name the address.
  Status bind();
  int port() const { return port_; }
  // Serves until stop() (blocking).
  Status serve();
  // Stops accepting, cancels running generations, returns once serve() can return.
  void stop();
  const Metrics& metrics() const { return metrics_; }

 private:
  void install_routes();
  // Write one admitted completion as server-sent events / as one JSON object; false when the
  // client went away.
  bool stream_job(Job& job, httplib::DataSink& sink);
  bool finish_job(Job& job, httplib::DataSink& sink);
  Backend& backend_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  Metrics metrics_;
  std::atomic<bool> stopping_{false};
  int port_ = -1;
};

}  // namespace edgelm::server
