// Weak fallback for simd_ops_or_null() so that edgelm_kernels links without src/kernels/simd.
// It lives in its own object, named to sort after simd/ in the (globbed, sorted) archive, so
// the linker resolves the symbol to simd/dispatch.cpp's strong definition whenever that exists.
#include "kernels/kernels.h"

namespace edgelm {

__attribute__((weak)) const Ops* simd_ops_or_null() { return nullptr; }

}  // namespace edgelm
