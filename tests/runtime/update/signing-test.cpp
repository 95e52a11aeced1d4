// Ed25519 key files, detached signatures and signed JSON documents (runtime/update/signing.h).
#include "runtime/update/signing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "update-test-util.h"

namespace edgelm::update {
namespace {

using testing::slurp;
using testing::spit;

struct Keys {
  Keys() {
    dir = edgelm::testing::temp_path("signing");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    key = dir + "/k";
    EXPECT_TRUE(generate_key_files(key).ok());
  }
  ~Keys() { std::filesystem::remove_all(dir); }
  std::string dir, key;
};

TEST(Signing, KeyFilesHaveDocumentedFormatAndModes) {
  Keys k;
  struct stat st {};
  ASSERT_EQ(::stat(k.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the secret key must be private";
  const std::string pub = slurp(k.key + ".pub");
  EXPECT_EQ(pub[0], '#');
  auto pk = load_public_key(k.key + ".pub");
  ASSERT_TRUE(pk.ok()) << pk.status().to_string();
  EXPECT_NE(pub.find(pk->hex() + "\n"), std::string::npos);
  EXPECT_EQ(pk->hex().size(), 64u);
  EXPECT_EQ(pk->key_id().size(), 16u);
  auto sk = load_secret_key(k.key);
  ASSERT_TRUE(sk.ok()) << sk.status().to_string();
  EXPECT_TRUE(sk->public_key() == *pk);
}

TEST(Signing, RefusesToOverwriteAKey) {
  Keys k;
  const std::string before = slurp(k.key);
  Status st = generate_key_files(k.key);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("already exists"), std::string::npos);
  EXPECT_EQ(slurp(k.key), before);
  EXPECT_TRUE(generate_key_files(k.key, /*overwrite=*/true).ok());
  EXPECT_NE(slurp(k.key), before);
}

TEST(Signing, BadKeyFilesGiveClearErrors) {
  Keys k;
  spit(k.dir + "/short.pub", "# comment\nabcd\n");
  auto pk = load_public_key(k.dir + "/short.pub");
  ASSERT_FALSE(pk.ok());
  EXPECT_NE(pk.status().message().find("64 hex digits"), std::string::npos);
  EXPECT_NE(pk.status().message().find("short.pub"), std::string::npos);
  // A secret key whose public half was altered.
  std::string text = slurp(k.key);
  const size_t nl = text.find('\n');
  text[nl + 1 + 127] = text[nl + 1 + 127] == '0' ? '1' : '0';
  spit(k.dir + "/bad.key", text);
  auto sk = load_secret_key(k.dir + "/bad.key");
  ASSERT_FALSE(sk.ok());
  EXPECT_NE(sk.status().message().find("corrupt secret key"), std::string::npos);
  EXPECT_EQ(load_public_key(k.dir + "/missing.pub").status().code(), StatusCode::kNotFound);
}

TEST(Signing, MessagesVerifyAndTamperingIsDetected) {
  Keys k;
  auto sk = load_secret_key(k.key);
  auto pk = load_public_key(k.key + ".pub");
  ASSERT_TRUE(sk.ok() && pk.ok());
  const std::string sig = sign_message("hello", *sk);
  EXPECT_EQ(sig.size(), 128u);
  EXPECT_TRUE(verify_message("hello", sig, *pk, "msg").ok());
  EXPECT_EQ(verify_message("hellp", sig, *pk, "msg").code(), StatusCode::kDataLoss);
  std::string bad = sig;
  bad[5] = bad[5] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_message("hello", bad, *pk, "msg").ok());
}

TEST(Signing, CanonicalFormSortsKeysAndDropsTheSignature) {
  nlohmann::json a = nlohmann::json::parse(R"({"b": 1, "a": {"y": [1, 2], "x": "s"}})");
  nlohmann::json b = nlohmann::json::parse(R"({ "a" : { "x":"s", "y":[1,2] }, "b":1,
                                                "signature": {"value": "zz"} })");
  EXPECT_EQ(canonical_form(a), R"({"a":{"x":"s","y":[1,2]},"b":1})");
  EXPECT_EQ(canonical_form(a), canonical_form(b));
}

TEST(Signing, DocumentsVerifyAfterReformattingAndFailWhenChanged) {
  Keys k;
  auto sk = load_secret_key(k.key);
  auto pk = load_public_key(k.key + ".pub");
  ASSERT_TRUE(sk.ok() && pk.ok());
  nlohmann::json doc = {{"model_id", "tiny"}, {"version", "1.0.0"}, {"size", 123}};
  sign_document(doc, *sk);
  EXPECT_EQ(doc["signature"]["algorithm"], "ed25519");
  EXPECT_EQ(doc["signature"]["key_id"], pk->key_id());
  // Pretty-printed and re-parsed: same canonical form, still valid.
  nlohmann::json re = nlohmann::json::parse(doc.dump(4));
  EXPECT_TRUE(verify_document(re, *pk, "doc").ok());
  // Any change to a signed field fails.
  re["size"] = 124;
  Status st = verify_document(re, *pk, "doc.json");
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("doc.json"), std::string::npos);
  EXPECT_NE(st.message().find("bad signature"), std::string::npos);
  // No signature at all.
  nlohmann::json unsigned_doc = {{"a", 1}};
  EXPECT_NE(verify_document(unsigned_doc, *pk, "doc").message().find("not signed"),
            std::string::npos);
  // Another key.
  ASSERT_TRUE(generate_key_files(k.dir + "/other").ok());
  auto other = load_public_key(k.dir + "/other.pub");
  ASSERT_TRUE(other.ok());
  st = verify_document(doc, *other, "doc");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(other->key_id()), std::string::npos);
}

}  // namespace
}  // namespace edgelm::update
