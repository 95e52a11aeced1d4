// Tensor-aware delta patches between two GGUF files (format: docs/formats/delta.md).
// Unchanged tensors are referenced by hash, changed ones are zstd-compressed with the old
// tensor as prefix, new/removed tensors and metadata changes are carried explicitly. Apply is
// streaming, verifies every hash, and installs atomically (temp file, fsync, rename).
//
//   DeltaStats st;
//   RETURN_IF_ERROR(make_delta("v1.gguf", "v2.gguf", "v1-v2.elmd", {}, &st));
//   RETURN_IF_ERROR(apply_delta("v1.gguf", "v1-v2.elmd", "v2.gguf", {}));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "runtime/update/hash.h"

namespace edgelm::update {

// Progress callback: bytes done, bytes total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// One line about what apply/make is doing now ("verifying patch", "verifying source", ...).
using PhaseFn = std::function<void(const std::string& phase)>;
// Test seam for the output writes: same contract as ::write(2) (set errno on failure).
using WriteFn = std::function<ssize_t(int fd, const void* data, size_t size)>;

struct DeltaOptions {
  int zstd_level = 19;
  int threads = 0;  // 0 = all cores
  ProgressFn progress;
  // --- Added members (defaults are the documented format's choices) ---
  PhaseFn phase;
  // make: changed tensors are cut into chunks of this many target bytes, each compressed
  // against the old bytes around the same position (chunk + 2 x ref_margin_bytes). Apply's
  // extra memory is about 3 chunks + 2 margins (docs/formats/delta.md). Tests use tiny values.
  uint64_t chunk_bytes = 4ull << 20;
  uint64_t ref_margin_bytes = 1ull << 20;
  // apply: check the patch body's SHA-256 before reading any record. Only fuzz tests turn
  // this off, to drive the record parser with tampered input.
  bool verify_patch_hash = true;
  // apply: replaces ::write for the output (tests inject ENOSPC). Empty = ::write.
  WriteFn write_fn;
};

struct DeltaStats {
  uint64_t patch_bytes = 0;
  uint64_t target_bytes = 0;
  uint32_t tensors_same = 0, tensors_changed = 0, tensors_added = 0, tensors_removed = 0;
  // Added: chunk counts by encoding and whether the metadata region changed.
  uint32_t chunks_copy = 0, chunks_zero = 0, chunks_prefix = 0, chunks_sub = 0;
  bool metadata_changed = false;
};

// What a patch says about itself, read from its header without applying it.
struct DeltaInfo {
  Sha256 source_sha256{};
  Sha256 target_sha256{};
  uint64_t source_size = 0;
  uint64_t target_size = 0;
  uint64_t patch_size = 0;
  // Added: format version, record count, and the largest chunk / reference / frame (the
  // buffers apply allocates).
  uint32_t version = 0;
  uint32_t segments = 0;
  uint64_t max_chunk = 0, max_ref = 0, max_frame = 0;
};

Status make_delta(const std::string& old_path, const std::string& new_path,
                  const std::string& patch_path, const DeltaOptions& opts = {},
                  DeltaStats* stats = nullptr);

// Writes out_path atomically; on any error out_path is untouched and old_path is never modified.
// If out_path already holds the target (same size and SHA-256), returns OK without writing.
// A leftover "<out_path>.elmd-partial" from a killed run is truncated and reused.
Status apply_delta(const std::string& old_path, const std::string& patch_path,
                   const std::string& out_path, const DeltaOptions& opts = {});

StatusOr<DeltaInfo> read_delta_info(const std::string& patch_path);

}  // namespace edgelm::update
