// Tokenizer built from the vocabulary inside a GGUF file, matching llama.cpp's tokenization id
// for id: SentencePiece-style BPE over scores (tokenizer.ggml.model = "llama") and byte-level
// BPE with merges and a regex pre-tokenizer (model = "gpt2"; pre = llama3/llama-bpe, qwen2,
// gpt-2, smollm, default). Special (control / user-defined) tokens are split out of the text
// first, longest first, as llama.cpp's tokenizer_st_partition does.
//
//   ASSIGN_OR_RETURN(auto file, GgufFile::open("model.gguf"));
//   ASSIGN_OR_RETURN(auto tok, Tokenizer::from_gguf(*file));
//   ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->encode("Hello", /*add_special=*/true,
//                                                          /*parse_special=*/true));
//   std::string text = tok->decode(ids);   // control tokens render as ""
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "tokenizer/pre-tokenizer.h"
#include "tokenizer/string-index.h"

namespace edgelm {

enum class VocabType { kSpm, kBpe };

// Token attributes (bit set), as llama.cpp derives them from tokenizer.ggml.token_type.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};

class Tokenizer {
 public:
  static StatusOr<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);

  // Text -> ids. add_special: BOS (and EOS) where the model adds them (llama.cpp's /tokenize
  // add_special). parse_special: text matching a control token becomes that token; user-defined
  // tokens are always split out, as in llama.cpp.
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                        bool parse_special) const;

  // Raw bytes of one token: SPM "▁" -> " ", <0xXX> -> the byte, byte-level BPE codepoints ->
  // bytes. Control/unknown tokens give "" unless `special`. Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool special = false) const;
  // Text of a token sequence as llama-server returns it: the concatenated pieces (no space
  // stripping or clean-up), with each ill-formed UTF-8 subpart (e.g. a lone byte token) as
  // U+FFFD, so the result is always valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool special = false) const;
  // The raw concatenated bytes, possibly not valid UTF-8.
  std::string decode_bytes(std::span<const int32_t> ids, bool special = false) const;

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }  // -1 when none
  int32_t eom() const { return eom_; }
  bool is_eog(int32_t id) const;
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  int n_vocab() const { return static_cast<int>(tokens_.size()); }
  std::optional<int32_t> find_token(std::string_view text) const;

  VocabType type() const { return type_; }
  PreTokenizerType pre_type() const { return pre_type_; }
  const std::string& token_text(int32_t id) const;  // stored text ("" if out of range)
  uint32_t token_attr(int32_t id) const;
  bool is_control(int32_t id) const { return (token_attr(id) & kAttrControl) != 0; }
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }
  // tokenizer.chat_template, or "" when the file has none.
  const std::string& chat_template() const { return chat_template_; }

 private:
  struct Token {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kAttrNormal;
  };
  struct Fragment {
    bool is_token;
    int32_t token;
    size_t offset, length;  // into the text, when !is_token
  };

  Tokenizer() = default;
  Status load(const GgufFile& file);
  Status load_vocab(const GgufFile& file);
  void detect_special_tokens();
  void set_model_specific_attrs(const GgufFile& file);
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  Status encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  StatusOr<int32_t> spm_byte_token(uint8_t byte) const;
  int32_t lookup(std::string_view text) const;  // -1 when absent
  int bpe_rank(std::string_view left, std::string_view right, std::string& scratch) const;
  std::string compute_piece(int32_t id) const;

  VocabType type_ = VocabType::kSpm;
  PreTokenizerType pre_type_ = PreTokenizerType::kDefault;
  std::vector<Token> tokens_;
  StringIndex token_to_id_;
  StringIndex bpe_ranks_;                // "left right" -> rank (first wins)
  std::vector<int32_t> special_tokens_;  // control/user-defined/unknown, longest first
  std::vector<std::string> pieces_;      // token_to_piece(id, special=true)
  std::vector<int32_t> eog_ids_;         // sorted
  std::string chat_template_;

  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1, sep_ = -1, pad_ = -1;
  int32_t fim_pad_ = -1, fim_rep_ = -1, fim_sep_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool ignore_merges_ = false;
};

}  // namespace edgelm
