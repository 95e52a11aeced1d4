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
#include <sstream>

#include "conformance-util.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/monitor/eval.h"
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

// The PPL llama.cpp reported for `model`, read from the golden README's table rows
// "| model | ppl | ..." (0 if absent).
double golden_ppl(const std::string& readme, const std::string& model) {
  std::ifstream f(readme);
  std::string line;
  while (std::getline(f, line)) {
    std::stringstream row(line);
    std::string bar, name, ppl;
    if (!std::getline(row, bar, '|') || !std::getline(row, name, '|') ||
        !std::getline(row, ppl, '|'))
      continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
      return s;
    };
    if (trim(name) != model) continue;
    char* end = nullptr;
    const std::string v = trim(ppl);
    const double d = std::strtod(v.c_str(), &end);
    if (end != v.c_str() && *end == '\0') return d;
  }
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
  // The computation lives in the eval library (runtime/monitor/eval.h, `edgelm eval`).
  LogitsEvaluator ev(**ctx);
  ChunkOptions co;
  co.n_ctx = kCtx;
  co.max_chunks = kChunks;
  co.bos_token = (*tok)->add_bos() ? (*tok)->bos() : -1;
  auto r = evaluate_text(ev, nullptr, *ids, co);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->ppl.chunks, kChunks);
  const double ppl = r->ppl.ppl;
  const int64_t count = r->ppl.tokens;
  const double rel = std::abs(ppl - expect) / expect;
  std::printf(
      "[ %s ] PPL %.4f, llama.cpp %.4f, relative diff %.4f%% (bound 0.5%%), %lld tokens scored\n",
      name.c_str(), ppl, expect, rel * 100, static_cast<long long>(count));
  RecordProperty("ppl", std::to_string(ppl));
  EXPECT_LT(rel, 0.005) << "PPL " << ppl << " vs llama.cpp " << expect;
#endif
}

INSTANTIATE_TEST_SUITE_P(Golden, PerplexityTest, ::testing::ValuesIn(testing::kPerplexityModels),
                         [](const auto& info) { return testing::model_param_name(info.param); });

}  // namespace
}  // namespace edgelm
