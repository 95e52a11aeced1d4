// Backoff delays stay within their jittered exponential caps and vary; the circuit breaker goes
// closed -> open -> half-open -> closed / open again on a fake clock.
#include "runtime/router/retry.h"

#include <gtest/gtest.h>

#include <set>

namespace edgelm::router {
namespace {

TEST(Backoff, DelaysAreJitteredWithinExponentialCaps) {
  Backoff b({.max_retries = 5, .base_ms = 100, .max_ms = 1000, .seed = 7});
  EXPECT_DOUBLE_EQ(b.cap_ms(0), 100);
  EXPECT_DOUBLE_EQ(b.cap_ms(1), 200);
  EXPECT_DOUBLE_EQ(b.cap_ms(3), 800);
  EXPECT_DOUBLE_EQ(b.cap_ms(4), 1000);  // capped
  EXPECT_DOUBLE_EQ(b.cap_ms(40), 1000);
  std::set<double> seen;
  for (int retry = 0; retry < 6; ++retry) {
    for (int i = 0; i < 50; ++i) {
      const double d = b.delay_ms(retry);
      EXPECT_GE(d, 0);
      EXPECT_LE(d, b.cap_ms(retry));
      seen.insert(d);
    }
  }
  EXPECT_GT(seen.size(), 250u);  // jittered, not a fixed schedule
  // Later retries wait longer on average.
  double sum0 = 0, sum3 = 0;
  for (int i = 0; i < 400; ++i) {
    sum0 += b.delay_ms(0);
    sum3 += b.delay_ms(3);
  }
  EXPECT_GT(sum3, 4 * sum0);
}

TEST(CircuitBreaker, OpensHalfOpensAndCloses) {
  double now = 0;
  CircuitBreaker br({.failure_threshold = 3, .open_ms = 1000}, [&] { return now; });
  EXPECT_EQ(br.state(), BreakerState::kClosed);
  EXPECT_TRUE(br.allow());
  br.record_failure();
  br.record_failure();
  EXPECT_EQ(br.state(), BreakerState::kClosed);
  br.record_success();  // resets the count
  br.record_failure();
  br.record_failure();
  EXPECT_EQ(br.state(), BreakerState::kClosed);
  br.record_failure();
  EXPECT_EQ(br.state(), BreakerState::kOpen);
  EXPECT_FALSE(br.would_allow());
  EXPECT_FALSE(br.allow());
  now = 999;
  EXPECT_FALSE(br.allow());
  now = 1000;
  EXPECT_EQ(br.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(br.allow());   // the one trial
  EXPECT_FALSE(br.allow());  // no second one while it runs
  br.record_failure();       // trial failed: open again
  EXPECT_EQ(br.state(), BreakerState::kOpen);
  EXPECT_FALSE(br.allow());
  now = 2500;
  EXPECT_TRUE(br.allow());
  br.record_success();  // trial ok: closed
  EXPECT_EQ(br.state(), BreakerState::kClosed);
  EXPECT_TRUE(br.allow());
  EXPECT_TRUE(br.allow());
  EXPECT_EQ(br.consecutive_failures(), 0);
}

}  // namespace
}  // namespace edgelm::router
