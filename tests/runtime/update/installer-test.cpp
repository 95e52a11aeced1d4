// Installing, updating (full file and delta chains), rolling back and listing model versions
// from a release folder; every kind of bad input leaves the installed model intact
// (runtime/update/installer.h). The HTTP path is in http-update-test.cpp.
#include "runtime/update/installer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include "runtime/update/hash.h"
#include "update-test-util.h"

namespace edgelm::update {
namespace {

namespace fs = std::filesystem;
using testing::flip_byte;
using testing::ReleaseFixture;
using testing::slurp;
using testing::spit;

// One release folder for the whole suite: 1.0.0, 1.1.0 (delta from 1.0.0) and 1.2.0 (delta
// from 1.1.0 only, so 1.0.0 -> 1.2.0 is a two-delta chain).
class Installer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new ReleaseFixture("installer-suite");
    fixture_->make_versions(3);
    for (int i = 0; i < 3; ++i) {
      ReleaseOptions o = fixture_->options(i);
      o.max_deltas = 1;
      auto r = create_release(o);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
    }
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(fixture_, nullptr);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = edgelm::testing::temp_path(std::string("installer-") + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    release_ = dir_ + "/releases";
    models_ = dir_ + "/models";
    fs::copy(fixture_->release_dir, release_, fs::copy_options::recursive);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  UpdateOptions opts(const std::string& version = "") const {
    UpdateOptions o;
    o.from = release_;
    o.models_dir = models_;
    o.pubkey_path = fixture_->pub;
    o.version = version;
    o.fetch.retry_delay_ms = 1;
    return o;
  }
  std::string sha_of(const std::string& path) const { return to_hex(sha256_file(path).value()); }
  std::string model_sha(int i) const { return sha_of(fixture_->model(i)); }
  std::string current_sha() const { return sha_of(models_ + "/current.gguf"); }
  std::string state_text() const { return slurp(models_ + "/state.json"); }

  // Re-signs release_/<version>/manifest.json after `mutate`, and the index after it.
  void resign_manifest(const std::string& version,
                       const std::function<void(nlohmann::json&)>& mutate) {
    auto sk = load_secret_key(fixture_->key);
    ASSERT_TRUE(sk.ok());
    const std::string mpath = release_ + "/" + version + "/manifest.json";
    nlohmann::json m = nlohmann::json::parse(slurp(mpath));
    mutate(m);
    sign_document(m, *sk);
    const std::string text = m.dump(2);
    spit(mpath, text);
    nlohmann::json idx = nlohmann::json::parse(slurp(release_ + "/index.json"));
    for (auto& e : idx["versions"]) {
      if (e["version"] == version) e["manifest_sha256"] = to_hex(sha256(text.data(), text.size()));
    }
    sign_document(idx, *sk);
    spit(release_ + "/index.json", idx.dump(2));
  }

  // Installs `version` and checks it is current.
  void install(const std::string& version, int model_index) {
    auto r = update_model(opts(version));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(current_sha(), model_sha(model_index));
  }

  static ReleaseFixture* fixture_;
  std::string dir_, release_, models_;
};

ReleaseFixture* Installer::fixture_ = nullptr;

TEST_F(Installer, FreshInstallDownloadsTheFullFileAndPinsTheKey) {
  auto r = update_model(opts("1.0.0"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(r->from_version, "");
  EXPECT_EQ(r->to_version, "1.0.0");
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].kind, "full");
  EXPECT_EQ(r->download_bytes, fs::file_size(fixture_->model(0)));
  EXPECT_EQ(current_sha(), model_sha(0));
  EXPECT_TRUE(fs::is_symlink(models_ + "/current.gguf"));
  EXPECT_EQ(fs::read_symlink(models_ + "/current.gguf").string(), "versions/1.0.0/tiny-1.0.0.gguf");
  EXPECT_EQ(load_public_key(models_ + "/trusted.pub").value().hex(),
            load_public_key(fixture_->pub).value().hex());
  auto path = current_model_path(models_);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(sha_of(*path), model_sha(0));
  auto list = list_installed(models_, true);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].current);
  EXPECT_EQ((*list)[0].verified, "ok");
  EXPECT_FALSE(fs::exists(models_ + "/.downloads/tiny-1.0.0.gguf.part"));
  // Again: nothing to do.
  auto same = update_model(opts("1.0.0"));
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_FALSE(same->changed);
  EXPECT_TRUE(same->plan.empty());
}

TEST_F(Installer, UpdatesByDeltaAndByDeltaChain) {
  install("1.0.0", 0);
  UpdateOptions o = opts("1.1.0");
  o.pubkey_path.clear();  // the pinned key is used from now on
  auto r = update_model(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].kind, "delta");
  EXPECT_LT(r->download_bytes, r->full_bytes / 4);
  EXPECT_EQ(current_sha(), model_sha(1));

  // A second device on 1.0.0 goes straight to the latest (1.2.0) through two deltas.
  models_ = dir_ + "/models2";
  install("1.0.0", 0);
  auto chain = update_model(opts());
  ASSERT_TRUE(chain.ok()) << chain.status().to_string();
  EXPECT_EQ(chain->to_version, "1.2.0");
  ASSERT_EQ(chain->plan.size(), 2u);
  EXPECT_EQ(chain->plan[0].kind, "delta");
  EXPECT_EQ(chain->plan[0].to_version, "1.1.0");
  EXPECT_EQ(chain->plan[1].from_version, "1.1.0");
  EXPECT_LT(chain->download_bytes, chain->full_bytes / 2);
  EXPECT_EQ(current_sha(), model_sha(2));
  EXPECT_TRUE(fs::is_empty(models_ + "/.downloads")) << "intermediate files are cleaned up";

  // --full ignores the deltas.
  models_ = dir_ + "/models3";
  install("1.0.0", 0);
  o = opts("1.1.0");
  o.full = true;
  auto full = update_model(o);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->plan[0].kind, "full");
  EXPECT_EQ(current_sha(), model_sha(1));
}

TEST_F(Installer, RollbackDowngradeAndPruning) {
  install("1.0.0", 0);
  install("1.1.0", 1);
  auto back = rollback_model(models_);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, "1.0.0");
  EXPECT_EQ(current_sha(), model_sha(0));
  back = rollback_model(models_);  // and forward again
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "1.1.0");
  EXPECT_EQ(current_sha(), model_sha(1));

  // Downgrades need --allow-downgrade; the kept previous version is switched to locally.
  const std::string before = state_text();
  auto down = update_model(opts("1.0.0"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(down.status().message().find("--allow-downgrade"), std::string::npos);
  EXPECT_EQ(state_text(), before);
  UpdateOptions o = opts("1.0.0");
  o.allow_downgrade = true;
  auto allowed = update_model(o);
  ASSERT_TRUE(allowed.ok()) << allowed.status().to_string();
  ASSERT_EQ(allowed->plan.size(), 1u);
  EXPECT_EQ(allowed->plan[0].kind, "local");
  EXPECT_EQ(allowed->download_bytes, 0u) << "no model bytes downloaded";
  EXPECT_EQ(current_sha(), model_sha(0));

  // Three versions with keep=2: the one that is neither current nor previous goes.
  install("1.1.0", 1);
  install("1.2.0", 2);
  auto list = list_installed(models_, true);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].info.version, "1.1.0");
  EXPECT_TRUE((*list)[0].previous);
  EXPECT_TRUE((*list)[1].current);
  EXPECT_FALSE(fs::exists(models_ + "/versions/1.0.0/tiny-1.0.0.gguf"));

  // Rollback refuses when the previous file was damaged.
  flip_byte(models_ + "/versions/1.1.0/tiny-1.1.0.gguf", 100);
  auto bad = rollback_model(models_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SHA-256"), std::string::npos);
  EXPECT_EQ(current_sha(), model_sha(2));
  list = list_installed(models_, true);
  EXPECT_EQ((*list)[0].verified, "mismatch");
}

TEST_F(Installer, NothingInstalledCannotRollBack) {
  fs::create_directories(models_);
  auto r = rollback_model(models_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no installed model"), std::string::npos);
  install("1.0.0", 0);
  r = rollback_model(models_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no previous version"), std::string::npos);
}

TEST_F(Installer, TamperedIndexIsRefused) {
  install("1.0.0", 0);
  const std::string before = state_text();
  nlohmann::json idx = nlohmann::json::parse(slurp(release_ + "/index.json"));
  idx["latest"] = "1.1.0";  // an attacker hides 1.2.0
  spit(release_ + "/index.json", idx.dump(2));
  auto r = update_model(opts());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("bad signature"), std::string::npos);
  EXPECT_NE(r.status().message().find("index.json"), std::string::npos);
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(current_sha(), model_sha(0));
}

TEST_F(Installer, TamperedManifestIsRefused) {
  install("1.0.0", 0);
  const std::string before = state_text();
  const std::string mpath = release_ + "/1.1.0/manifest.json";
  std::string text = slurp(mpath);
  text.insert(text.rfind('}'), ", \"extra\": 1");
  spit(mpath, text);
  auto r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("listed in the signed index"), std::string::npos);
  // Even with the index hash fixed up, the manifest's own signature fails.
  nlohmann::json idx = nlohmann::json::parse(slurp(release_ + "/index.json"));
  auto sk = load_secret_key(fixture_->key);
  for (auto& e : idx["versions"]) {
    if (e["version"] == "1.1.0") e["manifest_sha256"] = to_hex(sha256(text.data(), text.size()));
  }
  sign_document(idx, *sk);
  spit(release_ + "/index.json", idx.dump());
  r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad signature"), std::string::npos);
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(current_sha(), model_sha(0));
}

TEST_F(Installer, TamperedPatchIsRefused) {
  install("1.0.0", 0);
  const std::string before = state_text();
  flip_byte(release_ + "/1.1.0/deltas/1.0.0-1.1.0.elmd", -10);
  auto r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("SHA-256"), std::string::npos);
  EXPECT_NE(r.status().message().find("1.0.0-1.1.0.elmd"), std::string::npos);
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(current_sha(), model_sha(0));
  EXPECT_FALSE(fs::exists(models_ + "/versions/1.1.0/tiny-1.1.0.gguf"));
}

TEST_F(Installer, TamperedDownloadIsRefused) {
  flip_byte(release_ + "/1.0.0/tiny-1.0.0.gguf", 5000);
  auto r = update_model(opts("1.0.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("does not match the manifest"), std::string::npos);
  EXPECT_FALSE(fs::exists(models_ + "/state.json"));
  EXPECT_FALSE(fs::exists(models_ + "/current.gguf"));
}

TEST_F(Installer, SignedManifestWithAWrongHashStillFailsVerification) {
  // Even a correctly signed manifest cannot make a different file install: the bytes must
  // match the hash it names.
  install("1.0.0", 0);
  resign_manifest("1.1.0", [](nlohmann::json& m) {
    m["deltas"] = nlohmann::json::array();  // force the full file
    m["file"]["sha256"] = std::string(64, '0');
  });
  auto r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not match the manifest"), std::string::npos);
  EXPECT_EQ(current_sha(), model_sha(0));
}

TEST_F(Installer, WrongSourceModelGivesAClearErrorAndFullRecovers) {
  install("1.0.0", 0);
  const std::string before = state_text();
  const std::string installed = models_ + "/versions/1.0.0/tiny-1.0.0.gguf";
  flip_byte(installed, 4000);  // the local file is no longer the 1.0.0 the patch expects
  const std::string damaged = sha_of(installed);
  auto r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("applying the delta 1.0.0 -> 1.1.0"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("--full"), std::string::npos);
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(sha_of(installed), damaged) << "the installed file is left as it was";
  EXPECT_FALSE(fs::exists(models_ + "/versions/1.1.0/tiny-1.1.0.gguf"));
  UpdateOptions o = opts("1.1.0");
  o.full = true;
  auto full = update_model(o);
  ASSERT_TRUE(full.ok()) << full.status().to_string();
  EXPECT_EQ(current_sha(), model_sha(1));
}

// Write failures (a full disk) through RLIMIT_FSIZE: writes past the limit fail with EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST_F(Installer, FullDiskDuringDeltaApplyLeavesTheModelIntact) {
  install("1.0.0", 0);
  const std::string before = state_text();
  Status st;
  {
    FileSizeLimit limit(200 * 1024);  // the patch fits, the new model does not
    auto r = update_model(opts("1.1.0"));
    st = r.status();
  }
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("applying the delta"), std::string::npos) << st.message();
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(current_sha(), model_sha(0));
  EXPECT_FALSE(fs::exists(models_ + "/versions/1.1.0/tiny-1.1.0.gguf"));
  // With space again, the update goes through.
  install("1.1.0", 1);
}

TEST_F(Installer, FullDiskDuringDownloadLeavesTheModelIntact) {
  install("1.0.0", 0);
  const std::string before = state_text();
  UpdateOptions o = opts("1.1.0");
  o.full = true;
  Status st;
  {
    FileSizeLimit limit(100 * 1024);
    st = update_model(o).status();
  }
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.to_string();
  EXPECT_NE(st.message().find("cannot write"), std::string::npos) << st.message();
  EXPECT_EQ(state_text(), before);
  EXPECT_EQ(current_sha(), model_sha(0));
}

TEST_F(Installer, KeysArePinned) {
  // No key given and none pinned.
  UpdateOptions o = opts();
  o.pubkey_path.clear();
  auto r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--pubkey"), std::string::npos);
  // A different key: the index does not verify, and that key is not pinned.
  ASSERT_TRUE(generate_key_files(dir_ + "/other.key").ok());
  o.pubkey_path = dir_ + "/other.key.pub";
  r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("signed with key"), std::string::npos);
  EXPECT_FALSE(fs::exists(models_ + "/trusted.pub"));
  // Pinned key, then a different --pubkey: refused.
  install("1.0.0", 0);
  r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("differs from the key pinned"), std::string::npos);
}

TEST_F(Installer, RefusesAnotherModelAndTooNewRuntimeAndUnknownVersions) {
  install("1.0.0", 0);
  auto r = update_model(opts("9.9.9"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not in the release"), std::string::npos);
  EXPECT_NE(r.status().message().find("1.2.0"), std::string::npos);  // lists what exists
  resign_manifest("1.1.0", [](nlohmann::json& m) { m["min_runtime_version"] = "99.0.0"; });
  r = update_model(opts("1.1.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("needs edgelm 99.0.0"), std::string::npos);
  // A release of another model id.
  ModelsState s = load_models_state(models_).value();
  s.model_id = "other";
  ASSERT_TRUE(save_models_state(models_, s).ok());
  r = update_model(opts());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("one models folder per model"), std::string::npos);
}

TEST_F(Installer, SourceErrorsNameThePath) {
  UpdateOptions o = opts();
  o.from = dir_ + "/nowhere";
  auto r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nowhere"), std::string::npos);
  o.from = "ftp://example.com/x";
  r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unsupported URL scheme"), std::string::npos);
  o.from = "file://" + fs::absolute(release_).string();
  r = update_model(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(current_sha(), model_sha(2));
}

}  // namespace
}  // namespace edgelm::update
