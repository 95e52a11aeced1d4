// Tokenization against llama-server on the conformance models (golden/conformance/<model>.json):
// /tokenize with and without add_special (special tokens parsed), greedy prompts -> prompt_ids,
// and detokenized greedy outputs == the server's text.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/stream-decoder.h"
#include "vocab-cache.h"

namespace edgelm {
namespace {

void check_model(const std::string& model) {
  EDGELM_REQUIRE_SHARED(json_path, "golden/conformance/" + model + ".json");
  EDGELM_REQUIRE_TOKENIZER(tok, "models/" + model + ".gguf");
  std::ifstream f(json_path);
  nlohmann::json j = nlohmann::json::parse(f);

  const auto& cases = j.at("tokenize");
  ASSERT_GT(cases.size(), 5u);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const auto with = c.at("ids_with_special").get<std::vector<int32_t>>();
    const auto without = c.at("ids").get<std::vector<int32_t>>();
    auto a = tok->encode(text, /*add_special=*/true, /*parse_special=*/true);
    auto b = tok->encode(text, /*add_special=*/false, /*parse_special=*/true);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, with) << model << " add_special '" << text << "'";
    EXPECT_EQ(*b, without) << model << " '" << text << "'";
  }

  const auto& greedy = j.at("greedy");
  ASSERT_GT(greedy.size(), 2u);
  for (const auto& g : greedy) {
    const std::string prompt = g.at("prompt");
    auto ids = tok->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, g.at("prompt_ids").get<std::vector<int32_t>>()) << model << " '" << prompt;
    const auto out_ids = g.at("ids").get<std::vector<int32_t>>();
    const std::string text = g.at("text");
    // The server's JSON text carries a lone byte token as U+FFFD; decode() does the same.
    EXPECT_EQ(tok->decode(out_ids), text) << model << " greedy output of '" << prompt << "'";
    EXPECT_EQ(sanitize_utf8(tok->decode_bytes(out_ids)), text);
  }
}

TEST(Conformance, LlamaSpm) { check_model("conf-llama-spm-f16"); }
TEST(Conformance, Llama3Bpe) { check_model("conf-llama3-bpe-f16"); }
TEST(Conformance, Qwen2) { check_model("conf-qwen2-f16"); }
TEST(Conformance, LlamaSpmQ8) { check_model("conf-llama-spm-q8_0"); }

TEST(Conformance, SpecialTokenIds) {
  {
    EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama-spm-f16.gguf");
    EXPECT_EQ(tok->bos(), 1);
    EXPECT_EQ(tok->eos(), 2);
    EXPECT_TRUE(tok->add_bos());
    EXPECT_TRUE(tok->is_eog(2));
    EXPECT_FALSE(tok->is_eog(1));
    EXPECT_EQ(tok->n_vocab(), 32000);
    EXPECT_EQ(tok->find_token("<0x0A>"), 13);
    EXPECT_EQ(tok->token_to_piece(13), "\n");
    EXPECT_EQ(tok->token_to_piece(1), "");
    EXPECT_EQ(tok->token_to_piece(1, /*special=*/true), "<s>");
  }
  {
    EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama3-bpe-f16.gguf");
    EXPECT_EQ(tok->bos(), 128000);
    EXPECT_EQ(tok->eos(), 128001);
    EXPECT_TRUE(tok->add_bos());
    const int32_t eot = tok->find_token("<|eot_id|>").value_or(-1);
    EXPECT_EQ(eot, 128009);
    EXPECT_TRUE(tok->is_eog(eot));
    EXPECT_TRUE(tok->is_eog(128001));
    EXPECT_FALSE(tok->is_eog(128006));
    EXPECT_EQ(tok->token_to_piece(220), " ");  // "Ġ"
    // A literal BOS in the text is parsed; add_special adds another, as llama.cpp does.
    auto a = tok->encode("<|begin_of_text|>Hello", /*add_special=*/false, true);
    auto b = tok->encode("<|begin_of_text|>Hello", /*add_special=*/true, true);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, (std::vector<int32_t>{128000, 9906}));
    EXPECT_EQ(*b, (std::vector<int32_t>{128000, 128000, 9906}));
  }
  {
    EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-qwen2-f16.gguf");
    EXPECT_FALSE(tok->add_bos());
    const int32_t im_end = tok->find_token("<|im_end|>").value_or(-1);
    EXPECT_EQ(im_end, 151645);
    EXPECT_TRUE(tok->is_eog(im_end));
    EXPECT_TRUE(tok->is_eog(151643));
    EXPECT_FALSE(tok->is_eog(151644));
    // <|im_start|> is parsed only with parse_special.
    auto with = tok->encode("<|im_start|>user", false, true);
    auto without = tok->encode("<|im_start|>user", false, false);
    ASSERT_TRUE(with.ok() && without.ok());
    ASSERT_FALSE(with->empty());
    EXPECT_EQ(with->front(), 151644);
    EXPECT_EQ(std::count(without->begin(), without->end(), 151644), 0);
  }
}

}  // namespace
}  // namespace edgelm
