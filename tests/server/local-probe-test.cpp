// The optional Completion calls a router uses on LocalBackend (shared conformance model):
// probe_prompt() measures the next-token entropy and leaves the prompt cached (the answer that
// follows evaluates one token, and is the same greedy text as without the probe);
// set_before_token() installs a per-token hook whose refusal stops the answer
// (stopped_by_hook, finish_reason length). Backends that do not run the engine answer
// UNIMPLEMENTED.
#include <gtest/gtest.h>

#include "fake-backend.h"
#include "server-test-util.h"
#include "server/local-backend.h"
#include "test_util.h"

namespace edgelm::server {
namespace {

constexpr const char* kModel = "models/conf-llama-spm-q8_0.gguf";

CompletionRequest ask(int max_tokens) {
  CompletionRequest r;
  r.endpoint = Endpoint::kChat;
  r.model = "conf-llama-spm-q8_0";
  r.messages = {{"user", "What is the capital of France?"}};
  r.max_tokens = max_tokens;
  r.temperature = 0.0f;
  return r;
}

TEST(LocalProbe, ProbeLeavesThePromptCached) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto probed = make_small_backend(path);
  auto plain = make_small_backend(path);
  ASSERT_TRUE(probed && plain);
  auto c = probed->prepare(ask(6));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto p = (*c)->probe_prompt();
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_GT(p->prompt_tokens, 1);
  EXPECT_GT(p->entropy, 0.0);
  auto out = (*c)->run([](std::string_view) { return true; }, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_TRUE(out->generation.has_value());
  EXPECT_EQ(out->generation->stats.prefill_tokens, 1);  // only the last prompt token again
  EXPECT_EQ(out->generation->stats.cached_tokens, p->prompt_tokens - 1);
  auto c2 = plain->prepare(ask(6));
  ASSERT_TRUE(c2.ok());
  auto out2 = (*c2)->run([](std::string_view) { return true; }, nullptr);
  ASSERT_TRUE(out2.ok());
  EXPECT_EQ(out->text, out2->text);
  EXPECT_FALSE(out->stopped_by_hook);
}

TEST(LocalProbe, BeforeTokenHookStopsTheAnswer) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto b = make_small_backend(path);
  ASSERT_TRUE(b);
  auto c = b->prepare(ask(12));
  ASSERT_TRUE(c.ok());
  std::vector<int> calls;
  (*c)->set_before_token([&](int n) {
    calls.push_back(n);
    return n < 2;
  });
  auto out = (*c)->run([](std::string_view) { return true; }, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE(out->stopped_by_hook);
  EXPECT_EQ(out->finish_reason, FinishReason::kLength);
  EXPECT_EQ(out->completion_tokens, 2);
  EXPECT_EQ(calls, (std::vector<int>{0, 1, 2}));
}

TEST(LocalProbe, OtherBackendsDoNotProbe) {
  testing::FakeBackend fake;
  CompletionRequest r;
  r.model = "fake";
  r.messages = {{"user", "hi"}};
  auto c = fake.prepare(r);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->probe_prompt().status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE((*c)->route_headers().has_value());
}

}  // namespace
}  // namespace edgelm::server
