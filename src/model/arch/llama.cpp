// Llama family (Llama 2/3, Mistral-style, TinyStories, SmolLM): pre-norm transformer with
// RMSNorm, RoPE in ggml's "normal" mode (adjacent pairs; llama.cpp's converter permutes q/k),
// grouped-query attention, SwiGLU FFN, optional tied output and optional q/k/v biases.
#include "model/arch/arch.h"

namespace edgelm {

const ArchInfo& llama_arch_info() {
  static const ArchInfo kInfo{"llama", RopeType::kNorm, /*qkv_bias_required=*/false,
                              /*qkv_bias_allowed=*/true};
  return kInfo;
}

const ArchInfo* find_arch(std::string_view name) {
  if (name == llama_arch_info().name) return &llama_arch_info();
  if (name == qwen2_arch_info().name) return &qwen2_arch_info();
  return nullptr;
}

std::string supported_arch_names() {
  return std::string(llama_arch_info().name) + ", " + qwen2_arch_info().name;
}

}  // namespace edgelm
