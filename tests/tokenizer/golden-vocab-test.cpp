// llama.cpp's tokenizer test suite (test-tokenizer-0): every text of ggml-vocab-<name>.gguf.inp
// must encode (add_special = false, parse_special = false) to exactly the ids in .out.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "vocab-cache.h"

namespace edgelm {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Texts are each followed by "\n__ggml_vocab_test__\n".
std::vector<std::string> split_texts(const std::string& all) {
  static const std::string kSep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t m = all.find(kSep, pos);
    if (m == std::string::npos) {
      out.push_back(all.substr(pos));
      break;
    }
    out.push_back(all.substr(pos, m - pos));
    pos = m + kSep.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> parse_ids(const std::string& all) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int64_t v;
    while (ls >> v) ids.push_back(static_cast<int32_t>(v));
    out.push_back(std::move(ids));
  }
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

void check_vocab(const Tokenizer& tok, const std::string& name) {
  EDGELM_REQUIRE_SHARED(inp, "golden/tokenizer/ggml-vocab-" + name + ".gguf.inp");
  EDGELM_REQUIRE_SHARED(outp, "golden/tokenizer/ggml-vocab-" + name + ".gguf.out");
  const auto texts = split_texts(read_file(inp));
  const auto expected = parse_ids(read_file(outp));
  ASSERT_EQ(texts.size(), expected.size()) << name;
  ASSERT_GT(texts.size(), 40u);
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = tok.encode(texts[i], /*add_special=*/false, /*parse_special=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    if (*ids != expected[i]) {
      ++failures;
      ADD_FAILURE() << name << " text #" << i << " '" << texts[i]
                    << "'\n  expected:" << show(expected[i]) << "\n  got:     " << show(*ids);
    }
    // Detokenizing gives the text back (modulo SPM's leading space prefix).
    std::string back = tok.decode(*ids);
    if (tok.type() == VocabType::kSpm && !texts[i].empty()) {
      ASSERT_FALSE(back.empty());
      EXPECT_EQ(back[0], ' ');
      back.erase(0, 1);
    }
    EXPECT_EQ(back, texts[i]) << name << " text #" << i;
  }
  EXPECT_EQ(failures, 0) << name;
}

TEST(GoldenVocab, LlamaSpm) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama-spm-f16.gguf");
  EXPECT_EQ(tok->type(), VocabType::kSpm);
  check_vocab(*tok, "llama-spm");
}

TEST(GoldenVocab, LlamaBpe) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama3-bpe-f16.gguf");
  EXPECT_EQ(tok->pre_type(), PreTokenizerType::kLlama3);
  check_vocab(*tok, "llama-bpe");
}

TEST(GoldenVocab, Qwen2) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-qwen2-f16.gguf");
  EXPECT_EQ(tok->pre_type(), PreTokenizerType::kQwen2);
  check_vocab(*tok, "qwen2");
}

TEST(GoldenVocab, Gpt2) {
  EDGELM_REQUIRE_TOKENIZER(tok, "golden/tokenizer/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(tok->pre_type(), PreTokenizerType::kGpt2);
  check_vocab(*tok, "gpt-2");
}

TEST(GoldenVocab, Phi3) {
  EDGELM_REQUIRE_TOKENIZER(tok, "golden/tokenizer/ggml-vocab-phi-3.gguf");
  EXPECT_EQ(tok->type(), VocabType::kSpm);
  check_vocab(*tok, "phi-3");
}

}  // namespace
}  // namespace edgelm
