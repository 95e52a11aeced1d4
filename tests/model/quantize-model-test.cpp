// quantize_model (model/quantize-model.h): per-preset mixture rules on tiny random models (types
// per tensor, general.file_type), the output loads and runs close to the source, byte identity
// with llama-quantize's files in ../shared/models, and bad input (non-float source, unwritable
// or failing output, truncated input) gives a clear error and leaves OUT as it was.
#include "model/quantize-model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

namespace fs = std::filesystem;
using testing::temp_path;
using testing::TinyModelSpec;
using testing::write_tiny_model;

// llama.cpp's "more bits" layers, written out independently of the implementation.
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

std::map<std::string, GgmlType> types_of(const std::string& path) {
  std::map<std::string, GgmlType> m;
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (f.ok())
    for (const auto& t : (*f)->tensors()) m[t.name] = t.type;
  return m;
}

std::vector<float> last_logits(const std::string& path, const std::vector<int32_t>& toks) {
  auto model = Model::load(path, {.log_summary = false});
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  auto ctx = Context::create(**model, {.n_ctx = 16, .n_threads = 1, .ops = &ref_ops()});
  EXPECT_TRUE(ctx.ok());
  auto l = (*ctx)->eval(toks);
  EXPECT_TRUE(l.ok()) << l.status().to_string();
  return l.ok() ? std::vector<float>(l->begin(), l->end()) : std::vector<float>{};
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

struct Case {
  const char* preset;
  GgmlType base;
  bool k_mix;
  double max_err;  // relative RMS of the last logits against the F16 source
};

class QuantizePresetTest : public ::testing::TestWithParam<Case> {};

TEST_P(QuantizePresetTest, MixtureRulesLoadAndRun) {
  const Case c = GetParam();
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF16;
  spec.n_layer = 8;  // so that "more bits" picks layers 0, 3, 6, 7
  spec.n_ff = 512;
  const std::string in = temp_path(std::string("q-src-") + c.preset + ".gguf");
  const std::string out = temp_path(std::string("q-out-") + c.preset + ".gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());

  QuantizeOptions o;
  o.preset = *quant_preset_from_name(c.preset);
  o.n_threads = 2;
  size_t progress_calls = 0;
  o.progress = [&](const QuantizeProgress& p) {
    ++progress_calls;
    EXPECT_EQ(p.index, progress_calls);
  };
  auto r = quantize_model(in, out, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(progress_calls, r->tensors.size());
  EXPECT_LT(r->dst_bytes, r->src_bytes);

  auto types = types_of(out);
  ASSERT_FALSE(types.empty());
  const GgmlType out_t = c.base == GgmlType::kQ8_0 ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
  EXPECT_EQ(types["output.weight"], out_t);
  EXPECT_EQ(types["token_embd.weight"], c.base);
  EXPECT_EQ(types["output_norm.weight"], GgmlType::kF32);
  for (int i = 0; i < spec.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const GgmlType more =
        c.k_mix && more_bits(i, static_cast<int>(spec.n_layer)) ? GgmlType::kQ6_K : c.base;
    EXPECT_EQ(types[p + "attn_v.weight"], more) << p;
    EXPECT_EQ(types[p + "ffn_down.weight"], more) << p;
    EXPECT_EQ(types[p + "attn_q.weight"], c.base) << p;
    EXPECT_EQ(types[p + "attn_k.weight"], c.base) << p;
    EXPECT_EQ(types[p + "attn_output.weight"], c.base) << p;
    EXPECT_EQ(types[p + "ffn_gate.weight"], c.base) << p;
    EXPECT_EQ(types[p + "ffn_up.weight"], c.base) << p;
    EXPECT_EQ(types[p + "attn_norm.weight"], GgmlType::kF32) << p;
  }
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->get_uint("general.file_type"), quant_preset_file_type(o.preset));
  EXPECT_EQ((*f)->get_uint("general.quantization_version"), 2u);
  EXPECT_EQ((*f)->get_string("general.name"), "tiny-llama-f16");  // metadata carried over

  const std::vector<int32_t> toks = {1, 5, 9, 3};
  auto ref = last_logits(in, toks);
  auto got = last_logits(out, toks);
  ASSERT_EQ(ref.size(), got.size());
  const double err = rel_rms(got, ref);
  std::printf("[ %s ] logits relative RMS error vs F16: %.4f\n", c.preset, err);
  EXPECT_LT(err, c.max_err);
  EXPECT_GT(err, 0.0);  // it did quantize
  fs::remove(in);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Presets, QuantizePresetTest,
                         // Bounds about twice the measured error (8 random layers amplify
                         // it: q8_0 0.049, q6_k 0.22, q5_k_m 0.35, q4_k_m 0.46, q4_0 0.58).
                         ::testing::Values(Case{"q8_0", GgmlType::kQ8_0, false, 0.1},
                                           Case{"q4_0", GgmlType::kQ4_0, false, 1.0},
                                           Case{"q4_k_m", GgmlType::kQ4_K, true, 0.9},
                                           Case{"q5_k_m", GgmlType::kQ5_K, true, 0.7},
                                           Case{"q6_k", GgmlType::kQ6_K, false, 0.45}),
                         [](const auto& info) { return std::string(info.param.preset); });

TEST(QuantizeModel, TiedEmbeddingsAndShortRowsFollowLlamaCpp) {
  // Tied output, rows of 128 (not a multiple of 256): token_embd takes the output's rule
  // (Q8_0, since the row length does not fit the base block) and K-quants fall back to
  // Q5_0 / Q8_0 as llama.cpp does.
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF32;
  spec.tied_output = true;
  spec.n_embd = 128;
  spec.n_ff = 256;
  const std::string in = temp_path("q-tied-src.gguf");
  const std::string out = temp_path("q-tied-out.gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());
  QuantizeOptions o;
  o.preset = QuantPreset::kQ4_K_M;
  ASSERT_TRUE(quantize_model(in, out, o).ok());
  auto types = types_of(out);
  EXPECT_EQ(types.count("output.weight"), 0u);
  EXPECT_EQ(types["token_embd.weight"], GgmlType::kQ8_0);
  EXPECT_EQ(types["blk.0.attn_q.weight"], GgmlType::kQ5_0);    // Q4_K fallback
  EXPECT_EQ(types["blk.1.attn_v.weight"], GgmlType::kQ8_0);    // Q6_K fallback (more bits)
  EXPECT_EQ(types["blk.0.ffn_down.weight"], GgmlType::kQ4_K);  // rows of n_ff = 256
  EXPECT_EQ(types["blk.1.ffn_down.weight"], GgmlType::kQ6_K);
  EXPECT_FALSE(last_logits(out, {1, 2}).empty());

  o.preset = QuantPreset::kQ4_0;  // tied + 32-block base: Q6_K does not fit 128 -> Q8_0
  ASSERT_TRUE(quantize_model(in, out, o).ok());
  types = types_of(out);
  EXPECT_EQ(types["token_embd.weight"], GgmlType::kQ8_0);
  EXPECT_EQ(types["blk.0.attn_q.weight"], GgmlType::kQ4_0);
  fs::remove(in);
  fs::remove(out);
}

TEST(QuantizeModel, TiedEmbeddingsGetQ6KWhenTheyFit) {
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF16;
  spec.tied_output = true;
  const std::string in = temp_path("q-tied256-src.gguf");
  const std::string out = temp_path("q-tied256-out.gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());
  QuantizeOptions o;
  o.preset = QuantPreset::kQ4_0;
  ASSERT_TRUE(quantize_model(in, out, o).ok());
  EXPECT_EQ(types_of(out)["token_embd.weight"], GgmlType::kQ6_K);
  o.preset = QuantPreset::kQ8_0;
  ASSERT_TRUE(quantize_model(in, out, o).ok());
  EXPECT_EQ(types_of(out)["token_embd.weight"], GgmlType::kQ8_0);
  fs::remove(in);
  fs::remove(out);
}

// Tensor data of our quantization of the shared F16 model against llama-quantize's file.
void expect_byte_identical(const std::string& preset, const std::string& f16,
                           const std::string& theirs) {
  const std::string out = temp_path("q-shared-" + preset + ".gguf");
  QuantizeOptions o;
  o.preset = *quant_preset_from_name(preset);
  o.n_threads = 2;
  auto r = quantize_model(f16, out, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto ours = GgufFile::open(out);
  auto ref = GgufFile::open(theirs);
  ASSERT_TRUE(ours.ok() && ref.ok());
  ASSERT_EQ((*ours)->tensors().size(), (*ref)->tensors().size());
  size_t identical = 0;
  for (size_t i = 0; i < (*ref)->tensors().size(); ++i) {
    const GgufTensorInfo& b = (*ref)->tensors()[i];
    const GgufTensorInfo& a = (*ours)->tensors()[i];
    EXPECT_EQ(a.name, b.name) << "tensor order differs at " << i;
    EXPECT_EQ(a.type, b.type) << b.name;
    ASSERT_EQ(a.nbytes, b.nbytes) << b.name;
    if (std::memcmp(a.data, b.data, a.nbytes) == 0)
      ++identical;
    else
      ADD_FAILURE() << preset << ": tensor '" << b.name << "' differs from llama-quantize's";
  }
  EXPECT_EQ((*ours)->get_uint("general.file_type"), (*ref)->get_uint("general.file_type"));
  std::printf("[ %s ] %zu of %zu tensors byte-identical with %s\n", preset.c_str(), identical,
              (*ref)->tensors().size(), theirs.c_str());
  fs::remove(out);
}

TEST(QuantizeModel, ByteIdenticalWithLlamaQuantizeQ8_0) {
  EDGELM_REQUIRE_SHARED(f16, "models/conf-llama-spm-f16.gguf");
  EDGELM_REQUIRE_SHARED(theirs, "models/conf-llama-spm-q8_0.gguf");
  expect_byte_identical("q8_0", f16, theirs);
}

TEST(QuantizeModel, ByteIdenticalWithLlamaQuantizeQ4_0) {
  EDGELM_REQUIRE_SHARED(f16, "models/conf-llama-spm-f16.gguf");
  EDGELM_REQUIRE_SHARED(theirs, "models/conf-llama-spm-q4_0.gguf");
  expect_byte_identical("q4_0", f16, theirs);
}

TEST(QuantizeModel, ByteIdenticalWithLlamaQuantizeQ4_K_M) {
  EDGELM_REQUIRE_SHARED(f16, "models/conf-llama-spm-f16.gguf");
  EDGELM_REQUIRE_SHARED(theirs, "models/conf-llama-spm-q4_k_m.gguf");
  expect_byte_identical("q4_k_m", f16, theirs);
}

// --- bad input: clear errors, OUT untouched ---

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(QuantizeModel, RefusesAQuantizedSourceAndKeepsOut) {
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kQ8_0;
  const std::string in = temp_path("q-bad-q8.gguf");
  const std::string out = temp_path("q-bad-out.gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());
  { std::ofstream(out) << "previous contents"; }
  QuantizeOptions o;
  o.preset = QuantPreset::kQ4_0;
  auto r = quantize_model(in, out, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("already q8_0"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("F32, F16 or BF16"), std::string::npos);
  EXPECT_EQ(read_all(out), "previous contents");
  fs::remove(in);
  fs::remove(out);
}

TEST(QuantizeModel, UnwritableOutputIsAnErrorWithNoFileLeft) {
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF16;
  const std::string in = temp_path("q-src-unwritable.gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());
  const std::string dir = temp_path("no-such-dir");
  const std::string out = dir + "/out.gguf";
  QuantizeOptions o;
  auto r = quantize_model(in, out, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(out), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(dir));
  fs::remove(in);
}

TEST(QuantizeModel, TruncatedInputIsAnErrorAndOutStaysAbsent) {
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF16;
  const std::string in = temp_path("q-src-trunc.gguf");
  const std::string out = temp_path("q-out-trunc.gguf");
  ASSERT_TRUE(write_tiny_model(spec, in).ok());
  fs::resize_file(in, fs::file_size(in) - 1000);
  fs::remove(out);
  QuantizeOptions o;
  auto r = quantize_model(in, out, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(in), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().string().find(out + ".tmp"), std::string::npos) << e.path();
  fs::remove(in);
}

TEST(QuantizeModel, PresetNames) {
  for (const char* n : {"q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"}) {
    auto p = quant_preset_from_name(n);
    ASSERT_TRUE(p.has_value()) << n;
    EXPECT_STREQ(quant_preset_name(*p), n);
  }
  EXPECT_TRUE(quant_preset_from_name("Q4_K_M").has_value());
  EXPECT_FALSE(quant_preset_from_name("q3_k_s").has_value());
}

}  // namespace
}  // namespace edgelm
