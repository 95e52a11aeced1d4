// The libcurl cloud client against an in-process fake OpenAI server (fault-proxy.h): plain and
// streamed answers, retries on 500 with backoff, no retry on a cut stream that delivered text,
// timeouts on slow answers, refused connections, malformed answers, and the circuit breaker
// opening so that later requests are not even sent. Also the SSE parser on split input.
#include "runtime/router/cloud-client.h"

#include <gtest/gtest.h>

#include "fault-proxy.h"

namespace edgelm::router {
namespace {

using testing::Fault;
using testing::FaultProxy;

CloudOptions fast_options(const std::string& url) {
  CloudOptions o;
  o.url = url;
  o.connect_timeout_ms = 500;
  o.timeout_ms = 5000;
  o.backoff = {.max_retries = 2, .base_ms = 5, .max_ms = 20, .seed = 1};
  o.breaker = {.failure_threshold = 100, .open_ms = 60000};
  return o;
}

RouteRequest hello(bool stream) {
  RouteRequest r;
  r.messages = {{"user", "Hello there"}};
  r.max_tokens = 8;
  r.stream = stream;
  return r;
}

TEST(SseParser, SplitAnywhere) {
  const std::string s =
      "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
      ": a comment\n\n"
      "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  for (size_t step : {1u, 3u, 7u, 1000u}) {
    std::string got;
    SseParser p([&](std::string_view t) {
      got += t;
      return true;
    });
    for (size_t i = 0; i < s.size(); i += step) {
      ASSERT_TRUE(p.feed(std::string_view(s).substr(i, step)).ok());
    }
    EXPECT_EQ(got, "Hello");
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.finish_reason(), "stop");
  }
  SseParser bad({});
  EXPECT_FALSE(bad.feed("data: {not json\n\n").ok());
  // The usage-only chunk that stream_options.include_usage asks for.
  SseParser with_usage({});
  ASSERT_TRUE(with_usage
                  .feed("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
                        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
                        "\"completion_tokens\":3,\"total_tokens\":10}}\n\ndata: [DONE]\n\n")
                  .ok());
  EXPECT_EQ(with_usage.usage().prompt_tokens, 7);
  EXPECT_EQ(with_usage.usage().completion_tokens, 3);
  SseParser odd_usage({});
  ASSERT_TRUE(odd_usage.feed("data: {\"usage\":{\"prompt_tokens\":\"many\"}}\n\n").ok());
  EXPECT_EQ(odd_usage.usage().prompt_tokens, 0);
}

TEST(CloudClient, EndpointAndBody) {
  CloudClient a(fast_options("http://h:1"));
  EXPECT_EQ(a.endpoint(), "http://h:1/v1/chat/completions");
  CloudClient b(fast_options("https://api.x.com/v1/"));
  EXPECT_EQ(b.endpoint(), "https://api.x.com/v1/chat/completions");
  RouteRequest r;
  r.prompt = "plain prompt";
  r.max_tokens = 5;
  auto j = nlohmann::json::parse(a.request_body(r));
  EXPECT_EQ(j["messages"][0]["content"], "plain prompt");
  EXPECT_EQ(j["messages"][0]["role"], "user");
  EXPECT_EQ(j["max_tokens"], 5);
  EXPECT_EQ(j["stream"], false);
  EXPECT_FALSE(j.contains("stream_options"));
  r.stream = true;
  j = nlohmann::json::parse(a.request_body(r));
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
}

TEST(CloudClient, PlainAndStreamedAnswers) {
  FaultProxy proxy("one two three");
  CloudClient cloud(fast_options(proxy.url()));
  std::string streamed;
  auto on = [&](std::string_view t) {
    streamed += t;
    return true;
  };
  CloudOutcome out = cloud.complete(hello(false), on);
  ASSERT_TRUE(out.status.ok()) << out.status.to_string();
  EXPECT_EQ(out.text, "one two three");
  EXPECT_EQ(out.finish_reason, "stop");
  ASSERT_EQ(out.tries.size(), 1u);
  EXPECT_EQ(out.tries[0].http_status, 200);
  streamed.clear();
  out = cloud.complete(hello(true), on);
  ASSERT_TRUE(out.status.ok()) << out.status.to_string();
  EXPECT_EQ(out.text, "one two three");
  EXPECT_EQ(streamed, "one two three");
  EXPECT_EQ(proxy.requests(), 2);
}

TEST(CloudClient, ApiKeyGoesWithEveryRequest) {
  FaultProxy proxy;  // no upstream: its /v1/models is a 404, so the model falls back to "default"
  CloudOptions o = fast_options(proxy.url());
  o.api_key = "sk-test";
  CloudClient cloud(o);
  ASSERT_TRUE(cloud.complete(hello(false), {}).status.ok());
  ASSERT_TRUE(cloud.complete(hello(true), {}).status.ok());
  const std::vector<std::string> want = {
      "GET /v1/models: Bearer sk-test", "POST /v1/chat/completions: Bearer sk-test",
      "GET /v1/models: Bearer sk-test", "POST /v1/chat/completions: Bearer sk-test"};
  EXPECT_EQ(proxy.authorizations(), want);
  CloudClient anonymous(fast_options(proxy.url()));
  ASSERT_TRUE(anonymous.complete(hello(false), {}).status.ok());
  EXPECT_EQ(proxy.authorizations().back(), "POST /v1/chat/completions: ");
}

TEST(CloudClient, RetriesServerErrorsThenSucceeds) {
  FaultProxy proxy;
  CloudClient cloud(fast_options(proxy.url()));
  proxy.set_fault(Fault::kHttp500, 2);
  CloudOutcome out = cloud.complete(hello(false), {});
  ASSERT_TRUE(out.status.ok()) << out.status.to_string();
  ASSERT_EQ(out.tries.size(), 3u);
  EXPECT_EQ(out.tries[0].http_status, 500);
  EXPECT_FALSE(out.tries[0].ok);
  EXPECT_NE(out.tries[0].error.find("HTTP 500"), std::string::npos);
  EXPECT_TRUE(out.tries[2].ok);
  proxy.set_fault(Fault::kHttp500, -1);
  out = cloud.complete(hello(false), {});
  EXPECT_FALSE(out.status.ok());
  EXPECT_EQ(out.tries.size(), 3u);  // 1 + max_retries
}

TEST(CloudClient, StreamCutAfterTextIsNotRetried) {
  FaultProxy proxy("alpha beta gamma delta epsilon zeta");
  CloudClient cloud(fast_options(proxy.url()));
  proxy.set_fault(Fault::kCutStream, 1);
  std::string streamed;
  CloudOutcome out = cloud.complete(hello(true), [&](std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.tries.size(), 1u);  // text was delivered: a retry would repeat it
  EXPECT_FALSE(out.text.empty());
  EXPECT_EQ(out.text, streamed);
  EXPECT_EQ(std::string("alpha beta gamma delta epsilon zeta").rfind(out.text, 0), 0u);
  EXPECT_LT(out.text.size(), 30u);
}

TEST(CloudClient, SlowAnswerTimesOut) {
  FaultProxy proxy;
  CloudOptions o = fast_options(proxy.url());
  o.timeout_ms = 300;
  o.backoff.max_retries = 1;
  CloudClient cloud(o);
  proxy.set_fault(Fault::kSlow, 1, 1200);
  CloudOutcome out = cloud.complete(hello(false), {});
  ASSERT_TRUE(out.status.ok()) << out.status.to_string();  // the retry is fast
  ASSERT_EQ(out.tries.size(), 2u);
  EXPECT_NE(out.tries[0].error.find("imeout"), std::string::npos) << out.tries[0].error;
  EXPECT_LT(out.tries[0].ms, 1100);
}

TEST(CloudClient, MalformedAnswerIsAnError) {
  FaultProxy proxy;
  CloudOptions o = fast_options(proxy.url());
  o.backoff.max_retries = 0;
  CloudClient cloud(o);
  proxy.set_fault(Fault::kBadJson, 1);
  CloudOutcome out = cloud.complete(hello(false), {});
  ASSERT_FALSE(out.status.ok());
  EXPECT_NE(out.status.message().find("not a chat completion"), std::string::npos);
}

TEST(CloudClient, RefusedConnectionsOpenTheBreaker) {
  FaultProxy proxy;
  const std::string url = proxy.url();
  proxy.stop();  // nothing listens there now
  CloudOptions o = fast_options(url);
  o.backoff.max_retries = 1;
  o.breaker = {.failure_threshold = 3, .open_ms = 60000};
  CloudClient cloud(o);
  EXPECT_TRUE(cloud.available());
  CloudOutcome out = cloud.complete(hello(false), {});
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.tries.size(), 2u);
  EXPECT_EQ(out.tries[0].http_status, 0);
  EXPECT_NE(out.tries[0].error.find("onnect"), std::string::npos) << out.tries[0].error;
  out = cloud.complete(hello(false), {});  // third failure opens it, fourth is not sent
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(cloud.breaker().state(), BreakerState::kOpen);
  EXPECT_FALSE(cloud.available());
  EXPECT_NE(cloud.unavailable_reason().find("open"), std::string::npos);
  EXPECT_NE(out.tries.back().error.find("circuit breaker"), std::string::npos);
  out = cloud.complete(hello(false), {});
  ASSERT_EQ(out.tries.size(), 1u);
  EXPECT_NE(out.tries[0].error.find("not sent"), std::string::npos);
}

TEST(CloudClient, HalfOpenTrialClosesTheBreaker) {
  double now = 0;
  FaultProxy proxy;
  CloudOptions o = fast_options(proxy.url());
  o.backoff.max_retries = 0;
  o.breaker = {.failure_threshold = 2, .open_ms = 1000};
  CloudClient cloud(o, [&] { return now; });
  proxy.set_fault(Fault::kHttp500, 2);
  EXPECT_FALSE(cloud.complete(hello(false), {}).status.ok());
  EXPECT_FALSE(cloud.complete(hello(false), {}).status.ok());
  EXPECT_EQ(cloud.breaker().state(), BreakerState::kOpen);
  EXPECT_FALSE(cloud.complete(hello(false), {}).status.ok());
  EXPECT_EQ(proxy.requests(), 2);  // the third was not sent
  now = 1500;
  EXPECT_EQ(cloud.breaker().state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(cloud.complete(hello(false), {}).status.ok());
  EXPECT_EQ(cloud.breaker().state(), BreakerState::kClosed);
}

}  // namespace
}  // namespace edgelm::router
