// Delta patches: round trips byte-identical for each kind of model change, patch sizes that
// reflect what changed, header info, in-place and repeated apply, and the refusals (wrong
// source, tampered, truncated, unwritable output, full disk) that must leave everything intact.
#include "runtime/update/delta.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "delta-patch-util.h"

namespace edgelm::update {
namespace {

using namespace edgelm::update::testing;

struct VariantCase {
  Variant v;
  const char* name;
  bool chunked;
};

class DeltaRoundTrip : public ::testing::TestWithParam<VariantCase> {};

TEST_P(DeltaRoundTrip, RebuildsTheNewFileByteForByte) {
  const auto c = GetParam();
  DeltaFixture fx(std::string("rt-") + c.name + (c.chunked ? "-c" : ""));
  ASSERT_TRUE(write_base(fx.old_path).ok());
  ASSERT_TRUE(write_variant(c.v, fx.old_path, fx.new_path).ok());
  const auto old_bytes = read_bytes(fx.old_path);
  const auto new_bytes = read_bytes(fx.new_path);
  ASSERT_NE(old_bytes, new_bytes);

  DeltaOptions o = c.chunked ? small_chunks() : DeltaOptions{};
  if (!c.chunked) o.zstd_level = 9;
  DeltaStats st;
  Status s = make_delta(fx.old_path, fx.new_path, fx.patch_path, o, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(st.patch_bytes, std::filesystem::file_size(fx.patch_path));
  EXPECT_EQ(st.target_bytes, new_bytes.size());

  uint64_t last_done = 0, last_total = 0;
  DeltaOptions ao;
  ao.progress = [&](uint64_t d, uint64_t t) {
    EXPECT_GE(d, last_done);
    last_done = d;
    last_total = t;
  };
  s = apply_delta(fx.old_path, fx.patch_path, fx.out_path, ao);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_bytes(fx.out_path), new_bytes);
  EXPECT_EQ(read_bytes(fx.old_path), old_bytes);
  EXPECT_EQ(last_done, new_bytes.size());
  EXPECT_EQ(last_total, new_bytes.size());
  EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));

  const double share = static_cast<double>(st.patch_bytes) / static_cast<double>(new_bytes.size());
  switch (c.v) {
    case Variant::kMetadata:
      EXPECT_TRUE(st.metadata_changed);
      EXPECT_EQ(st.tensors_changed + st.tensors_added + st.tensors_removed, 0u);
      EXPECT_LT(share, 0.05) << st.patch_bytes;
      break;
    case Variant::kAttention:
      EXPECT_EQ(st.tensors_changed, 8u);  // q, k, v, output x 2 layers
      EXPECT_FALSE(st.metadata_changed);
      EXPECT_LT(share, 0.5) << st.patch_bytes;
      break;
    case Variant::kVocab:
      EXPECT_EQ(st.tensors_changed, 2u);
      EXPECT_TRUE(st.metadata_changed);
      EXPECT_LT(share, 0.2) << st.patch_bytes;
      break;
    case Variant::kRequant:
      EXPECT_GE(st.tensors_changed, 14u);
      break;
    case Variant::kAddRemove:
      EXPECT_EQ(st.tensors_added, 1u);
      EXPECT_EQ(st.tensors_removed, 1u);
      EXPECT_LT(share, 0.1) << st.patch_bytes;
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, DeltaRoundTrip,
                         ::testing::Values(VariantCase{Variant::kMetadata, "metadata", false},
                                           VariantCase{Variant::kMetadata, "metadata", true},
                                           VariantCase{Variant::kAttention, "attention", false},
                                           VariantCase{Variant::kAttention, "attention", true},
                                           VariantCase{Variant::kVocab, "vocab", false},
                                           VariantCase{Variant::kVocab, "vocab", true},
                                           VariantCase{Variant::kRequant, "requant", true},
                                           VariantCase{Variant::kAddRemove, "addremove", true}),
                         [](const auto& info) {
                           return std::string(info.param.name) +
                                  (info.param.chunked ? "_chunked" : "_whole");
                         });

TEST(Delta, IdenticalFilesGiveATinyPatchOfCopies) {
  DeltaFixture fx("same");
  ASSERT_TRUE(write_base(fx.old_path).ok());
  std::filesystem::copy_file(fx.old_path, fx.new_path);
  DeltaStats st;
  ASSERT_TRUE(make_delta(fx.old_path, fx.new_path, fx.patch_path, small_chunks(), &st).ok());
  EXPECT_EQ(st.tensors_changed, 0u);
  EXPECT_EQ(st.chunks_prefix + st.chunks_sub, 0u);
  EXPECT_FALSE(st.metadata_changed);
  EXPECT_LT(st.patch_bytes, 8192u);
  ASSERT_TRUE(apply_delta(fx.old_path, fx.patch_path, fx.out_path).ok());
  EXPECT_EQ(read_bytes(fx.out_path), read_bytes(fx.new_path));
}

TEST(Delta, InfoNamesSourceAndTarget) {
  DeltaFixture fx("info");
  ASSERT_TRUE(make_patch(fx, Variant::kVocab, small_chunks()).ok());
  auto info = read_delta_info(fx.patch_path);
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->source_sha256, *sha256_file(fx.old_path));
  EXPECT_EQ(info->target_sha256, *sha256_file(fx.new_path));
  EXPECT_EQ(info->source_size, std::filesystem::file_size(fx.old_path));
  EXPECT_EQ(info->target_size, std::filesystem::file_size(fx.new_path));
  EXPECT_EQ(info->patch_size, std::filesystem::file_size(fx.patch_path));
  EXPECT_EQ(info->version, 1u);
  EXPECT_LE(info->max_chunk, 4096u);
  EXPECT_LE(info->max_ref, 4096u + 2 * 1024u);
}

TEST(Delta, InPlaceAndRepeatedApply) {
  DeltaFixture fx("inplace");
  ASSERT_TRUE(make_patch(fx, Variant::kAttention, small_chunks()).ok());
  const auto want = read_bytes(fx.new_path);
  // Output == source: replaced atomically.
  Status s = apply_delta(fx.old_path, fx.patch_path, fx.old_path);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_bytes(fx.old_path), want);
  // A rerun (e.g. after a kill right after the rename) sees the target and succeeds.
  std::vector<std::string> phases;
  DeltaOptions o;
  o.phase = [&](const std::string& p) { phases.push_back(p); };
  s = apply_delta(fx.old_path, fx.patch_path, fx.old_path, o);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_FALSE(phases.empty());
  EXPECT_NE(phases.back().find("nothing to do"), std::string::npos);
  EXPECT_EQ(read_bytes(fx.old_path), want);
}

TEST(Delta, LeftoverPartialFileIsReused) {
  DeltaFixture fx("leftover");
  ASSERT_TRUE(make_patch(fx, Variant::kMetadata, small_chunks()).ok());
  write_bytes(fx.out_path + ".elmd-partial", std::vector<uint8_t>(1 << 20, 0xab));
  ASSERT_TRUE(apply_delta(fx.old_path, fx.patch_path, fx.out_path).ok());
  EXPECT_EQ(read_bytes(fx.out_path), read_bytes(fx.new_path));
  EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));
}

TEST(Delta, WrongSourceNamesBothHashes) {
  DeltaFixture fx("wrongsrc");
  ASSERT_TRUE(make_patch(fx, Variant::kAttention, small_chunks()).ok());
  const std::string other = edgelm::testing::temp_path("wrongsrc-other.gguf");
  ASSERT_TRUE(write_base(other, /*seed=*/7).ok());  // same size, other weights
  ASSERT_EQ(std::filesystem::file_size(other), std::filesystem::file_size(fx.old_path));
  Status s = apply_delta(other, fx.patch_path, fx.out_path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find(to_hex(*sha256_file(other))), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(to_hex(*sha256_file(fx.old_path))), std::string::npos) << s.message();
  EXPECT_FALSE(exists(fx.out_path));
  EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));
  // A source of another size says so.
  s = apply_delta(fx.new_path, fx.patch_path, fx.out_path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("wrong source model"), std::string::npos) << s.message();
  std::filesystem::remove(other);
}

TEST(Delta, TamperedPatchIsRefusedBeforeWriting) {
  DeltaFixture fx("tamper");
  ASSERT_TRUE(make_patch(fx, Variant::kVocab, small_chunks()).ok());
  const auto patch = read_bytes(fx.patch_path);
  const auto old_bytes = read_bytes(fx.old_path);
  const std::string bad = fx.patch_path + ".bad";
  for (size_t at :
       {size_t{0}, size_t{9}, size_t{20}, size_t{40}, size_t{100}, size_t{130}, size_t{160},
        size_t{200}, patch.size() / 3, patch.size() / 2, patch.size() - 1}) {
    auto p = patch;
    p[at] ^= 0x01;
    write_bytes(bad, p);
    Status s = apply_delta(fx.old_path, bad, fx.out_path);
    ASSERT_FALSE(s.ok()) << "flip at " << at;
    EXPECT_EQ(s.code(), at < 8 ? StatusCode::kDataLoss : s.code());
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
    EXPECT_FALSE(exists(fx.out_path)) << "flip at " << at;
    EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));
    EXPECT_EQ(read_bytes(fx.old_path), old_bytes);
  }
  // A body flip is reported as tampering.
  auto p = patch;
  p[patch.size() / 2] ^= 0x80;
  write_bytes(bad, p);
  Status s = apply_delta(fx.old_path, bad, fx.out_path);
  EXPECT_NE(s.message().find("tampered"), std::string::npos) << s.message();
  std::filesystem::remove(bad);
}

TEST(Delta, TruncatedPatchIsRefused) {
  DeltaFixture fx("trunc");
  ASSERT_TRUE(make_patch(fx, Variant::kAttention, small_chunks()).ok());
  const auto patch = read_bytes(fx.patch_path);
  const std::string bad = fx.patch_path + ".short";
  for (size_t n : {size_t{0}, size_t{10}, size_t{151}, size_t{152}, size_t{300}, patch.size() / 2,
                   patch.size() - 1}) {
    write_bytes(bad, std::vector<uint8_t>(patch.begin(), patch.begin() + static_cast<long>(n)));
    for (bool verify : {true, false}) {
      DeltaOptions o;
      o.verify_patch_hash = verify;
      Status s = apply_delta(fx.old_path, bad, fx.out_path, o);
      ASSERT_FALSE(s.ok()) << n;
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.to_string();
      EXPECT_FALSE(exists(fx.out_path));
      EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));
    }
    EXPECT_FALSE(read_delta_info(bad).ok());
  }
  std::filesystem::remove(bad);
}

TEST(Delta, WriteFailureLeavesNothing) {
  DeltaFixture fx("enospc");
  ASSERT_TRUE(make_patch(fx, Variant::kAttention, small_chunks()).ok());
  const auto old_bytes = read_bytes(fx.old_path);
  for (uint64_t limit : {uint64_t{0}, uint64_t{1000}, uint64_t{50000}}) {
    uint64_t written = 0;
    DeltaOptions o;
    o.write_fn = [&](int fd, const void* p, size_t n) -> ssize_t {
      if (written + n > limit) {
        errno = ENOSPC;
        return -1;
      }
      written += n;
      return ::write(fd, p, n);
    };
    Status s = apply_delta(fx.old_path, fx.patch_path, fx.out_path, o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.to_string();
    EXPECT_NE(s.message().find("No space left"), std::string::npos) << s.message();
    EXPECT_FALSE(exists(fx.out_path));
    EXPECT_FALSE(exists(fx.out_path + ".elmd-partial"));
    EXPECT_EQ(read_bytes(fx.old_path), old_bytes);
  }
  // Then, with space, the same call succeeds.
  ASSERT_TRUE(apply_delta(fx.old_path, fx.patch_path, fx.out_path).ok());
  EXPECT_EQ(read_bytes(fx.out_path), read_bytes(fx.new_path));
}

TEST(Delta, UnwritableOutputIsAClearError) {
  DeltaFixture fx("unwritable");
  ASSERT_TRUE(make_patch(fx, Variant::kMetadata, small_chunks()).ok());
  // Directory missing.
  const std::string missing = edgelm::testing::temp_path("no-such-dir") + "/out.gguf";
  Status s = apply_delta(fx.old_path, fx.patch_path, missing);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no-such-dir"), std::string::npos) << s.message();
  // Parent is a file.
  const std::string under_file = fx.old_path + "/out.gguf";
  s = apply_delta(fx.old_path, fx.patch_path, under_file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Not a directory"), std::string::npos) << s.message();
  // Read-only directory (only meaningful when not running as root).
  if (::geteuid() != 0) {
    const std::string dir = edgelm::testing::temp_path("ro-dir");
    std::filesystem::create_directories(dir);
    ::chmod(dir.c_str(), 0555);
    s = apply_delta(fx.old_path, fx.patch_path, dir + "/out.gguf");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("Permission denied"), std::string::npos) << s.message();
    ::chmod(dir.c_str(), 0755);
    std::filesystem::remove_all(dir);
  }
}

TEST(Delta, MakeRefusesNonGguf) {
  DeltaFixture fx("badmake");
  ASSERT_TRUE(write_base(fx.old_path).ok());
  write_bytes(fx.new_path, std::vector<uint8_t>(1000, 7));
  Status s = make_delta(fx.old_path, fx.new_path, fx.patch_path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(fx.new_path), std::string::npos) << s.message();
  EXPECT_FALSE(exists(fx.patch_path));
  DeltaOptions o;
  o.chunk_bytes = 0;
  EXPECT_EQ(make_delta(fx.old_path, fx.old_path, fx.patch_path, o).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgelm::update
