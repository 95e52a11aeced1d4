// Activation-aware scaling (model/awq.h) with quantize_model: the scales never increase the
// measured product error, the folded file is a plain GGUF whose outputs match the source (Q8_0
// with scales vs F16), and, on the shared conformance model, the perplexity with and without
// --awq (calibration: the first half of ppl-text.txt; evaluation: chunks from the second half).
// The perplexity measurement is slow under sanitizers: it runs when EDGELM_AWQ_MEASURE=1.
#include "model/awq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "model/context.h"
#include "model/model.h"
#include "model/quantize-model.h"
#include "model_builder.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace edgelm {
namespace {

namespace fs = std::filesystem;

TEST(Awq, ScalesReduceErrorAndKeepTheFunction) {
  testing::TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF16;
  const std::string in = testing::temp_path("awq-src.gguf");
  const std::string out = testing::temp_path("awq-q8.gguf");
  ASSERT_TRUE(testing::write_tiny_model(spec, in).ok());
  auto model = Model::load(in, {.log_summary = false});
  ASSERT_TRUE(model.ok());
  std::mt19937 rng(7);
  std::vector<int32_t> ids(200);
  for (auto& t : ids) t = static_cast<int32_t>(rng() % spec.n_vocab);
  AwqOptions ao;
  ao.preset = QuantPreset::kQ4_0;
  ao.n_ctx = 64;
  ao.n_threads = 1;
  auto r = compute_awq_scales(**model, ids, ao);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->choices.size(), static_cast<size_t>(spec.n_layer * 2));
  for (const AwqLayerChoice& c : r->choices) {
    EXPECT_GT(c.err_plain, 0);
    EXPECT_LE(c.err_best, c.err_plain);
  }

  // Fold arbitrary scales into a Q8_0 file: the function is unchanged up to Q8_0 rounding.
  QuantizeOptions qo;
  qo.preset = QuantPreset::kQ8_0;
  std::vector<float> s(static_cast<size_t>(spec.n_embd));
  for (size_t j = 0; j < s.size(); ++j) s[j] = 0.5f + static_cast<float>(j % 7) * 0.25f;
  for (int l = 0; l < spec.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v"}) qo.column_scales[p + n + ".weight"] = s;
    qo.norm_divisors[p + "attn_norm.weight"] = s;
  }
  ASSERT_TRUE(quantize_model(in, out, qo).ok());
  QuantizeOptions plain;
  plain.preset = QuantPreset::kQ8_0;
  const std::string out_plain = testing::temp_path("awq-q8-plain.gguf");
  ASSERT_TRUE(quantize_model(in, out_plain, plain).ok());
  auto logits = [&](const std::string& path) {
    auto m = Model::load(path, {.log_summary = false});
    EXPECT_TRUE(m.ok());
    auto ctx = Context::create(**m, {.n_ctx = 16, .n_threads = 1, .ops = &ref_ops()});
    auto l = (*ctx)->eval(std::vector<int32_t>{1, 5, 9});
    return std::vector<float>(l->begin(), l->end());
  };
  auto a = logits(in), b = logits(out), c = logits(out_plain);
  double num = 0, num_plain = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (b[i] - a[i]) * (b[i] - a[i]);
    num_plain += (c[i] - a[i]) * (c[i] - a[i]);
    den += a[i] * a[i];
  }
  std::printf("[ awq ] q8_0 with folded scales: rel RMS %.4f (plain q8_0 %.4f)\n",
              std::sqrt(num / den), std::sqrt(num_plain / den));
  EXPECT_LT(std::sqrt(num / den), 3 * std::sqrt(num_plain / den) + 0.01);
  // The norm really was divided (the file differs from the plain one).
  auto f = GgufFile::open(out);
  auto g = GgufFile::open(out_plain);
  const auto* na = (*f)->find_tensor("blk.0.attn_norm.weight");
  const auto* nb = (*g)->find_tensor("blk.0.attn_norm.weight");
  EXPECT_NE(std::memcmp(na->data, nb->data, na->nbytes), 0);
  fs::remove(in);
  fs::remove(out);
  fs::remove(out_plain);
}

double perplexity(const std::string& path, const std::vector<int32_t>& ids, int first_chunk,
                  int n_chunks, bool add_bos, int32_t bos) {
  auto m = Model::load(path, {.log_summary = false});
  EXPECT_TRUE(m.ok());
  constexpr int kCtx = 128;
  auto ctx = Context::create(**m, {.n_ctx = kCtx, .n_threads = 2});
  const size_t V = static_cast<size_t>((*ctx)->n_vocab());
  double nll = 0;
  int count = 0;
  for (int c = first_chunk; c < first_chunk + n_chunks; ++c) {
    std::vector<int32_t> chunk(ids.begin() + c * kCtx, ids.begin() + (c + 1) * kCtx);
    if (add_bos) chunk[0] = bos;
    (*ctx)->reset();
    auto l = (*ctx)->eval(chunk, true);
    for (int i = kCtx / 2; i < kCtx - 1; ++i) {
      std::span<const float> row = l->subspan(i * V, V);
      const float mx = *std::max_element(row.begin(), row.end());
      double sum = 0;
      for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
      nll -= row[static_cast<size_t>(chunk[i + 1])] - mx - std::log(sum);
      ++count;
    }
  }
  return std::exp(nll / count);
}

TEST(Awq, MeasuredPerplexityOnTheConformanceModel) {
  if (!std::getenv("EDGELM_AWQ_MEASURE"))
    GTEST_SKIP() << "SKIPPED: set EDGELM_AWQ_MEASURE=1 to measure (slow under sanitizers)";
  for (const char* name : {"conf-llama-spm-f16", "conf-llama3-bpe-f16"}) {
    EDGELM_REQUIRE_SHARED(src, std::string("models/") + name + ".gguf");
    EDGELM_REQUIRE_SHARED(text_path, "golden/conformance/ppl-text.txt");
    std::stringstream ss;
    ss << std::ifstream(text_path).rdbuf();
    auto model = Model::load(src, {.log_summary = false});
    ASSERT_TRUE(model.ok());
    auto tok = Tokenizer::from_gguf((*model)->gguf());
    ASSERT_TRUE(tok.ok());
    auto ids = (*tok)->encode(ss.str(), true, false);
    ASSERT_TRUE(ids.ok());
    const int n_chunks_total = static_cast<int>(ids->size()) / 128;
    const int half = n_chunks_total / 2;
    std::vector<int32_t> calib(ids->begin(), ids->begin() + half * 128);
    for (QuantPreset preset : {QuantPreset::kQ4_0, QuantPreset::kQ4_K_M}) {
      AwqOptions ao;
      ao.preset = preset;
      ao.max_tokens = 2048;
      auto awq = compute_awq_scales(**model, calib, ao);
      ASSERT_TRUE(awq.ok()) << awq.status().to_string();
      int scaled = 0;
      for (const auto& c : awq->choices) scaled += c.alpha > 0;
      const std::string plain = testing::temp_path("awq-m-plain.gguf");
      const std::string with = testing::temp_path("awq-m-awq.gguf");
      QuantizeOptions qo;
      qo.preset = preset;
      ASSERT_TRUE(quantize_model(src, plain, qo).ok());
      qo.column_scales = awq->column_scales;
      qo.norm_divisors = awq->norm_divisors;
      ASSERT_TRUE(quantize_model(src, with, qo).ok());
      const int n_eval = std::min(16, n_chunks_total - half);
      const bool bos = (*tok)->add_bos();
      const double p16 = perplexity(src, *ids, half, n_eval, bos, (*tok)->bos());
      const double pp = perplexity(plain, *ids, half, n_eval, bos, (*tok)->bos());
      const double pa = perplexity(with, *ids, half, n_eval, bos, (*tok)->bos());
      std::printf(
          "[ awq ] %s %s: %d calib tokens, %d/%zu sites scaled; PPL f16 %.2f, plain %.2f "
          "(ln %+.5f), awq %.2f (ln %+.5f)\n",
          name, quant_preset_name(preset), awq->tokens, scaled, awq->choices.size(), p16, pp,
          std::log(pp / p16), pa, std::log(pa / p16));
      fs::remove(plain);
      fs::remove(with);
    }
  }
}

}  // namespace
}  // namespace edgelm
