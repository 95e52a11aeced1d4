// The router through the C API (edgelm_router_*, edgelm_route): a cloud-only router against the
// in-process fake cloud, a device router on the shared model, device-only with no device, the
// decision JSON and argument errors.
#include <gtest/gtest.h>

#include <string>

#include "edgelm/edgelm.h"
#include "fault-proxy.h"
#include "test_util.h"

namespace edgelm::router {
namespace {

std::string decision(edgelm_router* r) {
  size_t n = 0;
  edgelm_router_last_decision_json(r, nullptr, 0, &n);
  std::string s(n + 1, '\0');
  EXPECT_EQ(edgelm_router_last_decision_json(r, s.data(), s.size(), &n), EDGELM_OK);
  s.resize(n);
  return s;
}

bool append(const char* text, size_t len, int32_t, void* user) {
  static_cast<std::string*>(user)->append(text, len);
  return true;
}

TEST(RouterCApi, CloudOnlyAndDeviceOnlyWithoutDevice) {
  testing::FaultProxy proxy("hello from the fake cloud");
  const std::string url = proxy.url();
  edgelm_router_params p = edgelm_router_default_params();
  p.cloud_url = url.c_str();
  p.max_retries = 0;
  edgelm_router* r = nullptr;
  ASSERT_EQ(edgelm_router_create(nullptr, &p, nullptr, &r), EDGELM_OK) << edgelm_last_error();
  size_t n = 0;
  EXPECT_EQ(edgelm_router_last_decision_json(r, nullptr, 0, &n), EDGELM_ERR_FAILED_PRECONDITION);
  std::string text;
  ASSERT_EQ(edgelm_route(r, "hi", nullptr, append, &text), EDGELM_OK) << edgelm_last_error();
  EXPECT_EQ(text, "hello from the fake cloud");
  EXPECT_NE(decision(r).find("\"target\":\"cloud\""), std::string::npos) << decision(r);

  edgelm_route_params rp = edgelm_route_default_params();
  rp.privacy = EDGELM_PRIVACY_DEVICE_ONLY;
  text.clear();
  EXPECT_EQ(edgelm_route(r, "secret", &rp, append, &text), EDGELM_ERR_FAILED_PRECONDITION);
  EXPECT_NE(std::string(edgelm_last_error()).find("no model is loaded"), std::string::npos);
  EXPECT_NE(decision(r).find("\"target\":\"none\""), std::string::npos);
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(proxy.requests(), 1);

  rp.privacy = 7;
  EXPECT_EQ(edgelm_route(r, "x", &rp, nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_route(nullptr, "x", nullptr, nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
  edgelm_router_free(r);

  p.config_json = R"({"uncertainty_threshold": "high"})";
  EXPECT_EQ(edgelm_router_create(nullptr, &p, nullptr, &r), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgelm_last_error()).find("uncertainty_threshold"), std::string::npos);
  EXPECT_EQ(edgelm_router_create(nullptr, &p, nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
}

TEST(RouterCApi, DeviceRouterOnTheSharedModel) {
  EDGELM_REQUIRE_SHARED(path, "models/conf-llama-spm-f16.gguf");
  edgelm_model* model = nullptr;
  ASSERT_EQ(edgelm_model_load(path.c_str(), nullptr, &model), EDGELM_OK) << edgelm_last_error();
  edgelm_router_params p = edgelm_router_default_params();
  p.n_ctx = 128;
  p.n_threads = 1;
  p.config_json = R"({"signal": "entropy", "uncertainty_threshold": 1000})";
  edgelm_router* r = nullptr;
  ASSERT_EQ(edgelm_router_create(model, &p, nullptr, &r), EDGELM_OK) << edgelm_last_error();
  edgelm_model_free(model);  // the router keeps it alive
  edgelm_route_params rp = edgelm_route_default_params();
  rp.max_tokens = 4;
  rp.privacy = EDGELM_PRIVACY_DEVICE_ONLY;
  std::string text;
  ASSERT_EQ(edgelm_route(r, "Once upon a time", &rp, append, &text), EDGELM_OK)
      << edgelm_last_error();
  EXPECT_FALSE(text.empty());
  const std::string d = decision(r);
  EXPECT_NE(d.find("\"target\":\"device\""), std::string::npos) << d;
  rp.privacy = EDGELM_PRIVACY_EITHER;  // no cloud configured: the device, with the reason
  ASSERT_EQ(edgelm_route(r, "Once upon a time", &rp, nullptr, nullptr), EDGELM_OK);
  EXPECT_NE(decision(r).find("no cloud endpoint"), std::string::npos) << decision(r);
  edgelm_router_free(r);
}

}  // namespace
}  // namespace edgelm::router
