// Hyperparameter variants against the double-precision reference: linear RoPE scaling,
// rope_freqs factors, llama with q/k/v biases, multi-head (no GQA), multi-query, partial
// rotary dimension, odd head counts. F32 weights, so only the F16 KV cache rounds.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "gguf/reader.h"
#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "reference-forward.h"
#include "test_util.h"

namespace edgelm {
namespace {

using testing::TinyModelSpec;

void check_against_reference(const TinyModelSpec& spec, const std::string& label) {
  const std::string path = testing::temp_path("variant-" + label + ".gguf");
  Status st = testing::write_tiny_model(spec, path);
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto model = Model::load(path, {.log_summary = false});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  testing::ReferenceModel ref(**file);
  ASSERT_TRUE(ref.error().empty()) << ref.error();
  std::vector<int32_t> tokens = {1, 7, 30, 2, 55, 90, 14, 3, 8, 41, 12};
  const auto expect = ref.forward(tokens);
  auto ctx = Context::create(**model, {.n_ctx = 16, .n_threads = 2});
  ASSERT_TRUE(ctx.ok());
  auto logits = (*ctx)->eval(tokens, true);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  double num = 0, den = 0, max_abs = 0;
  for (size_t t = 0; t < tokens.size(); ++t)
    for (int64_t v = 0; v < spec.n_vocab; ++v) {
      const double d = (*logits)[t * spec.n_vocab + v] - expect[t][v];
      num += d * d, den += expect[t][v] * expect[t][v];
      max_abs = std::max(max_abs, std::abs(d));
    }
  const double nerr = std::sqrt(num / den);
  std::printf("[ %s ] nerr %.3g max|diff| %.3g\n", label.c_str(), nerr, max_abs);
  EXPECT_LT(nerr, 2e-3) << label;
  std::filesystem::remove(path);
}

TEST(ForwardVariants, LinearRopeScaling) {
  TinyModelSpec s;
  s.rope_scale_factor = 4.0f;
  s.rope_freq_base = 500.0f;
  check_against_reference(s, "rope-linear-x4");
}

TEST(ForwardVariants, RopeFreqFactors) {
  TinyModelSpec s;
  s.rope_freqs = true;
  check_against_reference(s, "rope-freqs");
}

TEST(ForwardVariants, LlamaWithQkvBias) {
  TinyModelSpec s;
  s.qkv_bias = true;
  check_against_reference(s, "llama-bias");
}

TEST(ForwardVariants, MultiHeadAndMultiQuery) {
  TinyModelSpec mha;
  mha.n_head_kv = mha.n_head;
  check_against_reference(mha, "mha");
  TinyModelSpec mqa;
  mqa.n_head = 8;
  mqa.n_head_kv = 1;
  check_against_reference(mqa, "mqa");
}

TEST(ForwardVariants, PartialRotaryBothLayouts) {
  for (const char* arch : {"llama", "qwen2"}) {
    TinyModelSpec s;
    s.arch = arch;
    s.n_rot = 32;  // head_dim 64
    s.rope_freq_base = 1e6f;
    check_against_reference(s, std::string("partial-rot-") + arch);
  }
}

}  // namespace
}  // namespace edgelm
