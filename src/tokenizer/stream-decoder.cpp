#include "tokenizer/stream-decoder.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

// UTF-8 structure at s[i]: `need` is the length the lead byte announces (0 if it cannot start
// a sequence) and `have` the length of the well-formed prefix present (Unicode's "maximal
// subpart"): overlong forms, surrogates and codepoints above U+10FFFF are ill-formed.
struct Prefix {
  size_t need = 0, have = 0;
};

Prefix utf8_prefix(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  Prefix p;
  if (c < 0x80) return {1, 1};
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    p.need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    p.need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    p.need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return p;  // stray continuation byte, C0/C1, F5..FF
  }
  p.have = 1;
  while (p.have < p.need && i + p.have < s.size()) {
    const uint8_t x = static_cast<uint8_t>(s[i + p.have]);
    const bool ok = (p.have == 1) ? (x >= lo && x <= hi) : ((x & 0xC0) == 0x80);
    if (!ok) break;
    ++p.have;
  }
  return p;
}

constexpr std::string_view kReplacementUtf8 = "\xef\xbf\xbd";

// Emits the well-formed prefix of `buf`, each maximal ill-formed subpart as one U+FFFD (as
// Python's and nlohmann::json's replacement do); keeps a trailing sequence that may still
// complete in `buf` unless `final`.
std::string drain(std::string& buf, bool final) {
  std::string out;
  size_t i = 0;
  while (i < buf.size()) {
    const Prefix p = utf8_prefix(buf, i);
    if (p.need > 0 && p.have == p.need) {
      out.append(buf, i, p.need);
      i += p.need;
      continue;
    }
    if (!final && p.need > 0 && i + p.have == buf.size()) break;  // may still complete
    out += kReplacementUtf8;
    i += std::max<size_t>(p.have, 1);
  }
  buf.erase(0, i);
  return out;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  return push_bytes(tokenizer_.token_to_piece(id, special_));
}

std::string StreamDecoder::push_bytes(std::string_view bytes) {
  pending_.append(bytes);
  return drain(pending_, /*final=*/false);
}

std::string StreamDecoder::flush() {
  std::string out = drain(pending_, /*final=*/true);
  pending_.clear();
  return out;
}

std::string sanitize_utf8(std::string_view s) {
  std::string buf(s);
  return drain(buf, /*final=*/true);
}

}  // namespace edgelm
