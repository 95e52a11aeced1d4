#include "tokenizer/stream-decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

// Length of the valid UTF-8 sequence at s[i] (0 if invalid, or if it runs past the end).
// Rejects overlong forms, surrogates and codepoints above U+10FFFF.
size_t valid_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + need > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < need; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return need;
}

// True if s[i..] is a proper prefix of some valid sequence (could still complete).
bool incomplete_prefix(std::string_view s, size_t i) {
  const size_t avail = s.size() - i;
  const uint8_t c = static_cast<uint8_t>(s[i]);
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return false;
  }
  if (avail >= need) return false;
  for (size_t k = 1; k < avail; ++k) {
    const uint8_t x = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? (x < lo || x > hi) : ((x & 0xC0) != 0x80)) return false;
  }
  return true;
}

constexpr std::string_view kReplacementUtf8 = "\xef\xbf\xbd";

// Emits the valid prefix of `buf` (invalid bytes -> U+FFFD); keeps a trailing incomplete
// sequence in `buf` unless `final`.
std::string drain(std::string& buf, bool final) {
  std::string out;
  size_t i = 0;
  while (i < buf.size()) {
    size_t n = valid_sequence(buf, i);
    if (n > 0) {
      out.append(buf, i, n);
      i += n;
      continue;
    }
    if (!final && incomplete_prefix(buf, i)) break;
    out += kReplacementUtf8;
    ++i;
    // Skip the continuation bytes of the same broken sequence (one U+FFFD for it).
    while (i < buf.size() && (static_cast<uint8_t>(buf[i]) & 0xC0) == 0x80 &&
           valid_sequence(buf, i) == 0) {
      ++i;
    }
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
