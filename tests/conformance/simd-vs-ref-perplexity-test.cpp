// Perplexity of the optimized (SIMD) kernels against the scalar reference kernels on the
// conformance models, llama.cpp's protocol (16 chunks of 128 on ppl-text.txt), both runs through
// the eval library in one pass (the reference as the "baseline"). Bound: 0.1% (issue 3's
// target); measured 0.0005% .. 0.05%. These random-weight models have PPL near 3e6, where one
// 8-bit activation step moves ln(PPL) visibly, so the bound holds only because both paths take
// the same float steps before quantizing activations (rms_norm, Q8_0 rounding to nearest even).
// Unoptimized and sanitizer builds (the CI test build) run the Q4_0 model only, the one furthest
// from the reference (the scalar kernels take minutes per model there), unless
// EDGELM_CONFORMANCE_FULL=1.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "conformance-util.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/monitor/eval.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace edgelm {
namespace {

class SimdVsRefPerplexity : public ::testing::TestWithParam<const char*> {};

TEST_P(SimdVsRefPerplexity, WithinPointOnePercent) {
  const std::string name = GetParam();
#if !defined(__OPTIMIZE__) || defined(__SANITIZE_ADDRESS__)
  if (name != "conf-llama-spm-q4_0" && !std::getenv("EDGELM_CONFORMANCE_FULL")) {
    GTEST_SKIP() << "SKIPPED in an unoptimized or sanitizer build (reference kernels are slow): "
                 << "set EDGELM_CONFORMANCE_FULL=1 to run " << name;
  }
#endif
  if (simd_ops_or_null() == nullptr) GTEST_SKIP() << "SKIPPED: no SIMD kernels in this build";
  EDGELM_REQUIRE_SHARED(model_path, "models/" + name + ".gguf");
  EDGELM_REQUIRE_SHARED(text_path, "golden/conformance/ppl-text.txt");
  std::stringstream ss;
  ss << std::ifstream(text_path).rdbuf();
  auto model = Model::load(model_path, {.log_summary = false});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto tok = Tokenizer::from_gguf((*model)->gguf());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto ids = (*tok)->encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();

  auto simd = Context::create(**model, {.n_ctx = 128, .ops = simd_ops_or_null()});
  auto ref = Context::create(**model, {.n_ctx = 128, .ops = &ref_ops()});
  ASSERT_TRUE(simd.ok() && ref.ok());
  LogitsEvaluator cand(**simd), base(**ref);
  ChunkOptions co;
  co.n_ctx = 128;
  co.max_chunks = 16;
  co.bos_token = (*tok)->add_bos() ? (*tok)->bos() : -1;
  auto r = evaluate_text(cand, &base, *ids, co);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->ppl.chunks, 16);
  const double rel = std::abs(r->ppl.ppl - r->baseline_ppl->ppl) / r->baseline_ppl->ppl;
  std::printf(
      "[ %s ] SIMD PPL %.4f, reference PPL %.4f, relative diff %.4f%% (bound 0.1%%), "
      "mean KL %.2e, top-1 agreement %.2f%%\n",
      name.c_str(), r->ppl.ppl, r->baseline_ppl->ppl, rel * 100, r->kl->mean, r->kl->top1 * 100);
  EXPECT_LT(rel, 0.001) << "SIMD PPL " << r->ppl.ppl << " vs reference " << r->baseline_ppl->ppl;
}

INSTANTIATE_TEST_SUITE_P(Golden, SimdVsRefPerplexity,
                         ::testing::ValuesIn(testing::kPerplexityModels),
                         [](const auto& info) { return testing::model_param_name(info.param); });

}  // namespace
}  // namespace edgelm
