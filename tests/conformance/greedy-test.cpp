// Greedy decoding against llama.cpp's outputs (../shared/golden/conformance/conf-*.json, see
// its README): for each recorded prompt, start from the golden prompt_ids (no tokenizer
// involved), decode 32 tokens greedily and compare, token for token, the chosen ids and the
// top-5 log-probabilities (log-softmax over the full vocabulary).
// Near-tie rule (golden/README.md): where the reference's top two log-probabilities differ by
// less than 0.01, choosing the other is not an error and ends that sequence's comparison.
// Tolerance on every compared log-probability: 0.01 for the F16 models (measured max 0.006 /
// 0.006 / 0.009 for llama-spm / llama3-bpe / qwen2 with the SIMD kernels). Q8_0: 0.12 (measured
// max 0.086, median 0.036) and a near-tie gap of 0.05: the prompt's first step matches llama.cpp
// to 5e-5, but later steps are noisy because a last-bit difference in an activation flips
// some 8-bit roundings, which these random-weight models amplify (our own ref and SIMD kernels
// differ from each other by as much, and pick different tokens at a 0.013 gap).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "conformance-util.h"
#include "model/context.h"
#include "model/model.h"
#include "test_util.h"

namespace edgelm {
namespace {

struct GreedyCase {
  const char* model;
  double logprob_tol;
  double tie_gap;  // reference top-2 gap below which a different choice ends the sequence
};

class GreedyTest : public ::testing::TestWithParam<GreedyCase> {};

TEST_P(GreedyTest, MatchesLlamaCpp) {
  const GreedyCase& c = GetParam();
  EDGELM_REQUIRE_SHARED(model_path, std::string("models/") + c.model + ".gguf");
  EDGELM_REQUIRE_SHARED(golden_path, std::string("golden/conformance/") + c.model + ".json");
  nlohmann::json golden = nlohmann::json::parse(std::ifstream(golden_path));
  auto model = Model::load(model_path, {.log_summary = false});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto ctx = Context::create(**model, {.n_ctx = 512});
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();

  double max_diff = 0;
  int compared_steps = 0, ended_by_tie = 0;
  for (const auto& g : golden.at("greedy")) {
    std::vector<int32_t> prompt = g.at("prompt_ids").get<std::vector<int32_t>>();
    const auto& steps = g.at("steps");
    (*ctx)->reset();
    auto logits = (*ctx)->eval(prompt);
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    for (size_t s = 0; s < steps.size(); ++s) {
      const auto& step = steps[s];
      const auto& top = step.at("top");
      std::vector<double> lp = testing::log_softmax(*logits);
      const int32_t ours = testing::top_k(lp, 1)[0];
      const int32_t theirs = step.at("id").get<int32_t>();
      for (const auto& t : top) {
        const int32_t id = t.at("id").get<int32_t>();
        const double ref = t.at("logprob").get<double>();
        const double diff = std::abs(lp[static_cast<size_t>(id)] - ref);
        max_diff = std::max(max_diff, diff);
        EXPECT_LE(diff, c.logprob_tol)
            << "prompt '" << g.at("prompt").get<std::string>() << "' step " << s << " id " << id
            << ": ours " << lp[static_cast<size_t>(id)] << " llama.cpp " << ref;
      }
      if (std::getenv("EDGELM_GREEDY_VERBOSE")) {
        double step_max = 0;
        for (const auto& t : top)
          step_max = std::max(
              step_max, std::abs(lp[t.at("id").get<size_t>()] - t.at("logprob").get<double>()));
        std::printf("  step %2zu max diff %.5f\n", s, step_max);
      }
      ++compared_steps;
      const double gap = top[0].at("logprob").get<double>() - top[1].at("logprob").get<double>();
      if (ours != theirs) {
        if (gap < c.tie_gap) {  // near tie: the other choice is fine, the sequences diverge here
          ++ended_by_tie;
          break;
        }
        ADD_FAILURE() << "prompt '" << g.at("prompt").get<std::string>() << "' step " << s
                      << ": chose " << ours << ", llama.cpp chose " << theirs << " (gap " << gap
                      << ")";
        break;
      }
      if (s + 1 == steps.size()) break;
      logits = (*ctx)->eval(std::span<const int32_t>(&theirs, 1));
      ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    }
  }
  std::printf(
      "[ %s ] %d steps compared, %d sequences ended at a near tie, max |logprob diff| %.5f (tol "
      "%.3g)\n",
      c.model, compared_steps, ended_by_tie, max_diff, c.logprob_tol);
  RecordProperty("max_logprob_diff", std::to_string(max_diff));
}

INSTANTIATE_TEST_SUITE_P(Golden, GreedyTest,
                         ::testing::Values(GreedyCase{"conf-llama-spm-f16", 0.01, 0.01},
                                           GreedyCase{"conf-llama-spm-q8_0", 0.12, 0.05},
                                           GreedyCase{"conf-llama3-bpe-f16", 0.01, 0.01},
                                           GreedyCase{"conf-qwen2-f16", 0.01, 0.01}),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           for (char& ch : n)
                             if (ch == '-' || ch == '.') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace edgelm
