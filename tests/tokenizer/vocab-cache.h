// Test helper: loads a tokenizer from a ../shared GGUF once per test binary.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "gguf/reader.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace edgelm::testing {

// Returns nullptr (after ADD_FAILURE) if the file exists but fails to load.
inline const Tokenizer* cached_tokenizer(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second.get();
  auto file = GgufFile::open(path);
  if (!file.ok()) {
    ADD_FAILURE() << file.status().to_string();
    return nullptr;
  }
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok.ok()) {
    ADD_FAILURE() << tok.status().to_string();
    return nullptr;
  }
  return cache.emplace(path, std::move(*tok)).first->second.get();
}

}  // namespace edgelm::testing

// Skips when the shared file is absent; fails when it does not load.
#define EDGELM_REQUIRE_TOKENIZER(var, rel)                                          \
  EDGELM_REQUIRE_SHARED(var##_path, rel);                                           \
  const ::edgelm::Tokenizer* var = ::edgelm::testing::cached_tokenizer(var##_path); \
  ASSERT_NE(var, nullptr)
