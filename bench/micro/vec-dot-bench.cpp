// Micro-benchmarks of the kernels' hot loop, ref vs simd: vec_dot per weight type over a
// 64-row block of 4096-wide rows (L2-resident), and the single-thread mat-vec of a full
// 4096x4096 matrix (what decode does per projection; 9-18 MB, streams from L3/DRAM).
// bytes/s counts weight bytes.
//
//   edgelm_micro --benchmark_filter='VecDot/q4_0' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

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

struct Matrix {
  GgmlType wt;
  int64_t n, rows;
  size_t stride;
  std::vector<uint8_t> w, xq;
};

Matrix make_matrix(GgmlType wt, int64_t n, int64_t rows) {
  Matrix m{wt, n, rows, row_size(wt, n), {}, {}};
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> src(static_cast<size_t>(n));
  m.w.resize(m.stride * static_cast<size_t>(rows));
  // Quantize a few distinct rows and tile them (quantizing 16M K-quant values takes seconds).
  constexpr int64_t kDistinct = 16;
  for (int64_t r = 0; r < rows; ++r) {
    if (r < kDistinct) {
      for (auto& v : src) v = nd(rng);
      quantize_row(wt, src.data(), m.w.data() + r * m.stride, n);
    } else {
      std::copy_n(m.w.data() + (r % kDistinct) * m.stride, m.stride, m.w.data() + r * m.stride);
    }
  }
  std::normal_distribution<float> xd(0.0f, 1.0f);
  for (auto& v : src) v = xd(rng);
  m.xq.resize(row_size(vec_dot_type(wt), n));
  quantize_row(vec_dot_type(wt), src.data(), m.xq.data(), n);
  return m;
}

enum class Impl { kRef, kSimd, kSimdRows };

void run_rows(benchmark::State& state, const Matrix& m, Impl impl) {
  std::vector<float> y(static_cast<size_t>(m.rows));
  const Ops& ref = ref_ops();
  for (auto _ : state) {
    switch (impl) {
      case Impl::kRef:
        for (int64_t r = 0; r < m.rows; ++r) {
          y[r] = ref.vec_dot(m.wt, m.n, m.w.data() + r * m.stride, m.xq.data());
        }
        break;
      case Impl::kSimd:
        for (int64_t r = 0; r < m.rows; ++r) {
          y[r] = simd::vec_dot(m.wt, m.n, m.w.data() + r * m.stride, m.xq.data());
        }
        break;
      case Impl::kSimdRows:
        simd::vec_dot_rows(m.wt, m.n, m.w.data(), m.stride, m.rows, m.xq.data(), y.data());
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.stride) * m.rows);
  state.SetLabel(impl == Impl::kRef ? "ref" : simd_ops_or_null()->name);
}

void BM_VecDot(benchmark::State& state, GgmlType wt, Impl impl) {
  static std::vector<Matrix>* cache = new std::vector<Matrix>();
  const Matrix* m = nullptr;
  for (const auto& c : *cache) {
    if (c.wt == wt && c.rows == 64) m = &c;
  }
  if (!m) m = &cache->emplace_back(make_matrix(wt, 4096, 64));
  run_rows(state, *m, impl);
}

void BM_MatVec4096(benchmark::State& state, GgmlType wt, Impl impl) {
  static std::vector<Matrix>* cache = new std::vector<Matrix>();
  const Matrix* m = nullptr;
  for (const auto& c : *cache) {
    if (c.wt == wt) m = &c;
  }
  if (!m) m = &cache->emplace_back(make_matrix(wt, 4096, 4096));
  run_rows(state, *m, impl);
}

// The real entry point: matmul() (activation quantization + vec_dot_rows over tiles) on one
// thread (or state.range(0) threads), decode shape m = 1.
void BM_Matmul4096(benchmark::State& state, GgmlType wt, bool simd) {
  static std::vector<Matrix>* cache = new std::vector<Matrix>();
  const Matrix* m = nullptr;
  for (const auto& c : *cache) {
    if (c.wt == wt) m = &c;
  }
  if (!m) m = &cache->emplace_back(make_matrix(wt, 4096, 4096));
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const Ops& ops = simd ? *simd_ops_or_null() : ref_ops();
  std::vector<float> x(4096), y(4096);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> scratch;
  for (auto _ : state) {
    matmul(ops, pool, wt, m->w.data(), m->rows, m->n, x.data(), 1, y.data(), scratch);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m->stride) * m->rows);
  state.SetLabel(ops.name);
}

void BM_Quantize(benchmark::State& state, GgmlType t, Impl impl) {
  const int64_t n = 4096;
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(row_size(t, n));
  for (auto _ : state) {
    if (impl == Impl::kRef) {
      ref_ops().quantize_row(t, x.data(), q.data(), n);
    } else {
      simd::quantize_row(t, x.data(), q.data(), n);
    }
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 4);
}

void register_all() {
  const std::pair<GgmlType, const char*> types[] = {
      {GgmlType::kQ4_0, "q4_0"}, {GgmlType::kQ8_0, "q8_0"}, {GgmlType::kQ4_K, "q4_K"},
      {GgmlType::kQ5_K, "q5_K"}, {GgmlType::kQ6_K, "q6_K"}, {GgmlType::kF16, "f16"},
      {GgmlType::kBF16, "bf16"}, {GgmlType::kF32, "f32"}};
  for (const auto& [t, name] : types) {
    const std::string s(name);
    benchmark::RegisterBenchmark(("VecDot/" + s + "/ref").c_str(), BM_VecDot, t, Impl::kRef);
    benchmark::RegisterBenchmark(("VecDot/" + s + "/simd").c_str(), BM_VecDot, t, Impl::kSimd);
    benchmark::RegisterBenchmark(("VecDot/" + s + "/simd_rows").c_str(), BM_VecDot, t,
                                 Impl::kSimdRows);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const std::string s(type_name(t));
    benchmark::RegisterBenchmark(("MatVec4096/" + s + "/ref").c_str(), BM_MatVec4096, t, Impl::kRef)
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("MatVec4096/" + s + "/simd").c_str(), BM_MatVec4096, t,
                                 Impl::kSimd)
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("MatVec4096/" + s + "/simd_rows").c_str(), BM_MatVec4096, t,
                                 Impl::kSimdRows)
        ->MinTime(0.5);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const std::string s(type_name(t));
    benchmark::RegisterBenchmark(("Matmul4096/" + s + "/ref").c_str(), BM_Matmul4096, t, false)
        ->Arg(1)
        ->UseRealTime()
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("Matmul4096/" + s + "/simd").c_str(), BM_Matmul4096, t, true)
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->MinTime(0.5);
  }
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ8_K, GgmlType::kF16}) {
    const std::string s(type_name(t));
    benchmark::RegisterBenchmark(("Quantize/" + s + "/ref").c_str(), BM_Quantize, t, Impl::kRef);
    benchmark::RegisterBenchmark(("Quantize/" + s + "/simd").c_str(), BM_Quantize, t, Impl::kSimd);
  }
}

const int kRegistered = (register_all(), 0);

}  // namespace
}  // namespace edgelm
