// Release manifests and indexes: JSON encoding, validation, description of a GGUF (manifest.h).
#include "runtime/update/manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "gguf/reader.h"
#include "quant/types.h"
#include "runtime/update/hash.h"
#include "runtime/update/semver.h"

namespace edgelm::update {

using nlohmann::json;

namespace {

// Field access with errors naming the document and the field.
class Fields {
 public:
  Fields(const json& j, std::string what) : j_(j), what_(std::move(what)) {}

  Status bad(const std::string& field, const std::string& expected) const {
    return Status::data_loss(fmt::format("{}: field \"{}\": expected {}", what_, field, expected));
  }
  StatusOr<std::string> str(const json& obj, const std::string& field,
                            const std::string& prefix = "") const {
    auto it = obj.find(field);
    if (it == obj.end() || !it->is_string()) return bad(prefix + field, "a string");
    return it->get<std::string>();
  }
  StatusOr<uint64_t> u64(const json& obj, const std::string& field,
                         const std::string& prefix = "") const {
    auto it = obj.find(field);
    if (it == obj.end() || !it->is_number_unsigned()) {
      // Small non-negative values parse as unsigned; anything else is wrong.
      if (it != obj.end() && it->is_number_integer() && it->get<int64_t>() >= 0) {
        return it->get<uint64_t>();
      }
      return bad(prefix + field, "a non-negative integer");
    }
    return it->get<uint64_t>();
  }
  StatusOr<std::string> sha(const json& obj, const std::string& field,
                            const std::string& prefix = "") const {
    ASSIGN_OR_RETURN(std::string s, str(obj, field, prefix));
    const bool hex = s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) {
      return bad(prefix + field, fmt::format("64 lowercase hex digits, found '{}'", s));
    }
    return s;
  }
  StatusOr<FileRef> file(const json& obj, const std::string& prefix) const {
    FileRef f;
    ASSIGN_OR_RETURN(f.path, str(obj, "path", prefix));
    if (!is_safe_relative_path(f.path)) {
      return bad(prefix + "path", fmt::format("a relative path without '..', found '{}'", f.path));
    }
    ASSIGN_OR_RETURN(f.size, u64(obj, "size", prefix));
    ASSIGN_OR_RETURN(f.sha256, sha(obj, "sha256", prefix));
    return f;
  }
  Status format(const char* expected) const {
    if (!j_.is_object()) return Status::data_loss(fmt::format("{}: expected a JSON object", what_));
    if (j_.value("format", "") != expected) {
      return bad("format", fmt::format("\"{}\"", expected));
    }
    auto it = j_.find("format_version");
    if (it == j_.end() || !it->is_number_integer()) return bad("format_version", "an integer");
    if (it->get<int64_t>() > kManifestFormatVersion) {
      return Status::unimplemented(fmt::format(
          "{}: format_version {} is newer than this edgelm understands ({}); update edgelm", what_,
          it->get<int64_t>(), kManifestFormatVersion));
    }
    return Status::ok_status();
  }
  StatusOr<std::string> version(const json& obj, const std::string& field,
                                const std::string& prefix = "") const {
    ASSIGN_OR_RETURN(std::string v, str(obj, field, prefix));
    auto sv = SemVer::parse(v);
    if (!sv.ok()) return bad(prefix + field, "a semantic version: " + sv.status().message());
    return v;
  }

 private:
  const json& j_;
  std::string what_;
};

json file_json(const FileRef& f) {
  return {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}};
}

}  // namespace

bool is_safe_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

StatusOr<json> parse_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::data_loss(fmt::format("{}: not valid JSON ({} bytes)", what, text.size()));
  }
  return j;
}

json Manifest::to_json() const {
  json j;
  j["format"] = kManifestFormat;
  j["format_version"] = kManifestFormatVersion;
  j["model_id"] = model_id;
  j["version"] = version;
  j["created"] = created;
  j["file"] = file_json(file);
  j["model"] = {{"architecture", architecture},
                {"name", model_name},
                {"context_length", context_length},
                {"tensor_count", tensors.size()}};
  json ts = json::array();
  for (const auto& t : tensors) {
    ts.push_back({{"name", t.name},
                  {"type", t.type},
                  {"shape", t.shape},
                  {"bytes", t.bytes},
                  {"sha256", t.sha256}});
  }
  j["tensors"] = std::move(ts);
  json q = json::object();
  for (const auto& [type, s] : quantization) q[type] = {{"tensors", s.tensors}, {"bytes", s.bytes}};
  j["quantization"] = std::move(q);
  j["min_runtime_version"] = min_runtime_version;
  j["min_ram_bytes"] = ram.total();
  j["min_ram"] = {{"context", ram.context},
                  {"file_bytes", ram.file_bytes},
                  {"kv_cache_bytes", ram.kv_cache_bytes},
                  {"overhead_bytes", ram.overhead_bytes}};
  if (!quality.is_null()) j["quality"] = quality;
  json ds = json::array();
  for (const auto& d : deltas) {
    json e = file_json(d.patch);
    e["from_version"] = d.from_version;
    e["from_sha256"] = d.from_sha256;
    ds.push_back(std::move(e));
  }
  j["deltas"] = std::move(ds);
  return j;
}

StatusOr<Manifest> Manifest::from_json(const json& j, const std::string& what) {
  Fields f(j, what);
  RETURN_IF_ERROR(f.format(kManifestFormat));
  Manifest m;
  ASSIGN_OR_RETURN(m.model_id, f.str(j, "model_id"));
  if (m.model_id.empty()) return f.bad("model_id", "a non-empty string");
  ASSIGN_OR_RETURN(m.version, f.version(j, "version"));
  m.created = j.value("created", "");
  if (!j.contains("file") || !j["file"].is_object()) return f.bad("file", "an object");
  ASSIGN_OR_RETURN(m.file, f.file(j["file"], "file."));
  if (j.contains("model") && j["model"].is_object()) {
    const json& mo = j["model"];
    m.architecture = mo.value("architecture", "");
    m.model_name = mo.value("name", "");
    if (mo.contains("context_length")) {
      ASSIGN_OR_RETURN(m.context_length, f.u64(mo, "context_length", "model."));
    }
  }
  if (j.contains("tensors")) {
    if (!j["tensors"].is_array()) return f.bad("tensors", "an array");
    for (const json& t : j["tensors"]) {
      if (!t.is_object()) return f.bad("tensors[]", "objects");
      TensorRecord r;
      ASSIGN_OR_RETURN(r.name, f.str(t, "name", "tensors[]."));
      ASSIGN_OR_RETURN(r.type, f.str(t, "type", "tensors[]."));
      ASSIGN_OR_RETURN(r.bytes, f.u64(t, "bytes", "tensors[]."));
      ASSIGN_OR_RETURN(r.sha256, f.sha(t, "sha256", "tensors[]."));
      if (t.contains("shape") && t["shape"].is_array()) {
        for (const json& d : t["shape"]) {
          if (!d.is_number_integer()) return f.bad("tensors[].shape", "integers");
          r.shape.push_back(d.get<int64_t>());
        }
      }
      m.tensors.push_back(std::move(r));
    }
  }
  if (j.contains("quantization")) {
    if (!j["quantization"].is_object()) return f.bad("quantization", "an object");
    for (const auto& [type, s] : j["quantization"].items()) {
      if (!s.is_object()) return f.bad("quantization." + type, "an object");
      QuantSummary q;
      ASSIGN_OR_RETURN(q.tensors, f.u64(s, "tensors", "quantization." + type + "."));
      ASSIGN_OR_RETURN(q.bytes, f.u64(s, "bytes", "quantization." + type + "."));
      m.quantization[type] = q;
    }
  }
  ASSIGN_OR_RETURN(m.min_runtime_version, f.version(j, "min_runtime_version"));
  if (j.contains("min_ram") && j["min_ram"].is_object()) {
    const json& r = j["min_ram"];
    ASSIGN_OR_RETURN(m.ram.context, f.u64(r, "context", "min_ram."));
    ASSIGN_OR_RETURN(m.ram.file_bytes, f.u64(r, "file_bytes", "min_ram."));
    ASSIGN_OR_RETURN(m.ram.kv_cache_bytes, f.u64(r, "kv_cache_bytes", "min_ram."));
    ASSIGN_OR_RETURN(m.ram.overhead_bytes, f.u64(r, "overhead_bytes", "min_ram."));
  } else {
    ASSIGN_OR_RETURN(m.ram.file_bytes, f.u64(j, "min_ram_bytes"));
  }
  if (j.contains("quality")) m.quality = j["quality"];
  if (j.contains("deltas")) {
    if (!j["deltas"].is_array()) return f.bad("deltas", "an array");
    for (const json& d : j["deltas"]) {
      if (!d.is_object()) return f.bad("deltas[]", "objects");
      DeltaRef r;
      ASSIGN_OR_RETURN(r.from_version, f.version(d, "from_version", "deltas[]."));
      ASSIGN_OR_RETURN(r.from_sha256, f.sha(d, "from_sha256", "deltas[]."));
      ASSIGN_OR_RETURN(r.patch, f.file(d, "deltas[]."));
      m.deltas.push_back(std::move(r));
    }
  }
  return m;
}

json ReleaseIndex::to_json() const {
  json vs = json::array();
  for (const auto& e : versions) {
    vs.push_back({{"version", e.version},
                  {"manifest", e.manifest},
                  {"manifest_sha256", e.manifest_sha256},
                  {"file_size", e.file_size}});
  }
  return {{"format", kIndexFormat},
          {"format_version", kManifestFormatVersion},
          {"model_id", model_id},
          {"latest", latest},
          {"versions", std::move(vs)}};
}

StatusOr<ReleaseIndex> ReleaseIndex::from_json(const json& j, const std::string& what) {
  Fields f(j, what);
  RETURN_IF_ERROR(f.format(kIndexFormat));
  ReleaseIndex idx;
  ASSIGN_OR_RETURN(idx.model_id, f.str(j, "model_id"));
  ASSIGN_OR_RETURN(idx.latest, f.version(j, "latest"));
  if (!j.contains("versions") || !j["versions"].is_array()) return f.bad("versions", "an array");
  for (const json& v : j["versions"]) {
    if (!v.is_object()) return f.bad("versions[]", "objects");
    IndexEntry e;
    ASSIGN_OR_RETURN(e.version, f.version(v, "version", "versions[]."));
    ASSIGN_OR_RETURN(e.manifest, f.str(v, "manifest", "versions[]."));
    if (!is_safe_relative_path(e.manifest)) {
      return f.bad("versions[].manifest", "a relative path without '..'");
    }
    ASSIGN_OR_RETURN(e.manifest_sha256, f.sha(v, "manifest_sha256", "versions[]."));
    ASSIGN_OR_RETURN(e.file_size, f.u64(v, "file_size", "versions[]."));
    idx.versions.push_back(std::move(e));
  }
  std::sort(idx.versions.begin(), idx.versions.end(), [](const auto& a, const auto& b) {
    return compare_versions(a.version, b.version) < 0;
  });
  if (!idx.find(idx.latest)) {
    return f.bad("latest", fmt::format("one of the listed versions, found '{}'", idx.latest));
  }
  return idx;
}

const IndexEntry* ReleaseIndex::find(const std::string& version) const {
  for (const auto& e : versions) {
    if (compare_versions(e.version, version) == 0) return &e;
  }
  return nullptr;
}

StatusOr<Manifest> describe_model(const std::string& gguf_path, const std::string& model_id,
                                  const std::string& version, const std::string& file_path) {
  RETURN_IF_ERROR(SemVer::parse(version).status());
  ASSIGN_OR_RETURN(auto gguf, GgufFile::open(gguf_path));
  Manifest m;
  m.model_id = model_id;
  m.version = version;
  m.created = utc_now_iso8601();
  m.file.path = file_path;
  m.file.size = gguf->file_size();
  m.file.sha256 = to_hex(sha256(gguf->bytes().data(), gguf->bytes().size()));
  m.architecture = gguf->get_string("general.architecture").value_or("");
  m.model_name = gguf->get_string("general.name").value_or("");
  const std::string a = m.architecture;
  m.context_length = gguf->get_uint(a + ".context_length").value_or(0);
  for (const auto& t : gguf->tensors()) {
    TensorRecord r;
    r.name = t.name;
    r.type = type_name(t.type);
    r.shape = t.dims;
    r.bytes = t.nbytes;
    r.sha256 = to_hex(sha256(t.data, t.nbytes));
    QuantSummary& q = m.quantization[r.type];
    q.tensors += 1;
    q.bytes += t.nbytes;
    m.tensors.push_back(std::move(r));
  }
  m.min_runtime_version = runtime_version();
  // RAM rule (docs/formats/manifest.md): the mapped file, the F16 KV cache for the engine's
  // default context, and a fixed overhead for the runtime and scratch buffers.
  const uint64_t n_layer = gguf->get_uint(a + ".block_count").value_or(0);
  const uint64_t n_embd = gguf->get_uint(a + ".embedding_length").value_or(0);
  const uint64_t n_head = gguf->get_uint(a + ".attention.head_count").value_or(0);
  const uint64_t n_head_kv = gguf->get_uint(a + ".attention.head_count_kv").value_or(n_head);
  uint64_t head_dim = n_head ? n_embd / n_head : 0;
  if (auto kl = gguf->get_uint(a + ".attention.key_length")) head_dim = *kl;
  m.ram.context = m.context_length ? std::min(m.context_length, kDefaultContext) : kDefaultContext;
  m.ram.file_bytes = m.file.size;
  m.ram.kv_cache_bytes = 2 * n_layer * m.ram.context * n_head_kv * head_dim * 2;  // K+V, F16
  m.ram.overhead_bytes = kRamOverheadBytes;
  return m;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace edgelm::update
