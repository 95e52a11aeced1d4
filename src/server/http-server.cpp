// OpenAI-compatible HTTP server over cpp-httplib (see http-server.h).
#include "server/http-server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "base/log.h"

namespace edgelm::server {

using Clock = std::chrono::steady_clock;

// Everything a running completion needs after the handler has returned.
struct Job {
  std::unique_ptr<Completion> completion;
  CompletionRequest request;
  std::string id;
  int64_t created = 0;
  Clock::time_point start;
};

namespace {

using nlohmann::json;
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  res.set_content(e.to_json(), "application/json");
}

ApiError make_error(int status, std::string message, std::string type, std::string code) {
  ApiError e;
  e.http_status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

// Constant-time comparison of the presented and expected keys.
bool same_key(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  }
  return diff == 0;
}

std::string endpoint_label(const std::string& path) {
  if (path == "/v1/chat/completions" || path == "/chat/completions") return "chat";
  if (path == "/v1/completions" || path == "/completions") return "completions";
  if (path == "/v1/models" || path == "/models" || path.starts_with("/v1/models/")) {
    return "models";
  }
  if (path == "/health") return "health";
  if (path == "/metrics") return "metrics";
  return "other";
}

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return fmt::format("{}{:016x}{:08x}", prefix, salt, counter.fetch_add(1));
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

json usage_json(const CompletionOutcome& o) {
  return {{"prompt_tokens", o.prompt_tokens},
          {"completion_tokens", o.completion_tokens},
          {"total_tokens", o.prompt_tokens + o.completion_tokens}};
}

json chunk_json(const Job& job, const json& choice) {
  const bool chat = job.request.endpoint == Endpoint::kChat;
  return {{"id", job.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", job.created},
          {"model", job.request.model},
          {"system_fingerprint", "edgelm"},
          {"choices", json::array({choice})}};
}

json delta_choice(const Job& job, std::string_view text, const char* finish_reason) {
  const json finish = finish_reason ? json(finish_reason) : json(nullptr);
  if (job.request.endpoint == Endpoint::kChat) {
    json delta = json::object();
    if (!text.empty() || !finish_reason) delta["content"] = std::string(text);
    return {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}};
  }
  return {
      {"index", 0}, {"text", std::string(text)}, {"logprobs", nullptr}, {"finish_reason", finish}};
}

json final_json(const Job& job, const CompletionOutcome& o) {
  const bool chat = job.request.endpoint == Endpoint::kChat;
  const char* finish = finish_reason_name(o.finish_reason);
  json choice;
  if (chat) {
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", o.text}, {"refusal", nullptr}}},
              {"logprobs", nullptr},
              {"finish_reason", finish}};
  } else {
    std::string text = job.request.echo ? job.request.prompt + o.text : o.text;
    choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}};
  }
  return {{"id", job.id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", job.created},
          {"model", job.request.model},
          {"system_fingerprint", "edgelm"},
          {"choices", json::array({choice})},
          {"usage", usage_json(o)}};
}

// A routed completion's decision as the non-standard top-level field "edgelm_route" (OpenAI
// clients ignore unknown fields).
json with_route(json j, const CompletionOutcome& o) {
  if (o.route_json.empty()) return j;
  json route = json::parse(o.route_json, nullptr, false);
  if (!route.is_discarded()) j["edgelm_route"] = std::move(route);
  return j;
}

// A header value: no control characters (CR/LF would end the header), at most 256 bytes.
std::string header_value(std::string_view s) {
  std::string v(s.substr(0, 256));
  for (char& c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return v;
}

}  // namespace

HttpServer::HttpServer(Backend& backend, ServerOptions options)
    : backend_(backend), options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  install_routes();
}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
  } else {
    port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ < 0) {
    return Status::io(fmt::format("cannot listen on {}:{} (address in use or not available)",
                                  options_.host, options_.port));
  }
  return Status::ok_status();
}

Status HttpServer::serve() {
  if (port_ < 0) RETURN_IF_ERROR(bind());
  if (!http_->listen_after_bind() && !stopping_.load()) {
    return Status::io(
        fmt::format("the server on {}:{} stopped with an error", options_.host, port_));
  }
  return Status::ok_status();
}

void HttpServer::stop() {
  stopping_.store(true);
  if (http_) http_->stop();
}

void HttpServer::install_routes() {
  httplib::Server& s = *http_;
  const int threads = options_.n_http_threads > 0 ? options_.n_http_threads : 64;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(options_.limits.max_body_bytes);
  s.set_read_timeout(options_.read_timeout_s);
  s.set_write_timeout(options_.write_timeout_s);
  s.set_tcp_nodelay(true);

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path == "/health") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    static const std::string kBearer = "Bearer ";
    if (auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0 &&
        same_key(auth.substr(kBearer.size()), options_.api_key)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    ApiError e = make_error(401,
                            auth.empty() ? "You didn't provide an API key. Provide it in an "
                                           "Authorization header: 'Authorization: Bearer KEY'."
                                         : "Incorrect API key provided.",
                            "invalid_request_error", "invalid_api_key");
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  });

  // Responses httplib makes on its own (404 route, 413 body, 400 malformed HTTP) get JSON too.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    std::string code;
    switch (res.status) {
      case 404:
        message = fmt::format("Unknown request URL: {} {}.", req.method, req.path);
        code = "unknown_url";
        break;
      case 405:
        message = fmt::format("Method {} is not allowed on {}.", req.method, req.path);
        code = "method_not_allowed";
        break;
      case 413:
        message = "The request body is too large.";
        code = "request_too_large";
        break;
      default:
        message = fmt::format("HTTP error {}.", res.status);
        break;
    }
    ApiError e = make_error(res.status, message, "invalid_request_error", code);
    res.set_content(e.to_json(), "application/json");
  });

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                             std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res,
               make_error(500, fmt::format("Internal server error: {}", what), "server_error", ""));
  });

  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_request(endpoint_label(req.path), res.status);
    EDGELM_LOG_DEBUG("{} {} -> {}", req.method, req.path, res.status);
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json j = {{"status", "ok"}, {"active", backend_.active()}, {"queued", backend_.queue_depth()}};
    res.set_content(dump(j), "application/json");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string text = metrics_.render(backend_.queue_depth(), backend_.active());
    if (options_.extra_metrics) text += options_.extra_metrics();
    res.set_content(text, "text/plain; version=0.0.4");
  });

  auto list_models = [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& m : backend_.models()) {
      data.push_back(
          {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}});
    }
    res.set_content(dump({{"object", "list"}, {"data", data}}), "application/json");
  };
  s.Get("/v1/models", list_models);
  s.Get("/models", list_models);
  s.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    for (const auto& m : backend_.models()) {
      if (m.id == id) {
        res.set_content(dump({{"id", m.id},
                              {"object", "model"},
                              {"created", m.created},
                              {"owned_by", m.owned_by}}),
                        "application/json");
        return;
      }
    }
    ApiError e = make_error(404, fmt::format("The model '{}' does not exist.", id),
                            "invalid_request_error", "model_not_found");
    e.param = "model";
    send_error(res, e);
  });

  auto completions = [this](Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res) {
      auto job = std::make_shared<Job>();
      job->start = Clock::now();
      job->created = unix_now();
      ParseResult parsed = parse_request(endpoint, req.body, options_.limits);
      if (!parsed.ok()) return send_error(res, *parsed.error);
      job->request = std::move(parsed.request);
      job->request.privacy = req.get_header_value("x-edgelm-privacy");
      job->request.route_prefer = req.get_header_value("x-edgelm-prefer");
      job->id = new_id(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
      if (stopping_.load()) {
        return send_error(
            res, make_error(503, "The server is shutting down.", "server_error", "shutting_down"));
      }
      auto completion = backend_.prepare(job->request);
      if (!completion.ok()) {
        ApiError e = api_error_from_status(completion.status());
        if (completion.status().code() == StatusCode::kOutOfRange) {
          e.param = endpoint == Endpoint::kChat ? "messages" : "prompt";
        }
        if (completion.status().code() == StatusCode::kFailedPrecondition) {
          e.http_status = 503;
          e.type = "server_error";
        }
        return send_error(res, e);
      }
      job->completion = std::move(*completion);
      if (auto route = job->completion->route_headers()) {  // known before the first byte
        res.set_header("x-edgelm-route", header_value(route->target));
        res.set_header("x-edgelm-route-reason", header_value(route->reason));
      }
      if (job->request.stream) {
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, job](size_t, httplib::DataSink& sink) { return stream_job(*job, sink); });
      } else {
        // Chunked too, so that a disconnect is noticed while generating (leading whitespace is
        // valid JSON). The charset keeps httplib from compressing (which would buffer).
        res.set_chunked_content_provider(
            "application/json; charset=utf-8",
            [this, job](size_t, httplib::DataSink& sink) { return finish_job(*job, sink); });
      }
    };
  };
  s.Post("/v1/chat/completions", completions(Endpoint::kChat));
  s.Post("/chat/completions", completions(Endpoint::kChat));
  s.Post("/v1/completions", completions(Endpoint::kCompletion));
  s.Post("/completions", completions(Endpoint::kCompletion));
}

bool HttpServer::stream_job(Job& job, httplib::DataSink& sink) {
  bool alive = true;
  auto send = [&](const json& j) {
    if (!alive) return false;
    const std::string line = "data: " + dump(j) + "\n\n";
    alive = sink.write(line.data(), line.size());
    return alive;
  };
  double ttft = -1;
  if (job.request.endpoint == Endpoint::kChat) {
    send(chunk_json(job, {{"index", 0},
                          {"delta", {{"role", "assistant"}, {"content", ""}}},
                          {"logprobs", nullptr},
                          {"finish_reason", nullptr}}));
  } else if (job.request.echo) {
    send(chunk_json(job, delta_choice(job, job.request.prompt, nullptr)));
  }
  StatusOr<CompletionOutcome> out = Status::cancelled("client disconnected");
  if (alive) {
    out = job.completion->run(
        [&](std::string_view delta) {
          if (ttft < 0) ttft = std::chrono::duration<double>(Clock::now() - job.start).count();
          return send(chunk_json(job, delta_choice(job, delta, nullptr)));
        },
        &stopping_);
  }
  CompletionObservation obs;
  obs.ttft_s = ttft;
  obs.duration_s = std::chrono::duration<double>(Clock::now() - job.start).count();
  if (!out.ok()) {
    send({{"error", json::parse(api_error_from_status(out.status()).to_json())["error"]}});
    obs.cancelled = out.status().code() == StatusCode::kCancelled;
  } else {
    obs.prompt_tokens = out->prompt_tokens;
    obs.completion_tokens = out->completion_tokens;
    obs.cancelled = out->finish_reason == FinishReason::kCancelled;
    if (out->finish_reason == FinishReason::kCancelled && !alive) {
      // The client is gone: nothing more to send.
    } else {
      const char* finish = out->finish_reason == FinishReason::kCancelled
                               ? "stop"
                               : finish_reason_name(out->finish_reason);
      send(with_route(chunk_json(job, delta_choice(job, "", finish)), *out));
      if (job.request.include_usage) {
        json usage = chunk_json(job, json());
        usage["choices"] = json::array();
        usage["usage"] = usage_json(*out);
        send(usage);
      }
      if (alive) {
        static const char kDone[] = "data: [DONE]\n\n";
        alive = sink.write(kDone, sizeof(kDone) - 1);
      }
    }
  }
  // Count the request before freeing its slot: whoever sees the slot free (a test, the next
  // request) also sees the request in /metrics.
  metrics_.observe_completion(obs);
  job.completion.reset();  // frees the session for the next request now
  // Before done(): the client sees the end of its response after the hook has run.
  if (options_.on_completion) options_.on_completion({job.request, out, obs.duration_s, ttft});
  if (alive) sink.done();
  return alive;
}

bool HttpServer::finish_job(Job& job, httplib::DataSink& sink) {
  bool alive = true;
  double ttft = -1;
  auto last_probe = Clock::now();
  auto out = job.completion->run(
      [&](std::string_view) {
        const auto now = Clock::now();
        if (ttft < 0) ttft = std::chrono::duration<double>(now - job.start).count();
        if (now - last_probe > std::chrono::milliseconds(100)) {
          last_probe = now;
          alive = sink.write(" ", 1);
        }
        return alive;
      },
      &stopping_);
  CompletionObservation obs;
  obs.ttft_s = ttft;
  obs.duration_s = std::chrono::duration<double>(Clock::now() - job.start).count();
  std::string body;
  if (!out.ok()) {
    body = api_error_from_status(out.status()).to_json();
    obs.cancelled = out.status().code() == StatusCode::kCancelled;
  } else {
    obs.prompt_tokens = out->prompt_tokens;
    obs.completion_tokens = out->completion_tokens;
    obs.cancelled = out->finish_reason == FinishReason::kCancelled;
    if (out->finish_reason == FinishReason::kCancelled) out->finish_reason = FinishReason::kStop;
    body = dump(with_route(final_json(job, *out), *out));
  }
  metrics_.observe_completion(obs);  // before the slot is freed, as in stream_job
  job.completion.reset();
  if (alive) alive = sink.write(body.data(), body.size());
  // Before done(): the client sees the end of its response after the hook has run.
  if (options_.on_completion) options_.on_completion({job.request, out, obs.duration_s, ttft});
  if (alive) sink.done();
  return alive;
}

}  // namespace edgelm::server
