// baseline_from_rows: a features-only baseline from recorded production rows (what
// `edgelm monitor baseline --from-db` writes), round-tripped through the baseline file and used
// by Monitor::check: same traffic -> no alarm, shifted traffic -> feature_drift.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "runtime/monitor/canary.h"
#include "runtime/monitor/monitor.h"
#include "test_util.h"

namespace edgelm::monitor {
namespace {

std::vector<RequestFeatures> traffic(int n, double logprob_shift, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> lp(-2.0 + logprob_shift, 0.3);
  std::uniform_int_distribution<int> len(4, 12);
  std::vector<RequestFeatures> rows;
  for (int i = 0; i < n; ++i) {
    RequestFeatures f;
    f.model = i % 10 == 0 ? "other" : "served";
    f.source = "request";
    f.prompt_tokens = 10;
    f.output_tokens = len(rng);
    f.mean_logprob = lp(rng);
    f.mean_entropy = 2.0 - f.mean_logprob / 4;
    f.stop_reason = StopReason::kEog;
    rows.push_back(f);
  }
  return rows;
}

TEST(BaselineFromRowsTest, EmptyIsAnError) {
  auto b = baseline_from_rows({}, "x.db");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("x.db"), std::string::npos);
}

TEST(BaselineFromRowsTest, SameTrafficPassesShiftedTrafficAlarms) {
  auto b = baseline_from_rows(traffic(200, 0, 1), "served.db");
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->model_name, "served");  // the most frequent model
  EXPECT_TRUE(b->canary.empty());
  ASSERT_EQ(b->features["mean_logprob"].size(), 200u);
  const std::string path = edgelm::testing::temp_path("baseline-from-rows.json");
  ASSERT_TRUE(save_baseline(*b, path).ok());
  auto loaded = load_baseline(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();

  for (double shift : {0.0, -1.0}) {
    SCOPED_TRACE(shift);
    const std::string db = edgelm::testing::temp_path("baseline-from-rows.db");
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(db + ext);
    auto mon = Monitor::open(db);
    ASSERT_TRUE(mon.ok()) << mon.status().to_string();
    (*mon)->set_baseline(*loaded);
    for (const auto& f : traffic(200, shift, 2)) ASSERT_TRUE((*mon)->record(f).ok());
    auto rep = (*mon)->check();
    ASSERT_TRUE(rep.ok()) << rep.status().to_string();
    EXPECT_EQ(rep->compared, 200u);
    if (shift == 0.0) {
      EXPECT_FALSE(rep->alarm()) << rep->to_markdown();
    } else {
      ASSERT_TRUE(rep->alarm()) << rep->to_markdown();
      bool logprob = false;
      for (const auto& a : rep->alerts) logprob |= a.feature == "mean_logprob";
      EXPECT_TRUE(logprob) << rep->to_markdown();
    }
  }
}

}  // namespace
}  // namespace edgelm::monitor
