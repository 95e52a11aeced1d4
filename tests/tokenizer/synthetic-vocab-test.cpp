// Tokenizer behaviour on tiny vocabularies written with GgufWriter: SPM merge order by score,
// byte fallback, BPE merge ranks, special-token partitioning, attributes and error messages.
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

enum Type { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6 };

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  int32_t add(const std::string& t, float score = 0.0f, int32_t type = kNormal) {
    tokens.push_back(t);
    scores.push_back(score);
    types.push_back(type);
    return static_cast<int32_t>(tokens.size() - 1);
  }
};

struct Built {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
};

Built build(GgufWriter& w) {
  Built b;
  b.bytes = w.to_bytes();
  auto f = GgufFile::parse(b.bytes, "synthetic.gguf");
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (!f.ok()) return b;
  b.file = std::move(*f);
  auto t = Tokenizer::from_gguf(*b.file);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  if (t.ok()) b.tok = std::move(*t);
  return b;
}

// <unk> <s> </s>, 256 byte tokens, then the caller's pieces.
Vocab spm_base() {
  Vocab v;
  v.add("<unk>", 0, kUnknown);
  v.add("<s>", 0, kControl);
  v.add("</s>", 0, kControl);
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b)
    v.add(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", 0, kByte);
  return v;
}

GgufWriter spm_writer(const Vocab& v, const std::string& name = "tiny") {
  GgufWriter w;
  w.set_string("general.name", name);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_string("tokenizer.ggml.tokens", v.tokens);
  w.set_array_f32("tokenizer.ggml.scores", v.scores);
  w.set_array_i32("tokenizer.ggml.token_type", v.types);
  return w;
}

std::vector<int32_t> enc(const Tokenizer& t, const std::string& s, bool add_special = false,
                         bool parse_special = false) {
  auto r = t.encode(s, add_special, parse_special);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::vector<int32_t>{};
}

const std::string kSp = "\xe2\x96\x81";  // ▁

TEST(SpmVocab, MergesHighestScoreFirst) {
  for (bool ab_first : {true, false}) {
    Vocab v = spm_base();
    const int32_t sp = v.add(kSp, -3);
    const int32_t a = v.add("a", -3);
    const int32_t b = v.add("b", -3);
    const int32_t sp_a = v.add(kSp + "a", ab_first ? -2.0f : -0.1f);
    const int32_t ab = v.add("ab", ab_first ? -0.5f : -1.0f);
    GgufWriter w = spm_writer(v);
    Built bt = build(w);
    ASSERT_TRUE(bt.tok);
    // " ab" after the space prefix: "▁ab". Either "ab" merges first (▁ + ab) or "▁a" does.
    auto ids = enc(*bt.tok, "ab");
    if (ab_first) {
      EXPECT_EQ(ids, (std::vector<int32_t>{sp, ab}));
    } else {
      EXPECT_EQ(ids, (std::vector<int32_t>{sp_a, b}));
    }
    (void)a;
  }
}

TEST(SpmVocab, ByteFallbackAndSpacePrefix) {
  Vocab v = spm_base();
  const int32_t sp = v.add(kSp, -1);
  const int32_t x = v.add("x", -1);
  GgufWriter w = spm_writer(v);
  Built bt = build(w);
  ASSERT_TRUE(bt.tok);
  const Tokenizer& t = *bt.tok;
  // 'é' is not in the vocabulary: its two UTF-8 bytes become <0xC3> <0xA9> (ids 3 + byte).
  EXPECT_EQ(enc(t, "x\xc3\xa9"), (std::vector<int32_t>{sp, x, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(enc(t, "x", /*add_special=*/true), (std::vector<int32_t>{1, sp, x}));
  EXPECT_EQ(enc(t, ""), std::vector<int32_t>{});
  EXPECT_EQ(enc(t, "", true), std::vector<int32_t>{1});
  EXPECT_EQ(t.decode(enc(t, "x\xc3\xa9 x")), " x\xc3\xa9 x");
  EXPECT_EQ(t.token_to_piece(3 + 'A'), "A");

  // add_space_prefix = false drops the leading "▁".
  GgufWriter w2 = spm_writer(v);
  w2.set_bool("tokenizer.ggml.add_space_prefix", false);
  Built bt2 = build(w2);
  ASSERT_TRUE(bt2.tok);
  EXPECT_EQ(enc(*bt2.tok, "x"), (std::vector<int32_t>{x}));
}

TEST(SpmVocab, SpecialTokensAndPrefixAfterThem) {
  Vocab v = spm_base();
  const int32_t sp = v.add(kSp, -1);
  const int32_t x = v.add("x", -1);
  const int32_t user = v.add("<|user|>", 0, kControl);
  const int32_t tag = v.add("<tag>", 0, kUserDefined);
  const int32_t end = v.add("<|end|>", 0, kControl);
  GgufWriter w = spm_writer(v);
  Built bt = build(w);
  ASSERT_TRUE(bt.tok);
  const Tokenizer& t = *bt.tok;
  // Control tokens only with parse_special; text after a special token gets a space prefix.
  EXPECT_EQ(enc(t, "<|user|>x", false, true), (std::vector<int32_t>{user, sp, x}));
  auto plain = enc(t, "<|user|>x", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), user), 0);
  // User-defined tokens are split out even without parse_special.
  EXPECT_EQ(enc(t, "x<tag>x", false, false), (std::vector<int32_t>{sp, x, tag, sp, x}));
  // "<|end|>" is end-of-generation (by its text) and control.
  EXPECT_TRUE(t.is_eog(end));
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_EQ(t.eot(), end);
  EXPECT_EQ(t.token_to_piece(end), "");
  EXPECT_EQ(t.token_to_piece(end, true), "<|end|>");
  EXPECT_EQ(t.token_to_piece(tag), "<tag>");
  EXPECT_EQ(t.decode(std::vector<int32_t>{user, sp, x, end}), " x");
}

TEST(SpmVocab, Phi3NameStripsWhitespaceAfterSpecialTokens) {
  Vocab v = spm_base();
  const int32_t sp = v.add(kSp, -1);
  const int32_t x = v.add("x", -1);
  const int32_t user = v.add("<|user|>", 0, kControl);
  GgufWriter w = spm_writer(v, "Phi3");
  Built bt = build(w);
  ASSERT_TRUE(bt.tok);
  // rstrip: the newline after <|user|> is dropped, then the space prefix applies.
  EXPECT_EQ(enc(*bt.tok, "<|user|>\n x", false, true), (std::vector<int32_t>{user, sp, x}));
  GgufWriter w2 = spm_writer(v, "not-that-model");
  Built bt2 = build(w2);
  ASSERT_TRUE(bt2.tok);
  EXPECT_EQ(enc(*bt2.tok, "<|user|>\nx", false, true),
            (std::vector<int32_t>{user, sp, 3 + '\n', x}));
}

TEST(SpmVocab, LongestSpecialTokenWins) {
  Vocab v = spm_base();
  v.add(kSp, -1);
  const int32_t short_tok = v.add("<a>", 0, kControl);
  const int32_t long_tok = v.add("<a><b>", 0, kControl);
  GgufWriter w = spm_writer(v);
  Built bt = build(w);
  ASSERT_TRUE(bt.tok);
  EXPECT_EQ(enc(*bt.tok, "<a><b><a>", false, true), (std::vector<int32_t>{long_tok, short_tok}));
}

// Byte-level BPE vocabulary: every byte's printable codepoint, plus merged pieces.
struct Bpe {
  Vocab v;
  std::vector<std::string> merges;
  Bpe() {
    for (int b = 0; b < 256; ++b) v.add(unicode::byte_to_bpe_utf8(static_cast<uint8_t>(b)));
  }
  int32_t id(uint8_t byte) const { return byte; }
};

GgufWriter bpe_writer(const Bpe& b, const std::string& pre) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_array_string("tokenizer.ggml.tokens", b.v.tokens);
  w.set_array_i32("tokenizer.ggml.token_type", b.v.types);
  w.set_array_string("tokenizer.ggml.merges", b.merges);
  return w;
}

TEST(BpeVocab, LowestRankMergesFirstLeftmostOnTies) {
  Bpe b;
  const int32_t ab = b.v.add("ab");
  const int32_t bc = b.v.add("bc");
  const int32_t aa = b.v.add("aa");
  b.merges = {"b c", "a b", "a a"};  // "b c" has the best rank
  GgufWriter w = bpe_writer(b, "gpt-2");
  Built bt = build(w);
  ASSERT_TRUE(bt.tok);
  const Tokenizer& t = *bt.tok;
  EXPECT_EQ(enc(t, "abc"), (std::vector<int32_t>{'a', bc}));
  EXPECT_EQ(enc(t, "abd"), (std::vector<int32_t>{ab, 'd'}));
  EXPECT_EQ(enc(t, "aaa"), (std::vector<int32_t>{aa, 'a'}));
  // Space is byte 0x20 -> "Ġ" (U+0120), a separate word under the GPT-2 regex.
  EXPECT_EQ(enc(t, "ab ab"), (std::vector<int32_t>{ab, 0x20, ab}));
  EXPECT_EQ(t.decode(enc(t, "ab ab\n\xe6\x97\xa5")), "ab ab\n\xe6\x97\xa5");
  EXPECT_FALSE(t.add_bos());
}

TEST(BpeVocab, Llama3IgnoresMergesForWholeWordTokens) {
  Bpe b;
  const int32_t abc = b.v.add("abc");
  b.merges = {};  // no merge path to "abc"
  {
    GgufWriter w = bpe_writer(b, "llama-bpe");
    Built bt = build(w);
    ASSERT_TRUE(bt.tok);
    EXPECT_EQ(enc(*bt.tok, "abc"), (std::vector<int32_t>{abc}));
  }
  {
    GgufWriter w = bpe_writer(b, "qwen2");
    Built bt = build(w);
    ASSERT_TRUE(bt.tok);
    EXPECT_EQ(enc(*bt.tok, "abc"), (std::vector<int32_t>{'a', 'b', 'c'}));
  }
}

TEST(Vocab, ErrorsNameTheProblem) {
  {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "t5");
    w.set_array_string("tokenizer.ggml.tokens", {"a"});
    auto bytes = w.to_bytes();
    auto f = GgufFile::parse(bytes, "t5.gguf");
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(**f);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("t5"), std::string::npos) << t.status().message();
  }
  {
    Bpe b;
    GgufWriter w = bpe_writer(b, "some-new-pre");
    auto bytes = w.to_bytes();
    auto f = GgufFile::parse(bytes, "x.gguf");
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(**f);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("some-new-pre"), std::string::npos);
  }
  {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_array_string("tokenizer.ggml.tokens", {"a", "b"});
    auto bytes = w.to_bytes();
    auto f = GgufFile::parse(bytes, "nomerges.gguf");
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(**f);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("merges"), std::string::npos);
  }
  {
    Vocab v;
    v.add("<unk>", 0, kUnknown);
    v.add("x");
    GgufWriter w = spm_writer(v);
    w.set_u32("tokenizer.ggml.bos_token_id", 0);
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
    Built bt = build(w);
    ASSERT_TRUE(bt.tok);
    // No byte tokens: 'q' cannot be encoded, and the error says which byte.
    auto r = bt.tok->encode("q", false, false);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("0x71"), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace edgelm
