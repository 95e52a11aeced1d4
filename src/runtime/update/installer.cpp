// Installs, switches and lists model versions in a models folder (see installer.h).
#include "runtime/update/installer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>

#include "runtime/update/delta.h"
#include "runtime/update/file-util.h"
#include "runtime/update/hash.h"
#include "runtime/update/release.h"
#include "runtime/update/semver.h"
#include "runtime/update/signing.h"

namespace edgelm::update {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kStateFormat = "edgelm-models-state";

// Holds an exclusive flock on MODELS/.lock for the duration of an update or rollback.
class FolderLock {
 public:
  ~FolderLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status lock(const std::string& dir) {
    const std::string path = (fs::path(dir) / ".lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::io(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return Status::failed_precondition(fmt::format(
          "another update or rollback is running on '{}' (lock '{}' is held)", dir, path));
    }
    return Status::ok_status();
  }

 private:
  int fd_ = -1;
};

void log_line(const UpdateOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

std::string join(const fs::path& a, const std::string& b) { return (a / b).string(); }

// "1.1.0/manifest.json" -> "1.1.0/" + rel.
std::string beside(const std::string& manifest_rel, const std::string& rel) {
  const std::string dir = fs::path(manifest_rel).parent_path().string();
  return dir.empty() ? rel : dir + "/" + rel;
}

Status check_file_hash(const std::string& path, uint64_t size, const std::string& sha,
                       const std::string& what) {
  std::error_code ec;
  const uint64_t have = fs::file_size(path, ec);
  if (ec) return Status::not_found(fmt::format("{} '{}': {}", what, path, ec.message()));
  if (have != size) {
    return Status::data_loss(fmt::format("{} '{}': {} bytes, expected {}", what, path, have, size));
  }
  ASSIGN_OR_RETURN(Sha256 h, sha256_file(path));
  if (to_hex(h) != sha) {
    return Status::data_loss(
        fmt::format("{} '{}': SHA-256 {}, expected {}", what, path, to_hex(h), sha));
  }
  return Status::ok_status();
}

// The release as seen by one update: verified index and manifests, fetched lazily.
class Release {
 public:
  Release(Source& src, PublicKey pk) : src_(src), pk_(pk) {}

  Status load_index() {
    const std::string url = src_.locate(kIndexFile);
    ASSIGN_OR_RETURN(std::string text, src_.get_text(kIndexFile));
    ASSIGN_OR_RETURN(json j, parse_json(text, url));
    RETURN_IF_ERROR(verify_document(j, pk_, url));
    ASSIGN_OR_RETURN(index_, ReleaseIndex::from_json(j, url));
    return Status::ok_status();
  }
  const ReleaseIndex& index() const { return index_; }

  StatusOr<const Manifest*> manifest(const std::string& version) {
    if (auto it = cache_.find(version); it != cache_.end()) return &it->second;
    const IndexEntry* e = index_.find(version);
    if (!e) {
      std::string avail;
      for (const auto& v : index_.versions) avail += (avail.empty() ? "" : ", ") + v.version;
      return Status::not_found(fmt::format("version {} is not in the release {} (available: {})",
                                           version, src_.locate(kIndexFile), avail));
    }
    const std::string url = src_.locate(e->manifest);
    ASSIGN_OR_RETURN(std::string text, src_.get_text(e->manifest));
    const std::string h = to_hex(sha256(text.data(), text.size()));
    if (h != e->manifest_sha256) {
      return Status::data_loss(fmt::format(
          "{}: SHA-256 {} does not match the {} listed in the signed index (tampered or stale "
          "manifest)",
          url, h, e->manifest_sha256));
    }
    ASSIGN_OR_RETURN(json j, parse_json(text, url));
    RETURN_IF_ERROR(verify_document(j, pk_, url));
    ASSIGN_OR_RETURN(Manifest m, Manifest::from_json(j, url));
    if (m.model_id != index_.model_id || compare_versions(m.version, e->version) != 0) {
      return Status::data_loss(fmt::format("{}: names {} {}, the index lists {} {}", url,
                                           m.model_id, m.version, index_.model_id, e->version));
    }
    return &cache_.emplace(version, std::move(m)).first->second;
  }
  // Path of a manifest's file relative to the release root.
  std::string rel(const std::string& version, const std::string& path) const {
    return beside(index_.find(version)->manifest, path);
  }

 private:
  Source& src_;
  PublicKey pk_;
  ReleaseIndex index_;
  std::map<std::string, Manifest> cache_;
};

struct Hop {
  std::string from, to;
  const DeltaRef* delta = nullptr;  // null: full file
};

StatusOr<PublicKey> trusted_key(const UpdateOptions& o, bool* pin_it) {
  const std::string pinned = join(o.models_dir, kPinnedKeyFile);
  const bool have_pinned = fs::exists(pinned);
  *pin_it = false;
  if (o.pubkey_path.empty()) {
    if (!have_pinned) {
      return Status::failed_precondition(fmt::format(
          "no trusted release key: pass --pubkey KEY.pub (it is then pinned in '{}')", pinned));
    }
    return load_public_key(pinned);
  }
  ASSIGN_OR_RETURN(PublicKey given, load_public_key(o.pubkey_path));
  if (have_pinned) {
    ASSIGN_OR_RETURN(PublicKey pk, load_public_key(pinned));
    if (!(pk == given)) {
      return Status::failed_precondition(fmt::format(
          "--pubkey '{}' (key id {}) differs from the key pinned in '{}' (key id {}); to trust a "
          "new key, remove the pinned file first",
          o.pubkey_path, given.key_id(), pinned, pk.key_id()));
    }
    return pk;
  }
  *pin_it = true;
  return given;
}

std::string version_file(const std::string& model_id, const std::string& version) {
  return fmt::format("versions/{}/{}-{}.gguf", version, model_id, version);
}

}  // namespace

const InstalledVersion* ModelsState::find(const std::string& version) const {
  for (const auto& v : installed) {
    if (compare_versions(v.version, version) == 0) return &v;
  }
  return nullptr;
}

StatusOr<ModelsState> load_models_state(const std::string& models_dir) {
  const std::string path = join(models_dir, kStateFile);
  ModelsState s;
  if (!fs::exists(path)) return s;
  ASSIGN_OR_RETURN(std::string text, read_file(path));
  ASSIGN_OR_RETURN(json j, parse_json(text, path));
  auto bad = [&](const std::string& what) {
    return Status::data_loss(fmt::format("{}: {}", path, what));
  };
  if (!j.is_object() || j.value("format", "") != kStateFormat) {
    return bad(fmt::format("expected \"format\": \"{}\"", kStateFormat));
  }
  s.model_id = j.value("model_id", "");
  s.current = j.value("current", "");
  s.previous = j.value("previous", "");
  if (!j.contains("installed") || !j["installed"].is_array())
    return bad("expected \"installed\": [...]");
  for (const json& e : j["installed"]) {
    if (!e.is_object() || !e.contains("version") || !e.contains("file") || !e.contains("sha256") ||
        !e.contains("size") || !e["size"].is_number_unsigned()) {
      return bad("an \"installed\" entry lacks version, file, size or sha256");
    }
    InstalledVersion v;
    v.version = e["version"].get<std::string>();
    v.file = e["file"].get<std::string>();
    if (!is_safe_relative_path(v.file)) return bad(fmt::format("unsafe file path '{}'", v.file));
    v.size = e["size"].get<uint64_t>();
    v.sha256 = e["sha256"].get<std::string>();
    v.installed_at = e.value("installed_at", "");
    v.source = e.value("source", "");
    s.installed.push_back(std::move(v));
  }
  if (!s.current.empty() && !s.find(s.current)) {
    return bad(fmt::format("current version {} is not among the installed ones", s.current));
  }
  return s;
}

Status save_models_state(const std::string& models_dir, const ModelsState& s) {
  json inst = json::array();
  for (const auto& v : s.installed) {
    inst.push_back({{"version", v.version},
                    {"file", v.file},
                    {"size", v.size},
                    {"sha256", v.sha256},
                    {"installed_at", v.installed_at},
                    {"source", v.source}});
  }
  json j = {{"format", kStateFormat}, {"format_version", 1},    {"model_id", s.model_id},
            {"current", s.current},   {"previous", s.previous}, {"installed", inst}};
  RETURN_IF_ERROR(write_file_atomic(join(models_dir, kStateFile), j.dump(2) + "\n"));
  if (const InstalledVersion* cur = s.find(s.current)) {
    RETURN_IF_ERROR(replace_symlink(cur->file, join(models_dir, kCurrentLink)));
  }
  return Status::ok_status();
}

StatusOr<UpdateResult> update_model(const UpdateOptions& o) {
  std::error_code ec;
  fs::create_directories(o.models_dir, ec);
  if (ec) return Status::io(fmt::format("cannot create '{}': {}", o.models_dir, ec.message()));
  FolderLock lock;
  RETURN_IF_ERROR(lock.lock(o.models_dir));
  bool pin = false;
  ASSIGN_OR_RETURN(PublicKey pk, trusted_key(o, &pin));
  ASSIGN_OR_RETURN(ModelsState state, load_models_state(o.models_dir));
  ASSIGN_OR_RETURN(auto src, Source::open(o.from, o.fetch));
  Release rel(*src, pk);
  RETURN_IF_ERROR(rel.load_index());
  const ReleaseIndex& index = rel.index();
  if (!state.model_id.empty() && state.model_id != index.model_id) {
    return Status::invalid_argument(fmt::format(
        "'{}' holds model '{}' but the release at '{}' is model '{}'; use one models folder per "
        "model",
        o.models_dir, state.model_id, o.from, index.model_id));
  }
  if (pin) {
    RETURN_IF_ERROR(
        write_file_atomic(join(o.models_dir, kPinnedKeyFile), public_key_file_text(pk)));
    log_line(o, fmt::format("pinned release key {} in {}", pk.key_id(),
                            join(o.models_dir, kPinnedKeyFile)));
  }

  UpdateResult r;
  r.from_version = state.current;
  const std::string target = o.version.empty() ? index.latest : o.version;
  if (!o.version.empty()) RETURN_IF_ERROR(SemVer::parse(o.version).status());
  ASSIGN_OR_RETURN(const Manifest* tm, rel.manifest(target));
  r.to_version = tm->version;
  r.full_bytes = tm->file.size;
  if (compare_versions(tm->min_runtime_version, runtime_version()) > 0) {
    return Status::failed_precondition(
        fmt::format("version {} needs edgelm {} or newer; this is edgelm {}", tm->version,
                    tm->min_runtime_version, runtime_version()));
  }
  const InstalledVersion* cur = state.current.empty() ? nullptr : state.find(state.current);
  if (cur) {
    const int c = compare_versions(tm->version, cur->version);
    if (c == 0 && cur->sha256 == tm->file.sha256) {
      log_line(o,
               fmt::format("{} {} is already installed and current", index.model_id, cur->version));
      return r;
    }
    if (c < 0 && !o.allow_downgrade) {
      return Status::failed_precondition(fmt::format(
          "version {} is older than the installed {}; pass --allow-downgrade to install it",
          tm->version, cur->version));
    }
  }

  const fs::path models(o.models_dir);
  const std::string final_rel = version_file(index.model_id, tm->version);
  const std::string final_path = join(models, final_rel);
  InstalledVersion installed{tm->version,     final_rel,         tm->file.size,
                             tm->file.sha256, utc_now_iso8601(), o.from};

  // Already on disk (e.g. the previous version) and intact: switch only.
  const InstalledVersion* have = state.find(tm->version);
  bool local = false;
  if (have && have->sha256 == tm->file.sha256 &&
      check_file_hash(join(models, have->file), have->size, have->sha256, "installed file").ok()) {
    local = true;
    installed = *have;
    r.plan.push_back({"local", state.current, tm->version, 0});
  }

  if (!local) {
    // Plan: the cheapest chain of deltas from the current version, or the full file.
    std::vector<Hop> hops;
    if (cur && !o.full && compare_versions(tm->version, cur->version) > 0) {
      std::vector<std::string> nodes;
      for (const auto& e : index.versions) {
        if (compare_versions(e.version, cur->version) >= 0 &&
            compare_versions(e.version, tm->version) <= 0) {
          nodes.push_back(e.version);
        }
      }
      const uint64_t kInf = std::numeric_limits<uint64_t>::max();
      std::map<std::string, uint64_t> dist;
      std::map<std::string, std::pair<std::string, const DeltaRef*>> via;
      std::map<std::string, std::string> sha;  // expected file hash of each node
      dist[cur->version] = 0;
      sha[cur->version] = cur->sha256;
      bool in_index = index.find(cur->version) != nullptr;
      if (!in_index) nodes.insert(nodes.begin(), cur->version);
      for (const auto& v : nodes) {
        if (compare_versions(v, cur->version) == 0) continue;
        ASSIGN_OR_RETURN(const Manifest* m, rel.manifest(v));
        sha[v] = m->file.sha256;
        uint64_t best = kInf;
        for (const auto& d : m->deltas) {
          auto it = dist.find(d.from_version);
          if (it == dist.end() || it->second == kInf || sha[d.from_version] != d.from_sha256)
            continue;
          if (it->second + d.patch.size < best) {
            best = it->second + d.patch.size;
            via[v] = {d.from_version, &d};
          }
        }
        dist[v] = best;
      }
      if (dist[tm->version] < tm->file.size) {
        for (std::string v = tm->version; v != cur->version;) {
          const auto& [from, d] = via[v];
          hops.push_back({from, v, d});
          v = from;
        }
        std::reverse(hops.begin(), hops.end());
      }
    }
    if (hops.empty()) hops.push_back({state.current, tm->version, nullptr});
    uint64_t max_hop = 0;
    for (const auto& h : hops) {
      const uint64_t b = h.delta ? h.delta->patch.size : tm->file.size;
      r.plan.push_back({h.delta ? "delta" : "full", h.from, h.to, b});
      r.download_bytes += b;
      max_hop = std::max(max_hop, b);
    }
    for (const auto& s : r.plan) {
      log_line(o, s.kind == "full"
                      ? fmt::format("plan: full file {} ({})", s.to_version, human_bytes(s.bytes))
                      : fmt::format("plan: delta {} -> {} ({})", s.from_version, s.to_version,
                                    human_bytes(s.bytes)));
    }
    log_line(o, fmt::format("download {} (full file {})", human_bytes(r.download_bytes),
                            human_bytes(tm->file.size)));

    // Disk space: the downloads, the new file and at most one intermediate file at a time.
    const fs::path downloads = models / ".downloads";
    fs::create_directories(downloads, ec);
    if (ec)
      return Status::io(fmt::format("cannot create '{}': {}", downloads.string(), ec.message()));
    fs::create_directories(fs::path(final_path).parent_path(), ec);
    if (ec) return Status::io(fmt::format("cannot create '{}': {}", final_path, ec.message()));
    uint64_t need = max_hop + tm->file.size + (hops.size() > 1 ? tm->file.size : 0);
    ASSIGN_OR_RETURN(uint64_t free_bytes, free_disk_bytes(o.models_dir));
    if (free_bytes < need) {
      return Status::resource_exhausted(
          fmt::format("not enough disk space in '{}': the update needs about {} and {} is free",
                      o.models_dir, human_bytes(need), human_bytes(free_bytes)));
    }

    // Execute. Intermediate and downloaded files live in .downloads until the final rename.
    std::string prev = cur ? join(models, cur->file) : std::string();
    std::vector<std::string> temps;
    auto cleanup = [&] {
      for (const auto& t : temps) fs::remove(t, ec);
    };
    for (size_t i = 0; i < hops.size(); ++i) {
      const Hop& h = hops[i];
      const bool last = i + 1 == hops.size();
      if (!h.delta) {
        const std::string dl = join(downloads, fmt::format("{}-{}.gguf", index.model_id, h.to));
        log_line(o, fmt::format("downloading {}", src->locate(rel.rel(h.to, tm->file.path))));
        Status st = src->download(rel.rel(h.to, tm->file.path), tm->file.size, tm->file.sha256, dl);
        if (!st.ok()) return st.with_context(fmt::format("installing {} {}", index.model_id, h.to));
        RETURN_IF_ERROR(rename_durable(dl, final_path));
        continue;
      }
      const std::string patch = join(downloads, fmt::format("{}-{}.elmd", h.from, h.to));
      log_line(o, fmt::format("downloading {}", src->locate(rel.rel(h.to, h.delta->patch.path))));
      Status st = src->download(rel.rel(h.to, h.delta->patch.path), h.delta->patch.size,
                                h.delta->patch.sha256, patch);
      if (!st.ok()) {
        cleanup();
        return st.with_context(fmt::format("installing {} {}", index.model_id, tm->version));
      }
      temps.push_back(patch);
      const std::string out =
          last ? final_path
               : join(downloads, fmt::format("{}-{}.gguf.partial-chain", index.model_id, h.to));
      log_line(o, fmt::format("applying delta {} -> {}", h.from, h.to));
      DeltaOptions dopt;
      st = apply_delta(prev, patch, out, dopt);
      if (!st.ok()) {
        cleanup();
        return Status(st.code(),
                      fmt::format("applying the delta {} -> {} to '{}' failed: {} (the installed "
                                  "model is unchanged; if the installed file was modified, rerun "
                                  "with --full to download the whole file)",
                                  h.from, h.to, prev, st.message()));
      }
      if (!last) temps.push_back(out);
      prev = out;
    }
    cleanup();
    Status v = check_file_hash(final_path, tm->file.size, tm->file.sha256, "installed file");
    if (!v.ok()) {
      fs::remove(final_path, ec);
      return v;
    }
  }

  // Switch: state.json (atomic), then the current.gguf symlink.
  ModelsState next = state;
  next.model_id = index.model_id;
  next.installed.erase(std::remove_if(next.installed.begin(), next.installed.end(),
                                      [&](const InstalledVersion& v) {
                                        return compare_versions(v.version, installed.version) == 0;
                                      }),
                       next.installed.end());
  next.installed.push_back(installed);
  std::sort(next.installed.begin(), next.installed.end(), [](const auto& a, const auto& b) {
    return compare_versions(a.version, b.version) < 0;
  });
  if (!state.current.empty() && compare_versions(state.current, installed.version) != 0) {
    next.previous = state.current;
  }
  next.current = installed.version;
  // Keep `keep` versions: current and previous first, then the newest others.
  std::vector<InstalledVersion> removed;
  const size_t keep = static_cast<size_t>(std::max(o.keep, 2));
  while (next.installed.size() > keep) {
    auto victim = std::find_if(next.installed.begin(), next.installed.end(), [&](const auto& v) {
      return v.version != next.current && v.version != next.previous;
    });
    if (victim == next.installed.end()) break;
    removed.push_back(*victim);
    next.installed.erase(victim);
  }
  RETURN_IF_ERROR(save_models_state(o.models_dir, next));
  for (const auto& v : removed) {
    fs::remove(join(models, v.file), ec);
    fs::remove(fs::path(join(models, v.file)).parent_path(), ec);  // only if empty
    log_line(o, fmt::format("removed old version {}", v.version));
  }
  r.changed = true;
  r.fetch = src->stats();
  log_line(o, fmt::format("{} {} installed and current{}", index.model_id, installed.version,
                          next.previous.empty() ? "" : " (previous: " + next.previous + ")"));
  return r;
}

StatusOr<std::string> rollback_model(const std::string& models_dir) {
  FolderLock lock;
  if (!fs::is_directory(models_dir)) {
    return Status::not_found(fmt::format("models folder '{}' does not exist", models_dir));
  }
  RETURN_IF_ERROR(lock.lock(models_dir));
  ASSIGN_OR_RETURN(ModelsState s, load_models_state(models_dir));
  if (s.current.empty()) {
    return Status::failed_precondition(fmt::format("'{}' has no installed model", models_dir));
  }
  const InstalledVersion* prev = s.previous.empty() ? nullptr : s.find(s.previous);
  if (!prev) {
    return Status::failed_precondition(fmt::format(
        "'{}' has no previous version to roll back to (current: {})", models_dir, s.current));
  }
  RETURN_IF_ERROR(check_file_hash(join(models_dir, prev->file), prev->size, prev->sha256,
                                  "previous version's file")
                      .with_context("cannot roll back"));
  std::swap(s.current, s.previous);
  RETURN_IF_ERROR(save_models_state(models_dir, s));
  return s.current;
}

StatusOr<std::vector<InstalledListing>> list_installed(const std::string& models_dir, bool verify) {
  ASSIGN_OR_RETURN(ModelsState s, load_models_state(models_dir));
  std::vector<InstalledListing> out;
  for (const auto& v : s.installed) {
    InstalledListing l;
    l.info = v;
    l.path = fs::absolute(join(models_dir, v.file)).lexically_normal().string();
    l.current = v.version == s.current;
    l.previous = v.version == s.previous;
    if (!fs::exists(l.path)) {
      l.verified = "missing";
    } else if (!verify) {
      l.verified = "unchecked";
    } else {
      l.verified =
          check_file_hash(l.path, v.size, v.sha256, "installed file").ok() ? "ok" : "mismatch";
    }
    out.push_back(std::move(l));
  }
  return out;
}

StatusOr<std::string> current_model_path(const std::string& models_dir) {
  ASSIGN_OR_RETURN(ModelsState s, load_models_state(models_dir));
  const InstalledVersion* cur = s.current.empty() ? nullptr : s.find(s.current);
  if (!cur) {
    return Status::not_found(fmt::format("'{}' has no installed model", models_dir));
  }
  return fs::absolute(join(models_dir, cur->file)).lexically_normal().string();
}

}  // namespace edgelm::update
