// Private to src/kernels/simd: Highway configuration shared by every SIMD translation unit
// (must be included before any hwy header, identically everywhere, so that all dispatch
// tables agree on the target list).
//  - AVX3_DL (AVX-512 VNNI/VBMI: Ice Lake, Zen4) is opt-in in Highway 1.0.3: opt in.
//  - SSSE3 is dropped (pre-2008 CPUs run the scalar target = ref kernels) to cut build time.
#pragma once

#ifdef HIGHWAY_HWY_DETECT_TARGETS_H_
#error "kernels/simd/hwy-config.h must be included before any Highway header"
#endif

#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
