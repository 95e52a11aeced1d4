// The Router with a scripted device and the in-process fake cloud (fault-proxy.h): every
// request is answered or fails with its reason; device-only requests never reach the cloud;
// the governor's refusal and device failures go to the cloud; cloud faults (500s, refused
// connections, cut streams, slow answers) go to the device, which continues a cut stream; the
// uncertainty threshold splits requests between the two.
#include "runtime/router/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fault-proxy.h"

namespace edgelm::router {
namespace {

using testing::Fault;
using testing::FaultProxy;

class FakeDevice : public DeviceBackend {
 public:
  bool loaded() const override { return loaded_; }
  DeviceCapability capability() const override { return {}; }
  StatusOr<DeviceProbe> probe(const RouteRequest& req) override {
    ++probes;
    DeviceProbe p;
    p.prompt_tokens = static_cast<int>(request_text(req).size());
    // "uncertainty" = the number of '?' in the prompt.
    p.entropy = static_cast<double>(
        std::count(req.messages[0].content.begin(), req.messages[0].content.end(), '?'));
    return p;
  }
  StatusOr<DeviceAnswer> generate(const RouteRequest&, std::string_view continuation,
                                  const DeltaCallback& on_delta) override {
    ++generates;
    last_continuation = std::string(continuation);
    if (fail) return Status::internal("injected device failure");
    DeviceAnswer a;
    a.text = " device answer";
    a.finish_reason = "stop";
    if (governor_stop_after >= 0) {  // the governor's per-token hook refused mid-answer
      a.text.resize(std::min(a.text.size(), static_cast<size_t>(governor_stop_after)));
      a.finish_reason = "length";
      a.stats.generated_tokens = 2;
      a.governor_stop = "temperature 47.0 C >= max 45 C (max_temp)";
    }
    if (on_delta && !a.text.empty()) on_delta(a.text);
    return a;
  }
  bool loaded_ = true;
  bool fail = false;
  int governor_stop_after = -1;  // >= 0: the governor stops the answer after this many bytes
  int probes = 0, generates = 0;
  std::string last_continuation;
};

CloudOptions fast(const std::string& url) {
  CloudOptions o;
  o.url = url;
  o.connect_timeout_ms = 500;
  o.timeout_ms = 400;
  o.backoff = {.max_retries = 1, .base_ms = 5, .max_ms = 10, .seed = 3};
  o.breaker = {.failure_threshold = 1000, .open_ms = 60000};
  return o;
}

RouteRequest ask(const std::string& text, PrivacyClass privacy = PrivacyClass::kEither,
                 bool stream = false) {
  RouteRequest r;
  r.messages = {{"user", text}};
  r.privacy = privacy;
  r.stream = stream;
  r.max_tokens = 8;
  return r;
}

bool has_reason(const RouteResult& r, const std::string& what) {
  for (const auto& s : r.decision.reasons) {
    if (s.find(what) != std::string::npos) return true;
  }
  return false;
}

struct Fixture {
  explicit Fixture(RouterConfig cfg = {}, GovernorCheck gov = {})
      : proxy("cloud says hi there friend"),
        device(std::make_shared<FakeDevice>()),
        cloud(std::make_shared<CloudClient>(fast(proxy.url()))),
        router(std::move(cfg), device, cloud, std::move(gov)) {}
  FaultProxy proxy;
  std::shared_ptr<FakeDevice> device;
  std::shared_ptr<CloudClient> cloud;
  Router router;
};

TEST(Router, DeviceOnlyNeverReachesTheCloud) {
  bool refuse = false;
  RouterConfig cfg;
  cfg.uncertainty_threshold = 0.5;  // any '?' would send "either" requests to the cloud
  Fixture f(cfg, [&](const RouteRequest&) {
    return GovernorVerdict{!refuse, refuse ? "thermal: critical" : ""};
  });
  RouteResult r = f.router.handle(ask("hard??", PrivacyClass::kDeviceOnly));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  EXPECT_TRUE(has_reason(r, "device-only"));
  // The device fails: a clear error, no cloud.
  f.device->fail = true;
  r = f.router.handle(ask("x", PrivacyClass::kDeviceOnly));
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.decision.target, RouteTarget::kNone);
  EXPECT_NE(r.status.message().find("device-only"), std::string::npos);
  EXPECT_NE(r.status.message().find("injected device failure"), std::string::npos);
  // The governor refuses: a clear error, no cloud.
  f.device->fail = false;
  refuse = true;
  r = f.router.handle(ask("x", PrivacyClass::kDeviceOnly));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("thermal: critical"), std::string::npos);
  // Not loaded: a clear error, no cloud.
  refuse = false;
  f.device->loaded_ = false;
  r = f.router.handle(ask("x", PrivacyClass::kDeviceOnly));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("no model is loaded"), std::string::npos);
  EXPECT_EQ(f.proxy.requests(), 0);
  EXPECT_EQ(f.router.counters().cloud_requests, 0u);
  EXPECT_EQ(f.router.counters().failed, 3u);
}

TEST(Router, GovernorRefusalAndDeviceFailureGoToTheCloud) {
  bool refuse = true;
  Fixture f({}, [&](const RouteRequest&) { return GovernorVerdict{!refuse, "battery 4%"}; });
  RouteResult r = f.router.handle(ask("hello"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_EQ(r.text, "cloud says hi there friend");
  EXPECT_TRUE(has_reason(r, "battery 4%"));
  EXPECT_EQ(f.device->generates, 0);
  refuse = false;
  f.device->fail = true;
  r = f.router.handle(ask("hello"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_TRUE(has_reason(r, "device failed"));
  ASSERT_EQ(r.decision.attempts.size(), 2u);
  EXPECT_EQ(r.decision.attempts[0].target, RouteTarget::kDevice);
  EXPECT_FALSE(r.decision.attempts[0].ok);
  EXPECT_EQ(r.decision.attempts[1].target, RouteTarget::kCloud);
  EXPECT_EQ(f.router.counters().fallbacks, 1u);
}

TEST(Router, CloudFaultsGoToTheDevice) {
  RouteRequest hard = ask("hard");
  hard.hints.prefer = "cloud";
  for (Fault fault : {Fault::kHttp500, Fault::kSlow, Fault::kBadJson}) {
    Fixture f;
    f.proxy.set_fault(fault, -1, 1000);
    RouteResult r = f.router.handle(hard);
    ASSERT_TRUE(r.status.ok()) << r.status.to_string();
    EXPECT_EQ(r.decision.target, RouteTarget::kDevice) << static_cast<int>(fault);
    EXPECT_TRUE(has_reason(r, "cloud failed"));
    EXPECT_TRUE(has_reason(r, "fallback: device"));
    EXPECT_EQ(r.decision.attempts.size(), 3u);  // 2 cloud tries + the device
    EXPECT_EQ(r.text, " device answer");
  }
  // No network at all: refused connections.
  Fixture f;
  f.proxy.stop();
  RouteResult r = f.router.handle(hard);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  EXPECT_EQ(r.decision.attempts[0].http_status, 0);
}

TEST(Router, CutStreamIsContinuedOnTheDevice) {
  Fixture f;
  f.proxy.set_fault(Fault::kCutStream, 1);
  RouteRequest req = ask("tell me", PrivacyClass::kEither, /*stream=*/true);
  req.hints.prefer = "cloud";
  std::string streamed;
  RouteResult r = f.router.handle(req, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  EXPECT_FALSE(f.device->last_continuation.empty());
  EXPECT_EQ(r.text, f.device->last_continuation + " device answer");
  EXPECT_EQ(streamed, r.text);  // the client saw one continuous answer
  EXPECT_TRUE(has_reason(r, "continues the"));
}

TEST(Router, NoSideAvailableFailsWithBothReasons) {
  Fixture f;
  f.device->loaded_ = false;
  f.proxy.stop();
  RouteResult r = f.router.handle(ask("x"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.decision.target, RouteTarget::kNone);
  EXPECT_TRUE(has_reason(r, "cloud failed"));
  EXPECT_TRUE(has_reason(r, "no model is loaded"));

  Router lonely({}, nullptr, nullptr);
  r = lonely.handle(ask("x"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("no cloud endpoint"), std::string::npos);
}

TEST(Router, UncertaintyThresholdSplitsRequests) {
  RouterConfig cfg;
  cfg.uncertainty_threshold = 1.5;
  Fixture f(cfg);
  RouteResult easy = f.router.handle(ask("easy?"));
  RouteResult hard = f.router.handle(ask("hard???"));
  ASSERT_TRUE(easy.status.ok() && hard.status.ok());
  EXPECT_EQ(easy.decision.target, RouteTarget::kDevice);
  EXPECT_EQ(hard.decision.target, RouteTarget::kCloud);
  ASSERT_TRUE(hard.decision.uncertainty.has_value());
  EXPECT_DOUBLE_EQ(*hard.decision.uncertainty, 3.0);
  EXPECT_DOUBLE_EQ(*hard.decision.threshold, 1.5);
  EXPECT_EQ(f.device->probes, 2);
  EXPECT_EQ(f.proxy.requests(), 1);
  const std::string j = hard.decision.to_json();
  EXPECT_NE(j.find("\"uncertainty\":3.0"), std::string::npos) << j;
}

// The governor stops the device mid-answer: the cloud continues the text already produced (it
// gets the request plus an assistant message holding that text); the client sees one answer.
TEST(Router, GovernorStopMidAnswerIsContinuedInTheCloud) {
  Fixture f;
  f.device->governor_stop_after = 7;  // " device"
  RouteRequest req = ask("hello");
  std::string streamed;
  RouteResult r = f.router.handle(req, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_EQ(r.text, " devicecloud says hi there friend");
  EXPECT_EQ(streamed, r.text);
  EXPECT_TRUE(has_reason(r, "the governor stopped the device after 7 bytes: temperature 47.0 C"));
  EXPECT_TRUE(has_reason(r, "fallback: cloud continues the 7 bytes the device produced"));
  ASSERT_EQ(r.decision.attempts.size(), 2u);
  EXPECT_FALSE(r.decision.attempts[0].ok);
  EXPECT_NE(r.decision.attempts[0].error.find("stopped by the governor after 2 tokens"),
            std::string::npos);
  ASSERT_EQ(f.proxy.bodies().size(), 1u);
  auto sent = nlohmann::json::parse(f.proxy.bodies()[0]);
  ASSERT_EQ(sent["messages"].size(), 2u);
  EXPECT_EQ(sent["messages"][1]["role"], "assistant");
  EXPECT_EQ(sent["messages"][1]["content"], " device");
  EXPECT_EQ(sent["max_tokens"], 6);  // 8 asked, 2 spent on the device
  EXPECT_EQ(f.router.counters().fallbacks, 1u);
  EXPECT_EQ(f.router.counters().cloud, 1u);
}

TEST(Router, GovernorStopOfADeviceOnlyRequestFailsWithTheReason) {
  Fixture f;
  f.device->governor_stop_after = 7;
  RouteResult r = f.router.handle(ask("secret", PrivacyClass::kDeviceOnly));
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.decision.target, RouteTarget::kNone);
  EXPECT_NE(r.status.message().find("device-only request stopped by the governor"),
            std::string::npos)
      << r.status.to_string();
  EXPECT_NE(r.status.message().find("47.0 C"), std::string::npos);
  EXPECT_EQ(f.proxy.requests(), 0);
}

TEST(Router, GovernorStopWithTheCloudDownEndsTheAnswerShort) {
  Fixture f;
  f.device->governor_stop_after = 7;
  f.proxy.stop();  // refused connections
  RouteResult r = f.router.handle(ask("hello"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  EXPECT_EQ(r.text, " device");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_TRUE(has_reason(r, "the answer stays cut short"));
}

// plan() decides before any text exists (what `serve --cloud` announces in headers); execute()
// then answers on the planned side.
TEST(Router, PlanThenExecute) {
  RouterConfig cfg;
  cfg.uncertainty_threshold = 1.5;
  Fixture f(cfg);
  RoutePlan p = f.router.plan(ask("hard???"));
  EXPECT_EQ(p.primary, RouteTarget::kCloud);
  EXPECT_EQ(f.device->probes, 1);
  EXPECT_EQ(f.proxy.requests(), 0);  // nothing sent yet
  ASSERT_TRUE(p.decision.uncertainty.has_value());
  RouteResult r = f.router.execute(ask("hard???"), p);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_EQ(f.proxy.requests(), 1);
  EXPECT_EQ(f.device->probes, 1);
}

}  // namespace
}  // namespace edgelm::router
