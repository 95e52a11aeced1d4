// Release manifests and indexes: description of a GGUF, JSON round trip, validation
// (runtime/update/manifest.h).
#include "runtime/update/manifest.h"

#include <gtest/gtest.h>

#include "runtime/update/hash.h"
#include "runtime/update/semver.h"
#include "update-test-util.h"

namespace edgelm::update {
namespace {

using testing::ReleaseFixture;

TEST(Manifest, DescribesAModel) {
  ReleaseFixture f("manifest-describe");
  f.make_versions(1);
  auto m = describe_model(f.model(0), "tiny", "1.0.0", "tiny-1.0.0.gguf");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto gguf = GgufFile::open(f.model(0));
  ASSERT_TRUE(gguf.ok());
  EXPECT_EQ(m->file.size, std::filesystem::file_size(f.model(0)));
  EXPECT_EQ(m->file.sha256, to_hex(sha256_file(f.model(0)).value()));
  EXPECT_EQ(m->architecture, "llama");
  EXPECT_EQ(m->context_length, 64u);
  ASSERT_EQ(m->tensors.size(), (*gguf)->tensors().size());
  uint64_t q8_count = 0, q8_bytes = 0, f32_count = 0;
  for (size_t i = 0; i < m->tensors.size(); ++i) {
    const auto& t = (*gguf)->tensors()[i];
    EXPECT_EQ(m->tensors[i].name, t.name);
    EXPECT_EQ(m->tensors[i].bytes, t.nbytes);
    EXPECT_EQ(m->tensors[i].sha256, to_hex(sha256(t.data, t.nbytes)));
    if (t.type == GgmlType::kQ8_0) ++q8_count, q8_bytes += t.nbytes;
    if (t.type == GgmlType::kF32) ++f32_count;
  }
  ASSERT_EQ(m->quantization.count("q8_0"), 1u);
  EXPECT_EQ(m->quantization.at("q8_0").tensors, q8_count);
  EXPECT_EQ(m->quantization.at("q8_0").bytes, q8_bytes);
  EXPECT_EQ(m->quantization.at("f32").tensors, f32_count);
  EXPECT_EQ(m->min_runtime_version, runtime_version());
  // RAM rule: file + F16 K and V for min(context, 4096) tokens + 64 MiB.
  // Tiny model: 2 layers, 2 KV heads of 64 dims, context 64.
  EXPECT_EQ(m->ram.context, 64u);
  EXPECT_EQ(m->ram.kv_cache_bytes, 2u * 2 * 64 * 2 * 64 * 2);
  EXPECT_EQ(m->ram.total(), m->file.size + m->ram.kv_cache_bytes + (64u << 20));
}

TEST(Manifest, JsonRoundTripAndValidation) {
  ReleaseFixture f("manifest-json");
  f.make_versions(1);
  auto m = describe_model(f.model(0), "tiny", "1.0.0", "tiny-1.0.0.gguf");
  ASSERT_TRUE(m.ok());
  m->quality = {{"perplexity", 7.5}};
  m->deltas.push_back(
      {"0.9.0", std::string(64, 'a'), {"deltas/0.9.0-1.0.0.elmd", 10, std::string(64, 'b')}});
  nlohmann::json j = m->to_json();
  EXPECT_EQ(j["format"], "edgelm-release-manifest");
  EXPECT_EQ(j["min_ram_bytes"], m->ram.total());
  auto back = Manifest::from_json(nlohmann::json::parse(j.dump()), "m.json");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->to_json(), j);

  auto expect_bad = [&](nlohmann::json bad, const std::string& needle) {
    auto r = Manifest::from_json(bad, "m.json");
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("m.json"), std::string::npos);
  };
  nlohmann::json b = j;
  b["version"] = "1.0";
  expect_bad(b, "\"version\"");
  b = j;
  b["file"]["sha256"] = "xyz";
  expect_bad(b, "file.sha256");
  b = j;
  b["file"]["path"] = "../../etc/passwd";
  expect_bad(b, "file.path");
  b = j;
  b["deltas"][0]["path"] = "/abs.elmd";
  expect_bad(b, "deltas[].path");
  b = j;
  b["format"] = "something-else";
  expect_bad(b, "\"format\"");
  b = j;
  b["format_version"] = 99;
  expect_bad(b, "format_version 99");
  b = j;
  b.erase("model_id");
  expect_bad(b, "model_id");
}

TEST(Manifest, SafeRelativePaths) {
  EXPECT_TRUE(is_safe_relative_path("a.gguf"));
  EXPECT_TRUE(is_safe_relative_path("deltas/1.0.0-1.1.0.elmd"));
  for (const char* bad : {"", "/a", "../a", "a/../b", "a//b", "./a", "a\\b", "a/"}) {
    EXPECT_FALSE(is_safe_relative_path(bad)) << bad;
  }
}

TEST(Manifest, IndexRoundTripAndLatestMustBeListed) {
  ReleaseIndex idx;
  idx.model_id = "tiny";
  idx.latest = "1.1.0";
  idx.versions = {{"1.1.0", "1.1.0/manifest.json", std::string(64, 'c'), 5},
                  {"1.0.0", "1.0.0/manifest.json", std::string(64, 'd'), 4}};
  auto back = ReleaseIndex::from_json(idx.to_json(), "index.json");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->versions.size(), 2u);
  EXPECT_EQ(back->versions[0].version, "1.0.0");  // sorted ascending
  ASSERT_NE(back->find("1.1.0"), nullptr);
  nlohmann::json bad = idx.to_json();
  bad["latest"] = "2.0.0";
  auto r = ReleaseIndex::from_json(bad, "index.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("latest"), std::string::npos);
}

TEST(Manifest, DescribeRejectsANonGguf) {
  ReleaseFixture f("manifest-bad");
  testing::spit(f.root + "/x.gguf", "not a gguf at all");
  auto m = describe_model(f.root + "/x.gguf", "tiny", "1.0.0", "x.gguf");
  EXPECT_FALSE(m.ok());
  EXPECT_FALSE(describe_model(f.root + "/x.gguf", "tiny", "one", "x.gguf").ok());
}

}  // namespace
}  // namespace edgelm::update
