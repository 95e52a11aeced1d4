// The governor plugged into a real Session (fake executor) through make_before_token_hook:
// pacing spaces the tokens on the wall clock; a refusal stops generation with stop_reason
// "governor" and the refusal's reason.
#include "runtime/governor/engine-hook.h"

#include <gtest/gtest.h>

#include <chrono>

#include "../../engine/fakes.h"
#include "engine/session.h"

namespace edgelm::governor {
namespace {

using edgelm::testing::ByteCodec;
using edgelm::testing::FakeExecutor;
using edgelm::testing::scripted;

struct Fx {
  std::shared_ptr<ByteCodec> codec = std::make_shared<ByteCodec>();
  std::unique_ptr<Session> session;
  Fx() {
    std::vector<int32_t> script(64, ByteCodec::tok('y'));
    session = std::make_unique<Session>(
        std::make_unique<FakeExecutor>(codec->n_vocab(), 256, scripted(script, 3)), codec);
  }
};

GenerateParams greedy(int n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampling = SamplingParams::greedy();
  return p;
}

using Clock = std::chrono::steady_clock;

TEST(EngineHook, PacingSpacesTokens) {
  Fx f;
  auto policy = parse_policy(R"({"token_budget": {"tokens_per_s": 50, "burst": 1}})");
  ASSERT_TRUE(policy.ok());
  auto gov = std::make_shared<Governor>(*policy, nullptr);
  auto outcome = std::make_shared<HookOutcome>();
  GenerateParams p = greedy(8);
  p.before_token = make_before_token_hook(gov, outcome);
  std::vector<Clock::time_point> times;
  auto t0 = Clock::now();
  auto r = f.session->generate("hi", p, [&](std::string_view, int32_t) {
    times.push_back(Clock::now());
    return true;
  });
  const double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->tokens.size(), 8u);
  EXPECT_EQ(r->stop_reason, StopReason::kMaxTokens);
  // 8 hook calls, 1 token of burst: 7 x 20 ms of pacing at least.
  EXPECT_GE(total_s, 0.139);
  EXPECT_GE(outcome->deferrals, 7);
  EXPECT_GT(outcome->slept_ms, 0);
  ASSERT_EQ(times.size(), 8u);
  for (size_t i = 1; i < times.size(); ++i) {
    const double gap_ms =
        std::chrono::duration<double, std::milli>(times[i] - times[i - 1]).count();
    EXPECT_GE(gap_ms, 10.0) << "tokens " << i - 1 << " and " << i;
  }
}

TEST(EngineHook, WithoutABudgetNoPacing) {
  Fx f;
  auto gov = std::make_shared<Governor>(GovernorPolicy{}, nullptr);
  auto outcome = std::make_shared<HookOutcome>();
  GenerateParams p = greedy(8);
  p.before_token = make_before_token_hook(gov, outcome);
  auto r = f.session->generate("hi", p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens.size(), 8u);
  EXPECT_EQ(outcome->deferrals, 0);
  EXPECT_EQ(outcome->slept_ms, 0);
}

TEST(EngineHook, RefusalStopsGenerationWithTheReason) {
  Fx f;
  auto policy = parse_policy(R"({"require_plugged": true, "sensor_interval_ms": 0})");
  ASSERT_TRUE(policy.ok());
  auto sensor = std::make_shared<PushedSensor>();
  sensor->set_plugged(true);
  auto gov = std::make_shared<Governor>(*policy, sensor);
  auto outcome = std::make_shared<HookOutcome>();
  GenerateParams p = greedy(30);
  p.before_token = make_before_token_hook(gov, outcome);
  int seen = 0;
  auto r = f.session->generate("hi", p, [&](std::string_view, int32_t) {
    if (++seen == 4) sensor->set_plugged(false);  // the charger is pulled mid-answer
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stop_reason, StopReason::kGovernor);
  EXPECT_EQ(r->tokens.size(), 4u);
  EXPECT_EQ(outcome->last.action, Action::kRefuse);
  EXPECT_EQ(outcome->last.code, "unplugged");

  // Still unplugged: the next request is refused before the prompt is evaluated.
  r = f.session->generate("hi again", p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, StopReason::kGovernor);
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_EQ(r->stats.prefill_tokens, 0);
}

TEST(EngineHook, ObservedDecodeSpeedExcludesPacing) {
  // Fake clock: each decode step "takes" 50 ms, the hook's sleeps advance the clock too.
  double now = 0;
  HookClock clock;
  clock.now = [&] { return now; };
  clock.sleep = [&](int64_t ms) { now += static_cast<double>(ms) / 1000.0; };
  auto policy = parse_policy(
      R"({"token_budget": {"tokens_per_s": 5, "burst": 1}, "throttle": {"window": 4}})");
  ASSERT_TRUE(policy.ok());
  auto gov = std::make_shared<Governor>(*policy, nullptr);
  auto hook = make_before_token_hook(gov, nullptr, clock);
  ASSERT_TRUE(hook(0));
  for (int n = 1; n <= 8; ++n) {
    now += 0.05;  // compute time of one token
    ASSERT_TRUE(hook(n));
  }
  // 20 t/s of compute, although pacing holds the wall rate at 5 t/s.
  EXPECT_NEAR(gov->state().window_tps, 20, 1e-6);
  EXPECT_FALSE(gov->state().throttled);
  EXPECT_NEAR(now, 8 * 0.2, 0.05);
}

}  // namespace
}  // namespace edgelm::governor
