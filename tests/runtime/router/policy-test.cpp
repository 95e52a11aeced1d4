// The routing policy on its own: privacy, availability, governor, hints, length, speed and the
// uncertainty threshold each decide as documented; the config round-trips through JSON and bad
// configs are rejected with the key named.
#include "runtime/router/policy.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace edgelm::router {
namespace {

Signals ready() {
  Signals s;
  s.device_loaded = true;
  s.cloud_available = true;
  s.prompt_chars = 20;
  return s;
}

bool mentions(const Plan& p, const std::string& what) {
  for (const auto& r : p.reasons) {
    if (r.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(Policy, DeviceOnlyNeverPlansTheCloud) {
  RouterConfig c;
  Signals s = ready();
  s.privacy = PrivacyClass::kDeviceOnly;
  s.hints.prefer = "cloud";
  s.hints.difficulty = "hard";
  Plan p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kDevice);
  EXPECT_FALSE(p.fallback_allowed);
  s.governor = {false, "battery 5%"};
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kNone);
  EXPECT_TRUE(mentions(p, "battery 5%"));
  EXPECT_TRUE(mentions(p, "device-only"));
  s = ready();
  s.privacy = PrivacyClass::kDeviceOnly;
  s.device_loaded = false;
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kNone);
  EXPECT_TRUE(mentions(p, "no model is loaded"));
}

TEST(Policy, AvailabilityAndGovernor) {
  RouterConfig c;
  Signals s = ready();
  s.governor = {false, "thermal: critical"};
  Plan p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kCloud);
  EXPECT_FALSE(p.fallback_allowed);
  EXPECT_TRUE(mentions(p, "thermal: critical"));

  s = ready();
  s.cloud_available = false;
  s.cloud_unavailable_reason = "circuit breaker open";
  s.hints.prefer = "cloud";
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kDevice);
  EXPECT_TRUE(mentions(p, "circuit breaker open"));

  s.device_loaded = false;
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kNone);

  s = ready();
  c.min_available_ram_bytes = 8ull << 30;
  s.capability.ram_available_bytes = 1ull << 30;
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kCloud);
  EXPECT_TRUE(mentions(p, "available RAM 1024 MiB"));
}

TEST(Policy, HintsLengthSpeedAndUncertainty) {
  RouterConfig c;
  c.cloud_tasks = {"code"};
  Signals s = ready();
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kDevice);  // default
  s.hints.task = "code";
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kCloud);
  s.hints = {};
  s.hints.difficulty = "hard";
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kCloud);
  s.hints = {};
  s.hints.prefer = "device";
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kDevice);
  s.hints = {};
  s.prompt_chars = c.max_device_prompt_chars + 1;
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kCloud);
  s = ready();
  c.min_device_tps = 10;
  s.capability.decode_tps = 4;
  Plan p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kCloud);
  EXPECT_TRUE(p.fallback_allowed);
  EXPECT_TRUE(mentions(p, "4.0 tok/s"));

  c = RouterConfig{};
  c.uncertainty_threshold = 5.0;
  s = ready();
  p = decide(c, s);
  EXPECT_TRUE(p.need_probe);
  s.uncertainty = 4.0;
  p = decide(c, s);
  EXPECT_FALSE(p.need_probe);
  EXPECT_EQ(p.primary, RouteTarget::kDevice);
  s.uncertainty = 6.0;
  p = decide(c, s);
  EXPECT_EQ(p.primary, RouteTarget::kCloud);
  EXPECT_TRUE(mentions(p, "entropy 6.0000 > threshold 5.0000"));
  s.prompt_tokens = c.max_device_prompt_tokens + 1;
  s.uncertainty = 1.0;
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kCloud);
  s = ready();
  s.probe_error = "boom";
  EXPECT_EQ(decide(c, s).primary, RouteTarget::kCloud);
}

TEST(RouterConfig, JsonRoundTripAndErrors) {
  RouterConfig c;
  c.signal = "nll";
  c.uncertainty_threshold = 3.25;
  c.max_device_prompt_tokens = 100;
  c.cloud_tasks = {"math", "code"};
  auto back = RouterConfig::from_json(c.to_json());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->signal, "nll");
  ASSERT_TRUE(back->uncertainty_threshold.has_value());
  EXPECT_DOUBLE_EQ(*back->uncertainty_threshold, 3.25);
  EXPECT_EQ(back->max_device_prompt_tokens, 100);
  EXPECT_EQ(back->cloud_tasks.size(), 2u);

  auto bad = RouterConfig::from_json(R"({"uncertainty_threshold": "high"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("uncertainty_threshold"), std::string::npos);
  bad = RouterConfig::from_json(R"({"signal": "vibes"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vibes"), std::string::npos);
  EXPECT_FALSE(RouterConfig::from_json("[1,2]").ok());
  auto missing = RouterConfig::load(edgelm::testing::temp_path("no-such-router.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(RouteTypes, PrivacyParsingAndDecisionJson) {
  EXPECT_EQ(*parse_privacy_class("device-only"), PrivacyClass::kDeviceOnly);
  EXPECT_EQ(*parse_privacy_class("either"), PrivacyClass::kEither);
  EXPECT_FALSE(parse_privacy_class("secret-ish").ok());
  RouteDecision d;
  d.target = RouteTarget::kCloud;
  d.reasons = {"a", "b"};
  d.attempts.push_back({RouteTarget::kDevice, false, "boom", 0, 1.0});
  d.attempts.push_back({RouteTarget::kCloud, true, "", 200, 2.0});
  const std::string j = d.to_json();
  EXPECT_NE(j.find(R"("target":"cloud")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("error":"boom")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("http_status":200)"), std::string::npos) << j;
}

}  // namespace
}  // namespace edgelm::router
