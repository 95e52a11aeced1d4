// Internal to src/quant: the scale searches shared by the K-quant reference quantizers
// (ggml's make_qkx2_quants for Q4_K/Q5_K and make_qx_quants for Q6_K).
//
//   float min; uint8_t L[32], aux[32];
//   float scale = make_qkx2_quants(32, 15, x, weights, L, &min, aux, -1.0f, 0.1f, 20);
#pragma once

#include <cstdint>

namespace edgelm::kquant {

inline constexpr float kGroupMaxEps = 1e-15f;

// Fits x[i] ~= scale * L[i] - *the_min with L in [0, nmax], minimizing the weighted squared error
// over nstep+1 candidate scales. Returns the scale; *the_min receives the (non-negative) min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);

// Fits x[i] ~= scale * (L[i] - nmax) with L in [0, 2*nmax), weights x^2 (rmse_type 1), trying
// 19 candidate scales. Returns the (signed) scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L);

}  // namespace edgelm::kquant
