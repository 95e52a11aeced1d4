// Micro-benchmark of the prefill product: matmul() with m = 64 / 512 activation rows against a
// 4096x4096 weight matrix on 1 thread, through the tiled Ops::gemm_tile path ("tiled") and
// through the per-row vec_dot_rows path it replaced ("rows": the same SIMD table with
// gemm_tile cleared). Counter GMAC/s = m * 4096 * 4096 multiply-adds per second.
//
//   edgelm_micro --benchmark_filter='Gemm4096/q4_0'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/simd/simd.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

constexpr int64_t kN = 4096, kRows = 4096;

const std::vector<uint8_t>& weights(GgmlType wt) {
  static std::vector<std::pair<GgmlType, std::vector<uint8_t>>>* cache =
      new std::vector<std::pair<GgmlType, std::vector<uint8_t>>>();
  for (const auto& [t, w] : *cache)
    if (t == wt) return w;
  const size_t stride = row_size(wt, kN);
  std::vector<uint8_t> w(stride * kRows);
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> src(kN);
  constexpr int64_t kDistinct = 16;  // quantize a few rows, tile them (K-quants are slow)
  for (int64_t r = 0; r < kRows; ++r) {
    if (r < kDistinct) {
      for (auto& v : src) v = nd(rng);
      quantize_row(wt, src.data(), w.data() + r * stride, kN);
    } else {
      std::copy_n(w.data() + (r % kDistinct) * stride, stride, w.data() + r * stride);
    }
  }
  return cache->emplace_back(wt, std::move(w)).second;
}

void BM_Gemm4096(benchmark::State& state, GgmlType wt, bool tiled) {
  const int64_t m = state.range(0);
  const std::vector<uint8_t>& w = weights(wt);
  Ops ops = *simd_ops_or_null();
  if (!tiled) ops.gemm_tile = nullptr;
  ThreadPool pool(1);
  std::vector<float> x(static_cast<size_t>(m * kN)), y(static_cast<size_t>(m * kRows));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> scratch;
  for (auto _ : state) {
    matmul(ops, pool, wt, w.data(), kRows, kN, x.data(), m, y.data(), scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(m * kN * kRows) * 1e-9,
      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(ops.name) + (simd::gemm_tiled(wt) && tiled ? " tiled" : " rows"));
}

int register_gemm() {
  for (GgmlType t :
       {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kF16}) {
    const std::string s(type_name(t));
    for (bool tiled : {true, false}) {
      benchmark::RegisterBenchmark(("Gemm4096/" + s + (tiled ? "/tiled" : "/rows")).c_str(),
                                   BM_Gemm4096, t, tiled)
          ->Arg(64)
          ->Arg(512)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5);
    }
  }
  return 0;
}
const int kRegistered = register_gemm();

}  // namespace
}  // namespace edgelm
