// Pre-tokenizers of byte-level BPE vocabularies: split text into words the way the model's
// tokenizer.json regex does, before BPE merges run inside each word. Each supported pattern
// has a hand-written splitter over codepoints (std::regex cannot express \p{L}); categories come
// from unicode.h. Words are returned as raw UTF-8 (not yet byte-encoded).
//
//   auto words = pre_tokenize(PreTokenizerType::kLlama3, "Hello world!!");
//   // {"Hello", " world", "!!"}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm {

enum class PreTokenizerType {
  kDefault,  // llama.cpp's fallback chain: punctuation runs, GPT-2 words, digit runs, 3 digits
  kLlama3,   // Llama 3 / tiktoken cl100k-style, digits in groups of up to 3
  kQwen2,    // as Llama 3, single digits
  kGpt2,     // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kSmollm,   // single digits, then GPT-2 words
};

const char* pre_tokenizer_name(PreTokenizerType t);

// Splits `text` into words; concatenating them gives back the text (invalid UTF-8 bytes are
// replaced by U+FFFD, as llama.cpp does).
std::vector<std::string> pre_tokenize(PreTokenizerType type, std::string_view text);

}  // namespace edgelm
