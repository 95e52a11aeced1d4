// Byte-level BPE (llama.cpp's BPE session): pre-tokenize into words, map each byte to its GPT-2
// printable codepoint, then within each word repeatedly merge the adjacent pair with the lowest
// merge rank (ties: leftmost) and look the final symbols up in the vocabulary.
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
  int rank;
  size_t start, size;  // the merged text's span in the word
};

struct BigramGreater {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  }
};

}  // namespace

int Tokenizer::bpe_rank(std::string_view left, std::string_view right, std::string& scratch) const {
  scratch.assign(left);
  scratch.push_back(' ');
  scratch.append(right);
  return bpe_ranks_.find(scratch);
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::string scratch;
  std::vector<Symbol> symbols;
  for (const std::string& raw : pre_tokenize(pre_type_, text)) {
    std::string word;
    word.reserve(raw.size() * 2);
    for (unsigned char c : raw) word += unicode::byte_to_bpe_utf8(c);

    if (ignore_merges_) {
      int32_t id = lookup(word);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
    }

    symbols.clear();
    for (size_t off = 0; off < word.size();) {
      size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(word[off])), word.size() - off);
      int index = static_cast<int>(symbols.size());
      symbols.push_back({index - 1, off + len == word.size() ? -1 : index + 1, off, len});
      off += len;
    }
    std::string_view w(word);
    std::priority_queue<Bigram, std::vector<Bigram>, BigramGreater> queue;
    auto try_add = [&](int left, int right) {
      if (left == -1 || right == -1) return;
      const Symbol& l = symbols[left];
      const Symbol& r = symbols[right];
      int rank = bpe_rank(w.substr(l.start, l.n), w.substr(r.start, r.n), scratch);
      if (rank < 0) return;
      queue.push({left, right, rank, l.start, l.n + r.n});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      Bigram b = queue.top();
      queue.pop();
      Symbol& l = symbols[b.left];
      Symbol& r = symbols[b.right];
      // Stale when either side changed since the pair was queued (the two symbols are
      // adjacent in the word, so same start and total length means same text).
      if (l.n == 0 || r.n == 0 || l.start != b.start || l.n + r.n != b.size || l.next != b.right) {
        continue;
      }
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (const Symbol& s : symbols) {
      if (s.n == 0) continue;
      std::string_view piece = w.substr(s.start, s.n);
      int32_t id = lookup(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : piece) {  // llama.cpp's last resort: single-byte tokens, others dropped
        int32_t bid = lookup(std::string_view(&c, 1));
        if (bid >= 0) out.push_back(bid);
      }
    }
  }
}

}  // namespace edgelm
