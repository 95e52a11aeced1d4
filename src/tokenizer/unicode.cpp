#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <memory>

namespace edgelm::unicode {
namespace {

constexpr uint32_t kMaxCodepoints = 0x110000;

// One byte per codepoint: low 3 bits category, bit 3 whitespace. Built once from the runs.
const std::vector<uint8_t>& flag_table() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(kMaxCodepoints, 0);
    using unicode_data::kCategoryRuns;
    const size_t n = unicode_data::kNumCategoryRuns;
    for (size_t i = 0; i < n; ++i) {
      uint32_t end = (i + 1 < n) ? kCategoryRuns[i + 1].first : kMaxCodepoints;
      std::fill(t.begin() + kCategoryRuns[i].first, t.begin() + end, kCategoryRuns[i].category);
    }
    for (size_t i = 0; i < unicode_data::kNumWhitespaceRanges; ++i) {
      const auto& r = unicode_data::kWhitespaceRanges[i];
      for (uint32_t c = r.first; c <= r.last; ++c) t[c] |= 0x8;
    }
    return t;
  }();
  return table;
}

struct ByteMaps {
  std::array<std::string, 256> to_utf8;
  std::array<int, 512> from_cpt;  // codepoint (< 512) -> byte, or -1
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps = [] {
    ByteMaps m;
    m.from_cpt.fill(-1);
    std::array<int, 256> cpt{};
    cpt.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) cpt[b] = printable(b) ? b : 256 + n++;
    for (int b = 0; b < 256; ++b) {
      m.to_utf8[b] = encode_utf8(static_cast<uint32_t>(cpt[b]));
      m.from_cpt[cpt[b]] = b;
    }
    return m;
  }();
  return maps;
}

}  // namespace

CptFlags flags(uint32_t cpt) {
  CptFlags f;
  f.valid = true;
  if (cpt >= kMaxCodepoints) return f;
  uint8_t v = flag_table()[cpt];
  f.category = static_cast<CptCategory>(v & 0x7);
  f.whitespace = (v & 0x8) != 0;
  return f;
}

size_t utf8_len(uint8_t lead) {
  static constexpr size_t kLookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[lead >> 4];
}

uint32_t decode_one(std::string_view s, size_t& offset) {
  auto b = [&](size_t i) { return static_cast<uint8_t>(s[offset + i]); };
  auto cont = [&](size_t i) { return offset + i < s.size() && (b(i) & 0xC0) == 0x80; };
  const uint8_t c0 = b(0);
  if (!(c0 & 0x80)) {
    offset += 1;
    return c0;
  }
  if (!(c0 & 0x40)) {  // stray continuation byte
    offset += 1;
    return kReplacement;
  }
  if (!(c0 & 0x20)) {
    if (!cont(1)) {
      offset += 1;
      return kReplacement;
    }
    uint32_t r = ((c0 & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    offset += 2;
    return r;
  }
  if (!(c0 & 0x10)) {
    if (!cont(1) || !cont(2)) {
      offset += 1;
      return kReplacement;
    }
    uint32_t r = ((c0 & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    offset += 3;
    return r;
  }
  if (!(c0 & 0x08)) {
    if (!cont(1) || !cont(2) || !cont(3)) {
      offset += 1;
      return kReplacement;
    }
    uint32_t r =
        ((c0 & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    offset += 4;
    return r;
  }
  offset += 1;
  return kReplacement;
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) out.push_back(decode_one(s, off));
  return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | ((cpt >> 6) & 0x1F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | ((cpt >> 12) & 0x0F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | ((cpt >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    append_utf8(out, kReplacement);
  }
}

std::string encode_utf8(uint32_t cpt) {
  std::string s;
  append_utf8(s, cpt);
  return s;
}

const std::string& byte_to_bpe_utf8(uint8_t byte) { return byte_maps().to_utf8[byte]; }

std::optional<uint8_t> bpe_cpt_to_byte(uint32_t cpt) {
  if (cpt >= 512) return std::nullopt;
  int b = byte_maps().from_cpt[cpt];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

}  // namespace edgelm::unicode
