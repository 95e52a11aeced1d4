// Unicode tables, pre-tokenizer splits (expected words follow the tokenizer.json regexes; they
// were cross-checked against Python's `regex` module), stream decoding and chat templates.
#include <string>
#include <vector>

#include "test_util.h"
#include "tokenizer/chat-template.h"
#include "tokenizer/pre-tokenizer.h"
#include "tokenizer/stream-decoder.h"
#include "tokenizer/string-index.h"
#include "tokenizer/unicode.h"
#include "vocab-cache.h"

namespace edgelm {
namespace {

using Words = std::vector<std::string>;

TEST(Unicode, Categories) {
  EXPECT_TRUE(unicode::flags('A').is_letter());
  EXPECT_TRUE(unicode::flags(0x65E5).is_letter());  // 日
  EXPECT_TRUE(unicode::flags(0x00E9).is_letter());  // é
  EXPECT_TRUE(unicode::flags('7').is_number());
  EXPECT_TRUE(unicode::flags(0x00BD).is_number());  // ½ (No)
  EXPECT_TRUE(unicode::flags(0x2160).is_number());  // Ⅰ (Nl)
  EXPECT_TRUE(unicode::flags('!').is_punctuation());
  EXPECT_EQ(unicode::flags('$').category, CptCategory::kSymbol);
  EXPECT_EQ(unicode::flags(0x1F642).category, CptCategory::kSymbol);  // 🙂
  EXPECT_EQ(unicode::flags(0x0301).category, CptCategory::kMark);
  EXPECT_EQ(unicode::flags(0x200D).category, CptCategory::kControl);  // ZWJ (Cf)
  for (uint32_t ws : {0x20u, 0x09u, 0x0Au, 0x0Du, 0x85u, 0xA0u, 0x2003u, 0x3000u})
    EXPECT_TRUE(unicode::flags(ws).is_whitespace()) << ws;
  for (uint32_t nws : {0x1Cu, 0x200Bu, 0x61u}) EXPECT_FALSE(unicode::flags(nws).is_whitespace());
  EXPECT_TRUE(unicode::flags(0x110000).valid);
  EXPECT_EQ(unicode::flags(0x110000).category, CptCategory::kUndefined);
}

TEST(Unicode, Utf8DecodingReplacesInvalidBytes) {
  EXPECT_EQ(unicode::decode_utf8("a\xc3\xa9\xf0\x9f\x99\x82"),
            (std::vector<uint32_t>{'a', 0xE9, 0x1F642}));
  // Stray continuation, truncated sequence: one U+FFFD per bad byte, then resync.
  EXPECT_EQ(unicode::decode_utf8("\x80x\xe6\x97"),
            (std::vector<uint32_t>{0xFFFD, 'x', 0xFFFD, 0xFFFD}));
  std::string s;
  for (uint32_t c : {0x41u, 0x3B1u, 0x65E5u, 0x1F680u}) unicode::append_utf8(s, c);
  EXPECT_EQ(s, "A\xce\xb1\xe6\x97\xa5\xf0\x9f\x9a\x80");
}

TEST(Unicode, ByteLevelMapRoundTrips) {
  EXPECT_EQ(unicode::byte_to_bpe_utf8(' '), "\xc4\xa0");   // Ġ U+0120
  EXPECT_EQ(unicode::byte_to_bpe_utf8('\n'), "\xc4\x8a");  // Ċ U+010A
  EXPECT_EQ(unicode::byte_to_bpe_utf8('a'), "a");
  for (int b = 0; b < 256; ++b) {
    auto cpts = unicode::decode_utf8(unicode::byte_to_bpe_utf8(static_cast<uint8_t>(b)));
    ASSERT_EQ(cpts.size(), 1u);
    EXPECT_EQ(unicode::bpe_cpt_to_byte(cpts[0]), b);
  }
  EXPECT_FALSE(unicode::bpe_cpt_to_byte(0x20).has_value());  // a raw space is not a BPE char
}

TEST(PreTokenizer, Llama3) {
  auto t = PreTokenizerType::kLlama3;
  EXPECT_EQ(pre_tokenize(t, "Hello world!!"), (Words{"Hello", " world", "!!"}));
  EXPECT_EQ(pre_tokenize(t, "1234567"), (Words{"123", "456", "7"}));
  EXPECT_EQ(pre_tokenize(t, "I'M don'T"), (Words{"I", "'M", " don", "'T"}));
  EXPECT_EQ(pre_tokenize(t, "a  \n\n  b"), (Words{"a", "  \n\n", " ", " b"}));
  EXPECT_EQ(pre_tokenize(t, "x   "), (Words{"x", "   "}));
  EXPECT_EQ(pre_tokenize(t, "(x) ...\n\nok"), (Words{"(x", ")", " ...\n\n", "ok"}));
  EXPECT_EQ(pre_tokenize(t, "\xe6\x97\xa5\xe6\x9c\xac 3.14"),
            (Words{"\xe6\x97\xa5\xe6\x9c\xac", " ", "3", ".", "14"}));
  EXPECT_EQ(pre_tokenize(t, ""), Words{});
}

TEST(PreTokenizer, Qwen2SingleDigits) {
  EXPECT_EQ(pre_tokenize(PreTokenizerType::kQwen2, "v12 34"),
            (Words{"v", "1", "2", " ", "3", "4"}));
}

TEST(PreTokenizer, Gpt2) {
  auto t = PreTokenizerType::kGpt2;
  EXPECT_EQ(pre_tokenize(t, "Hello world!!"), (Words{"Hello", " world", "!!"}));
  EXPECT_EQ(pre_tokenize(t, "I'M don't"), (Words{"I", "'", "M", " don", "'t"}));
  EXPECT_EQ(pre_tokenize(t, "1234567 x"), (Words{"1234567", " x"}));
  EXPECT_EQ(pre_tokenize(t, "a  \n\n  b"), (Words{"a", "  \n\n ", " b"}));
}

TEST(PreTokenizer, SmollmAndDefault) {
  EXPECT_EQ(pre_tokenize(PreTokenizerType::kSmollm, "ab12 c"), (Words{"ab", "1", "2", " c"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerType::kDefault, "a+=b 12345"),
            (Words{"a", "+=", "b", " ", "123", "45"}));
}

TEST(PreTokenizer, WordsConcatenateToTheText) {
  const std::string text =
      "Mixed: 日本語, émojis 🙂👩\u200d👩 and\ttabs\r\n 12,345.6 'LL";
  for (auto t : {PreTokenizerType::kDefault, PreTokenizerType::kLlama3, PreTokenizerType::kQwen2,
                 PreTokenizerType::kGpt2, PreTokenizerType::kSmollm}) {
    std::string joined;
    for (const auto& w : pre_tokenize(t, text)) {
      EXPECT_FALSE(w.empty()) << pre_tokenizer_name(t);
      joined += w;
    }
    EXPECT_EQ(joined, text) << pre_tokenizer_name(t);
  }
}

TEST(StreamDecoder, HoldsBackPartialCodepoints) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama-spm-f16.gguf");
  // 🙂 (F0 9F 99 82) and 日 (E6 97 A5) through SPM byte tokens <0xXX> (id = 3 + byte).
  const std::vector<int32_t> ids = {3 + 0xF0, 3 + 0x9F, 3 + 0x99, 3 + 0x82,
                                    3 + 0xE6, 3 + 0x97, 3 + 0xA5};
  StreamDecoder dec(*tok);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(dec.push(id));
  EXPECT_EQ(outs,
            (std::vector<std::string>{"", "", "", "\xf0\x9f\x99\x82", "", "", "\xe6\x97\xa5"}));
  EXPECT_EQ(dec.flush(), "");
  // Every emitted chunk is valid UTF-8 on its own, whatever the split.
  const std::string text = "A 🙂 日本 é \xf0\x9f\x9a\x80!";
  auto enc = tok->encode(text, false, false);
  ASSERT_TRUE(enc.ok());
  std::string all;
  StreamDecoder d2(*tok);
  for (int32_t id : *enc) {
    std::string chunk = d2.push(id);
    EXPECT_EQ(sanitize_utf8(chunk), chunk);
    all += chunk;
  }
  all += d2.flush();
  EXPECT_EQ(all, " " + text);
}

TEST(StreamDecoder, ByteLevelBpeAndInvalidBytes) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-llama3-bpe-f16.gguf");
  const std::string text = "emoji: 🙂🚀👩\u200d👩\u200d👧 日本語";
  auto enc = tok->encode(text, false, false);
  ASSERT_TRUE(enc.ok());
  StreamDecoder dec(*tok);
  std::string all;
  for (int32_t id : *enc) {
    std::string chunk = dec.push(id);
    EXPECT_EQ(sanitize_utf8(chunk), chunk);
    all += chunk;
  }
  EXPECT_EQ(dec.pending(), 0u);
  EXPECT_EQ(all + dec.flush(), text);

  StreamDecoder raw(*tok);
  EXPECT_EQ(raw.push_bytes("ok\xe6\x97"), "ok");
  EXPECT_EQ(raw.pending(), 2u);
  EXPECT_EQ(raw.push_bytes("x"), "\xef\xbf\xbdx");  // the sequence can no longer complete
  EXPECT_EQ(raw.push_bytes("\xf0\x9f"), "");
  EXPECT_EQ(raw.flush(), "\xef\xbf\xbd");
  EXPECT_EQ(raw.push_bytes("\xff\xc3\xa9"), "\xef\xbf\xbd\xc3\xa9");
}

TEST(StreamDecoder, ReplacesEachIllFormedSubpart) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(sanitize_utf8("\x86\x86"), r + r);          // stray continuations
  EXPECT_EQ(sanitize_utf8("\xc0\x80"), r + r);          // overlong
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(sanitize_utf8("\xe6\x97x"), r + "x");       // truncated
  EXPECT_EQ(sanitize_utf8("a\xf4\x90\x80\x80"
                          "b"),
            "a" + r + r + r + r + "b");  // > U+10FFFF
  EXPECT_EQ(sanitize_utf8("ok \xf0\x9f\x99\x82"), "ok \xf0\x9f\x99\x82");
}

TEST(ChatTemplate, DetectsFormats) {
  EXPECT_EQ(detect_chat_format("{{'<|im_start|>' + message['role']}}"), ChatFormat::kChatMl);
  EXPECT_EQ(detect_chat_format("{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}"),
            ChatFormat::kLlama3);
  EXPECT_EQ(detect_chat_format("{{ bos_token + '[INST] ' + content + ' [/INST]' }}"),
            ChatFormat::kLlama2);
  EXPECT_EQ(detect_chat_format("{{'<|user|>' + '\n'}}{{'<|end|>'}}{{'<|assistant|>'}}"),
            ChatFormat::kPhi3);
  EXPECT_EQ(detect_chat_format(""), ChatFormat::kPlain);
  EXPECT_EQ(detect_chat_format("{{ messages }}"), ChatFormat::kPlain);
  for (auto f : {ChatFormat::kChatMl, ChatFormat::kLlama3, ChatFormat::kLlama2, ChatFormat::kPhi3,
                 ChatFormat::kPlain})
    EXPECT_EQ(chat_format_from_name(chat_format_name(f)), f);
}

TEST(ChatTemplate, RendersEachFormat) {
  const std::vector<ChatMessage> msgs = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
  EXPECT_EQ(apply_chat_template(ChatFormat::kChatMl, msgs, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::kLlama3, msgs, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::kLlama2, msgs, true),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello.</s><s>[INST] Bye [/INST]");
  EXPECT_EQ(apply_chat_template(ChatFormat::kPhi3, msgs, true),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nBye<|end|>\n<|assistant|>\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::kPlain, msgs, true),
            "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:");
  EXPECT_EQ(apply_chat_template(ChatFormat::kChatMl, {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Qwen2ModelTemplateTokenizesWithSpecialTokens) {
  EDGELM_REQUIRE_TOKENIZER(tok, "models/conf-qwen2-f16.gguf");
  ASSERT_EQ(detect_chat_format(tok->chat_template()), ChatFormat::kChatMl);
  std::string prompt = apply_chat_template(ChatFormat::kChatMl, {{"user", "Hi"}}, true);
  auto ids = tok->encode(prompt, true, true);
  ASSERT_TRUE(ids.ok());
  const int32_t im_start = *tok->find_token("<|im_start|>");
  const int32_t im_end = *tok->find_token("<|im_end|>");
  EXPECT_EQ(std::count(ids->begin(), ids->end(), im_start), 2);
  EXPECT_EQ(std::count(ids->begin(), ids->end(), im_end), 1);
  EXPECT_EQ(ids->front(), im_start);
  EXPECT_EQ(tok->decode(*ids, /*special=*/true), prompt);
}

}  // namespace
}  // namespace edgelm

namespace edgelm {
namespace {

TEST(StringIndex, InsertFindOverwrite) {
  StringIndex idx;
  std::vector<std::string> keys;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 5000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::string k = std::to_string(x % 100000) + (i % 3 ? "\xc4\xa0" : "") + std::to_string(i);
    keys.push_back(k);
    EXPECT_TRUE(idx.insert(k, i));
  }
  EXPECT_EQ(idx.size(), keys.size());
  for (int i = 0; i < static_cast<int>(keys.size()); ++i) EXPECT_EQ(idx.find(keys[i]), i);
  EXPECT_EQ(idx.find("absent"), -1);
  EXPECT_EQ(idx.find(""), -1);
  EXPECT_FALSE(idx.insert(keys[10], 99));  // first value wins by default
  EXPECT_EQ(idx.find(keys[10]), 10);
  EXPECT_FALSE(idx.insert(keys[10], 99, /*overwrite=*/true));
  EXPECT_EQ(idx.find(keys[10]), 99);
  EXPECT_TRUE(idx.insert("", 7));
  EXPECT_EQ(idx.find(""), 7);
}

}  // namespace
}  // namespace edgelm
