// SentencePiece-style tokenization (llama.cpp's SPM): start from UTF-8 characters, repeatedly
// merge the adjacent pair whose concatenation is the vocabulary token with the highest score
// (ties: leftmost), then emit each final symbol as its token or as byte tokens <0xXX>.
#include <fmt/format.h>

#include <queue>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

struct Symbol {
  int prev, next;
  size_t start, n;
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
};

struct BigramLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

}  // namespace

StatusOr<int32_t> Tokenizer::spm_byte_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  int32_t id = lookup(std::string_view(buf, 6));
  if (id >= 0) return id;
  const char raw = static_cast<char>(byte);
  id = lookup(std::string_view(&raw, 1));
  if (id >= 0) return id;
  return Status::not_found(fmt::format(
      "SPM byte fallback: the vocabulary has neither <0x{:02X}> nor the raw byte", byte));
}

Status Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
    int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, off + len == text.size() ? -1 : index + 1, off, len});
    off += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    std::string_view s = text.substr(symbols[left].start, symbols[left].n + symbols[right].n);
    int32_t id = lookup(s);
    if (id < 0) return;
    queue.push({left, right, tokens_[id].score, s.size()});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Merged symbols are always vocabulary tokens; single characters may not be (byte fallback).
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    std::string_view piece = text.substr(s.start, s.n);
    int32_t id = lookup(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      ASSIGN_OR_RETURN(int32_t bid, spm_byte_token(static_cast<uint8_t>(c)));
      out.push_back(bid);
    }
  }
  return Status::ok_status();
}

}  // namespace edgelm
