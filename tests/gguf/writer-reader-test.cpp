// Round trip: every metadata value type and tensor layout written by GgufWriter reads back
// identically through GgufFile.
#include <gtest/gtest.h>

#include <random>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "test_util.h"

namespace edgelm {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng() | 1);
  return b;
}

GgufWriter sample_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", 1ull << 60);
  w.set_i64("t.i64", -(1ll << 60));
  w.set_f32("t.f32", 1.5f);
  w.set_f64("t.f64", -2.25);
  w.set_bool("t.bool", true);
  w.set_array_string("t.strs", {"a", "", "ünïcode"});
  w.set_array_i32("t.i32s", {1, -2, 3});
  w.set_array_f32("t.f32s", {0.5f, -0.25f});
  w.set_array_u8("t.u8s", {7, 8, 9, 10});
  EXPECT_TRUE(w.add_tensor("a", GgmlType::kF32, {4, 3}, random_bytes(48, 1)).ok());
  EXPECT_TRUE(w.add_tensor("b", GgmlType::kQ8_0, {64, 2}, random_bytes(4 * 34, 2)).ok());
  EXPECT_TRUE(w.add_tensor("c", GgmlType::kQ4_K, {256}, random_bytes(144, 3)).ok());
  return w;
}

TEST(GgufWriterReader, RoundTripsAllValueTypesAndTensors) {
  std::vector<uint8_t> bytes = sample_writer().to_bytes();
  auto f = GgufFile::parse(bytes, "roundtrip");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_uint("t.u8"), 200u);
  EXPECT_EQ(g.get_int("t.i8"), -100);
  EXPECT_EQ(g.get_uint("t.u16"), 60000u);
  EXPECT_EQ(g.get_int("t.i16"), -30000);
  EXPECT_EQ(g.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(g.get_int("t.i32"), -2000000000);
  EXPECT_EQ(g.get_uint("t.u64"), 1ull << 60);
  EXPECT_EQ(g.get_int("t.i64"), -(1ll << 60));
  EXPECT_FALSE(g.get_uint("t.i64").has_value());  // negative is not a uint
  EXPECT_EQ(g.get_float("t.f32"), 1.5);
  EXPECT_EQ(g.get_float("t.f64"), -2.25);
  EXPECT_EQ(g.get_bool("t.bool"), true);
  const GgufValue* s = g.find("t.strs");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->array_count, 3u);
  EXPECT_EQ(s->strings[2], "ünïcode");
  const GgufValue* i = g.find("t.i32s");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->array_i64(1), -2);
  EXPECT_EQ(g.find("t.f32s")->array_f64(1), -0.25);
  EXPECT_EQ(g.find("t.u8s")->array_i64(3), 10);
  ASSERT_EQ(g.tensors().size(), 3u);
  const GgufTensorInfo* b = g.find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::kQ8_0);
  EXPECT_EQ(b->dims, (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(b->nbytes, 4u * 34);
  EXPECT_EQ(std::vector<uint8_t>(b->data, b->data + b->nbytes), random_bytes(4 * 34, 2));
  for (const auto& t : g.tensors()) EXPECT_EQ(t.offset % g.alignment(), 0u);
  EXPECT_EQ(g.require_uint("missing").status().code(), StatusCode::kNotFound);
  EXPECT_NE(g.require_uint("missing").status().message().find("missing"), std::string::npos);
}

TEST(GgufWriterReader, CopiesValuesFromParsedFile) {
  std::vector<uint8_t> bytes = sample_writer().to_bytes();
  auto f = GgufFile::parse(bytes);
  ASSERT_TRUE(f.ok());
  GgufWriter w2;
  for (const auto& [k, v] : (*f)->metadata()) w2.set_value(k, v);
  auto bytes2 = w2.to_bytes();
  auto f2 = GgufFile::parse(bytes2);
  ASSERT_TRUE(f2.ok()) << f2.status().to_string();
  ASSERT_EQ((*f2)->metadata().size(), (*f)->metadata().size());
  for (const auto& [k, v] : (*f)->metadata())
    EXPECT_EQ((*f2)->find(k)->to_string(100), v.to_string(100)) << k;
}

TEST(GgufWriterReader, RejectsBadTensorsAtWrite) {
  GgufWriter w;
  EXPECT_FALSE(w.add_tensor("x", GgmlType::kQ8_0, {33}, std::vector<uint8_t>(34))
                   .ok());  // not a block multiple
  EXPECT_FALSE(
      w.add_tensor("x", GgmlType::kF32, {4}, std::vector<uint8_t>(15)).ok());  // wrong size
  EXPECT_TRUE(w.add_tensor("x", GgmlType::kF32, {4}, std::vector<uint8_t>(16)).ok());
  EXPECT_FALSE(w.add_tensor("x", GgmlType::kF32, {4}, std::vector<uint8_t>(16)).ok());  // duplicate
}

TEST(GgufWriterReader, WritesFileAtomically) {
  std::string path = testing::temp_path("atomic.gguf");
  ASSERT_TRUE(sample_writer().write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->tensors().size(), 3u);
  // A write into a missing directory fails cleanly and leaves nothing behind.
  EXPECT_FALSE(sample_writer().write("/nonexistent-dir/x.gguf").ok());
  std::remove(path.c_str());
}

TEST(GgufReader, ReadsConformanceModels) {
  EDGELM_REQUIRE_SHARED(path, "models/conf-llama-spm-q4_k_m.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->get_string("general.architecture"), "llama");
  EXPECT_EQ((*f)->get_uint("llama.block_count"), 2u);
  const GgufTensorInfo* t = (*f)->find_tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne(0), 256);
  EXPECT_EQ(t->ne(1), 32000);
  bool has_q4k = false, has_q6k = false;
  for (const auto& ti : (*f)->tensors()) {
    has_q4k |= ti.type == GgmlType::kQ4_K;
    has_q6k |= ti.type == GgmlType::kQ6_K;
  }
  EXPECT_TRUE(has_q4k);
  EXPECT_TRUE(has_q6k);
  const GgufValue* toks = (*f)->find("tokenizer.ggml.tokens");
  ASSERT_NE(toks, nullptr);
  EXPECT_EQ(toks->array_count, 32000u);
}

}  // namespace
}  // namespace edgelm
