// Helpers for the release/update tests: tiny GGUF model versions that differ in a few tensors
// (so deltas are small), a release key, a release directory with several versions, and small
// file utilities.
//
//   ReleaseFixture f("name");         // temp folder, key pair
//   f.make_versions(3);               // f.model(0..2): v1.0.0, v1.1.0, v1.2.0 model files
//   ASSERT_TRUE(f.release(0).ok());   // into f.release_dir
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model_builder.h"
#include "runtime/update/release.h"
#include "runtime/update/signing.h"
#include "test_util.h"

namespace edgelm::update::testing {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Flips one byte of a file at `offset` (from the end when negative).
inline void flip_byte(const std::string& path, int64_t offset) {
  std::string s = slurp(path);
  ASSERT_FALSE(s.empty()) << path;
  const size_t at = offset >= 0 ? static_cast<size_t>(offset) : s.size() + offset;
  s[at] = static_cast<char>(s[at] ^ 0x5a);
  spit(path, s);
}

// Copies `src` to `dst` changing the bytes of the tensors whose names contain `changed`
// (a deterministic perturbation per `salt`) and setting general.version = `version`.
inline Status derive_model(const std::string& src, const std::string& dst,
                           const std::vector<std::string>& changed, int salt,
                           const std::string& version) {
  ASSIGN_OR_RETURN(auto f, GgufFile::open(src));
  GgufWriter w;
  for (const auto& [key, value] : f->metadata()) {
    if (key == "general.alignment" || key == "general.version") continue;
    w.set_value(key, value);
  }
  w.set_string("general.version", version);
  for (const auto& t : f->tensors()) {
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    for (const auto& c : changed) {
      if (t.name.find(c) == std::string::npos) continue;
      // Keep F32 values finite: perturb the low mantissa byte of each element.
      for (size_t i = 0; i < bytes.size(); i += 4) bytes[i] ^= static_cast<uint8_t>(salt * 37 + 1);
    }
    RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, bytes));
  }
  return w.write(dst);
}

class ReleaseFixture {
 public:
  explicit ReleaseFixture(const std::string& name) {
    root = edgelm::testing::temp_path("update-" + name);
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    key = root + "/release.key";
    pub = key + ".pub";
    release_dir = root + "/releases";
    models_dir = root + "/models";
    EXPECT_TRUE(generate_key_files(key).ok());
  }
  ~ReleaseFixture() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(root);
  }

  static std::string version(int i) { return "1." + std::to_string(i) + ".0"; }
  std::string model(int i) const { return root + "/model-v" + std::to_string(i) + ".gguf"; }

  // n model versions: v0 random (Q8_0 matrices), each next one changes one layer's attention.
  void make_versions(int n) {
    edgelm::testing::TinyModelSpec spec;
    spec.matrix_type = GgmlType::kQ8_0;
    spec.seed = 7;
    ASSERT_TRUE(edgelm::testing::write_tiny_model(spec, model(0)).ok());
    for (int i = 1; i < n; ++i) {
      const std::string which = i % 2 ? "blk.0.attn_k" : "blk.1.attn_v";
      Status st = derive_model(model(i - 1), model(i), {which}, i, version(i));
      ASSERT_TRUE(st.ok()) << st.to_string();
    }
  }

  ReleaseOptions options(int i) const {
    ReleaseOptions o;
    o.model_path = model(i);
    o.version = version(i);
    o.key_path = key;
    o.out_dir = release_dir;
    o.model_id = "tiny";
    o.delta.zstd_level = 3;
    o.delta.threads = 1;
    return o;
  }

  StatusOr<ReleaseResult> release(int i) const { return create_release(options(i)); }

  std::string root, key, pub, release_dir, models_dir;
};

}  // namespace edgelm::update::testing
