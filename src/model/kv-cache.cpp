#include "model/kv-cache.h"

#include "quant/fp16.h"

namespace edgelm {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      n_embd_kv_(n_embd_kv),
      k_(static_cast<size_t>(n_layer * n_ctx * n_embd_kv)),
      v_(static_cast<size_t>(n_layer * n_ctx * n_embd_kv)) {}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  uint16_t* kd = k_.data() + (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  for (int64_t i = 0; i < n_embd_kv_; ++i) kd[i] = fp32_to_fp16(k[i]);
  uint16_t* vd = v_.data() + (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  for (int64_t i = 0; i < n_embd_kv_; ++i) vd[i] = fp32_to_fp16(v[i]);
}

}  // namespace edgelm
