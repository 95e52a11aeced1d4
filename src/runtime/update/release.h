// Release directories: `edgelm release` writes a static tree that any web server, object store
// or CDN can host, holding every version of one model (docs/releases.md):
//
//   DIR/index.json                            signed list of versions, "latest"
//   DIR/<version>/manifest.json               signed manifest (manifest.h)
//   DIR/<version>/<model-id>-<version>.gguf   the full model
//   DIR/<version>/deltas/<from>-<version>.elmd  patches from earlier versions (delta.h)
//
// Each version folder is self-contained (paths in a manifest are relative to its folder), so
// versions can be imported from other release directories with `previous`.
//
//   ReleaseOptions o{.model_path = "tiny.gguf", .version = "1.1.0", .key_path = "rel.key",
//                    .out_dir = "releases/tiny"};
//   ASSIGN_OR_RETURN(ReleaseResult r, create_release(o));
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/update/delta.h"
#include "runtime/update/manifest.h"
#include "runtime/update/signing.h"

namespace edgelm::update {

inline constexpr const char* kIndexFile = "index.json";
inline constexpr const char* kManifestFile = "manifest.json";

struct ReleaseOptions {
  std::string model_path;
  std::string version;
  std::string key_path;  // secret key (generate_key_files)
  std::string out_dir;
  std::string model_id;  // default: the index's id, else the model file's stem
  // Earlier versions to include and to compute deltas from: release directories (index.json),
  // version folders (manifest.json) or manifest.json files. Must be signed with the same key.
  std::vector<std::string> previous;
  std::string quality_path;  // JSON object embedded under "quality" (edgelm eval's report)
  int max_deltas = 0;        // deltas from the N most recent earlier versions; 0 = all
  DeltaOptions delta;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

struct ReleaseResult {
  Manifest manifest;
  std::string manifest_path;
  std::string index_path;
  std::vector<std::string> imported_versions;
};

StatusOr<ReleaseResult> create_release(const ReleaseOptions& opts);

// Reads DIR/index.json and verifies its signature (not_found when the file is absent).
StatusOr<ReleaseIndex> load_release_index(const std::string& dir, const PublicKey& pk);

// A valid model id: 1-64 characters of [A-Za-z0-9._-], not starting with '.'.
bool is_valid_model_id(const std::string& id);

}  // namespace edgelm::update
