// LocalBackend on a small shared conformance model: model ids, prompt-length and unknown-model
// errors, deterministic sampling, cancellation, the bounded FIFO queue, and streaming vs
// non-streaming over HTTP giving the same text.
#include "server/local-backend.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "server-test-util.h"
#include "server/http-server.h"
#include "test_util.h"

namespace edgelm::server {
namespace {

using nlohmann::json;

constexpr const char* kModel = "models/conf-llama-spm-q8_0.gguf";

CompletionRequest chat_request(const std::string& text, int max_tokens) {
  CompletionRequest r;
  r.endpoint = Endpoint::kChat;
  r.model = "conf-llama-spm-q8_0";
  r.messages = {{"user", text}};
  r.max_tokens = max_tokens;
  r.temperature = 0.0f;
  return r;
}

TEST(LocalBackendTest, MissingModelFileIsAClearError) {
  LocalBackendOptions o;
  o.model_path = "/nonexistent/model.gguf";
  auto b = LocalBackend::create(o);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("/nonexistent/model.gguf"), std::string::npos);
  o.n_parallel = 0;
  EXPECT_EQ(LocalBackend::create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(LocalBackendTest, ModelsErrorsAndGeneration) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto b = make_small_backend(path, 1, 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->models().size(), 1u);
  EXPECT_EQ(b->models()[0].id, "conf-llama-spm-q8_0");

  auto unknown = chat_request("hi", 4);
  unknown.model = "gpt-4o";
  EXPECT_EQ(b->prepare(unknown).status().code(), StatusCode::kNotFound);

  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  auto too_long = b->prepare(chat_request(long_text, 4));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_long.status().message().find("128"), std::string::npos);

  std::string a;
  std::string streamed;
  {
    auto c = b->prepare(chat_request("Hello there", 6));
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    auto out = (*c)->run(
        [&](std::string_view d) {
          streamed += d;
          return true;
        },
        nullptr);
    ASSERT_TRUE(out.ok());
    EXPECT_GT(out->prompt_tokens, 2);
    EXPECT_LE(out->completion_tokens, 6);
    EXPECT_GT(out->completion_tokens, 0);
    EXPECT_EQ(out->text, streamed);
    a = out->text;
  }
  {  // greedy is deterministic (and the cached prefix is reused)
    auto c = b->prepare(chat_request("Hello there", 6));
    ASSERT_TRUE(c.ok());
    auto out = (*c)->run({}, nullptr);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->text, a);
  }
  // Seeded sampling repeats; another seed (almost surely) differs over 12 tokens.
  auto sampled = [&](uint64_t seed) {
    auto r = chat_request("Hello there", 12);
    r.temperature = 1.0f;
    r.seed = seed;
    auto c = b->prepare(r);
    EXPECT_TRUE(c.ok());
    auto out = (*c)->run({}, nullptr);
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->text : std::string();
  };
  EXPECT_EQ(sampled(7), sampled(7));
  EXPECT_NE(sampled(7), sampled(8));
}

TEST(LocalBackendTest, ClientGoneCancels) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto b = make_small_backend(path, 1, 0);
  ASSERT_TRUE(b);
  auto r = chat_request("Hello", 50);
  r.temperature = 1.0f;
  r.seed = 1;
  auto c = b->prepare(r);
  ASSERT_TRUE(c.ok());
  int deltas = 0;
  auto out = (*c)->run([&](std::string_view) { return ++deltas < 2; }, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(deltas, 2);
  std::atomic<bool> cancel{true};
  auto c2 = (c->reset(), b->prepare(r));
  ASSERT_TRUE(c2.ok());
  auto out2 = (*c2)->run({}, &cancel);
  ASSERT_TRUE(out2.ok());
  EXPECT_EQ(out2->finish_reason, FinishReason::kCancelled);
}

TEST(LocalBackendTest, BoundedFifoQueue) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto b = make_small_backend(path, 1, 2);
  ASSERT_TRUE(b);
  auto held = b->prepare(chat_request("a", 1));
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(b->active(), 1);
  std::vector<int> order;
  std::mutex mu;
  auto waiter = [&](int id) {
    auto c = b->prepare(chat_request("b", 1));
    ASSERT_TRUE(c.ok());
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(id);
  };
  std::thread t1(waiter, 1);
  for (int i = 0; i < 500 && b->queue_depth() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::thread t2(waiter, 2);
  for (int i = 0; i < 500 && b->queue_depth() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(b->queue_depth(), 2);
  auto refused = b->prepare(chat_request("c", 1));  // queue full
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(api_error_from_status(refused.status()).http_status, 503);
  held->reset();  // frees the session: waiters proceed in arrival order
  t1.join();
  t2.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(b->queue_depth(), 0);
  EXPECT_EQ(b->active(), 0);
}

TEST(LocalBackendTest, HttpStreamingMatchesNonStreaming) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto b = make_small_backend(path, 2, 4);
  ASSERT_TRUE(b);
  ServerOptions so;
  so.port = 0;
  HttpServer server(*b, so);
  ASSERT_TRUE(server.bind().ok());
  std::thread t([&] { (void)server.serve(); });
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(30);
  json body = {{"model", "conf-llama-spm-q8_0"},
               {"messages", {{{"role", "user"}, {"content", "Tell me a story"}}}},
               {"max_tokens", 8},
               {"temperature", 0}};
  for (int i = 0; i < 200; ++i) {  // wait until it answers
    if (auto h = c.Get("/health"); h && h->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto plain = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  json j = json::parse(plain->body);
  const std::string text = j["choices"][0]["message"]["content"];
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 8);

  body["stream"] = true;
  auto streamed = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200);
  std::string joined;
  std::string finish;
  size_t pos = 0;
  while ((pos = streamed->body.find("data: ", pos)) != std::string::npos) {
    const size_t end = streamed->body.find("\n\n", pos);
    const std::string payload = streamed->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") break;
    json e = json::parse(payload);
    const auto& ch = e["choices"][0];
    if (ch["delta"].contains("content")) joined += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(finish, j["choices"][0]["finish_reason"]);
  server.stop();
  t.join();
}

}  // namespace
}  // namespace edgelm::server
