// Semantic version parsing and precedence (runtime/update/semver.h).
#include "runtime/update/semver.h"

#include <gtest/gtest.h>

namespace edgelm::update {
namespace {

TEST(SemVer, ParsesAndPrints) {
  auto v = SemVer::parse("1.12.3-rc.1+build.5");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->major, 1u);
  EXPECT_EQ(v->minor, 12u);
  EXPECT_EQ(v->patch, 3u);
  ASSERT_EQ(v->prerelease.size(), 2u);
  EXPECT_EQ(v->build, "build.5");
  EXPECT_EQ(v->to_string(), "1.12.3-rc.1+build.5");
}

TEST(SemVer, RejectsMalformed) {
  for (const char* bad : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-a..b",
                          "1.2.3-01", "1.2.3+", "v1.2.3", "-1.2.3"}) {
    auto v = SemVer::parse(bad);
    EXPECT_FALSE(v.ok()) << bad;
    if (!v.ok()) {
      EXPECT_NE(v.status().message().find("semantic version"), std::string::npos);
    }
  }
}

TEST(SemVer, PrecedenceFollowsSemverOrg) {
  // The ordering example of semver.org section 11.
  const char* order[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                         "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
                         "1.0.1",        "1.2.0",         "1.10.0",           "2.0.0"};
  const size_t n = sizeof(order) / sizeof(order[0]);
  for (size_t i = 0; i + 1 < n; ++i) {
    EXPECT_LT(compare_versions(order[i], order[i + 1]), 0) << order[i] << " < " << order[i + 1];
    EXPECT_GT(compare_versions(order[i + 1], order[i]), 0);
  }
  EXPECT_EQ(compare_versions("1.0.0+a", "1.0.0+b"), 0);  // build metadata is ignored
}

TEST(SemVer, RuntimeVersionIsTheProjectVersion) {
  const std::string v = runtime_version();
  EXPECT_TRUE(SemVer::parse(v).ok()) << v;
  EXPECT_NE(v, "0.0.0");
}

}  // namespace
}  // namespace edgelm::update
