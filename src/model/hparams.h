// Model hyperparameters read from GGUF metadata (<arch>.embedding_length, block_count,
// attention.head_count[_kv], feed_forward_length, context_length, rope.*, rms epsilon) and
// the vocabulary size from token_embd.weight. Errors name the missing key or the
// inconsistent value.
//
//   ASSIGN_OR_RETURN(HParams hp, HParams::from_gguf(*file));
//   int64_t kv_width = hp.n_embd_kv();   // head_dim * n_head_kv
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "gguf/reader.h"
#include "model/arch/arch.h"

namespace edgelm {

struct HParams {
  std::string arch;  // "llama", "qwen2"
  const ArchInfo* arch_info = nullptr;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  int64_t head_dim = 0;  // n_embd / n_head unless attention.key_length says otherwise
  int64_t n_rot = 0;     // rope.dimension_count (defaults to head_dim)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  float rms_eps = 1e-5f;
  RopeType rope_type = RopeType::kNorm;

  int64_t n_embd_q() const { return head_dim * n_head; }
  int64_t n_embd_kv() const { return head_dim * n_head_kv; }
  int64_t n_gqa() const { return n_head / n_head_kv; }

  // Reads and checks everything; `vocab` comes from token_embd.weight's second dimension.
  static StatusOr<HParams> from_gguf(const GgufFile& file);
  // One line: "llama: n_vocab=32000 n_embd=256 n_layer=2 ...".
  std::string to_string() const;
};

}  // namespace edgelm
