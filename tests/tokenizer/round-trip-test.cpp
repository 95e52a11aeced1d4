// Randomized checks on the real vocabularies: valid UTF-8 text survives encode -> decode
// exactly (SPM adds its leading space), arbitrary bytes never crash and decode to valid UTF-8.
#include <random>
#include <string>
#include <vector>

#include "tokenizer/stream-decoder.h"
#include "tokenizer/unicode.h"
#include "vocab-cache.h"

namespace edgelm {
namespace {

std::string random_text(std::mt19937& rng) {
  static const std::vector<uint32_t> kPool = {
      'a',     'Z',     'q',     ' ',    ' ',    ' ',    '\n',   '\t',   '\r',   '\'',   's',
      'l',     '.',     ',',     '!',    '?',    '(',    ')',    '0',    '7',    '<',    '>',
      '|',     '_',     '-',     0xE9,   0xFC,   0x3B1,  0x416,  0x5D0,  0x627,  0x915,  0x301,
      0x65E5,  0x672C,  0x3042,  0xAC00, 0x2014, 0x201C, 0x2026, 0x00A0, 0x3000, 0x200D, 0x1F642,
      0x1F680, 0x1F469, 0x1F999, 0x2705, 0x00BD, 0x0663, 0xFFFD};
  std::uniform_int_distribution<size_t> len(1, 40), pick(0, kPool.size() - 1);
  std::string s;
  for (size_t i = 0, n = len(rng); i < n; ++i) unicode::append_utf8(s, kPool[pick(rng)]);
  return s;
}

void check_round_trip(const Tokenizer& tok, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < 150; ++i) {
    const std::string text = random_text(rng);
    auto ids = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    ASSERT_FALSE(ids->empty());
    for (int32_t id : *ids) ASSERT_TRUE(id >= 0 && id < tok.n_vocab());
    const std::string expect = tok.type() == VocabType::kSpm ? " " + text : text;
    EXPECT_EQ(tok.decode(*ids), expect);
  }
  std::uniform_int_distribution<int> byte(0, 255), len(0, 24);
  for (int i = 0; i < 100; ++i) {
    std::string junk;
    for (int k = 0, n = len(rng); k < n; ++k) junk.push_back(static_cast<char>(byte(rng)));
    auto ids = tok.encode(junk, true, true);
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    const std::string back = tok.decode(*ids);
    EXPECT_EQ(sanitize_utf8(back), back);
  }
}

TEST(RoundTrip, LlamaSpm) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama-spm-f16.gguf");
  check_round_trip(*tok, 1);
}

TEST(RoundTrip, Llama3Bpe) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama3-bpe-f16.gguf");
  check_round_trip(*tok, 2);
}

TEST(RoundTrip, Qwen2) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-qwen2-f16.gguf");
  check_round_trip(*tok, 3);
}

TEST(RoundTrip, Gpt2) {
  EDGELM_REQUIRE_TOKENIZER(tok, "golden/tokenizer/ggml-vocab-gpt-2.gguf");
  check_round_trip(*tok, 4);
}

}  // namespace
}  // namespace edgelm
