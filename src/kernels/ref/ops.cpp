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
      .vec_dot_rows = &ref::vec_dot_rows,
  };
  return ops;
}

bool vec_dot_supported(GgmlType wt) { return ref::vec_dot_supported(wt); }

}  // namespace edgelm
