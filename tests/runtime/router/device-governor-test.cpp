// The governor's per-token hook on the router's device (EngineDevice over the shared conformance
// model): a refusal between tokens stops the answer (DeviceAnswer::governor_stop names the
// reason) and the router continues it in the (fake) cloud; a device-only request fails with the
// governor's reason. The temperature is pushed hot from the answer's own text callback, so the
// refusal lands mid-answer deterministically. Skips with a message when the model is absent.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "fault-proxy.h"
#include "runtime/governor/governor.h"
#include "runtime/governor/sensors.h"
#include "runtime/router/router.h"
#include "test_util.h"

namespace edgelm::router {
namespace {

constexpr const char* kModel = "models/conf-llama-spm-f16.gguf";

struct HotDevice {
  std::shared_ptr<governor::PushedSensor> sensor = std::make_shared<governor::PushedSensor>();
  std::shared_ptr<governor::Governor> gov;
  std::shared_ptr<EngineDevice> device;
  Status status;

  explicit HotDevice(const std::string& model, bool with_governor = true) {
    governor::GovernorPolicy policy;
    policy.name = "test";
    policy.max_temp_c = 45;
    policy.sensor_interval_ms = 0;  // read the sensor at every decision
    gov = std::make_shared<governor::Governor>(policy, sensor);
    sensor->set_temperature(30);
    EngineDeviceOptions eo;
    eo.session.n_ctx = 128;
    eo.session.n_threads = 1;
    if (with_governor) eo.governor = gov;
    auto d = EngineDevice::load(model, eo);
    status = d.status();
    if (d.ok()) device = std::move(d).value();
  }
  // A callback that makes the device hot once `after` non-empty pieces were delivered.
  DeltaCallback heat_after(int after, std::string* seen) {
    return [this, after, seen, n = 0](std::string_view t) mutable {
      *seen += t;
      if (!t.empty() && ++n == after) sensor->set_temperature(50);
      return true;
    };
  }
};

RouteRequest plain(int max_tokens) {
  RouteRequest r;
  r.prompt = "Once upon a time there was";
  r.max_tokens = max_tokens;
  return r;
}

TEST(DeviceGovernor, RefusalBetweenTokensStopsTheAnswer) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  HotDevice hot(model);
  ASSERT_TRUE(hot.status.ok()) << hot.status.to_string();
  std::string seen;
  auto a = hot.device->generate(plain(24), "", hot.heat_after(2, &seen));
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(a->governor_stop.has_value()) << "generated " << a->stats.generated_tokens;
  EXPECT_NE(a->governor_stop->find("max_temp"), std::string::npos) << *a->governor_stop;
  EXPECT_EQ(a->finish_reason, "length");
  EXPECT_LT(a->stats.generated_tokens, 24);
  EXPECT_EQ(a->text, seen);
  EXPECT_FALSE(a->text.empty());

  // Without the governor the same answer runs to max_tokens.
  HotDevice free_device(model, /*with_governor=*/false);
  ASSERT_TRUE(free_device.status.ok());
  std::string seen2;
  auto b = free_device.device->generate(plain(6), "", free_device.heat_after(2, &seen2));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->governor_stop.has_value());
}

TEST(DeviceGovernor, RouterContinuesInTheCloudOrFailsDeviceOnly) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  HotDevice hot(model);
  ASSERT_TRUE(hot.status.ok()) << hot.status.to_string();
  testing::FaultProxy proxy("the cloud finishes it");
  CloudOptions co;
  co.url = proxy.url();
  co.backoff.max_retries = 0;
  Router router({}, hot.device, std::make_shared<CloudClient>(co));
  std::string seen;
  RouteResult r = router.handle(plain(24), hot.heat_after(2, &seen));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud) << r.decision.to_json();
  EXPECT_EQ(r.text, seen);  // the device's part then the cloud's, as the client saw it
  ASSERT_GT(r.text.size(), std::string("the cloud finishes it").size());
  EXPECT_TRUE(r.text.ends_with("the cloud finishes it"));
  ASSERT_EQ(proxy.bodies().size(), 1u);
  auto sent = nlohmann::json::parse(proxy.bodies()[0]);
  EXPECT_EQ(sent["messages"].back()["role"], "assistant");
  EXPECT_EQ(sent["messages"].back()["content"].get<std::string>() + "the cloud finishes it",
            r.text);
  std::printf("[ figures  ] governor stop after %zu bytes on the device; decision %s\n",
              r.text.size() - std::string("the cloud finishes it").size(),
              r.decision.to_json().c_str());

  // Device-only: the same refusal fails the request with the governor's reason, no cloud.
  hot.sensor->set_temperature(30);
  RouteRequest priv = plain(24);
  priv.privacy = PrivacyClass::kDeviceOnly;
  std::string seen2;
  r = router.handle(priv, hot.heat_after(2, &seen2));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("stopped by the governor"), std::string::npos)
      << r.status.to_string();
  EXPECT_NE(r.status.message().find("max_temp"), std::string::npos);
  EXPECT_EQ(proxy.requests(), 1);
}

}  // namespace
}  // namespace edgelm::router
