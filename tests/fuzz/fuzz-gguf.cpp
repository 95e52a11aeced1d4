// libFuzzer target for the GGUF reader: any byte string must parse to a valid file or a clear
// error, never a crash, hang or sanitizer report. Parsed tensors must lie inside the input.
//
//   tests/fuzz/run.sh [seconds]     (builds with clang, runs on tests/fuzz/corpus)
#include <cstdint>
#include <cstdlib>
#include <span>

#include "gguf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = edgelm::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!f.ok()) {
    if (f.status().message().empty()) std::abort();  // every error must say something
    return 0;
  }
  for (const auto& t : (*f)->tensors()) {
    if (t.data < data || t.data + t.nbytes > data + size) std::abort();
  }
  for (const auto& [k, v] : (*f)->metadata()) (void)v.to_string(4);
  return 0;
}
