// A corpus of broken GGUF files: every truncation point, corrupted counts, types, offsets,
// dimensions and alignment. Each must give a clear error (never a crash or sanitizer report).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "test_util.h"

namespace edgelm {
namespace {

std::vector<uint8_t> small_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_array_string("tokenizer.ggml.tokens", {"<s>", "a", "b"});
  w.set_array_f32("tokenizer.ggml.scores", {0, -1, -2});
  std::vector<uint8_t> d(2 * 34, 3);
  EXPECT_TRUE(w.add_tensor("w", GgmlType::kQ8_0, {32, 2}, d).ok());
  std::vector<uint8_t> e(16, 5);
  EXPECT_TRUE(w.add_tensor("n", GgmlType::kF32, {4}, e).ok());
  return w.to_bytes();
}

// Offset of the first byte of `needle` in `hay`.
size_t find_bytes(const std::vector<uint8_t>& hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  EXPECT_NE(it, hay.end());
  return static_cast<size_t>(it - hay.begin());
}

void expect_error(const std::vector<uint8_t>& bytes, std::string_view fragment) {
  auto f = GgufFile::parse(bytes, "broken.gguf");
  ASSERT_FALSE(f.ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_NE(f.status().message().find(fragment), std::string::npos) << f.status().to_string();
  EXPECT_NE(f.status().message().find("broken.gguf"), std::string::npos) << f.status().to_string();
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

TEST(GgufBroken, EveryTruncationIsAnError) {
  auto full = small_file();
  auto whole = GgufFile::parse(full);
  ASSERT_TRUE(whole.ok());
  const GgufTensorInfo* last = (*whole)->find_tensor("n");
  const size_t data_end = static_cast<size_t>(last->data + last->nbytes - full.data());
  // Any prefix that cuts into the header or tensor data fails with a message; none may crash.
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    auto f = GgufFile::parse(cut, "broken.gguf");
    if (n < data_end) {
      ASSERT_FALSE(f.ok()) << "truncated at byte " << n << " of " << full.size();
      EXPECT_NE(f.status().message().find("broken.gguf"), std::string::npos);
    } else {
      EXPECT_TRUE(f.ok()) << "only trailing padding removed at " << n;
    }
  }
  std::vector<uint8_t> header_only(full.begin(), full.begin() + 100);
  expect_error(header_only, "truncated");
}

TEST(GgufBroken, BadMagicAndVersion) {
  auto b = small_file();
  b[0] = 'X';
  expect_error(b, "not a GGUF file");
  b = small_file();
  poke<uint32_t>(b, 4, 1);
  expect_error(b, "version 1");
  poke<uint32_t>(b, 4, 99);
  expect_error(b, "unknown GGUF version 99");
  expect_error({}, "not a GGUF file");
}

TEST(GgufBroken, AbsurdCounts) {
  auto b = small_file();
  poke<uint64_t>(b, 8, 1ull << 50);
  expect_error(b, "tensor count");
  b = small_file();
  poke<uint64_t>(b, 16, 1ull << 50);
  expect_error(b, "metadata count");
}

TEST(GgufBroken, BadValueTypeAndStringLength) {
  auto b = small_file();
  size_t key = find_bytes(b, "general.architecture");
  poke<uint32_t>(b, key + 20, 77);  // value type after the key
  expect_error(b, "unknown value type 77");
  b = small_file();
  poke<uint64_t>(b, key + 24, 1ull << 40);  // string length of the value
  expect_error(b, "length");
  b = small_file();
  size_t arr = find_bytes(b, "tokenizer.ggml.tokens");
  poke<uint64_t>(b, arr + 21 + 8, 1ull << 60);  // array count
  expect_error(b, "claims");
}

TEST(GgufBroken, BadTensorRecords) {
  auto base = small_file();
  // Tensor record of "w": name (8+1) then n_dims u32, dims u64 x2, type u32, offset u64.
  size_t rec = find_bytes(base, std::string_view("\x01\x00\x00\x00\x00\x00\x00\x00w", 9)) + 9;
  auto b = base;
  poke<uint32_t>(b, rec, 9);
  expect_error(b, "dimensions");
  b = base;
  poke<uint64_t>(b, rec + 4, 33);  // ne0 not a multiple of 32 for q8_0
  expect_error(b, "block size");
  b = base;
  poke<uint64_t>(b, rec + 4, 0);
  expect_error(b, "out of range");
  b = base;
  poke<uint32_t>(b, rec + 20, 1234);
  expect_error(b, "unknown ggml type 1234");
  b = base;
  poke<uint64_t>(b, rec + 24, 3);
  expect_error(b, "alignment");
  b = base;
  poke<uint64_t>(b, rec + 24, 1ull << 40);
  expect_error(b, "data section");
  b = base;
  poke<uint64_t>(b, rec + 4, 1ull << 39);
  poke<uint64_t>(b, rec + 12, 1ull << 39);
  expect_error(b, "overflows");
}

TEST(GgufBroken, RandomCorruptionNeverCrashes) {
  auto base = small_file();
  std::mt19937 rng(1234);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    auto b = base;
    int flips = 1 + rng() % 4;
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    auto f = GgufFile::parse(b, "broken.gguf");
    if (!f.ok()) {
      ++errors;
      EXPECT_FALSE(f.status().message().empty());
    } else {
      for (const auto& t : (*f)->tensors()) {
        ASSERT_GE(t.data, b.data());
        ASSERT_LE(t.data + t.nbytes, b.data() + b.size());
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(GgufBroken, MissingFileIsNotFound) {
  auto f = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace edgelm
