// Compact hash index from byte strings to int32 values for vocabularies and merge ranks: keys
// live in one arena and the table is open-addressed, so building an index over a few hundred
// thousand strings costs a handful of allocations instead of one per key.
//
//   StringIndex idx;
//   idx.insert("hello", 7);
//   int32_t v = idx.find("hello");   // 7; -1 when absent
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm {

class StringIndex {
 public:
  void reserve(size_t n);
  // Adds key -> value. When the key is present: keeps the old value unless `overwrite`.
  // Returns false if the key was already present.
  bool insert(std::string_view key, int32_t value, bool overwrite = false);
  int32_t find(std::string_view key) const;  // -1 when absent
  size_t size() const { return values_.size(); }

 private:
  static uint64_t hash(std::string_view key);
  std::string_view key_at(int32_t entry) const {
    return std::string_view(arena_).substr(offsets_[entry], lengths_[entry]);
  }
  void rehash(size_t n_slots);

  std::string arena_;
  std::vector<uint32_t> offsets_, lengths_;
  std::vector<int32_t> values_;
  std::vector<int32_t> slots_;         // entry index, -1 = empty
  std::vector<uint32_t> slot_hashes_;  // low bits of the key hash, to skip most compares
  size_t mask_ = 0;
};

}  // namespace edgelm
