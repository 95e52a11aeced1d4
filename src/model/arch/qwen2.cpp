// Qwen2 / Qwen2.5: the llama block with biases on the q/k/v projections and RoPE in ggml's
// "neox" mode (rotating the two halves of each head), usually with tied embeddings.
#include "model/arch/arch.h"

namespace edgelm {

const ArchInfo& qwen2_arch_info() {
  static const ArchInfo kInfo{"qwen2", RopeType::kNeox, /*qkv_bias_required=*/true,
                              /*qkv_bias_allowed=*/true};
  return kInfo;
}

}  // namespace edgelm
