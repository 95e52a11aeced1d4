// Release directories: index, per-version folders, deltas from every earlier version, signed
// manifests, imports with --previous, refusals (runtime/update/release.h).
#include "runtime/update/release.h"

#include <gtest/gtest.h>

#include "runtime/update/delta.h"
#include "runtime/update/hash.h"
#include "update-test-util.h"

namespace edgelm::update {
namespace {

namespace fs = std::filesystem;
using testing::ReleaseFixture;
using testing::slurp;

StatusOr<Manifest> read_manifest(const std::string& path, const PublicKey& pk) {
  ASSIGN_OR_RETURN(nlohmann::json j, parse_json(slurp(path), path));
  RETURN_IF_ERROR(verify_document(j, pk, path));
  return Manifest::from_json(j, path);
}

TEST(Release, ThreeVersionsWithDeltasFromEveryEarlierOne) {
  ReleaseFixture f("release-three");
  f.make_versions(3);
  auto pk = load_public_key(f.pub);
  ASSERT_TRUE(pk.ok());
  for (int i = 0; i < 3; ++i) {
    auto r = f.release(i);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->manifest.deltas.size(), static_cast<size_t>(i));
  }
  auto idx = load_release_index(f.release_dir, *pk);
  ASSERT_TRUE(idx.ok()) << idx.status().to_string();
  EXPECT_EQ(idx->model_id, "tiny");
  EXPECT_EQ(idx->latest, "1.2.0");
  ASSERT_EQ(idx->versions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& e = idx->versions[i];
    const std::string mpath = f.release_dir + "/" + e.manifest;
    EXPECT_EQ(e.manifest_sha256, to_hex(sha256_file(mpath).value()));
    auto m = read_manifest(mpath, *pk);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const std::string model = f.release_dir + "/" + ReleaseFixture::version(i) + "/" + m->file.path;
    EXPECT_EQ(m->file.path, "tiny-" + ReleaseFixture::version(i) + ".gguf");
    EXPECT_EQ(m->file.sha256, to_hex(sha256_file(f.model(i)).value()));
    EXPECT_EQ(slurp(model), slurp(f.model(i)));
    for (const auto& d : m->deltas) {
      const std::string patch = f.release_dir + "/" + m->version + "/" + d.patch.path;
      EXPECT_EQ(d.patch.path, "deltas/" + d.from_version + "-" + m->version + ".elmd");
      EXPECT_EQ(d.patch.size, fs::file_size(patch));
      EXPECT_EQ(d.patch.sha256, to_hex(sha256_file(patch).value()));
      EXPECT_LT(d.patch.size, m->file.size / 4) << "a one-tensor change gives a small patch";
      // The patch really turns the old version into this one.
      const std::string out = f.root + "/applied.gguf";
      Status st = apply_delta(f.model(std::stoi(d.from_version.substr(2))), patch, out);
      ASSERT_TRUE(st.ok()) << st.to_string();
      EXPECT_EQ(to_hex(sha256_file(out).value()), m->file.sha256);
      fs::remove(out);
    }
  }
}

TEST(Release, EmbedsQualityReportAndLimitsDeltas) {
  ReleaseFixture f("release-quality");
  f.make_versions(3);
  ASSERT_TRUE(f.release(0).ok());
  ASSERT_TRUE(f.release(1).ok());
  testing::spit(f.root + "/q.json", R"({"perplexity": 12.5, "tasks": {"hellaswag": 0.31}})");
  ReleaseOptions o = f.options(2);
  o.quality_path = f.root + "/q.json";
  o.max_deltas = 1;
  auto r = create_release(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->manifest.deltas.size(), 1u);
  EXPECT_EQ(r->manifest.deltas[0].from_version, "1.1.0");
  auto pk = load_public_key(f.pub);
  auto m = read_manifest(r->manifest_path, *pk);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->quality["perplexity"], 12.5);
  EXPECT_EQ(m->quality["tasks"]["hellaswag"], 0.31);
}

TEST(Release, RefusesDuplicateOlderAndBadInputs) {
  ReleaseFixture f("release-refuse");
  f.make_versions(2);
  ASSERT_TRUE(f.release(1).ok());  // 1.1.0 first
  const std::string index_before = slurp(f.release_dir + "/index.json");
  auto again = f.release(1);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already released"), std::string::npos);
  auto older = f.release(0);
  ASSERT_FALSE(older.ok());
  EXPECT_NE(older.status().message().find("older than the released version 1.1.0"),
            std::string::npos);
  ReleaseOptions o = f.options(1);
  o.version = "1.2.0";
  o.quality_path = f.root + "/missing.json";
  EXPECT_FALSE(create_release(o).ok());
  testing::spit(f.root + "/q.json", "[1, 2]");
  o.quality_path = f.root + "/q.json";
  auto q = create_release(o);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("JSON object"), std::string::npos);
  o = f.options(1);
  o.version = "1.2.0";
  o.model_id = "other";
  auto id = create_release(o);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("differs from the id 'tiny'"), std::string::npos);
  // Another key cannot extend this directory.
  ASSERT_TRUE(generate_key_files(f.root + "/other.key").ok());
  o = f.options(1);
  o.version = "1.2.0";
  o.key_path = f.root + "/other.key";
  auto k = create_release(o);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("cannot be verified"), std::string::npos);
  // A file that is not a GGUF.
  testing::spit(f.root + "/bad.gguf", "nope");
  o = f.options(1);
  o.version = "1.2.0";
  o.model_path = f.root + "/bad.gguf";
  EXPECT_FALSE(create_release(o).ok());
  EXPECT_EQ(slurp(f.release_dir + "/index.json"), index_before) << "failed releases leave it";
}

TEST(Release, ImportsPreviousVersionsFromAnotherDirectory) {
  ReleaseFixture f("release-import");
  f.make_versions(3);
  ASSERT_TRUE(f.release(0).ok());
  ASSERT_TRUE(f.release(1).ok());
  ReleaseOptions o = f.options(2);
  o.out_dir = f.root + "/fresh";
  o.previous = {f.release_dir};
  auto r = create_release(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->imported_versions, (std::vector<std::string>{"1.0.0", "1.1.0"}));
  EXPECT_EQ(r->manifest.deltas.size(), 2u);
  auto pk = load_public_key(f.pub);
  auto idx = load_release_index(o.out_dir, *pk);
  ASSERT_TRUE(idx.ok()) << idx.status().to_string();
  EXPECT_EQ(idx->versions.size(), 3u);
  // The imported 1.1.0 folder is complete (model and its delta from 1.0.0).
  EXPECT_TRUE(fs::exists(o.out_dir + "/1.1.0/tiny-1.1.0.gguf"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/1.1.0/deltas/1.0.0-1.1.0.elmd"));
  EXPECT_EQ(slurp(o.out_dir + "/1.1.0/manifest.json"),
            slurp(f.release_dir + "/1.1.0/manifest.json"));
}

}  // namespace
}  // namespace edgelm::update
