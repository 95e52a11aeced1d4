// The built `edgelm` CLI (EDGELM_CLI) end to end for releases and updates: keygen, release of
// three versions into one directory (deltas, quality report), update from a folder and from a
// file:// URL, models (text, JSON, --current-path), rollback, and a clear error with exit
// status 1 for a tampered manifest. Tiny models are built in the test.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli-util.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

namespace fs = std::filesystem;

using Cmd = testing::CliRun;
using testing::slurp;

std::string q(const std::string& s) { return testing::shell_quote(s); }

Cmd edgelm(const std::string& args) {
  return testing::run_command(std::string(EDGELM_CLI) + " " + args);
}

// A copy of `src` with the bytes of one tensor changed.
Status derive(const std::string& src, const std::string& dst, const std::string& tensor, int salt) {
  ASSIGN_OR_RETURN(auto f, GgufFile::open(src));
  GgufWriter w;
  for (const auto& [key, value] : f->metadata()) {
    if (key != "general.alignment") w.set_value(key, value);
  }
  for (const auto& t : f->tensors()) {
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    if (t.name == tensor) {
      for (size_t i = 0; i < bytes.size(); i += 4) bytes[i] ^= static_cast<uint8_t>(salt * 37 + 1);
    }
    RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, bytes));
  }
  return w.write(dst);
}

TEST(UpdateCli, KeygenReleaseUpdateModelsRollback) {
  const std::string tmp = testing::temp_path("update-cli");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const std::string key = tmp + "/rel.key", rel = tmp + "/releases", models = tmp + "/models";
  std::string m[3];
  for (int i = 0; i < 3; ++i) m[i] = tmp + "/m" + std::to_string(i) + ".gguf";
  testing::TinyModelSpec spec;
  spec.matrix_type = GgmlType::kQ8_0;
  ASSERT_TRUE(testing::write_tiny_model(spec, m[0]).ok());
  ASSERT_TRUE(derive(m[0], m[1], "blk.0.attn_k.weight", 1).ok());
  ASSERT_TRUE(derive(m[1], m[2], "blk.1.attn_v.weight", 2).ok());

  Cmd r = edgelm("keygen --out " + q(key));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(key + ".pub"));

  const char* versions[] = {"1.0.0", "1.1.0", "1.2.0"};
  std::ofstream(tmp + "/quality.json") << R"({"perplexity": 9.25})";
  for (int i = 0; i < 3; ++i) {
    std::string args = "release " + q(m[i]) + " --version " + versions[i] + " --key " + q(key) +
                       " --out " + q(rel) + " --model-id tiny --level 3 --json";
    if (i == 2) args += " --quality " + q(tmp + "/quality.json");
    r = edgelm(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["version"], versions[i]);
    EXPECT_EQ(j["deltas"].size(), static_cast<size_t>(i));
    EXPECT_TRUE(j.contains("signature"));
  }
  auto index = nlohmann::json::parse(slurp(rel + "/index.json"));
  EXPECT_EQ(index["latest"], "1.2.0");
  EXPECT_EQ(index["versions"].size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(slurp(rel + "/1.2.0/manifest.json"))["quality"]["perplexity"],
            9.25);

  // Install 1.0.0 from the folder, then the latest from a file:// URL (by delta).
  r = edgelm("update --from " + q(rel) + " --models " + q(models) + " --pubkey " + q(key + ".pub") +
             " --version 1.0.0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("-> 1.0.0"), std::string::npos) << r.out;
  r = edgelm("update --from " + q("file://" + fs::absolute(rel).string()) + " --models " +
             q(models) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto u = nlohmann::json::parse(r.out);
  EXPECT_EQ(u["to_version"], "1.2.0");
  EXPECT_EQ(u["plan"][0]["kind"], "delta");
  EXPECT_LT(u["download_bytes"].get<uint64_t>(), u["full_bytes"].get<uint64_t>() / 2);

  r = edgelm("models --models " + q(models) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out);
  EXPECT_EQ(list["current"], "1.2.0");
  EXPECT_EQ(list["previous"], "1.0.0");
  ASSERT_EQ(list["installed"].size(), 2u);
  for (const auto& e : list["installed"]) EXPECT_EQ(e["verified"], "ok");
  r = edgelm("models --models " + q(models) + " --current-path");
  ASSERT_EQ(r.exit_code, 0);
  std::string path = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(slurp(path), slurp(m[2]));
  EXPECT_EQ(slurp(models + "/current.gguf"), slurp(m[2]));

  r = edgelm("rollback --models " + q(models));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1.0.0 is current"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(models + "/current.gguf"), slurp(m[0]));

  r = edgelm("models --models " + q(models));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("* 1.0.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(previous)"), std::string::npos) << r.out;

  // A tampered manifest: a clear error, exit status 1, the installed model intact.
  std::string text = slurp(rel + "/1.1.0/manifest.json");
  text.replace(text.find("\"1.1.0\""), 7, "\"1.1.1\"");
  std::ofstream(rel + "/1.1.0/manifest.json", std::ios::trunc) << text;
  r = edgelm("update --from " + q(rel) + " --models " + q(models) + " --version 1.1.0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("edgelm: error:"), std::string::npos);
  EXPECT_NE(r.err.find("signed index"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(models + "/current.gguf"), slurp(m[0])) << "the installed model is intact";
  if (!::testing::Test::HasFailure()) fs::remove_all(tmp);
}

}  // namespace
}  // namespace edgelm
