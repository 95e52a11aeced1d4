// Canary set and baseline. A canary file lists fixed prompts; `make_baseline` runs them on the
// released model and records, per prompt, the greedy answer and the perplexity of the prompt
// plus that answer (teacher-forced), and, over several seeded sampled generations per prompt,
// the feature distributions (features.h). `run_canary` repeats this on the model now installed
// (only while may_run_now() says so: the governor's idle / plugged-in verdict, passed as a
// plain function so this library does not depend on the governor) and `compare_canary` gives
// perplexity ratio, greedy-answer agreement and token overlap, and the feature drift tests.
//
// Canary file: one prompt per line, or JSON lines {"id": "...", "prompt": "..."}; blank lines
// and lines starting with '#' are skipped.
// Baseline file (JSON, docs/monitor.md): {"format": "edgelm.monitor.baseline", "version": 1,
//   "model": {...}, "options": {...}, "canary": [{"id", "prompt", "greedy_tokens",
//   "greedy_text", "perplexity", "n_scored"}], "features": {"mean_logprob": [...], ...}}.
// A release manifest may carry the same object as quality.monitor_baseline.
//
//   ASSIGN_OR_RETURN(auto prompts, load_canary_file("canary.txt"));
//   ASSIGN_OR_RETURN(Baseline b, make_baseline(*engine, prompts, CanaryOptions{}));
//   RETURN_IF_ERROR(save_baseline(b, "baseline.json"));
//   ASSIGN_OR_RETURN(CanaryRun run, run_canary(*engine, b, opts, may_run_now));
//   CanaryReport rep = compare_canary(b, run, thresholds);   // rep.alarm
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "runtime/monitor/drift.h"
#include "runtime/monitor/features.h"

namespace edgelm::monitor {

// general.name of the model, or its file name.
std::string model_label(const Engine& engine);

struct CanaryPrompt {
  std::string id;
  std::string prompt;
};
StatusOr<std::vector<CanaryPrompt>> load_canary_file(const std::string& path);

struct CanaryOptions {
  int max_tokens = 32;         // per generation (greedy and sampled)
  int samples_per_prompt = 4;  // seeded sampled generations per prompt (feature samples)
  uint64_t seed = 1;           // sample k of prompt i uses seed + i * samples_per_prompt + k
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  int n_ctx = 0;  // 0: enough for the longest prompt + max_tokens
  int n_threads = 0;
};
nlohmann::json to_json(const CanaryOptions& o);
StatusOr<CanaryOptions> canary_options_from_json(const nlohmann::json& j);

struct CanaryPromptResult {
  std::string id;
  std::string prompt;
  std::vector<int32_t> greedy_tokens;
  std::string greedy_text;
  double perplexity = 0;  // over the prompt's tokens after the first, then the reference answer
  int n_scored = 0;       // tokens that perplexity covers
};

struct Baseline {
  std::string model_path;
  std::string model_name;
  std::string created_utc;
  CanaryOptions options;
  std::vector<CanaryPromptResult> canary;
  std::map<std::string, std::vector<double>> features;  // feature -> sampled-generation values
};
nlohmann::json to_json(const Baseline& b);
StatusOr<Baseline> baseline_from_json(const nlohmann::json& j);
// Reads a baseline file or a release manifest carrying quality.monitor_baseline.
StatusOr<Baseline> load_baseline(const std::string& path);
Status save_baseline(const Baseline& b, const std::string& path);  // atomic (temp + rename)

struct CanaryRun {
  std::vector<CanaryPromptResult> prompts;  // greedy answers; perplexity on the REFERENCE
  std::vector<RequestFeatures> samples;     // sampled generations (source "canary")
};

using MayRunNow = std::function<bool()>;

// Runs the canary prompts on `engine`. With a reference baseline, perplexity is computed on the
// reference's greedy answers (so it compares like with like); without one, on this run's own.
// may_run_now (if set) is asked before each generation: false ends the run with CANCELLED.
StatusOr<CanaryRun> run_canary(const Engine& engine, const std::vector<CanaryPrompt>& prompts,
                               const CanaryOptions& options, const Baseline* reference = nullptr,
                               const MayRunNow& may_run_now = {},
                               const std::atomic<bool>* cancel = nullptr);
// Runs the canary file on `engine` and packs the result as a baseline.
StatusOr<Baseline> make_baseline(const Engine& engine, const std::string& model_path,
                                 const std::vector<CanaryPrompt>& prompts,
                                 const CanaryOptions& options);

// A features-only baseline (no canary prompts) from recorded production rows, e.g. a period
// of `edgelm serve --monitor` traffic on the known-good model: later traffic is then compared
// with traffic like it. model_name: the most frequent model of the rows; model_path: `origin`.
// INVALID_ARGUMENT when `rows` is empty.
StatusOr<Baseline> baseline_from_rows(const std::vector<RequestFeatures>& rows,
                                      const std::string& origin);

// Token-overlap F1 of two token sequences (multiset intersection; 1 when both are empty).
double token_overlap_f1(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

struct CanaryReport {
  double baseline_perplexity = 0;  // exp(mean NLL) over every scored token of every prompt
  double current_perplexity = 0;
  double perplexity_ratio = 1;
  double agreement = 1;  // share of prompts whose greedy answer is identical
  double overlap = 1;    // mean token-overlap F1 of greedy answers
  std::vector<FeatureDrift> features;
  std::vector<std::string> reasons;  // one line per alarm
  bool alarm = false;
  nlohmann::json to_json() const;
};
CanaryReport compare_canary(const Baseline& baseline, const CanaryRun& run,
                            const DriftThresholds& t);

// Test utility: copies the GGUF at `in` to `out` with Gaussian noise of standard deviation
// `relative_noise` x (tensor RMS) added to every tensor whose name contains one of `patterns`
// (re-quantized to its own type). Returns how many tensors changed.
StatusOr<int> write_perturbed_model(const std::string& in, const std::string& out,
                                    const std::vector<std::string>& patterns, double relative_noise,
                                    uint64_t seed = 1);

}  // namespace edgelm::monitor
