// simd_ops_or_null(): the Highway op table for this CPU, plus the target plumbing that tests
// use to run every kernel on every target the host supports.
// clang-format off
#include "kernels/simd/hwy-config.h"  // first: before any hwy header
// clang-format on

#include <string>

#include "hwy/highway.h"
#include "hwy/targets.h"
#include "kernels/simd/simd.h"

namespace edgelm {
namespace simd {

const char* target_name(int64_t target) { return hwy::TargetName(target); }

std::vector<int64_t> compiled_targets() { return hwy::SupportedAndGeneratedTargets(); }

void force_target(int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

Ops make_ops() {
  // Names must outlive the table: one interned string per target.
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>();
    for (int64_t t = 1; t != 0; t <<= 1) v->push_back(std::string("simd:") + hwy::TargetName(t));
    return v;
  }();
  const int64_t t = current_target();
  int bit = 0;
  while (bit < 63 && (int64_t{1} << bit) != t) ++bit;
  Ops ops = ref_ops();
  ops.name = (*names)[static_cast<size_t>(bit)].c_str();
  ops.quantize_row = &simd::quantize_row;
  ops.vec_dot = &simd::vec_dot;
  ops.rms_norm = &simd::rms_norm;
  ops.softmax = &simd::softmax;
  ops.swiglu = &simd::swiglu;
  ops.axpy = &simd::axpy;
  ops.vec_dot_rows = &simd::vec_dot_rows;
  ops.gemm_tile = &simd::gemm_tile;
  ops.packed_layout = &simd::packed_layout;
  ops.vec_dot_packed = &simd::vec_dot_packed;
  ops.gemm_packed = &simd::gemm_packed;
  return ops;
}

}  // namespace simd

const Ops* simd_ops_or_null() {
  static const Ops ops = simd::make_ops();
  return &ops;
}

}  // namespace edgelm
