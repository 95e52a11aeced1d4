#include "tokenizer/pre-tokenizer.h"

#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFF;

// A sequence of codepoints cut into consecutive segments (lengths in codepoints). Each splitter
// refines every segment independently; nothing ever crosses a segment boundary.
using Segments = std::vector<size_t>;

// Scanning helpers over one segment [ini, end).
struct Scan {
  const std::vector<uint32_t>& cpts;
  size_t ini, end;
  Segments& out;
  size_t prev_end;

  uint32_t cpt(size_t pos) const { return (pos >= ini && pos < end) ? cpts[pos] : kNone; }
  unicode::CptFlags flags(size_t pos) const {
    return (pos >= ini && pos < end) ? unicode::flags(cpts[pos]) : unicode::CptFlags{};
  }
  // Closes the current word at `e`; returns its length.
  size_t emit(size_t e) {
    size_t len = e - prev_end;
    if (len > 0) out.push_back(len);
    prev_end = e;
    return len;
  }
};

template <typename Fn>
Segments for_each_segment(const std::vector<uint32_t>& cpts, const Segments& in, Fn fn) {
  Segments out;
  out.reserve(in.size());
  size_t start = 0;
  for (size_t len : in) {
    Scan s{cpts, start, start + len, out, start};
    fn(s);
    start += len;
  }
  return out;
}

bool is_word_break(const unicode::CptFlags& f) {
  return f.is_whitespace() || f.is_letter() || f.is_number();
}

// Whitespace tail shared by the splitters: \s*[\r\n]+ (if with_newlines) | \s+(?!\S) | \s+ ,
// else a single unmatched codepoint. Returns the new position.
size_t whitespace_or_single(Scan& s, size_t pos, bool with_newlines) {
  size_t n_ws = 0;
  size_t last_newline_end = 0;
  while (s.flags(pos + n_ws).is_whitespace()) {
    uint32_t c = s.cpt(pos + n_ws);
    if (c == '\r' || c == '\n') last_newline_end = pos + n_ws + 1;
    ++n_ws;
  }
  if (with_newlines && last_newline_end > 0) {
    s.emit(last_newline_end);
    return last_newline_end;
  }
  if (n_ws > 1 && s.cpt(pos + n_ws) != kNone) {  // leave the last space to the next word
    pos += n_ws - 1;
    s.emit(pos);
    return pos;
  }
  if (n_ws > 0) {
    pos += n_ws;
    s.emit(pos);
    return pos;
  }
  ++pos;
  s.emit(pos);
  return pos;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) (case-insensitive when `fold`); returns match length or 0.
size_t contraction(const Scan& s, size_t pos, bool fold) {
  if (s.cpt(pos) != '\'' || pos + 1 >= s.end) return 0;
  auto low = [&](uint32_t c) { return fold ? unicode::to_lower_ascii(c) : c; };
  uint32_t n1 = low(s.cpt(pos + 1));
  if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
  if (pos + 2 >= s.end) return 0;
  uint32_t n2 = low(s.cpt(pos + 2));
  if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return 3;
  return 0;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+        (D = max_digits: 3 for Llama 3, 1 for Qwen2)
void split_llama3(Scan& s, size_t max_digits) {
  for (size_t pos = s.ini; pos < s.end;) {
    const uint32_t c = s.cpt(pos);
    const auto f = s.flags(pos);
    if (size_t n = contraction(s, pos, /*fold=*/true)) {
      pos += s.emit(pos + n);
      continue;
    }
    if (!(c == '\r' || c == '\n' || f.is_number())) {
      if (f.is_letter() || s.flags(pos + 1).is_letter()) {
        ++pos;  // the optional leading codepoint (or the first letter)
        while (s.flags(pos).is_letter()) ++pos;
        s.emit(pos);
        continue;
      }
    }
    if (f.is_number()) {
      size_t ini = pos;
      while (s.flags(pos).is_number()) {
        if (++pos - ini >= max_digits) {
          s.emit(pos);
          ini = pos;
        }
      }
      s.emit(pos);
      continue;
    }
    auto f2 = (c == ' ') ? s.flags(pos + 1) : f;
    if (f2.valid && !is_word_break(f2)) {
      pos += (c == ' ');
      while (s.flags(pos).valid && !is_word_break(s.flags(pos))) ++pos;
      while (s.cpt(pos) == '\r' || s.cpt(pos) == '\n') ++pos;
      s.emit(pos);
      continue;
    }
    pos = whitespace_or_single(s, pos, /*with_newlines=*/true);
  }
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(Scan& s) {
  for (size_t pos = s.ini; pos < s.end;) {
    const uint32_t c = s.cpt(pos);
    if (size_t n = contraction(s, pos, /*fold=*/false)) {
      pos += s.emit(pos + n);
      continue;
    }
    const auto f2 = (c == ' ') ? s.flags(pos + 1) : s.flags(pos);
    auto run = [&](auto pred) {
      pos += (c == ' ');
      while (pred(s.flags(pos))) ++pos;
      s.emit(pos);
    };
    if (f2.is_letter()) {
      run([](const unicode::CptFlags& f) { return f.is_letter(); });
      continue;
    }
    if (f2.is_number()) {
      run([](const unicode::CptFlags& f) { return f.is_number(); });
      continue;
    }
    if (f2.valid && !is_word_break(f2)) {
      run([](const unicode::CptFlags& f) { return f.valid && !is_word_break(f); });
      continue;
    }
    pos = whitespace_or_single(s, pos, /*with_newlines=*/false);
  }
}

// Regex-iterator style split with a run pattern: each maximal run of codepoints matching `pred`
// (or each single one when !greedy) is a word; the text between matches is a word too.
template <typename Pred>
void split_runs(Scan& s, Pred pred, bool greedy) {
  size_t pos = s.ini;
  while (pos < s.end) {
    if (!pred(s.cpts[pos])) {
      ++pos;
      continue;
    }
    s.emit(pos);  // gap before the match
    ++pos;
    if (greedy)
      while (pos < s.end && pred(s.cpts[pos])) ++pos;
    s.emit(pos);
  }
  s.emit(s.end);
}

// [0-9][0-9][0-9]: leftmost non-overlapping triples of ASCII digits.
void split_ascii_triples(Scan& s) {
  auto digit = [](uint32_t c) { return c >= '0' && c <= '9'; };
  size_t pos = s.ini;
  while (pos + 3 <= s.end) {
    if (digit(s.cpts[pos]) && digit(s.cpts[pos + 1]) && digit(s.cpts[pos + 2])) {
      s.emit(pos);
      pos += 3;
      s.emit(pos);
    } else {
      ++pos;
    }
  }
  s.emit(s.end);
}

bool is_number_cpt(uint32_t c) { return unicode::flags(c).is_number(); }

bool is_default_punct(uint32_t c) {
  switch (c) {
    case '$':
    case '+':
    case '<':
    case '=':
    case '>':
    case '^':
    case '~':
    case '|':
      return true;
    default:
      return unicode::flags(c).is_punctuation();
  }
}

}  // namespace

const char* pre_tokenizer_name(PreTokenizerType t) {
  switch (t) {
    case PreTokenizerType::kDefault:
      return "default";
    case PreTokenizerType::kLlama3:
      return "llama3";
    case PreTokenizerType::kQwen2:
      return "qwen2";
    case PreTokenizerType::kGpt2:
      return "gpt2";
    case PreTokenizerType::kSmollm:
      return "smollm";
  }
  return "?";
}

std::vector<std::string> pre_tokenize(PreTokenizerType type, std::string_view text) {
  const std::vector<uint32_t> cpts = unicode::decode_utf8(text);
  if (cpts.empty()) return {};
  Segments segs = {cpts.size()};
  switch (type) {
    case PreTokenizerType::kLlama3:
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_llama3(s, 3); });
      break;
    case PreTokenizerType::kQwen2:
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_llama3(s, 1); });
      break;
    case PreTokenizerType::kGpt2:
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_gpt2(s); });
      break;
    case PreTokenizerType::kSmollm:
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_runs(s, is_number_cpt, false); });
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_gpt2(s); });
      break;
    case PreTokenizerType::kDefault:
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_runs(s, is_default_punct, true); });
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_gpt2(s); });
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_runs(s, is_number_cpt, true); });
      segs = for_each_segment(cpts, segs, [](Scan& s) { split_ascii_triples(s); });
      break;
  }
  std::vector<std::string> words;
  words.reserve(segs.size());
  size_t start = 0;
  for (size_t len : segs) {
    std::string w;
    for (size_t i = start; i < start + len; ++i) unicode::append_utf8(w, cpts[i]);
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

}  // namespace edgelm
