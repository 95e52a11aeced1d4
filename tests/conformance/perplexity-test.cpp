// Perplexity against llama.cpp's llama-perplexity on the conformance models (table in
// ../shared/golden/README.md; `-c 128 -b 128 --chunks 16`). Protocol as llama.cpp's
// perplexity.cpp: tokenize the whole text once with special tokens (BOS where the model adds
// one), cut it into chunks of n_ctx = 128 tokens, replace each chunk's first token with BOS
// when the model adds BOS, run the chunk from an empty cache, and score the second half: the
// logits at positions [64, 127) predict the tokens at [65, 128). PPL = exp(mean NLL).
// Bound: within 0.5% of llama.cpp's PPL for all six models (F16, Q8_0, Q4_0, Q4_K_M); measured
// 0.002% .. 0.08%.
// Cost: 16 x 64 full-vocabulary output rows per model. Optimized builds run all six models (a
// few seconds each); unoptimized (-O0, sanitizer) builds run the Q4_K_M model only (about 30 s
// there, the matrix kernels dominate) and skip the others visibly unless
// EDGELM_CONFORMANCE_FULL=1.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "conformance-util.h"
#include "model/context.h"
#include "model/model.h"
#include "test_util.h"

#if __has_include("tokenizer/tokenizer.h")
#include "tokenizer/tokenizer.h"
#define EDGELM_HAVE_TOKENIZER 1
#else
#define EDGELM_HAVE_TOKENIZER 0
#endif

namespace edgelm {
namespace {

constexpr int kCtx = 128;
constexpr int kChunks = 16;

// The PPL llama.cpp reported for `model`, read from the golden README's table (0 if absent).
double golden_ppl(const std::string& readme, const std::string& model) {
  std::ifstream f(readme);
  std::string line;
  const std::regex row("^\\|\\s*" + model + "\\s*\\|\\s*([0-9.]+)\\s*\\|");
  std::smatch m;
  while (std::getline(f, line))
    if (std::regex_search(line, m, row)) return std::stod(m[1]);
  return 0;
}

class PerplexityTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PerplexityTest, MatchesLlamaCpp) {
#if !EDGELM_HAVE_TOKENIZER
  GTEST_SKIP()
      << "SKIPPED: tokenizer/tokenizer.h is not available yet (perplexity needs the tokenizer)";
#else
  const std::string name = GetParam();
#ifndef __OPTIMIZE__
  if (name != "conf-llama-spm-q4_k_m" && !std::getenv("EDGELM_CONFORMANCE_FULL")) {
    GTEST_SKIP()
        << "SKIPPED in an unoptimized build (slow there): set EDGELM_CONFORMANCE_FULL=1 to run "
        << name;
  }
#endif
  EDGELM_REQUIRE_SHARED(model_path, "models/" + name + ".gguf");
  EDGELM_REQUIRE_SHARED(text_path, "golden/conformance/ppl-text.txt");
  EDGELM_REQUIRE_SHARED(readme, "golden/README.md");
  const double expect = golden_ppl(readme, name);
  ASSERT_GT(expect, 0) << "no PPL for " << name << " in " << readme;

  std::stringstream ss;
  ss << std::ifstream(text_path).rdbuf();
  auto model = Model::load(model_path, {.log_summary = false});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto tok = Tokenizer::from_gguf((*model)->gguf());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto ids = (*tok)->encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  const int n_chunk = std::min<int>(kChunks, static_cast<int>(ids->size()) / kCtx);
  ASSERT_EQ(n_chunk, kChunks) << "text too short: " << ids->size() << " tokens";

  auto ctx = Context::create(**model, {.n_ctx = kCtx});
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  const int first = kCtx / 2;
  const size_t V = static_cast<size_t>((*ctx)->n_vocab());
  double nll = 0;
  int count = 0;
  for (int c = 0; c < n_chunk; ++c) {
    std::vector<int32_t> chunk(ids->begin() + c * kCtx, ids->begin() + (c + 1) * kCtx);
    if ((*tok)->add_bos()) chunk[0] = (*tok)->bos();
    (*ctx)->reset();
    // Positions before `first` need no logits; the rest are scored.
    ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(chunk.data(), first)).ok());
    auto logits = (*ctx)->eval(std::span<const int32_t>(chunk.data() + first, kCtx - first), true);
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    for (int i = 0; i < kCtx - 1 - first; ++i) {
      std::vector<double> lp = testing::log_softmax(logits->subspan(i * V, V));
      nll -= lp[static_cast<size_t>(chunk[first + i + 1])];
      ++count;
    }
  }
  const double ppl = std::exp(nll / count);
  const double rel = std::abs(ppl - expect) / expect;
  std::printf(
      "[ %s ] PPL %.4f, llama.cpp %.4f, relative diff %.4f%% (bound 0.5%%), %d tokens scored\n",
      name.c_str(), ppl, expect, rel * 100, count);
  RecordProperty("ppl", std::to_string(ppl));
  EXPECT_LT(rel, 0.005) << "PPL " << ppl << " vs llama.cpp " << expect;
#endif
}

INSTANTIATE_TEST_SUITE_P(Golden, PerplexityTest,
                         ::testing::Values("conf-llama-spm-f16", "conf-llama-spm-q8_0",
                                           "conf-llama-spm-q4_0", "conf-llama-spm-q4_k_m",
                                           "conf-llama3-bpe-f16", "conf-qwen2-f16"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-' || ch == '.') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace edgelm
