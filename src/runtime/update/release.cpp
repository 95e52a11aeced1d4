// `edgelm release`: build a signed, static release directory (see release.h).
#include "runtime/update/release.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "runtime/update/file-util.h"
#include "runtime/update/hash.h"
#include "runtime/update/semver.h"

namespace edgelm::update {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Imported {
  std::string version;
  std::string manifest_path;  // where it lives now
  std::string manifest_text;  // verbatim bytes (hash listed in the index)
  Manifest manifest;
};

void log_line(const ReleaseOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

StatusOr<Imported> read_signed_manifest(const std::string& path, const PublicKey& pk) {
  Imported im;
  im.manifest_path = path;
  ASSIGN_OR_RETURN(im.manifest_text, read_file(path));
  ASSIGN_OR_RETURN(json j, parse_json(im.manifest_text, path));
  RETURN_IF_ERROR(verify_document(j, pk, path));
  ASSIGN_OR_RETURN(im.manifest, Manifest::from_json(j, path));
  im.version = im.manifest.version;
  return im;
}

// --previous X: a release directory, a version folder or a manifest file.
StatusOr<std::vector<Imported>> resolve_previous(const std::string& p, const PublicKey& pk) {
  std::vector<Imported> out;
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(fs::path(p) / kIndexFile)) {
      ASSIGN_OR_RETURN(ReleaseIndex idx, load_release_index(p, pk));
      for (const auto& e : idx.versions) {
        ASSIGN_OR_RETURN(Imported im,
                         read_signed_manifest((fs::path(p) / e.manifest).string(), pk));
        out.push_back(std::move(im));
      }
      return out;
    }
    if (fs::exists(fs::path(p) / kManifestFile)) {
      ASSIGN_OR_RETURN(Imported im,
                       read_signed_manifest((fs::path(p) / kManifestFile).string(), pk));
      out.push_back(std::move(im));
      return out;
    }
    return Status::not_found(fmt::format("--previous '{}': folder holds neither {} nor {}", p,
                                         kIndexFile, kManifestFile));
  }
  if (!fs::exists(p, ec)) return Status::not_found(fmt::format("--previous '{}': not found", p));
  ASSIGN_OR_RETURN(Imported im, read_signed_manifest(p, pk));
  out.push_back(std::move(im));
  return out;
}

Status check_file(const std::string& path, const FileRef& ref) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Status::not_found(fmt::format("'{}': {}", path, ec.message()));
  if (size != ref.size) {
    return Status::data_loss(
        fmt::format("'{}': size {} bytes, the manifest says {}", path, size, ref.size));
  }
  ASSIGN_OR_RETURN(Sha256 h, sha256_file(path));
  if (to_hex(h) != ref.sha256) {
    return Status::data_loss(
        fmt::format("'{}': SHA-256 {}, the manifest says {}", path, to_hex(h), ref.sha256));
  }
  return Status::ok_status();
}

// Copies an imported version folder (manifest, model, deltas) into out_dir/<version>/.
Status import_version(const Imported& im, const std::string& out_dir) {
  const fs::path src_dir = fs::path(im.manifest_path).parent_path();
  const fs::path dst_dir = fs::path(out_dir) / im.version;
  std::vector<FileRef> files = {im.manifest.file};
  for (const auto& d : im.manifest.deltas) files.push_back(d.patch);
  for (const auto& f : files) {
    const std::string src = (src_dir / f.path).string();
    const fs::path dst = dst_dir / f.path;
    RETURN_IF_ERROR(check_file(src, f).with_context("importing version " + im.version));
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    if (ec)
      return Status::io(
          fmt::format("cannot create '{}': {}", dst.parent_path().string(), ec.message()));
    RETURN_IF_ERROR(copy_file_atomic(src, dst.string()));
  }
  return write_file_atomic((dst_dir / kManifestFile).string(), im.manifest_text);
}

std::string default_model_id(const std::string& model_path) {
  std::string stem = fs::path(model_path).stem().string();
  std::string id;
  for (char c : stem) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.';
    id += ok ? c : '-';
  }
  while (!id.empty() && id.front() == '.') id.erase(id.begin());
  if (id.size() > 64) id.resize(64);
  return id.empty() ? std::string("model") : id;
}

}  // namespace

bool is_valid_model_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

StatusOr<ReleaseIndex> load_release_index(const std::string& dir, const PublicKey& pk) {
  const std::string path = (fs::path(dir) / kIndexFile).string();
  ASSIGN_OR_RETURN(std::string text, read_file(path));
  ASSIGN_OR_RETURN(json j, parse_json(text, path));
  RETURN_IF_ERROR(verify_document(j, pk, path));
  return ReleaseIndex::from_json(j, path);
}

StatusOr<ReleaseResult> create_release(const ReleaseOptions& o) {
  ASSIGN_OR_RETURN(SemVer new_version, SemVer::parse(o.version));
  ASSIGN_OR_RETURN(SecretKey sk, load_secret_key(o.key_path));
  const PublicKey pk = sk.public_key();
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return Status::io(fmt::format("cannot create '{}': {}", o.out_dir, ec.message()));

  // The directory's current index, if any (must be ours).
  ReleaseIndex index;
  const std::string index_path = (fs::path(o.out_dir) / kIndexFile).string();
  const bool have_index = fs::exists(index_path);
  if (have_index) {
    auto loaded = load_release_index(o.out_dir, pk);
    if (!loaded.ok()) {
      return loaded.status().with_context(fmt::format(
          "the release directory's index cannot be verified with the key '{}' (key id {})",
          o.key_path, pk.key_id()));
    }
    index = std::move(loaded).value();
    if (!o.model_id.empty() && o.model_id != index.model_id) {
      return Status::invalid_argument(
          fmt::format("--model-id '{}' differs from the id '{}' of the release directory '{}'",
                      o.model_id, index.model_id, o.out_dir));
    }
  } else {
    index.model_id = o.model_id.empty() ? default_model_id(o.model_path) : o.model_id;
  }
  if (!is_valid_model_id(index.model_id)) {
    return Status::invalid_argument(fmt::format(
        "model id '{}' is not valid: use 1-64 characters of A-Z a-z 0-9 . _ -", index.model_id));
  }

  // Earlier versions named by --previous that the directory lacks.
  std::vector<Imported> imports;
  for (const auto& p : o.previous) {
    ASSIGN_OR_RETURN(auto list, resolve_previous(p, pk));
    for (auto& im : list) {
      if (im.manifest.model_id != index.model_id) {
        return Status::invalid_argument(fmt::format("--previous '{}' is model '{}', not '{}'",
                                                    im.manifest_path, im.manifest.model_id,
                                                    index.model_id));
      }
      const bool known = index.find(im.version) != nullptr ||
                         std::any_of(imports.begin(), imports.end(),
                                     [&](const Imported& x) { return x.version == im.version; });
      if (!known) imports.push_back(std::move(im));
    }
  }

  // The new version must be newer than everything published.
  std::vector<std::string> all_versions;
  for (const auto& e : index.versions) all_versions.push_back(e.version);
  for (const auto& im : imports) all_versions.push_back(im.version);
  for (const auto& v : all_versions) {
    const int c = compare_versions(o.version, v);
    if (c == 0) {
      return Status::failed_precondition(fmt::format(
          "version {} is already released in '{}'; choose a new version", o.version, o.out_dir));
    }
    if (c < 0) {
      return Status::failed_precondition(fmt::format(
          "version {} is older than the released version {}; a release must be newer than every "
          "earlier one",
          o.version, v));
    }
  }

  // Describe the model (validates the GGUF) and read the quality report.
  const std::string file_name = fmt::format("{}-{}.gguf", index.model_id, o.version);
  ASSIGN_OR_RETURN(Manifest m, describe_model(o.model_path, index.model_id, o.version, file_name));
  if (!o.quality_path.empty()) {
    ASSIGN_OR_RETURN(std::string qtext, read_file(o.quality_path));
    ASSIGN_OR_RETURN(json q, parse_json(qtext, o.quality_path));
    if (!q.is_object()) {
      return Status::invalid_argument(
          fmt::format("--quality '{}': expected a JSON object", o.quality_path));
    }
    m.quality = std::move(q);
  }

  // Import, then copy the new model.
  for (const auto& im : imports) {
    log_line(o, fmt::format("importing version {} from {}", im.version, im.manifest_path));
    RETURN_IF_ERROR(import_version(im, o.out_dir));
    IndexEntry e;
    e.version = im.version;
    e.manifest = im.version + "/" + kManifestFile;
    e.manifest_sha256 = to_hex(sha256(im.manifest_text.data(), im.manifest_text.size()));
    e.file_size = im.manifest.file.size;
    index.versions.push_back(e);
  }
  std::sort(index.versions.begin(), index.versions.end(), [](const auto& a, const auto& b) {
    return compare_versions(a.version, b.version) < 0;
  });

  const fs::path vdir = fs::path(o.out_dir) / o.version;
  fs::create_directories(vdir / "deltas", ec);
  if (ec) return Status::io(fmt::format("cannot create '{}': {}", vdir.string(), ec.message()));
  const std::string model_dst = (vdir / file_name).string();
  log_line(o, fmt::format("copying {} -> {}", o.model_path, model_dst));
  RETURN_IF_ERROR(copy_file_atomic(o.model_path, model_dst));
  RETURN_IF_ERROR(check_file(model_dst, m.file).with_context("after copying the model"));

  // Deltas from earlier versions, newest first.
  int made = 0;
  for (auto it = index.versions.rbegin(); it != index.versions.rend(); ++it) {
    if (o.max_deltas > 0 && made >= o.max_deltas) break;
    const std::string mpath = (fs::path(o.out_dir) / it->manifest).string();
    auto old = read_signed_manifest(mpath, pk);
    if (!old.ok()) return old.status().with_context("reading an earlier version's manifest");
    const std::string old_file = (fs::path(mpath).parent_path() / old->manifest.file.path).string();
    const std::string rel = fmt::format("deltas/{}-{}.elmd", it->version, o.version);
    const std::string patch = (vdir / rel).string();
    const std::string tmp = patch + ".tmp";
    log_line(o, fmt::format("delta {} -> {}", it->version, o.version));
    DeltaStats stats;
    Status st = make_delta(old_file, model_dst, tmp, o.delta, &stats);
    if (!st.ok()) {
      fs::remove(tmp, ec);
      log_line(o, fmt::format("warning: no delta from {}: {}", it->version, st.to_string()));
      continue;
    }
    ASSIGN_OR_RETURN(DeltaInfo info, read_delta_info(tmp));
    if (to_hex(info.source_sha256) != old->manifest.file.sha256 ||
        to_hex(info.target_sha256) != m.file.sha256) {
      fs::remove(tmp, ec);
      return Status::internal(
          fmt::format("delta {} -> {}: the patch names source {} / target {}, expected {} / {}",
                      it->version, o.version, to_hex(info.source_sha256),
                      to_hex(info.target_sha256), old->manifest.file.sha256, m.file.sha256));
    }
    const uint64_t patch_size = fs::file_size(tmp, ec);
    if (patch_size >= m.file.size) {
      fs::remove(tmp, ec);
      log_line(o, fmt::format("no delta from {}: patch ({} bytes) is not smaller than the file",
                              it->version, patch_size));
      continue;
    }
    ASSIGN_OR_RETURN(Sha256 ph, sha256_file(tmp));
    RETURN_IF_ERROR(rename_durable(tmp, patch));
    DeltaRef d;
    d.from_version = it->version;
    d.from_sha256 = old->manifest.file.sha256;
    d.patch = {rel, patch_size, to_hex(ph)};
    m.deltas.push_back(d);
    log_line(o, fmt::format("  {} ({} of the full file)", human_bytes(patch_size),
                            fmt::format("{:.1f}%", 100.0 * static_cast<double>(patch_size) /
                                                       static_cast<double>(m.file.size))));
    ++made;
  }

  // Manifest, then the index last: until the index is replaced, clients see the old release.
  json mj = m.to_json();
  sign_document(mj, sk);
  const std::string manifest_text = mj.dump(2) + "\n";
  const std::string manifest_path = (vdir / kManifestFile).string();
  RETURN_IF_ERROR(write_file_atomic(manifest_path, manifest_text));

  IndexEntry e;
  e.version = o.version;
  e.manifest = o.version + "/" + kManifestFile;
  e.manifest_sha256 = to_hex(sha256(manifest_text.data(), manifest_text.size()));
  e.file_size = m.file.size;
  index.versions.push_back(e);
  index.latest = o.version;
  json ij = index.to_json();
  sign_document(ij, sk);
  RETURN_IF_ERROR(write_file_atomic(index_path, ij.dump(2) + "\n"));

  ReleaseResult r;
  r.manifest = std::move(m);
  r.manifest_path = manifest_path;
  r.index_path = index_path;
  for (const auto& im : imports) r.imported_versions.push_back(im.version);
  return r;
}

}  // namespace edgelm::update
