#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <numeric>
#include <vector>

#include "base/cpu.h"
#include "base/mmap.h"
#include "base/status.h"
#include "base/threadpool.h"
#include "test_util.h"

namespace edgelm {
namespace {

StatusOr<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("not positive: " + std::to_string(v));
  return v;
}

Status twice(int v, int* out) {
  ASSIGN_OR_RETURN(int x, parse_positive(v));
  RETURN_IF_ERROR(parse_positive(x - 1).status());
  *out = 2 * x;
  return Status::ok_status();
}

TEST(Status, PropagatesThroughMacros) {
  int out = 0;
  EXPECT_TRUE(twice(5, &out).ok());
  EXPECT_EQ(out, 10);
  Status s = twice(-3, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "INVALID_ARGUMENT: not positive: -3");
  EXPECT_EQ(twice(1, &out).message(), "not positive: 0");
  EXPECT_EQ(s.with_context("loading x").message(), "loading x: not positive: -3");
}

TEST(MappedFile, MapsAndReportsErrors) {
  std::string path = testing::temp_path("mmap.bin");
  {
    std::ofstream f(path, std::ios::binary);
    f << "hello";
  }
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), 5), "hello");
  MappedFile moved = std::move(*m);
  EXPECT_EQ(moved.size(), 5u);
  std::remove(path.c_str());
  auto missing = MappedFile::open(path);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::open("/tmp").status().code(), StatusCode::kInvalidArgument);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (size_t n : {1ul, 7ul, 64ul, 1000ul}) {
      for (size_t grain : {1ul, 4ul, 16ul}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(
            n,
            [&](size_t b, size_t e, int t) {
              EXPECT_LT(t, threads);
              if (b % grain != 0)
                ADD_FAILURE() << "chunk start " << b << " not aligned to " << grain;
              for (size_t i = b; i < e; ++i) hits[i]++;
            },
            grain);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, ReusedManyTimes) {
  ThreadPool pool(3);
  std::atomic<long> sum{0};
  for (int r = 0; r < 2000; ++r)
    pool.parallel_for(30, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) sum += static_cast<long>(i);
    });
  EXPECT_EQ(sum.load(), 2000L * 435);
}

TEST(Cpu, ReportsSomething) {
  const CpuInfo& c = cpu_info();
  EXPECT_GE(c.logical_cores, 1);
  EXPECT_FALSE(c.arch.empty());
  EXPECT_NE(build_info().find("edgelm"), std::string::npos);
  EXPECT_GT(peak_rss_bytes(), 0u);
}

}  // namespace
}  // namespace edgelm
