// The models folder on a device: installs a model version from a release source (full file or
// the cheapest chain of deltas), atomically switches the "current" version, keeps the previous
// one for rollback, and lists what is installed (docs/releases.md).
//
//   MODELS/state.json       {"model_id", "current", "previous", "installed": [...]}, written
//                           atomically; it is the source of truth
//   MODELS/current.gguf     symlink to the current version's file (swapped with rename)
//   MODELS/trusted.pub      the pinned release public key
//   MODELS/versions/<version>/<model-id>-<version>.gguf
//   MODELS/.downloads/      partial downloads (*.part, resumed) and intermediate files
//
//   UpdateOptions o{.from = "https://cdn.example.com/tiny", .models_dir = "models"};
//   ASSIGN_OR_RETURN(UpdateResult r, update_model(o));
//   ASSIGN_OR_RETURN(std::string now, rollback_model("models"));
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/update/fetch.h"
#include "runtime/update/manifest.h"

namespace edgelm::update {

inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kPinnedKeyFile = "trusted.pub";
inline constexpr const char* kCurrentLink = "current.gguf";

struct InstalledVersion {
  std::string version;
  std::string file;  // relative to the models folder
  uint64_t size = 0;
  std::string sha256;
  std::string installed_at;
  std::string source;  // where it came from
};

struct ModelsState {
  std::string model_id;
  std::string current;
  std::string previous;
  std::vector<InstalledVersion> installed;

  const InstalledVersion* find(const std::string& version) const;
};

// Reads MODELS/state.json; an empty state when the folder or the file does not exist.
StatusOr<ModelsState> load_models_state(const std::string& models_dir);
// Writes state.json atomically, then points current.gguf at the current version.
Status save_models_state(const std::string& models_dir, const ModelsState& state);

struct UpdateOptions {
  std::string from;  // release directory: http(s) URL, file:// URL or folder
  std::string models_dir;
  std::string pubkey_path;  // empty: MODELS/trusted.pub; given and none pinned yet: pinned
  std::string version;      // empty: the release's latest
  bool allow_downgrade = false;
  bool full = false;  // ignore deltas, download the full file
  int keep = 2;       // installed versions kept (current and previous are never removed)
  FetchOptions fetch;
  std::function<void(const std::string&)> log;
};

struct UpdateStep {
  std::string kind;  // "full", "delta" or "local" (already installed: switch only)
  std::string from_version;
  std::string to_version;
  uint64_t bytes = 0;  // download size
};

struct UpdateResult {
  std::string from_version;  // "" when nothing was installed
  std::string to_version;
  bool changed = false;
  std::vector<UpdateStep> plan;
  uint64_t download_bytes = 0;  // planned
  uint64_t full_bytes = 0;      // the target's full file size, for comparison
  FetchStats fetch;
};

// Verifies the release against the pinned key, plans the smallest download, fetches, verifies,
// installs atomically and switches current. On any error the installed model is untouched.
StatusOr<UpdateResult> update_model(const UpdateOptions& opts);

// Makes the previous version current again (its file is verified first); returns it.
StatusOr<std::string> rollback_model(const std::string& models_dir);

struct InstalledListing {
  InstalledVersion info;
  std::string path;  // absolute
  bool current = false;
  bool previous = false;
  std::string verified;  // "ok", "mismatch", "missing" or "unchecked"
};

StatusOr<std::vector<InstalledListing>> list_installed(const std::string& models_dir, bool verify);
// Absolute path of the current version's file.
StatusOr<std::string> current_model_path(const std::string& models_dir);

}  // namespace edgelm::update
