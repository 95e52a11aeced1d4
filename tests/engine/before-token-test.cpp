// GenerateParams::before_token: called before the prompt and before every decode step;
// returning false stops generation with stop_reason "governor".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/session.h"
#include "fakes.h"

namespace edgelm {
namespace {

using testing::ByteCodec;
using testing::FakeExecutor;
using testing::scripted;

struct HookFixture {
  std::shared_ptr<ByteCodec> codec = std::make_shared<ByteCodec>();
  FakeExecutor* exec = nullptr;
  std::unique_ptr<Session> session;
  HookFixture() {
    std::vector<int32_t> script(64, ByteCodec::tok('x'));
    auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), 256, scripted(script, 3));
    exec = e.get();
    session = std::make_unique<Session>(std::move(e), codec);
  }
};

GenerateParams greedy(int n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampling = SamplingParams::greedy();
  return p;
}

TEST(BeforeToken, CalledBeforePromptAndEachDecodeStep) {
  HookFixture f;
  std::vector<int> calls;
  GenerateParams p = greedy(5);
  p.before_token = [&](int n) {
    calls.push_back(n);
    return true;
  };
  auto r = f.session->generate("hi", p);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->tokens.size(), 5u);
  EXPECT_EQ(r->stop_reason, StopReason::kMaxTokens);
  // Before the prompt, then before the 4 decode evaluations (the 5th token needs none).
  EXPECT_EQ(calls, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(BeforeToken, FalseStopsWithGovernorReason) {
  HookFixture f;
  GenerateParams p = greedy(20);
  p.before_token = [](int n) { return n < 3; };
  auto r = f.session->generate("hi", p);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stop_reason, StopReason::kGovernor);
  EXPECT_EQ(r->text, "xxx");
  auto j = nlohmann::json::parse(r->stats.to_json());
  EXPECT_EQ(j["stop_reason"], "governor");
}

TEST(BeforeToken, RefusalBeforePromptDoesNoWork) {
  HookFixture f;
  GenerateParams p = greedy(20);
  p.before_token = [](int) { return false; };
  auto r = f.session->generate("hi", p);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stop_reason, StopReason::kGovernor);
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_EQ(f.exec->evaluated, 0);
  // The session stays usable.
  p.before_token = nullptr;
  p.max_tokens = 2;
  auto r2 = f.session->generate("hi", p);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->text, "xx");
}

}  // namespace
}  // namespace edgelm
