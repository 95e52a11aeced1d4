// The HTTP layer against a scripted backend: routes, OpenAI response shapes, server-sent
// events, errors, authentication, a full queue and cancellation on disconnect.
#include "server/http-server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "fake-backend.h"

namespace edgelm::server {
namespace {

using nlohmann::json;
using testing::FakeBackend;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.port = 0;
    o.host = "127.0.0.1";
    server_ = std::make_unique<HttpServer>(fake_, o);
    ASSERT_TRUE(server_->bind().ok());
    thread_ = std::thread([this] { EXPECT_TRUE(server_->serve().ok()); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(10);
    for (int i = 0; i < 200; ++i) {  // wait until it answers
      if (auto r = client_->Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       httplib::Headers headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }
  // Streams a request; returns the "data: " payloads in order.
  std::vector<std::string> stream(const std::string& path, const json& body, int* status,
                                  int stop_after_bytes = -1) {
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    std::string buf;
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      buf.append(d, n);
      return stop_after_bytes < 0 || static_cast<int>(buf.size()) < stop_after_bytes;
    };
    auto r = client_->send(req);
    *status = r ? r->status : -1;
    std::vector<std::string> events;
    size_t pos = 0;
    while ((pos = buf.find("data: ", pos)) != std::string::npos) {
      size_t end = buf.find("\n\n", pos);
      if (end == std::string::npos) break;
      events.push_back(buf.substr(pos + 6, end - pos - 6));
      pos = end + 2;
    }
    return events;
  }
  static json chat_body(int max_tokens = 4) {
    return {{"model", "fake"},
            {"messages", {{{"role", "user"}, {"content", "hello"}}}},
            {"max_tokens", max_tokens}};
  }

  FakeBackend fake_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
};

TEST_F(ServerTest, ChatCompletionNonStreaming) {
  start();
  auto r = post("/v1/chat/completions", chat_body(3).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "fake");
  EXPECT_TRUE(j["id"].get<std::string>().starts_with("chatcmpl-"));
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "tok0 tok1 tok2");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 6);
  EXPECT_EQ(fake_.last.messages.at(0).content, "hello");
}

TEST_F(ServerTest, CompletionNonStreamingWithEcho) {
  start();
  auto r =
      post("/v1/completions",
           json{{"model", "fake"}, {"prompt", "Once"}, {"max_tokens", 2}, {"echo", true}}.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "Oncetok0 tok1");
}

TEST_F(ServerTest, ChatStreamingSendsRoleDeltasFinishAndDone) {
  start();
  json body = chat_body(3);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  int status = 0;
  auto events = stream("/v1/chat/completions", body, &status);
  ASSERT_EQ(status, 200);
  ASSERT_EQ(events.size(), 1u + 3u + 1u + 1u + 1u);  // role, 3 deltas, finish, usage, DONE
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (int i = 1; i <= 3; ++i) {
    json e = json::parse(events[i]);
    EXPECT_TRUE(e["choices"][0]["finish_reason"].is_null());
    text += e["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "tok0 tok1 tok2");
  EXPECT_EQ(json::parse(events[4])["choices"][0]["finish_reason"], "length");
  json usage = json::parse(events[5]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 3);
  EXPECT_EQ(events[6], "[DONE]");
}

TEST_F(ServerTest, CompletionStreaming) {
  start();
  int status = 0;
  auto events =
      stream("/v1/completions",
             {{"model", "fake"}, {"prompt", "x"}, {"max_tokens", 2}, {"stream", true}}, &status);
  ASSERT_EQ(status, 200);
  ASSERT_EQ(events.size(), 4u);  // 2 deltas, finish, DONE
  EXPECT_EQ(json::parse(events[0])["choices"][0]["text"], "tok0");
  EXPECT_EQ(json::parse(events[0])["object"], "text_completion");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(ServerTest, ModelsHealthMetrics) {
  start();
  auto m = client_->Get("/v1/models");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "fake");
  EXPECT_EQ(j["data"][0]["object"], "model");
  auto one = client_->Get("/v1/models/fake");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  auto none = client_->Get("/v1/models/nope");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "model_not_found");

  ASSERT_EQ(post("/v1/chat/completions", chat_body(2).dump())->status, 200);
  // The request counter is bumped by the HTTP library's logger, which runs after the last byte
  // is sent: the client can ask for /metrics before that, so wait for it (at most 5 s).
  const std::string counted = "edgelm_requests_total{endpoint=\"chat\",code=\"200\"} 1";
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    auto r = client_->Get("/metrics");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    metrics = r->body;
    if (metrics.find(counted) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(metrics.find(counted), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("edgelm_completion_tokens_total 2"), std::string::npos);
  EXPECT_NE(metrics.find("edgelm_time_to_first_token_seconds_count 1"), std::string::npos);
  EXPECT_NE(metrics.find("edgelm_queue_depth 0"), std::string::npos);
}

TEST_F(ServerTest, BadRequestsGetOpenAiErrorsAndTheServerKeepsServing) {
  ServerOptions o;
  o.limits.max_body_bytes = 4096;
  start(o);
  struct Case {
    std::string path;
    std::string body;
    int status;
    std::string param;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "{not json", 400, ""},
      {"/v1/chat/completions", "[1,2]", 400, ""},
      {"/v1/chat/completions", R"({"model":"fake"})", 400, "messages"},
      {"/v1/chat/completions", R"({"model":"fake","messages":"hi"})", 400, "messages"},
      {"/v1/chat/completions", R"({"model":"fake","messages":[{"role":"user","content":"x"}],
        "temperature":"hot"})",
       400, "temperature"},
      {"/v1/chat/completions", R"({"model":"fake","messages":[{"role":"user","content":"x"}],
        "max_tokens":-3})",
       400, "max_tokens"},
      {"/v1/chat/completions", R"({"model":"fake","messages":[{"role":"user","content":"x"}],
        "n":2})",
       400, "n"},
      {"/v1/chat/completions", R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})",
       404, "model"},
      {"/v1/chat/completions",
       json{{"model", "fake"},
            {"messages", {{{"role", "user"}, {"content", std::string(2000, 'a')}}}}}
           .dump(),
       400, "messages"},
      {"/v1/completions", R"({"model":"fake","prompt":7})", 400, "prompt"},
      {"/v1/chat/completions", std::string(5000, ' '), 413, ""},
  };
  for (const auto& c : cases) {
    auto r = post(c.path, c.body);
    ASSERT_TRUE(r) << c.body;
    EXPECT_EQ(r->status, c.status) << c.body << " -> " << r->body;
    json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    ASSERT_TRUE(j["error"].is_object()) << r->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_TRUE(j["error"].contains("code"));
    if (c.param.empty()) {
      EXPECT_TRUE(j["error"]["param"].is_null()) << r->body;
    } else {
      EXPECT_EQ(j["error"]["param"], c.param) << r->body;
    }
  }
  auto unknown = client_->Get("/v2/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_TRUE(json::parse(unknown->body)["error"].is_object());
  // Still serving.
  auto ok = post("/v1/chat/completions", chat_body(1).dump());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerTest, ApiKeyIsRequiredWhenSet) {
  ServerOptions o;
  o.api_key = "sekrit";
  start(o);
  auto none = post("/v1/chat/completions", chat_body().dump());
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "invalid_api_key");
  auto wrong = post("/v1/chat/completions", chat_body().dump(), {{"Authorization", "Bearer nope"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto models = client_->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  auto right =
      post("/v1/chat/completions", chat_body().dump(), {{"Authorization", "Bearer sekrit"}});
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServerTest, FullQueueGets503WithJsonError) {
  fake_.slots = 1;
  fake_.delay = std::chrono::milliseconds(20);
  start();
  std::thread busy([this] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(10);
    auto r = c.Post("/v1/chat/completions", chat_body(20).dump(), "application/json");
    EXPECT_TRUE(r && r->status == 200);
  });
  for (int i = 0; i < 500 && fake_.running.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto r = post("/v1/chat/completions", chat_body().dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  json j = json::parse(r->body);
  EXPECT_EQ(j["error"]["code"], "queue_full");
  busy.join();
  auto after = post("/v1/chat/completions", chat_body(1).dump());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(ServerTest, StreamingClientDisconnectCancelsGeneration) {
  fake_.delay = std::chrono::milliseconds(5);
  // The request is in the metrics by the time its slot is free (CI once read 0 here: the slot
  // was freed before the request was counted).
  std::atomic<int> cancelled_at_release{-1};
  fake_.on_release = [&] {
    cancelled_at_release = static_cast<int>(server_->metrics().cancelled());
  };
  start();
  json body = chat_body(100000);  // would take minutes
  body["stream"] = true;
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto events = stream("/v1/chat/completions", body, &status, /*stop_after_bytes=*/600);
  EXPECT_GE(events.size(), 2u);
  for (int i = 0; i < 1000 && fake_.cancelled.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fake_.cancelled.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  for (int i = 0; i < 200 && fake_.running.load() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fake_.running.load(), 0);  // the slot is free again
  EXPECT_EQ(cancelled_at_release.load(), 1);
  EXPECT_EQ(server_->metrics().cancelled(), 1u);
}

TEST_F(ServerTest, NonStreamingClientDisconnectCancelsGeneration) {
  fake_.delay = std::chrono::milliseconds(5);
  std::atomic<int> cancelled_at_release{-1};  // counted before the slot is freed, as above
  fake_.on_release = [&] {
    cancelled_at_release = static_cast<int>(server_->metrics().cancelled());
  };
  start();
  // A raw client that sends the request, reads the response headers and hangs up.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string body = chat_body(100000).dump();
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  char buf[256];
  ASSERT_GT(::recv(fd, buf, sizeof(buf), 0), 0);  // headers: generation has started
  ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000 && fake_.cancelled.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fake_.cancelled.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  for (int i = 0; i < 400 && fake_.running.load() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(cancelled_at_release.load(), 1);
}

TEST_F(ServerTest, StopCancelsRunningGenerations) {
  fake_.delay = std::chrono::milliseconds(5);
  start();
  std::thread t([this] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(20);
    json body = chat_body(100000);
    body["stream"] = true;
    (void)c.Post("/v1/chat/completions", body.dump(), "application/json");
  });
  for (int i = 0; i < 1000 && fake_.running.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  t.join();
  EXPECT_EQ(fake_.running.load(), 0);
}

}  // namespace
}  // namespace edgelm::server
