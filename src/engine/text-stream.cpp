// UTF-8 and stop-string hold-back (see text-stream.h).
#include "engine/text-stream.h"

#include <algorithm>

namespace edgelm {

namespace {

// Expected length of a UTF-8 sequence from its lead byte; 0 for a continuation or invalid byte.
size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 0;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

size_t utf8_incomplete_tail(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte.
  size_t n = s.size();
  size_t back = 0;
  while (back < n && back < 4 && is_continuation(static_cast<unsigned char>(s[n - 1 - back]))) {
    ++back;
  }
  if (back == n || back == 4) return 0;  // no lead byte in reach: can never complete
  const size_t lead = n - 1 - back;
  const size_t need = utf8_len(static_cast<unsigned char>(s[lead]));
  const size_t have = back + 1;
  if (need == 0 || have >= need) return 0;
  return have;
}

TextStream::TextStream(std::vector<std::string> stop_strings) {
  for (auto& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_.append(bytes);

  // A complete stop string: release what precedes the earliest one, drop the rest.
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    size_t pos = pending_.find(s);
    if (pos != std::string::npos && (first == std::string::npos || pos < first)) {
      first = pos;
      matched_ = s;
    }
  }
  if (first != std::string::npos) {
    std::string out = pending_.substr(0, first);
    pending_.clear();
    stopped_ = true;
    return out;
  }

  // Hold back the longest tail that is a proper prefix of a stop string, and an incomplete
  // UTF-8 character.
  size_t hold = utf8_incomplete_tail(pending_);
  for (const auto& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, pending_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) ==
          std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  // Never cut inside a character: move the cut back over continuation bytes.
  size_t cut = pending_.size() - hold;
  if (cut > 0 && cut < pending_.size() &&
      is_continuation(static_cast<unsigned char>(pending_[cut]))) {
    size_t lead = cut;
    while (lead > 0 && cut - lead < 3 &&
           is_continuation(static_cast<unsigned char>(pending_[lead]))) {
      --lead;
    }
    const unsigned char c = static_cast<unsigned char>(pending_[lead]);
    if (!is_continuation(c) && utf8_len(c) > cut - lead) cut = lead;
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace edgelm
