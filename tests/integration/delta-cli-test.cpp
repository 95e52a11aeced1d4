// `edgelm delta make|apply|info` as a user runs it (the built CLI, path in EDGELM_CLI): a round
// trip byte-identical to the new model, help text, clear errors with exit status 1 for a wrong
// source and a tampered patch, and SIGKILL of a real `edgelm delta apply` process at many
// moments: the old model stays byte-identical, the output is absent or complete, a rerun works.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli-util.h"
#include "runtime/update/delta-test-util.h"
#include "test_util.h"

namespace edgelm {
namespace {

using update::testing::read_bytes;
using update::testing::Variant;

using Cmd = edgelm::testing::CliRun;
using edgelm::testing::slurp;

// Runs EDGELM_CLI with `args`, each quoted for the shell, capturing stdout and stderr.
Cmd run_edgelm(const std::vector<std::string>& args) {
  std::string cmd = EDGELM_CLI;
  for (const auto& a : args) cmd += " " + edgelm::testing::shell_quote(a);
  return edgelm::testing::run_command(cmd);
}

struct Files {
  std::string old_path = edgelm::testing::temp_path("dcli-old.gguf");
  std::string new_path = edgelm::testing::temp_path("dcli-new.gguf");
  std::string patch = edgelm::testing::temp_path("dcli.elmd");
  std::string out = edgelm::testing::temp_path("dcli-out.gguf");
  ~Files() {
    for (const auto& p : {old_path, new_path, patch, out, out + ".elmd-partial"}) {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  }
};

TEST(DeltaCli, MakeApplyInfoRoundTrip) {
  Files f;
  ASSERT_TRUE(update::testing::write_base(f.old_path).ok());
  ASSERT_TRUE(update::testing::write_variant(Variant::kVocab, f.old_path, f.new_path).ok());
  Cmd mk = run_edgelm({"delta", "make", f.old_path, f.new_path, "-o", f.patch, "-l", "5"});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  EXPECT_NE(mk.out.find("2 changed"), std::string::npos) << mk.out;
  EXPECT_NE(mk.err.find("compressing"), std::string::npos) << mk.err;  // progress on stderr
  Cmd ap = run_edgelm({"delta", "apply", f.old_path, f.patch, "-o", f.out});
  ASSERT_EQ(ap.exit_code, 0) << ap.err;
  EXPECT_NE(ap.err.find("applying 100%"), std::string::npos) << ap.err;
  EXPECT_EQ(read_bytes(f.out), read_bytes(f.new_path));
  Cmd in = run_edgelm({"delta", "info", f.patch, "--json"});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  auto j = nlohmann::json::parse(in.out);
  EXPECT_EQ(j["source_size"].get<uint64_t>(), std::filesystem::file_size(f.old_path));
  EXPECT_EQ(j["target_size"].get<uint64_t>(), std::filesystem::file_size(f.new_path));
  EXPECT_EQ(j["source_sha256"].get<std::string>().size(), 64u);
}

TEST(DeltaCli, HelpAndUsageErrors) {
  Cmd h = run_edgelm({"delta", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* w : {"make", "apply", "info"}) EXPECT_NE(h.out.find(w), std::string::npos);
  Cmd ha = run_edgelm({"delta", "apply", "--help"});
  EXPECT_NE(ha.out.find("atomically"), std::string::npos) << ha.out;
  Cmd none = run_edgelm({"delta"});
  EXPECT_NE(none.exit_code, 0);
  Cmd missing =
      run_edgelm({"delta", "apply", "/nonexistent.gguf", "/nonexistent.elmd", "-o", "/tmp/x.gguf"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("/nonexistent"), std::string::npos) << missing.err;
}

TEST(DeltaCli, WrongSourceAndTamperedPatchFailClearly) {
  Files f;
  ASSERT_TRUE(update::testing::write_base(f.old_path).ok());
  ASSERT_TRUE(update::testing::write_variant(Variant::kAttention, f.old_path, f.new_path).ok());
  ASSERT_EQ(run_edgelm({"delta", "make", f.old_path, f.new_path, "-o", f.patch, "-q"}).exit_code,
            0);
  Cmd wrong = run_edgelm({"delta", "apply", f.new_path, f.patch, "-o", f.out});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("wrong source model"), std::string::npos) << wrong.err;
  EXPECT_FALSE(std::filesystem::exists(f.out));

  auto p = read_bytes(f.patch);
  p[p.size() / 2] ^= 0x10;
  update::testing::write_bytes(f.patch, p);
  Cmd bad = run_edgelm({"delta", "apply", f.old_path, f.patch, "-o", f.out});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("tampered"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(f.out));
  EXPECT_FALSE(std::filesystem::exists(f.out + ".elmd-partial"));
}

TEST(DeltaCli, SigkillAtManyMomentsLeavesOldIntactAndRerunWorks) {
  Files f;
  // A few MB so that an apply lasts long enough to be interrupted.
  auto spec = update::testing::base_spec();
  spec.n_embd = 256;
  spec.n_ff = 1024;
  spec.n_layer = 6;
  spec.n_vocab = 512;
  spec.matrix_type = GgmlType::kF32;
  ASSERT_TRUE(edgelm::testing::write_tiny_model(spec, f.old_path).ok());
  ASSERT_TRUE(update::testing::write_variant(Variant::kVocab, f.old_path, f.new_path).ok());
  ASSERT_EQ(run_edgelm({"delta", "make", f.old_path, f.new_path, "-o", f.patch, "-q", "-l", "1",
                        "--chunk-mib", "0.25"})
                .exit_code,
            0);
  const auto old_bytes = read_bytes(f.old_path);
  const auto want = read_bytes(f.new_path);

  auto spawn = [&] {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int nul = ::open("/dev/null", O_WRONLY);
      ::dup2(nul, 1);
      ::dup2(nul, 2);
      ::execl(EDGELM_CLI, EDGELM_CLI, "delta", "apply", f.old_path.c_str(), f.patch.c_str(), "-o",
              f.out.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  };
  // Time one full run.
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = spawn();
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto full_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_EQ(read_bytes(f.out), want);
  std::filesystem::remove(f.out);

  int killed = 0;
  const int kPoints = 20;
  for (int i = 0; i < kPoints; ++i) {
    const auto delay = std::chrono::microseconds(full_us * i / kPoints);
    pid = spawn();
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++killed;
    ASSERT_EQ(read_bytes(f.old_path), old_bytes) << "kill after " << delay.count() << " us";
    if (std::filesystem::exists(f.out)) {
      ASSERT_EQ(read_bytes(f.out), want) << "kill after " << delay.count() << " us";
    }
    Cmd rerun = run_edgelm({"delta", "apply", f.old_path, f.patch, "-o", f.out, "-q"});
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    ASSERT_EQ(read_bytes(f.out), want);
    ASSERT_FALSE(std::filesystem::exists(f.out + ".elmd-partial"));
    std::filesystem::remove(f.out);
  }
  std::printf("[ kill -9 ] edgelm delta apply takes %lld us; %d of %d runs killed mid-way\n",
              static_cast<long long>(full_us), killed, kPoints);
  EXPECT_GT(killed, kPoints / 2);
}

}  // namespace
}  // namespace edgelm
