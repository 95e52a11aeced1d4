// The governor through the C API (include/edgelm/edgelm.h): create from JSON, push sensor
// values, decide, attach to a session (refusal before the prompt is FAILED_PRECONDITION).
#include <gtest/gtest.h>

#include <string>

#include "edgelm/edgelm.h"
#include "test_util.h"

namespace {

TEST(GovernorCApi, CreatePushDecide) {
  edgelm_governor* g = nullptr;
  ASSERT_EQ(edgelm_governor_create(R"({"require_plugged": true, "battery_floor_pct": 10})", &g),
            EDGELM_OK)
      << edgelm_last_error();
  edgelm_governor_decision d;
  ASSERT_EQ(edgelm_governor_decide(g, &d), EDGELM_OK);
  EXPECT_EQ(d.action, EDGELM_GOVERNOR_REFUSE);  // nothing pushed yet: unknown, fail closed
  EXPECT_STREQ(d.code, "no_sensor");
  ASSERT_EQ(edgelm_governor_push_plugged(g, false), EDGELM_OK);
  ASSERT_EQ(edgelm_governor_decide(g, &d), EDGELM_OK);
  EXPECT_EQ(d.action, EDGELM_GOVERNOR_REFUSE);
  EXPECT_STREQ(d.code, "unplugged");
  EXPECT_NE(std::string(d.reason).find("plugged"), std::string::npos) << d.reason;
  ASSERT_EQ(edgelm_governor_push_plugged(g, true), EDGELM_OK);
  ASSERT_EQ(edgelm_governor_push_battery(g, 5), EDGELM_OK);  // plugged: the floor does not apply
  ASSERT_EQ(edgelm_governor_push_temperature(g, 70), EDGELM_OK);  // no max_temp_c: ignored
  ASSERT_EQ(edgelm_governor_decide(g, &d), EDGELM_OK);
  EXPECT_EQ(d.action, EDGELM_GOVERNOR_ALLOW) << d.reason;
  EXPECT_EQ(edgelm_governor_push_battery(g, 150), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgelm_last_error()).find("150"), std::string::npos);
  EXPECT_EQ(edgelm_governor_decide(nullptr, &d), EDGELM_ERR_INVALID_ARGUMENT);
  edgelm_governor_free(g);
  edgelm_governor_free(nullptr);
}

TEST(GovernorCApi, BadConfigNamesTheKey) {
  edgelm_governor* g = reinterpret_cast<edgelm_governor*>(1);
  EXPECT_EQ(edgelm_governor_create(R"({"max_temp": 45})", &g), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(g, nullptr);
  EXPECT_NE(std::string(edgelm_last_error()).find("max_temp"), std::string::npos)
      << edgelm_last_error();
  EXPECT_EQ(edgelm_governor_create("{}", nullptr), EDGELM_ERR_INVALID_ARGUMENT);
}

TEST(GovernorCApi, PushToASysfsGovernorIsAPreconditionError) {
  edgelm_governor* g = nullptr;
  ASSERT_EQ(edgelm_governor_create(R"({"sensors": "sysfs", "sysfs_root": "/nonexistent"})", &g),
            EDGELM_OK);
  EXPECT_EQ(edgelm_governor_push_temperature(g, 30), EDGELM_ERR_FAILED_PRECONDITION);
  edgelm_governor_free(g);
}

TEST(GovernorCApi, SessionConsultsTheGovernor) {
  EDGELM_REQUIRE_SHARED(model_path, "models/conf-llama-spm-f16.gguf");
  edgelm_model* model = nullptr;
  ASSERT_EQ(edgelm_model_load(model_path.c_str(), nullptr, &model), EDGELM_OK)
      << edgelm_last_error();
  edgelm_session* s = nullptr;
  edgelm_session_params sp = edgelm_session_default_params();
  sp.n_ctx = 64;
  sp.n_threads = 1;
  ASSERT_EQ(edgelm_session_create(model, &sp, &s), EDGELM_OK) << edgelm_last_error();
  edgelm_governor* g = nullptr;
  ASSERT_EQ(edgelm_governor_create(R"({"require_plugged": true, "sensor_interval_ms": 0})", &g),
            EDGELM_OK);
  ASSERT_EQ(edgelm_session_set_governor(s, g), EDGELM_OK);
  edgelm_governor_free(g);  // the session keeps it
  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.max_tokens = 4;
  gp.temperature = 0;
  EXPECT_EQ(edgelm_generate(s, "Hello", &gp, nullptr, nullptr), EDGELM_ERR_FAILED_PRECONDITION);
  EXPECT_NE(std::string(edgelm_last_error()).find("governor refused"), std::string::npos)
      << edgelm_last_error();
  // Detached: generation runs.
  ASSERT_EQ(edgelm_session_set_governor(s, nullptr), EDGELM_OK);
  EXPECT_EQ(edgelm_generate(s, "Hello", &gp, nullptr, nullptr), EDGELM_OK) << edgelm_last_error();
  edgelm_session_free(s);
  edgelm_model_free(model);
}

}  // namespace
