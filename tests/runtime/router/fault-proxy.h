// Test helper: an in-process OpenAI-compatible HTTP server (cpp-httplib) on a free loopback port
// that either answers itself (a fixed text, plain JSON or SSE) or forwards to a real upstream
// (`edgelm serve`), and misbehaves on demand: HTTP 500, a stream cut midway, a slow answer, or
// not listening at all (refused connections). It counts the requests it received.
//
//   FaultProxy proxy;                       // answers "fake answer" itself
//   proxy.set_upstream("127.0.0.1", 8081);  // or forwards to a real server
//   proxy.set_fault(Fault::kHttp500, 2);    // the next 2 requests get HTTP 500
//   CloudClient cloud({.url = proxy.url()});
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace edgelm::router::testing {

enum class Fault { kNone, kHttp500, kCutStream, kSlow, kBadJson };

class FaultProxy {
 public:
  explicit FaultProxy(std::string answer = "fake answer from the cloud")
      : answer_(std::move(answer)) {
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    server_.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      note_authorization("GET /v1/models", req);
      std::string host;
      int port = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        host = upstream_host_;
        port = upstream_port_;
      }
      if (port == 0) {
        res.status = 404;
        return;
      }
      httplib::Client cli(host, port);
      auto r = cli.Get("/v1/models");
      res.status = r ? r->status : 502;
      if (r) res.set_content(r->body, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~FaultProxy() { stop(); }

  // Stops listening: connections to url() are refused from now on.
  void stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_upstream(std::string host, int port) {
    std::lock_guard<std::mutex> lock(mu_);
    upstream_host_ = std::move(host);
    upstream_port_ = port;
  }
  // The next `count` requests get `fault` (count < 0: all of them).
  void set_fault(Fault fault, int count = -1, int slow_ms = 1500) {
    std::lock_guard<std::mutex> lock(mu_);
    fault_ = fault;
    fault_count_ = count;
    slow_ms_ = slow_ms;
  }
  int requests() const { return requests_.load(); }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  // "METHOD PATH: <Authorization header>" of every request, in order.
  std::vector<std::string> authorizations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return authorizations_;
  }

 private:
  void note_authorization(const std::string& what, const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    authorizations_.push_back(what + ": " + req.get_header_value("Authorization"));
  }
  Fault take_fault() {
    std::lock_guard<std::mutex> lock(mu_);
    if (fault_ == Fault::kNone || fault_count_ == 0) return Fault::kNone;
    if (fault_count_ > 0) --fault_count_;
    return fault_;
  }

  // The upstream's (or our own) answer: the SSE events or the JSON body.
  std::pair<int, std::string> answer(const httplib::Request& req, bool stream) {
    std::string host;
    int port = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      host = upstream_host_;
      port = upstream_port_;
    }
    if (port != 0) {
      httplib::Client cli(host, port);
      cli.set_read_timeout(std::chrono::seconds(120));
      auto r = cli.Post("/v1/chat/completions", req.body, "application/json");
      if (!r) return {502, R"({"error":{"message":"upstream unreachable"}})"};
      return {r->status, r->body};
    }
    if (!stream) {
      nlohmann::json j = {{"id", "fake-1"},
                          {"object", "chat.completion"},
                          {"choices",
                           {{{"index", 0},
                             {"message", {{"role", "assistant"}, {"content", answer_}}},
                             {"finish_reason", "stop"}}}}};
      return {200, j.dump()};
    }
    std::string sse;
    // One event per word, then a finish_reason event and [DONE].
    size_t pos = 0;
    while (pos < answer_.size()) {
      size_t sp = answer_.find(' ', pos);
      sp = sp == std::string::npos ? answer_.size() : sp + 1;
      nlohmann::json j = {{"choices",
                           {{{"index", 0},
                             {"delta", {{"content", answer_.substr(pos, sp - pos)}}},
                             {"finish_reason", nullptr}}}}};
      sse += "data: " + j.dump() + "\n\n";
      pos = sp;
    }
    nlohmann::json fin = {
        {"choices",
         {{{"index", 0}, {"delta", nlohmann::json::object()}, {"finish_reason", "stop"}}}}};
    sse += "data: " + fin.dump() + "\n\ndata: [DONE]\n\n";
    return {200, sse};
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    requests_.fetch_add(1);
    note_authorization("POST /v1/chat/completions", req);
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
    }
    const Fault fault = take_fault();
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    const bool stream = !body.is_discarded() && body.value("stream", false);
    if (fault == Fault::kHttp500) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"injected 500"}})", "application/json");
      return;
    }
    if (fault == Fault::kSlow) {
      int ms = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ms = slow_ms_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    if (fault == Fault::kBadJson) {
      res.set_content("this is not json", "application/json");
      return;
    }
    auto [status, text] = answer(req, stream);
    if (!stream || status != 200) {
      res.status = status;
      res.set_content(text, "application/json");
      return;
    }
    const bool cut = fault == Fault::kCutStream;
    auto data = std::make_shared<std::string>(std::move(text));
    if (cut) {
      // Keep only the events in the first half (whole events), then break the connection.
      size_t keep = 0, p = 0;
      while ((p = data->find("\n\n", p)) != std::string::npos && p < data->size() / 2) {
        p += 2;
        keep = p;
      }
      if (keep == 0) keep = std::min<size_t>(data->size(), data->find("\n\n") + 2);
      data->resize(keep);
    }
    res.set_chunked_content_provider(
        "text/event-stream", [data, cut, sent = false](size_t, httplib::DataSink& sink) mutable {
          if (!sent) {
            sink.write(data->data(), data->size());
            sent = true;
            return true;
          }
          if (cut) return false;  // abort: no terminating chunk, the connection closes
          sink.done();
          return true;
        });
  }

  std::string answer_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::string upstream_host_;
  int upstream_port_ = 0;
  Fault fault_ = Fault::kNone;
  int fault_count_ = 0;
  int slow_ms_ = 1500;
  std::atomic<int> requests_{0};
  std::vector<std::string> bodies_;
  std::vector<std::string> authorizations_;
};

}  // namespace edgelm::router::testing
