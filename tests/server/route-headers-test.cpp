// A routed completion's decision in the HTTP response: headers x-edgelm-route and
// x-edgelm-route-reason (sent before the first byte, control characters removed) on plain and
// streamed responses, "edgelm_route" in the JSON body and in the last SSE chunk; an unrouted
// backend's responses carry none of them.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "fake-backend.h"
#include "server/http-server.h"

namespace edgelm::server {
namespace {

using nlohmann::json;

// Wraps the fake backend's completions with a route decision.
class RoutedFake : public Backend {
 public:
  testing::FakeBackend inner;
  bool routed = true;
  std::vector<ModelInfo> models() const override { return inner.models(); }
  StatusOr<std::unique_ptr<Completion>> prepare(const CompletionRequest& r) override {
    ASSIGN_OR_RETURN(std::unique_ptr<Completion> c, inner.prepare(r));
    if (!routed) return c;
    return std::unique_ptr<Completion>(new Routed(std::move(c)));
  }

 private:
  class Routed : public Completion {
   public:
    explicit Routed(std::unique_ptr<Completion> c) : c_(std::move(c)) {}
    std::optional<RouteHeaders> route_headers() const override {
      return RouteHeaders{"cloud", "hint: prefer cloud\r\nx-injected: 1"};
    }
    StatusOr<CompletionOutcome> run(const DeltaCallback& on_delta,
                                    const std::atomic<bool>* cancel) override {
      ASSIGN_OR_RETURN(CompletionOutcome out, c_->run(on_delta, cancel));
      out.route_json = R"({"target":"device","reasons":["hint: prefer cloud","fallback"]})";
      return out;
    }

   private:
    std::unique_ptr<Completion> c_;
  };
};

class RouteHeadersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    server_ = std::make_unique<HttpServer>(backend_, o);
    ASSERT_TRUE(server_->bind().ok());
    thread_ = std::thread([this] { EXPECT_TRUE(server_->serve().ok()); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(10);
    for (int i = 0; i < 200; ++i) {
      if (auto r = client_->Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void TearDown() override {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  static std::string body(bool stream) {
    return json{{"model", "fake"},
                {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                {"max_tokens", 3},
                {"stream", stream}}
        .dump();
  }
  RoutedFake backend_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
};

TEST_F(RouteHeadersTest, PlainResponseHasHeadersAndBodyField) {
  auto r = client_->Post("/v1/chat/completions", body(false), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("x-edgelm-route"), "cloud");
  EXPECT_EQ(r->get_header_value("x-edgelm-route-reason"), "hint: prefer cloud  x-injected: 1");
  EXPECT_FALSE(r->has_header("x-injected"));
  auto j = json::parse(r->body);
  ASSERT_TRUE(j.contains("edgelm_route")) << r->body;
  EXPECT_EQ(j["edgelm_route"]["target"], "device");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "tok0 tok1 tok2");  // the rest unchanged
}

TEST_F(RouteHeadersTest, StreamHasHeadersAndDecisionInTheLastChunk) {
  auto r = client_->Post("/v1/chat/completions", body(true), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("x-edgelm-route"), "cloud");
  int with_route = 0;
  json last_finish;
  size_t pos = 0;
  while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
    const size_t end = r->body.find("\n\n", pos);
    const std::string data = r->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") continue;
    json e = json::parse(data);
    if (e.contains("edgelm_route")) {
      ++with_route;
      last_finish = e;
    }
  }
  EXPECT_EQ(with_route, 1);
  EXPECT_EQ(last_finish["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last_finish["edgelm_route"]["reasons"].size(), 2u);
}

TEST_F(RouteHeadersTest, UnroutedResponsesHaveNone) {
  backend_.routed = false;
  auto r = client_->Post("/v1/chat/completions", body(false), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_FALSE(r->has_header("x-edgelm-route"));
  EXPECT_FALSE(json::parse(r->body).contains("edgelm_route"));
}

}  // namespace
}  // namespace edgelm::server
