// `edgelm keygen --out KEY [--force]`: an Ed25519 key pair for signing releases: KEY (secret,
// mode 0600) and KEY.pub, one line of hex each after a '#' comment (docs/releases.md).
//
// `edgelm release MODEL --version V --key KEY --out DIR [--model-id ID] [--previous P]...
//  [--quality REPORT.json] [--max-deltas N] [--level L] [--threads T] [--json]`: adds version V
// of MODEL to the static release directory DIR (DIR/index.json, DIR/<V>/manifest.json,
// DIR/<V>/<id>-<V>.gguf, DIR/<V>/deltas/<from>-<V>.elmd), with deltas from the earlier
// versions already in DIR or named by --previous, all signed with KEY.
// Exit status: 0 ok, 1 error (message on stderr), 2 usage error.
#include "runtime/update/release.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "runtime/update/file-util.h"
#include "runtime/update/signing.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

int run_keygen(const std::string& out, bool force) {
  Status st = update::generate_key_files(out, force);
  if (!st.ok()) return report_error(st);
  auto pk = update::load_public_key(out + ".pub");
  if (!pk.ok()) return report_error(pk.status());
  fmt::print("wrote {} (secret key, mode 0600: keep it private)\n", out);
  fmt::print("wrote {}.pub (public key, key id {}: give it to devices as --pubkey)\n", out,
             pk->key_id());
  return 0;
}

int run_release(update::ReleaseOptions o, bool json) {
  if (!json) o.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  auto r = update::create_release(o);
  if (!r.ok()) return report_error(r.status());
  const update::Manifest& m = r->manifest;
  if (json) {
    // The signed manifest as written, plus where it went.
    auto text = update::read_file(r->manifest_path);
    if (!text.ok()) return report_error(text.status());
    auto parsed = update::parse_json(*text, r->manifest_path);
    if (!parsed.ok()) return report_error(parsed.status());
    nlohmann::json j = std::move(parsed).value();
    j["manifest_path"] = r->manifest_path;
    j["index_path"] = r->index_path;
    j["imported_versions"] = r->imported_versions;
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("released {} {} in {}\n", m.model_id, m.version, o.out_dir);
  fmt::print("  file      {}/{} ({}, sha256 {})\n", m.version, m.file.path,
             update::human_bytes(m.file.size), m.file.sha256);
  fmt::print("  min RAM   {} (file + KV cache for {} tokens + overhead)\n",
             update::human_bytes(m.ram.total()), m.ram.context);
  fmt::print("  runtime   edgelm >= {}\n", m.min_runtime_version);
  for (const auto& d : m.deltas) {
    fmt::print("  delta     from {}: {}/{} ({}, {:.1f}% of the file)\n", d.from_version, m.version,
               d.patch.path, update::human_bytes(d.patch.size),
               100.0 * static_cast<double>(d.patch.size) / static_cast<double>(m.file.size));
  }
  if (!m.quality.is_null()) fmt::print("  quality   {}\n", m.quality.dump());
  fmt::print("  manifest  {}\n  index     {}\n", r->manifest_path, r->index_path);
  return 0;
}

}  // namespace

void register_keygen(CLI::App& app) {
  auto* sub = app.add_subcommand("keygen", "Create an Ed25519 key pair for signing releases");
  auto out = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  sub->add_option("--out", *out, "Secret key file to write (the public key goes to OUT.pub)")
      ->required();
  sub->add_flag("--force", *force, "Overwrite existing key files");
  sub->callback([=] { exit_with(run_keygen(*out, *force)); });
}

void register_release(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "release", "Add a model version to a signed, static release directory (with deltas)");
  auto o = std::make_shared<update::ReleaseOptions>();
  auto json = std::make_shared<bool>(false);
  o->delta.zstd_level = 19;
  sub->add_option("model", o->model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
  sub->add_option("--version", o->version, "Semantic version of this release (e.g. 1.2.0)")
      ->required();
  sub->add_option("--key", o->key_path, "Secret key from `edgelm keygen`")->required();
  sub->add_option("--out", o->out_dir, "Release directory (created; may hold earlier versions)")
      ->required();
  sub->add_option("--model-id", o->model_id,
                  "Model id (default: the directory's id, else the file name's stem)");
  sub->add_option("--previous", o->previous,
                  "Earlier version to include and diff against: a release directory, a version "
                  "folder or a manifest.json (repeatable)");
  sub->add_option("--quality", o->quality_path,
                  "Quality report (JSON object, e.g. from `edgelm eval`) embedded as \"quality\"");
  sub->add_option("--max-deltas", o->max_deltas,
                  "Deltas from the N most recent earlier versions; 0 = all")
      ->capture_default_str();
  sub->add_option("--level", o->delta.zstd_level, "zstd level of the deltas")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->delta.threads, "Threads for delta compression; 0 = all")
      ->capture_default_str();
  sub->add_flag("--json", *json, "Print the new manifest as one JSON line");
  sub->callback([=] { exit_with(run_release(*o, *json)); });
}

}  // namespace edgelm::cli
