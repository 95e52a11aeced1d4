// Release manifests and release indexes (format: docs/formats/manifest.md). A manifest names
// one model version: id, semantic version, file size and SHA-256, per-tensor hashes, a
// quantization summary, the minimum runtime version and RAM, baseline quality figures and the
// deltas that lead to it from earlier versions. An index lists every version of one model
// hosted in a release directory. Both are signed JSON documents (signing.h).
//
//   ASSIGN_OR_RETURN(Manifest m, describe_model("tiny.gguf", "tiny", "1.2.0"));
//   nlohmann::json j = m.to_json();  sign_document(j, sk);
//   ASSIGN_OR_RETURN(Manifest back, Manifest::from_json(j, "1.2.0/manifest.json"));
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace edgelm::update {

inline constexpr const char* kManifestFormat = "edgelm-release-manifest";
inline constexpr const char* kIndexFormat = "edgelm-release-index";
inline constexpr int kManifestFormatVersion = 1;
// RAM estimate: file bytes + F16 KV cache for the default context + this fixed overhead.
inline constexpr uint64_t kRamOverheadBytes = 64ull << 20;
// The engine's default context: min(training context, 4096) (engine/engine.h).
inline constexpr uint64_t kDefaultContext = 4096;

struct FileRef {
  std::string path;  // relative to the manifest's folder (safe: no "..", no leading '/')
  uint64_t size = 0;
  std::string sha256;  // lowercase hex
};

struct DeltaRef {
  std::string from_version;
  std::string from_sha256;  // the source file this patch applies to
  FileRef patch;
};

struct TensorRecord {
  std::string name;
  std::string type;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::string sha256;
};

struct QuantSummary {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
};

struct RamEstimate {
  uint64_t context = 0;  // tokens of KV cache counted
  uint64_t file_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t overhead_bytes = 0;
  uint64_t total() const { return file_bytes + kv_cache_bytes + overhead_bytes; }
};

struct Manifest {
  std::string model_id;
  std::string version;
  std::string created;  // ISO 8601 UTC
  FileRef file;
  std::string architecture;
  std::string model_name;  // general.name, may be empty
  uint64_t context_length = 0;
  std::vector<TensorRecord> tensors;
  std::map<std::string, QuantSummary> quantization;  // type name -> count and bytes
  std::string min_runtime_version;
  RamEstimate ram;
  nlohmann::json quality;  // null when absent
  std::vector<DeltaRef> deltas;

  // Unsigned JSON (sign_document adds "signature").
  nlohmann::json to_json() const;
  // Validates every field; `what` (path or URL) appears in errors.
  static StatusOr<Manifest> from_json(const nlohmann::json& j, const std::string& what);
};

struct IndexEntry {
  std::string version;
  std::string manifest;         // relative to the index folder: "<version>/manifest.json"
  std::string manifest_sha256;  // of the manifest.json bytes as hosted
  uint64_t file_size = 0;
};

struct ReleaseIndex {
  std::string model_id;
  std::string latest;
  std::vector<IndexEntry> versions;  // ascending by version

  nlohmann::json to_json() const;
  static StatusOr<ReleaseIndex> from_json(const nlohmann::json& j, const std::string& what);
  const IndexEntry* find(const std::string& version) const;
};

// Parses JSON text with a clear error naming `what`.
StatusOr<nlohmann::json> parse_json(const std::string& text, const std::string& what);

// True for "a/b.gguf"-style paths: relative, no "..", no empty or "." components, no '\\'.
bool is_safe_relative_path(const std::string& path);

// Reads a GGUF (validating it) and fills everything but the deltas and quality: file size and
// SHA-256, per-tensor hashes, quantization summary, minimum runtime version and RAM.
// `file_path` is the name recorded in the manifest (relative to the manifest's folder).
StatusOr<Manifest> describe_model(const std::string& gguf_path, const std::string& model_id,
                                  const std::string& version, const std::string& file_path);

// Current UTC time as "2026-11-26T03:00:00Z".
std::string utc_now_iso8601();

}  // namespace edgelm::update
