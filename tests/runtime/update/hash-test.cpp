// SHA-256 helpers: known vectors, file vs buffer, streaming vs one shot, hex round trip.
#include "runtime/update/hash.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace edgelm::update {
namespace {

TEST(Hash, KnownVectors) {
  EXPECT_EQ(to_hex(sha256("abc", 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256("", 0)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Hash, StreamingMatchesOneShotAndFile) {
  std::vector<uint8_t> data(3 * 1024 * 1024 + 17);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  const Sha256 one = sha256(data.data(), data.size());
  Sha256Hasher h;
  h.update(data.data(), 5);
  h.update(data.data() + 5, data.size() - 5);
  EXPECT_EQ(h.finish(), one);
  // The hasher starts over after finish().
  h.update("abc", 3);
  EXPECT_EQ(h.finish(), sha256("abc", 3));

  const std::string path = edgelm::testing::temp_path("hash-file.bin");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  auto fh = sha256_file(path);
  ASSERT_TRUE(fh.ok()) << fh.status().to_string();
  EXPECT_EQ(*fh, one);
  std::remove(path.c_str());
}

TEST(Hash, MissingFileIsAClearError) {
  auto r = sha256_file("/nonexistent/edgelm/model.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/edgelm/model.gguf"), std::string::npos);
}

TEST(Hash, HexRoundTripAndErrors) {
  const Sha256 h = sha256("edgelm", 6);
  auto back = sha256_from_hex(to_hex(h));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, h);
  std::string upper = to_hex(h);
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  ASSERT_TRUE(sha256_from_hex(upper).ok());
  EXPECT_EQ(*sha256_from_hex(upper), h);
  EXPECT_FALSE(sha256_from_hex("abc").ok());
  std::string bad = to_hex(h);
  bad[10] = 'g';
  auto r = sha256_from_hex(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("position 10"), std::string::npos);
}

}  // namespace
}  // namespace edgelm::update
