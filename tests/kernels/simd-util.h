// Helpers for the SIMD kernel tests (tests/kernels/simd-*.cpp): random non-zero inputs and a
// loop that runs a test body once per Highway target this CPU supports (AVX2, AVX3, AVX3_DL
// on Zen4; NEON/SVE on ARM), restoring normal dispatch afterwards.
//
//   for_each_target([&](const char* target) { EXPECT_NEAR(..) << target; });
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/simd/simd.h"

namespace edgelm::testing {

// Gaussian values with a sprinkle of larger outliers (as in real activations); never all zero.
inline std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::uniform_int_distribution<int> pick(0, 63);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = nd(rng);
    if (pick(rng) == 0) x *= 8.0f;
  }
  v[0] = v[0] == 0.0f ? scale : v[0];
  return v;
}

template <class Fn>
void for_each_target(Fn&& fn) {
  const std::vector<int64_t> targets = simd::compiled_targets();
  ASSERT_FALSE(targets.empty());
  for (int64_t t : targets) {
    simd::force_target(t);
    ASSERT_EQ(simd::current_target(), t) << simd::target_name(t);
    SCOPED_TRACE(simd::target_name(t));
    fn(simd::target_name(t));
  }
  simd::force_target(0);
}

}  // namespace edgelm::testing
