// Read-only memory map of a whole file. Model weights are used in place, never copied.
//
//   ASSIGN_OR_RETURN(MappedFile f, MappedFile::open("model.gguf"));
//   std::span<const uint8_t> bytes = f.bytes();
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace edgelm {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Maps `path` read-only. An empty file maps to an empty span.
  static StatusOr<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Hint the kernel to read ahead (sequential access); best effort.
  void advise_willneed() const;
  // Drops the whole pages inside [p, p + n) (a range of this or any read-only file mapping)
  // from the process's resident set, e.g. after copying them elsewhere; a later read faults
  // them back in from the file. Best effort.
  static void release_pages(const void* p, size_t n);

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace edgelm
