// `edgelm governor status` over a fake sysfs tree and `edgelm governor simulate` end to end
// (the built CLI; skipped visibly when it has not been built).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run_cli(const std::string& args) {
  CliRun r;
#ifdef EDGELM_GOVERNOR_CLI
  const std::string cmd = std::string(EDGELM_GOVERNOR_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
#else
  (void)args;
#endif
  return r;
}

bool have_cli() {
#ifdef EDGELM_GOVERNOR_CLI
  return fs::exists(EDGELM_GOVERNOR_CLI);
#else
  return false;
#endif
}

#define REQUIRE_CLI() \
  if (!have_cli()) GTEST_SKIP() << "SKIPPED: the edgelm CLI is not built"

std::string policy(const std::string& name) {
  return (fs::path(EDGELM_SOURCE_DIR) / "bench" / "governor" / "policies" / (name + ".json"))
      .string();
}

TEST(GovernorCli, StatusReadsAFakeSysfsTree) {
  REQUIRE_CLI();
  const fs::path root = edgelm::testing::temp_path("cli-sysfs");
  fs::remove_all(root);
  auto write = [&](const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  write("class/thermal/thermal_zone0/temp", "47000\n");
  write("class/thermal/thermal_zone0/type", "cpu-thermal\n");
  write("class/power_supply/usb/type", "USB\n");
  write("class/power_supply/usb/online", "1\n");
  CliRun r = run_cli("governor status --json --config " + policy("max-temp") + " --sysfs-root " +
                     root.string());
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_DOUBLE_EQ(j["temp_c"].get<double>(), 47.0);
  EXPECT_EQ(j["plugged"], true);
  EXPECT_EQ(j["decision"]["action"], "refuse");  // 47 C >= max 45 C
  EXPECT_EQ(j["decision"]["code"], "max_temp");

  write("class/thermal/thermal_zone0/temp", "39000\n");
  r = run_cli("governor status --config " + policy("max-temp") + " --sysfs-root " + root.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("decision:    allow"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu-thermal"), std::string::npos) << r.out;
  fs::remove_all(root);

  r = run_cli("governor status --sysfs-root /nonexistent/sysfs");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("/nonexistent/sysfs"), std::string::npos) << r.out;
}

TEST(GovernorCli, SimulateWritesTableAndCsv) {
  REQUIRE_CLI();
  const std::string csv = edgelm::testing::temp_path("sim.csv");
  CliRun r = run_cli("governor simulate --config " + policy("plugged-only") +
                     " --minutes 12 --csv " + csv);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("| 12 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("policy: plugged-only"), std::string::npos);
  std::ifstream in(csv);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 1 + 12 * 6);  // header + a sample every 10 s
  fs::remove(csv);
}

TEST(GovernorCli, SimulateRejectsABadPolicy) {
  REQUIRE_CLI();
  const std::string bad = edgelm::testing::temp_path("bad-policy.json");
  std::ofstream(bad) << R"({"max_temp_c": 45, "resume_temp_c": 50})";
  CliRun r = run_cli("governor simulate --config " + bad);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("resume_temp_c"), std::string::npos) << r.out;
  fs::remove(bad);
}

}  // namespace
