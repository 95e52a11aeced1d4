// Incremental detokenizer for streaming output: push() token ids as they are generated and get
// back only complete UTF-8 codepoints; a multi-byte character split across byte tokens (emoji,
// CJK through <0xXX> or byte-level pieces) is held back until its last byte arrives. Bytes that
// can never form a valid character come out as U+FFFD.
//
//   StreamDecoder dec(*tokenizer);
//   for (int32_t id : generated) std::cout << dec.push(id);
//   std::cout << dec.flush();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace edgelm {

class Tokenizer;

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool special = false)
      : tokenizer_(tokenizer), special_(special) {}

  // Appends the token's bytes; returns the text that is now complete.
  std::string push(int32_t id);
  // Appends raw bytes (for callers that already hold pieces).
  std::string push_bytes(std::string_view bytes);
  // Returns whatever is held back (an incomplete sequence becomes U+FFFD) and resets.
  std::string flush();
  // Bytes currently held back.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  std::string pending_;
};

// Replaces each ill-formed UTF-8 subpart of `s` (stray or truncated sequence, overlong form,
// surrogate) by U+FFFD, the way llama-server's JSON output does.
std::string sanitize_utf8(std::string_view s);

}  // namespace edgelm
