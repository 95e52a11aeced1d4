// The request parser: valid requests map onto CompletionRequest; every malformed one gets a 4xx
// OpenAI error naming the parameter; thousands of mutated and random bodies never crash it.
#include "server/request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace edgelm::server {
namespace {

using nlohmann::json;

ParseResult chat(const std::string& body) { return parse_request(Endpoint::kChat, body); }

TEST(RequestTest, ParsesAFullChatRequest) {
  auto r = chat(R"({"model":"m","messages":[{"role":"system","content":"Be brief."},
    {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]},
    {"role":"assistant","content":null},{"role":"developer","content":"d"}],
    "stream":true,"stream_options":{"include_usage":true},"max_tokens":12,"temperature":0.5,
    "top_p":0.9,"seed":42,"stop":["\n\n","END"],"n":1,"frequency_penalty":0.1,
    "presence_penalty":-0.2,"user":"u1","logprobs":false,"tools":[]})");
  ASSERT_TRUE(r.ok()) << r.error->to_json();
  const auto& q = r.request;
  EXPECT_EQ(q.model, "m");
  ASSERT_EQ(q.messages.size(), 4u);
  EXPECT_EQ(q.messages[0].role, "system");
  EXPECT_EQ(q.messages[1].content, "Hi there");
  EXPECT_EQ(q.messages[2].role, "assistant");
  EXPECT_EQ(q.messages[2].content, "");
  EXPECT_EQ(q.messages[3].role, "system");  // developer -> system
  EXPECT_TRUE(q.stream);
  EXPECT_TRUE(q.include_usage);
  EXPECT_EQ(q.max_tokens, 12);
  EXPECT_FLOAT_EQ(q.temperature, 0.5f);
  EXPECT_FLOAT_EQ(q.top_p, 0.9f);
  EXPECT_EQ(q.seed, 42u);
  EXPECT_EQ(q.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_FLOAT_EQ(q.frequency_penalty, 0.1f);
  EXPECT_FLOAT_EQ(q.presence_penalty, -0.2f);
  EXPECT_EQ(q.user, "u1");
}

TEST(RequestTest, DefaultsFollowOpenAi) {
  auto r = chat(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.request.stream);
  EXPECT_FALSE(r.request.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.request.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.request.top_p, 1.0f);
  EXPECT_FALSE(r.request.seed.has_value());
  EXPECT_TRUE(r.request.stop.empty());
}

TEST(RequestTest, CompletionPromptForms) {
  auto a = parse_request(Endpoint::kCompletion,
                         R"({"model":"m","prompt":"Once","max_completion_tokens":3,"stop":"."})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.request.prompt, "Once");
  EXPECT_EQ(a.request.max_tokens, 3);
  EXPECT_EQ(a.request.stop, std::vector<std::string>{"."});
  auto b = parse_request(Endpoint::kCompletion, R"({"model":"m","prompt":["One"]})");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.request.prompt, "One");
  for (const char* bad :
       {R"({"model":"m","prompt":["a","b"]})", R"({"model":"m","prompt":[1,2]})",
        R"({"model":"m","prompt":""})", R"({"model":"m"})", R"({"model":"m","prompt":{}})"}) {
    auto r = parse_request(Endpoint::kCompletion, bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error->http_status, 400);
    EXPECT_EQ(r.error->param, "prompt") << bad;
  }
}

TEST(RequestTest, ErrorsNameTheParameter) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":3,"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":[1]})", "messages[0]"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})",
       "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})",
       "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_p":-1})", "top_p"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"seed":"1"})", "seed"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":3})", "n"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop[0]"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":{}})", "stop"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true})", "logprobs"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
       "tools"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{}})",
       "stream_options"},
  };
  for (const auto& c : cases) {
    auto r = chat(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error->http_status, 400) << c.body;
    EXPECT_EQ(r.error->param, c.param) << c.body << " -> " << r.error->to_json();
    EXPECT_FALSE(r.error->message.empty());
    json j = json::parse(r.error->to_json());
    EXPECT_EQ(j["error"]["param"], c.param);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  }
}

TEST(RequestTest, MalformedBodies) {
  for (const char* body : {"", "{", "nul", "[]", "\"str\"", "42", "{\"model\":}", "{} extra"}) {
    auto r = chat(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error->http_status, 400);
    EXPECT_EQ(r.error->code, "invalid_json") << body;
    EXPECT_TRUE(json::parse(r.error->to_json())["error"]["param"].is_null());
  }
  // Invalid UTF-8 inside a string is rejected as malformed JSON.
  EXPECT_FALSE(chat("{\"model\":\"\xff\",\"messages\":[]}").ok());
}

TEST(RequestTest, LimitsOnSizeAndDepth) {
  RequestLimits limits;
  limits.max_body_bytes = 100;
  auto big = parse_request(Endpoint::kChat, std::string(101, ' '), limits);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error->http_status, 413);
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto d = chat(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error->http_status, 400);
  // Brackets inside strings do not count.
  auto s = chat(R"({"model":"m","messages":[{"role":"user","content":")" + std::string(1000, '[') +
                R"("}]})");
  EXPECT_TRUE(s.ok());
  std::string many_stops = R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[)";
  for (int i = 0; i < 17; ++i) many_stops += std::string(i ? "," : "") + "\"s\"";
  EXPECT_FALSE(chat(many_stops + "]}").ok());
}

TEST(RequestTest, StatusMapping) {
  EXPECT_EQ(api_error_from_status(Status::not_found("x")).http_status, 404);
  EXPECT_EQ(api_error_from_status(Status::resource_exhausted("x")).http_status, 503);
  EXPECT_EQ(api_error_from_status(Status::out_of_range("x")).code, "context_length_exceeded");
  EXPECT_EQ(api_error_from_status(Status::internal("x")).http_status, 500);
}

// Thousands of mutated valid requests and random byte strings: each must parse or give a
// well-formed 4xx error; nothing crashes (the libFuzzer target tests/fuzz/fuzz-server-request
// explores further).
TEST(RequestTest, MutatedAndRandomBodiesNeverCrash) {
  const std::vector<std::string> seeds = {
      R"({"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":8,
          "stream":true,"stop":["a","b"],"temperature":0.7,"seed":1})",
      R"({"model":"m","prompt":"Once upon","max_tokens":4,"echo":true,"top_p":0.5})",
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
          "stream_options":{"include_usage":true},"stream":true})",
  };
  const std::string alphabet = "{}[]\":,0123456789.-eE truefalsnul\\u\x01\xc3\xa9\xff";
  std::mt19937 rng(12345);
  int ok = 0;
  int errors = 0;
  for (int iter = 0; iter < 6000; ++iter) {
    std::string body = seeds[iter % seeds.size()];
    if (iter % 5 == 4) {  // purely random
      body.clear();
      const int n = rng() % 200;
      for (int i = 0; i < n; ++i) body += alphabet[rng() % alphabet.size()];
    } else {
      const int edits = 1 + rng() % 4;
      for (int e = 0; e < edits && !body.empty(); ++e) {
        const size_t pos = rng() % body.size();
        switch (rng() % 4) {
          case 0:
            body.erase(pos, 1 + rng() % 3);
            break;
          case 1:
            body.insert(pos, 1, alphabet[rng() % alphabet.size()]);
            break;
          case 2:
            body[pos] = alphabet[rng() % alphabet.size()];
            break;
          default:
            body.insert(pos, body.substr(rng() % body.size(), rng() % 20));
            break;
        }
      }
    }
    const Endpoint ep = iter % 2 ? Endpoint::kChat : Endpoint::kCompletion;
    ParseResult r = parse_request(ep, body);
    if (r.ok()) {
      ++ok;
      EXPECT_EQ(r.request.endpoint, ep);
      if (ep == Endpoint::kChat) {
        EXPECT_FALSE(r.request.messages.empty());
      } else {
        EXPECT_FALSE(r.request.prompt.empty());
      }
      EXPECT_GE(r.request.max_tokens.value_or(1), 1);
    } else {
      ++errors;
      ASSERT_GE(r.error->http_status, 400) << body;
      ASSERT_LT(r.error->http_status, 500) << body;
      ASSERT_FALSE(r.error->message.empty()) << body;
      json j = json::parse(r.error->to_json(), nullptr, false);
      ASSERT_TRUE(j.is_object() && j["error"].is_object()) << body;
    }
  }
  EXPECT_GT(ok, 100);  // the mutations keep some requests valid
  EXPECT_GT(errors, 1000);
}

}  // namespace
}  // namespace edgelm::server
