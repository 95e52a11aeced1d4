// Architecture descriptions: what distinguishes one llama-family architecture from another
// (RoPE layout, optional q/k/v biases, tied output). One file per architecture in arch/;
// the shared transformer forward pass in context.cpp reads these flags.
//
//   const ArchInfo* a = find_arch("qwen2");   // nullptr for an unsupported architecture
//   if (a->rope_type == RopeType::kNeox) ...
#pragma once

#include <string>
#include <string_view>

namespace edgelm {

// ggml's RoPE modes: kNorm rotates adjacent pairs (x[2i], x[2i+1]); kNeox rotates halves
// (x[i], x[i + n_rot/2]). llama.cpp's converter permutes llama's q/k so llama uses kNorm.
enum class RopeType { kNorm = 0, kNeox = 2 };

struct ArchInfo {
  const char* name;  // GGUF general.architecture value
  RopeType rope_type;
  bool qkv_bias_required;  // qwen2: attn_q/k/v.bias must be present
  bool qkv_bias_allowed;   // biases bound when present
};

const ArchInfo& llama_arch_info();
const ArchInfo& qwen2_arch_info();

// nullptr when `name` is not a supported architecture.
const ArchInfo* find_arch(std::string_view name);
// "llama, qwen2" for error messages.
std::string supported_arch_names();

}  // namespace edgelm
