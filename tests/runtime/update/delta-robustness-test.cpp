// Delta apply under hostile conditions:
//  - random mutations of a valid patch (with the body hash check off, so they reach the record
//    parser): never a crash, never a wrong output;
//  - SIGKILL of an applying process at many points: the old model stays byte-identical, the
//    output is absent or complete and correct, and a rerun succeeds;
//  - a real full disk (a 256 KiB tmpfs in a private mount namespace, skipped with a message
//    where namespaces are not allowed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "delta-patch-util.h"
#include "runtime/update/delta.h"

namespace edgelm::update {
namespace {

using namespace edgelm::update::testing;

TEST(DeltaRobustness, RandomMutationsNeverCrashOrMisbuild) {
  DeltaFixture fx("fuzz");
  ASSERT_TRUE(make_patch(fx, Variant::kVocab, small_chunks(1)).ok());
  const auto patch = read_bytes(fx.patch_path);
  const auto want = read_bytes(fx.new_path);
  const auto old_bytes = read_bytes(fx.old_path);
  const std::string bad = fx.patch_path + ".mut";
  std::mt19937_64 rng(2026);
  int refused = 0, rebuilt = 0;
  constexpr int kRuns = 240;
  for (int run = 0; run < kRuns; ++run) {
    auto p = patch;
    const int kind = static_cast<int>(rng() % 5);
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      // Bias half of the mutations to the record area right after the header.
      const size_t at =
          (rng() % 2) ? 152 + rng() % std::min<size_t>(512, p.size() - 152) : rng() % p.size();
      switch (kind) {
        case 0:
          p[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          p[at] = static_cast<uint8_t>(rng());
          break;
        case 2:
          p[at] = (rng() % 2) ? 0xff : 0x00;
          break;
        case 3:
          p.resize(std::max<size_t>(1, at));
          break;
        case 4:
          p.insert(p.begin() + static_cast<long>(at), static_cast<uint8_t>(rng()));
          break;
      }
      if (p.empty()) p.push_back(0);
    }
    write_bytes(bad, p);
    DeltaOptions o;
    o.verify_patch_hash = (run % 8) == 0;  // mostly exercise the record parser
    Status s = apply_delta(fx.old_path, bad, fx.out_path, o);
    if (s.ok()) {
      // Only possible when the mutation hit nothing that matters (e.g. a reserved byte).
      ASSERT_EQ(read_bytes(fx.out_path), want) << "run " << run << " built a wrong output";
      std::filesystem::remove(fx.out_path);
      ++rebuilt;
    } else {
      ASSERT_FALSE(s.message().empty());
      ASSERT_FALSE(exists(fx.out_path)) << "run " << run << ": " << s.to_string();
      ++refused;
    }
    ASSERT_FALSE(exists(fx.out_path + ".elmd-partial"));
  }
  EXPECT_EQ(read_bytes(fx.old_path), old_bytes);
  EXPECT_EQ(refused + rebuilt, kRuns);
  EXPECT_GT(refused, kRuns / 2);
  std::filesystem::remove(bad);
}

// Runs apply in a child process that reports each step (phase or write) with one byte on a
// pipe and then pauses briefly, so the parent can SIGKILL it at a chosen step. Returns the pid;
// *read_fd receives the pipe's read end.
pid_t spawn_apply(const DeltaFixture& fx, int* read_fd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const int w = fds[1];
    auto step = [w] {
      (void)!::write(w, "s", 1);
      ::usleep(300);
    };
    DeltaOptions o;
    o.progress = [step](uint64_t, uint64_t) { step(); };
    o.phase = [step](const std::string&) { step(); };
    Status s = apply_delta(fx.old_path, fx.patch_path, fx.out_path, o);
    ::_exit(s.ok() ? 0 : 3);
  }
  ::close(fds[1]);
  *read_fd = fds[0];
  return pid;
}

// Reads up to n step bytes (fewer if the child exits first).
int wait_steps(int fd, int n) {
  int got = 0;
  char c;
  while (got < n && ::read(fd, &c, 1) == 1) ++got;
  return got;
}

TEST(DeltaRobustness, KilledApplyLeavesOldIntactAndRerunSucceeds) {
  DeltaFixture fx("kill");
  ASSERT_TRUE(write_base(fx.old_path).ok());
  ASSERT_TRUE(write_variant(Variant::kAttention, fx.old_path, fx.new_path).ok());
  DeltaOptions mo = small_chunks(1);
  mo.chunk_bytes = 1024;  // many records, so many distinct kill points
  mo.ref_margin_bytes = 256;
  ASSERT_TRUE(make_delta(fx.old_path, fx.new_path, fx.patch_path, mo).ok());
  const auto old_bytes = read_bytes(fx.old_path);
  const auto want = read_bytes(fx.new_path);

  // A full run counts the steps (phases: verify patch, verify source, apply, sync; then one
  // per write).
  int rfd = -1;
  pid_t pid = spawn_apply(fx, &rfd);
  ASSERT_GT(pid, 0);
  const int total_steps = wait_steps(rfd, 1 << 30);
  ::close(rfd);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(read_bytes(fx.out_path), want);
  ASSERT_GT(total_steps, 20);
  std::filesystem::remove(fx.out_path);

  // Kill at ~30 points spread over all steps, each after a random extra pause of 0-400 us
  // (so kills land inside writes, hashing, fsync and rename too, not only between steps).
  std::mt19937_64 rng(7);
  int killed_mid = 0, finished = 0, partial_left = 0, points = 0;
  for (int k = 0; k <= total_steps + 1; k += std::max(1, total_steps / 28), ++points) {
    pid = spawn_apply(fx, &rfd);
    ASSERT_GT(pid, 0);
    wait_steps(rfd, k);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
    ::kill(pid, SIGKILL);
    ::close(rfd);
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++killed_mid;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0);
      ++finished;
    }
    // The old model is untouched; the output is absent or exactly the target.
    ASSERT_EQ(read_bytes(fx.old_path), old_bytes) << "killed at step " << k;
    if (exists(fx.out_path)) {
      ASSERT_EQ(read_bytes(fx.out_path), want) << "killed at step " << k;
    }
    if (exists(fx.out_path + ".elmd-partial")) ++partial_left;
    // A rerun completes (reusing or replacing any partial file).
    Status s = apply_delta(fx.old_path, fx.patch_path, fx.out_path);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(read_bytes(fx.out_path), want);
    ASSERT_FALSE(exists(fx.out_path + ".elmd-partial"));
    std::filesystem::remove(fx.out_path);
  }
  std::printf(
      "[ kill -9 ] %d steps; %d kill points: %d killed mid-apply (%d left a partial "
      "file), %d finished first\n",
      total_steps, points, killed_mid, partial_left, finished);
  EXPECT_GT(killed_mid, points / 2);
  EXPECT_GT(partial_left, 0);
}

TEST(DeltaRobustness, FullDiskOnARealFilesystem) {
  DeltaFixture fx("tmpfs");
  ASSERT_TRUE(make_patch(fx, Variant::kAttention, small_chunks(1)).ok());
  ASSERT_GT(std::filesystem::file_size(fx.new_path), 100u * 1024);
  const std::string mnt = edgelm::testing::temp_path("tmpfs-mnt");
  std::filesystem::create_directories(mnt);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    auto say = [&](const std::string& m) {
      (void)!::write(pipefd[1], m.data(), m.size());
      ::_exit(0);
    };
    if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
      say("SKIP unshare: " + std::string(std::strerror(errno)));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      say("SKIP make-private: " + std::string(std::strerror(errno)));
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
      say("SKIP mount tmpfs: " + std::string(std::strerror(errno)));
    const std::string out = mnt + "/model.gguf";
    Status s = apply_delta(fx.old_path, fx.patch_path, out);
    std::string res = s.ok() ? "OK" : (status_code_name(s.code()) + std::string(" ") + s.message());
    res += std::filesystem::exists(out) ? " [out exists]" : "";
    res += std::filesystem::exists(out + ".elmd-partial") ? " [partial exists]" : "";
    say(res);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[1024];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;) msg.append(buf, buf + n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::filesystem::remove_all(mnt);
  if (msg.rfind("SKIP", 0) == 0) GTEST_SKIP() << "SKIPPED: cannot mount a small tmpfs: " << msg;
  EXPECT_EQ(msg.rfind("RESOURCE_EXHAUSTED", 0), 0u) << msg;
  EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("[out exists]"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("[partial exists]"), std::string::npos) << msg;
}

}  // namespace
}  // namespace edgelm::update
