// ref_ops(): the op table over the scalar reference kernels.
#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

namespace edgelm {

const Ops& ref_ops() {
  static const Ops ops = {
      .name = "ref",
      .quantize_row = &ref::quantize_row,
      .vec_dot = &ref::vec_dot,
      .rms_norm = &ref::rms_norm,
      .softmax = &ref::softmax,
      .swiglu = &ref::swiglu,
      .axpy = &ref::axpy,
      // Left null: tables built by copying ref_ops() and replacing vec_dot must not inherit a
      // vec_dot_rows that disagrees with their vec_dot. matmul loops over vec_dot instead.
      .vec_dot_rows = nullptr,
  };
  return ops;
}

bool vec_dot_supported(GgmlType wt) { return ref::vec_dot_supported(wt); }

}  // namespace edgelm
