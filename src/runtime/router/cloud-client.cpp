// libcurl client for OpenAI-compatible chat completions (see cloud-client.h).
#include "runtime/router/cloud-client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace edgelm::router {

namespace {

using Clock = std::chrono::steady_clock;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool retryable_http(int code) { return code == 408 || code == 429 || code >= 500; }

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

// OpenAI's usage object; missing or malformed fields count as 0 (the answer itself is fine).
Usage usage_from_json(const nlohmann::json& u) {
  Usage r;
  if (!u.is_object()) return r;
  auto field = [&](const char* k) {
    if (!u.contains(k) || !u[k].is_number_integer()) return 0;
    return static_cast<int>(std::clamp<int64_t>(u[k].get<int64_t>(), 0, 1 << 30));
  };
  r.prompt_tokens = field("prompt_tokens");
  r.completion_tokens = field("completion_tokens");
  return r;
}

}  // namespace

// ---- SSE ----

Status SseParser::handle_event(std::string_view data) {
  ++events_;
  if (data == "[DONE]") {
    done_ = true;
    return Status::ok_status();
  }
  auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::data_loss(
        fmt::format("cloud stream: event {} is not JSON: '{}'", events_, data.substr(0, 120)));
  }
  if (j.contains("error")) {
    return Status::io(fmt::format("cloud stream: error event: {}", j["error"].dump()));
  }
  if (j.contains("usage")) usage_ = usage_from_json(j["usage"]);
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) {
    return Status::ok_status();  // e.g. a usage-only chunk
  }
  const auto& c = j["choices"][0];
  if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
      c["delta"]["content"].is_string()) {
    const std::string piece = c["delta"]["content"].get<std::string>();
    if (!piece.empty()) {
      text_ += piece;
      if (on_delta_ && !on_delta_(piece)) stopped_ = true;
    }
  }
  if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
    finish_reason_ = c["finish_reason"].get<std::string>();
  }
  return Status::ok_status();
}

Status SseParser::feed(std::string_view bytes) {
  buf_.append(bytes);
  for (;;) {
    // Events end with a blank line ("\n\n", or "\r\n\r\n").
    size_t end = buf_.find("\n\n");
    size_t sep = 2;
    const size_t crlf = buf_.find("\r\n\r\n");
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
      end = crlf;
      sep = 4;
    }
    if (end == std::string::npos) break;
    const std::string event = buf_.substr(0, end);
    buf_.erase(0, end + sep);
    std::string data;
    size_t pos = 0;
    while (pos <= event.size()) {
      size_t nl = event.find('\n', pos);
      if (nl == std::string::npos) nl = event.size();
      std::string_view line(event.data() + pos, nl - pos);
      if (line.substr(0, 5) == "data:") {
        if (!data.empty()) data += '\n';
        data += trim(line.substr(5));
      }
      pos = nl + 1;
    }
    if (!data.empty()) RETURN_IF_ERROR(handle_event(data));
    if (stopped_ || done_) break;
  }
  return Status::ok_status();
}

// ---- client ----

struct CloudClient::TryResult {
  Status status;
  bool retryable = false;
  bool delivered = false;  // some text reached the callback (never retry then)
  int http_status = 0;
  std::string text, finish_reason;
  Usage usage;
};

CloudClient::CloudClient(CloudOptions options, CircuitBreaker::ClockMs clock)
    : options_(std::move(options)),
      backoff_(options_.backoff),
      breaker_(options_.breaker, std::move(clock)) {
  global_init();
}

std::string CloudClient::endpoint() const {
  std::string base = options_.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0) {
    return base + "/chat/completions";
  }
  return base + "/v1/chat/completions";
}

std::string CloudClient::request_body(const RouteRequest& req) const {
  nlohmann::json j;
  j["model"] = !req.cloud_model.empty()  ? req.cloud_model
               : !options_.model.empty() ? options_.model
                                         : std::string("default");
  nlohmann::json msgs = nlohmann::json::array();
  if (req.messages.empty()) {
    msgs.push_back({{"role", "user"}, {"content", req.prompt}});
  } else {
    for (const ChatMessage& m : req.messages) {
      msgs.push_back({{"role", m.role}, {"content", m.content}});
    }
  }
  j["messages"] = std::move(msgs);
  if (req.max_tokens > 0) j["max_tokens"] = req.max_tokens;
  j["temperature"] = req.temperature;
  j["stream"] = req.stream;
  // Ask for the usage chunk, so a streamed cloud answer reports its token counts too.
  if (req.stream) j["stream_options"] = {{"include_usage", true}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool CloudClient::available() const { return !options_.url.empty() && breaker_.would_allow(); }

std::string CloudClient::unavailable_reason() const {
  if (options_.url.empty()) return "no cloud endpoint is configured";
  if (!breaker_.would_allow()) {
    return fmt::format("the cloud circuit breaker is {} ({} consecutive failures)",
                       breaker_state_name(breaker_.state()), breaker_.consecutive_failures());
  }
  return "";
}

namespace {

struct TransferState {
  bool stream = false;
  std::string body;  // non-stream (or error) body
  SseParser* sse = nullptr;
  Status sse_status;
  CURL* curl = nullptr;
  bool cancelled = false;
};

// What every request to the cloud shares: the URL, the headers plus the API key (when set), no
// signals, the connect timeout. Returns the header list, which the caller frees after the request.
curl_slist* set_common_options(CURL* curl, const std::string& url, curl_slist* headers,
                               const CloudOptions& options) {
  if (!options.api_key.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + options.api_key).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  return headers;
}

size_t collect_body(char* p, size_t size, size_t n, void* user) {
  auto* b = static_cast<std::string*>(user);
  if (b->size() < (1u << 20)) b->append(p, size * n);
  return size * n;
}

size_t on_write(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<TransferState*>(user);
  const size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
  if (!st->stream || code != 200) {
    if (st->body.size() < (64u << 20)) st->body.append(ptr, n);
    return n;
  }
  Status s = st->sse->feed(std::string_view(ptr, n));
  if (!s.ok()) {
    st->sse_status = s;
    return 0;  // abort the transfer
  }
  if (st->sse->stopped()) {
    st->cancelled = true;
    return 0;
  }
  return n;
}

}  // namespace

std::string CloudClient::model_for(const RouteRequest& req) {
  if (!req.cloud_model.empty()) return req.cloud_model;
  if (!options_.model.empty()) return options_.model;
  std::lock_guard<std::mutex> lock(model_mu_);
  if (!discovered_model_.empty()) return discovered_model_;
  std::string url = endpoint();
  url.replace(url.size() - std::string("chat/completions").size(), std::string::npos, "models");
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return "default";
  std::string body;
  curl_slist* headers = set_common_options(curl, url, nullptr, options_);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::min(options_.timeout_ms, 5000)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK || code != 200) return "default";  // not cached: asked again next time
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
    discovered_model_ = "default";
  } else {
    discovered_model_ = j["data"][0]["id"].get<std::string>();
  }
  return discovered_model_;
}

CloudClient::TryResult CloudClient::try_once(const RouteRequest& req,
                                             const DeltaCallback& on_delta) {
  TryResult r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    r.status = Status::internal("curl_easy_init failed");
    return r;
  }
  SseParser sse(on_delta);
  TransferState st;
  st.stream = req.stream;
  st.sse = &sse;
  st.curl = curl;
  const std::string url = endpoint();
  RouteRequest with_model = req;
  with_model.cloud_model = model_for(req);
  const std::string body = request_body(with_model);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(
      headers, req.stream ? "Accept: text/event-stream" : "Accept: application/json");
  headers = set_common_options(curl, url, headers, options_);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  if (options_.stall_timeout_s > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout_s));
  }
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  r.http_status = static_cast<int>(code);
  r.delivered = !sse.text().empty();
  r.text = sse.text();
  r.finish_reason = sse.finish_reason();
  r.usage = sse.usage();

  if (st.cancelled) {
    r.status = Status::cancelled("cloud: the caller stopped the stream");
    return r;
  }
  if (!st.sse_status.ok()) {
    r.status = st.sse_status;
    r.retryable = !r.delivered;
    return r;
  }
  if (rc != CURLE_OK) {
    const bool cut = req.stream && code == 200;
    r.status = Status::io(fmt::format(
        "cloud {}: {}{}", url, curl_easy_strerror(rc),
        cut ? fmt::format(" (stream cut after {} bytes of text)", sse.text().size()) : ""));
    r.retryable = !r.delivered;
    return r;
  }
  if (code != 200) {
    r.status = Status::io(fmt::format("cloud {}: HTTP {}: {}", url, code, st.body.substr(0, 200)));
    r.retryable = retryable_http(static_cast<int>(code));
    return r;
  }
  if (req.stream) {
    if (!sse.done() && sse.finish_reason().empty()) {
      r.status = Status::io(fmt::format(
          "cloud {}: stream cut: ended after {} events and {} bytes of text without [DONE]", url,
          sse.events(), sse.text().size()));
      r.retryable = !r.delivered;
    }
    return r;
  }
  auto j = nlohmann::json::parse(st.body, nullptr, false);
  if (j.is_discarded() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].contains("message") ||
      !j["choices"][0]["message"].contains("content") ||
      !j["choices"][0]["message"]["content"].is_string()) {
    r.status = Status::data_loss(fmt::format(
        "cloud {}: answer is not a chat completion (expected choices[0].message.content): '{}'",
        url, st.body.substr(0, 200)));
    r.retryable = true;
    return r;
  }
  r.text = j["choices"][0]["message"]["content"].get<std::string>();
  if (j["choices"][0].contains("finish_reason") && j["choices"][0]["finish_reason"].is_string()) {
    r.finish_reason = j["choices"][0]["finish_reason"].get<std::string>();
  }
  if (j.contains("usage")) r.usage = usage_from_json(j["usage"]);
  if (on_delta && !r.text.empty()) on_delta(r.text);
  return r;
}

CloudOutcome CloudClient::complete(const RouteRequest& req, const DeltaCallback& on_delta) {
  CloudOutcome out;
  if (options_.url.empty()) {
    out.status = Status::failed_precondition("no cloud endpoint is configured");
    return out;
  }
  const int max_retries = std::max(0, options_.backoff.max_retries);
  for (int attempt = 0; attempt <= max_retries; ++attempt) {
    if (!breaker_.allow()) {
      RouteAttempt a;
      a.target = RouteTarget::kCloud;
      a.error =
          fmt::format("circuit breaker {}: request not sent", breaker_state_name(breaker_.state()));
      out.tries.push_back(a);
      out.status = Status::failed_precondition("cloud: " + a.error);
      return out;
    }
    const auto t0 = Clock::now();
    TryResult r = try_once(req, on_delta);
    RouteAttempt a;
    a.target = RouteTarget::kCloud;
    a.ok = r.status.ok();
    a.error = r.status.ok() ? "" : r.status.message();
    a.http_status = r.http_status;
    a.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    out.tries.push_back(a);
    out.text = r.text;
    out.finish_reason = r.finish_reason;
    out.usage = r.usage;
    out.status = r.status;
    if (r.status.ok()) {
      breaker_.record_success();
      return out;
    }
    if (r.status.code() == StatusCode::kCancelled) return out;  // the caller's choice
    breaker_.record_failure();
    if (!r.retryable || attempt == max_retries) return out;
    std::this_thread::sleep_for(
        std::chrono::duration<double, std::milli>(backoff_.delay_ms(attempt)));
  }
  return out;
}

}  // namespace edgelm::router
