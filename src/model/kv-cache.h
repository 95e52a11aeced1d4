// Per-layer key/value cache in F16, as llama.cpp keeps it (so attention sees the same rounded
// keys and values). Keys and values are both stored row-major per position
// ([n_ctx][n_embd_kv] per layer), the layout llama.cpp's flash attention reads.
//
//   KvCache kv(n_layer, n_ctx, n_embd_kv);
//   kv.store(layer, pos, k_row, v_row);         // F32 in, rounded to F16
//   const uint16_t* k = kv.k_row(layer, pos);   // n_embd_kv halves
//   const uint16_t* v = kv.v_row(layer, pos);   // n_embd_kv halves
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgelm {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_layer() const { return n_layer_; }
  int64_t n_embd_kv() const { return n_embd_kv_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

  // Writes position `pos` of layer `layer` (pos < n_ctx; caller checks).
  void store(int64_t layer, int64_t pos, const float* k, const float* v);

  const uint16_t* k_row(int64_t layer, int64_t pos) const {
    return k_.data() + (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  }
  const uint16_t* v_row(int64_t layer, int64_t pos) const {
    return v_.data() + (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  }

 private:
  int64_t n_layer_ = 0, n_ctx_ = 0, n_embd_kv_ = 0;
  std::vector<uint16_t> k_;
  std::vector<uint16_t> v_;
};

}  // namespace edgelm
