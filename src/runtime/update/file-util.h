// Small crash-safe file helpers for releases and installs: read a whole file, write one
// atomically (temp file in the same folder, fsync, rename, fsync the folder), copy a file
// atomically, swap a symlink atomically, free disk space. Every error names the path and errno.
//
//   RETURN_IF_ERROR(write_file_atomic("state.json", text));
//   RETURN_IF_ERROR(copy_file_atomic("model.gguf", "versions/1.0.0/model.gguf"));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace edgelm::update {

StatusOr<std::string> read_file(const std::string& path, uint64_t max_bytes = 64ull << 20);
// Writes `data` to `path` so that readers see either the old file or the complete new one.
Status write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);
// Copies src to dst atomically (same guarantees as write_file_atomic).
Status copy_file_atomic(const std::string& src, const std::string& dst);
// Renames and fsyncs the destination folder.
Status rename_durable(const std::string& from, const std::string& to);
Status fsync_path(const std::string& path);
// Points `link_path` at `target` (a relative or absolute path) by creating a temp symlink and
// renaming it over link_path.
Status replace_symlink(const std::string& target, const std::string& link_path);
// Free bytes for unprivileged users on the filesystem holding `path`.
StatusOr<uint64_t> free_disk_bytes(const std::string& path);
// "12.3 MiB" style.
std::string human_bytes(uint64_t b);

}  // namespace edgelm::update
