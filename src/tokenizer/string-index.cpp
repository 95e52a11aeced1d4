#include "tokenizer/string-index.h"

#include <functional>

namespace edgelm {

uint64_t StringIndex::hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

void StringIndex::reserve(size_t n) {
  offsets_.reserve(n);
  lengths_.reserve(n);
  values_.reserve(n);
  size_t want = 16;
  while (want < 2 * n) want <<= 1;
  if (want > slots_.size()) rehash(want);
}

void StringIndex::rehash(size_t n_slots) {
  slots_.assign(n_slots, -1);
  slot_hashes_.assign(n_slots, 0);
  mask_ = n_slots - 1;
  for (int32_t e = 0; e < static_cast<int32_t>(values_.size()); ++e) {
    const uint64_t h = hash(key_at(e));
    size_t s = h & mask_;
    while (slots_[s] >= 0) s = (s + 1) & mask_;
    slots_[s] = e;
    slot_hashes_[s] = static_cast<uint32_t>(h);
  }
}

bool StringIndex::insert(std::string_view key, int32_t value, bool overwrite) {
  if (slots_.empty() || 2 * (values_.size() + 1) > slots_.size())
    rehash(slots_.empty() ? 16 : slots_.size() * 2);
  const uint64_t h = hash(key);
  size_t s = h & mask_;
  while (slots_[s] >= 0) {
    const int32_t e = slots_[s];
    if (slot_hashes_[s] == static_cast<uint32_t>(h) && key_at(e) == key) {
      if (overwrite) values_[e] = value;
      return false;
    }
    s = (s + 1) & mask_;
  }
  const int32_t e = static_cast<int32_t>(values_.size());
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  lengths_.push_back(static_cast<uint32_t>(key.size()));
  arena_.append(key);
  values_.push_back(value);
  slots_[s] = e;
  slot_hashes_[s] = static_cast<uint32_t>(h);
  return true;
}

int32_t StringIndex::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash(key);
  size_t s = h & mask_;
  while (slots_[s] >= 0) {
    if (slot_hashes_[s] == static_cast<uint32_t>(h) && key_at(slots_[s]) == key)
      return values_[slots_[s]];
    s = (s + 1) & mask_;
  }
  return -1;
}

}  // namespace edgelm
