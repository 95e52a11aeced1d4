// Tensor-aware delta patches between two GGUF files (format: docs/formats/delta.md).
// Unchanged tensors are referenced by hash, changed ones are zstd-compressed with the old
// tensor as prefix, new/removed tensors and metadata changes are carried explicitly. Apply is
// streaming, verifies every hash, and installs atomically (temp file, fsync, rename).
//
//   DeltaStats st;
//   RETURN_IF_ERROR(make_delta("v1.gguf", "v2.gguf", "v1-v2.elmd", {}, &st));
//   RETURN_IF_ERROR(apply_delta("v1.gguf", "v1-v2.elmd", "v2.gguf", {}));
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "runtime/update/hash.h"

namespace edgelm::update {

// Progress callback: bytes done, bytes total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct DeltaOptions {
  int zstd_level = 19;
  int threads = 0;  // 0 = all cores
  ProgressFn progress;
};

struct DeltaStats {
  uint64_t patch_bytes = 0;
  uint64_t target_bytes = 0;
  uint32_t tensors_same = 0, tensors_changed = 0, tensors_added = 0, tensors_removed = 0;
};

// What a patch says about itself, read from its header without applying it.
struct DeltaInfo {
  Sha256 source_sha256{};
  Sha256 target_sha256{};
  uint64_t source_size = 0;
  uint64_t target_size = 0;
  uint64_t patch_size = 0;
};

Status make_delta(const std::string& old_path, const std::string& new_path,
                  const std::string& patch_path, const DeltaOptions& opts = {},
                  DeltaStats* stats = nullptr);

// Writes out_path atomically; on any error out_path is untouched and old_path is never modified.
Status apply_delta(const std::string& old_path, const std::string& patch_path,
                   const std::string& out_path, const DeltaOptions& opts = {});

StatusOr<DeltaInfo> read_delta_info(const std::string& patch_path);

}  // namespace edgelm::update
