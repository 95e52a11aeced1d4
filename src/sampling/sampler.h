// Token sampling: a chain of stages over a candidate list, as in llama.cpp's sampler chain:
// penalties -> top-k -> top-p -> min-p -> temperature -> dist (random draw), or
// penalties -> greedy (argmax) when temperature <= 0. The random draw uses a seeded
// std::mt19937_64, so the same seed and logits give the same tokens.
//
//   SamplingParams sp;  sp.temperature = 0.7f;  sp.top_k = 40;  sp.seed = 42;
//   SamplerChain chain = make_sampler_chain(sp);
//   int32_t id = chain.sample(logits);   // logits: n_vocab floats
//   chain.accept(id);                    // feeds the repetition-penalty history
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace edgelm {

// Seed value meaning "pick one from std::random_device" (the chain reports the one it used).
inline constexpr uint64_t kRandomSeed = ~uint64_t{0};

struct SamplingParams {
  float temperature = 0.8f;        // <= 0: greedy (argmax after penalties)
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off; keeps p >= min_p * p_max
  float repeat_penalty = 1.0f;     // 1: off; logit > 0 divided by it, logit <= 0 multiplied
  int32_t repeat_last_n = 64;      // history length for all penalties; 0: off, -1: unlimited
  float frequency_penalty = 0.0f;  // subtracted count * value
  float presence_penalty = 0.0f;   // subtracted once if the token occurred
  uint64_t seed = kRandomSeed;

  // Parameters for plain greedy decoding (temperature 0, no penalties).
  static SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0.0f;
    return p;
  }
};

struct TokenData {
  int32_t id;
  float logit;
  float p;  // probability; valid after a stage that calls Candidates::softmax()
};

// The working set the stages narrow down. `sorted` means descending by logit.
struct Candidates {
  std::vector<TokenData> data;
  bool sorted = false;
  int32_t selected = -1;  // index into data chosen by a final stage (greedy / dist)

  // Fills data with every id of `logits` (p = 0, unsorted).
  void assign(std::span<const float> logits);
  // Sorts descending by logit (stable tie order: lower id first).
  void sort();
  // Sorts and keeps the k best (k > 0 and < size).
  void keep_top(size_t k);
  // Sets p to softmax(logit) over the current data (sorts first).
  void softmax();
};

// One stage of a chain.
class SamplerStage {
 public:
  virtual ~SamplerStage() = default;
  virtual const char* name() const = 0;
  virtual void apply(Candidates& c) = 0;
  // A token was chosen and appended to the sequence.
  virtual void accept(int32_t /*token*/) {}
  // Forget history (new sequence).
  virtual void reset() {}
};

// Repetition, frequency and presence penalties over the last `last_n` accepted tokens.
class PenaltiesStage : public SamplerStage {
 public:
  PenaltiesStage(int32_t last_n, float repeat, float frequency, float presence);
  const char* name() const override { return "penalties"; }
  void apply(Candidates& c) override;
  void accept(int32_t token) override;
  void reset() override { history_.clear(); }

 private:
  int32_t last_n_;
  float repeat_, frequency_, presence_;
  std::deque<int32_t> history_;
};

class TopKStage : public SamplerStage {
 public:
  explicit TopKStage(int32_t k) : k_(k) {}
  const char* name() const override { return "top-k"; }
  void apply(Candidates& c) override;

 private:
  int32_t k_;
};

// Keeps the smallest prefix (by probability) whose cumulative probability reaches p.
class TopPStage : public SamplerStage {
 public:
  explicit TopPStage(float p, size_t min_keep = 1) : p_(p), min_keep_(min_keep) {}
  const char* name() const override { return "top-p"; }
  void apply(Candidates& c) override;

 private:
  float p_;
  size_t min_keep_;
};

// Keeps tokens whose probability is at least p * (the largest probability).
class MinPStage : public SamplerStage {
 public:
  explicit MinPStage(float p, size_t min_keep = 1) : p_(p), min_keep_(min_keep) {}
  const char* name() const override { return "min-p"; }
  void apply(Candidates& c) override;

 private:
  float p_;
  size_t min_keep_;
};

// Divides logits by t (t > 0).
class TemperatureStage : public SamplerStage {
 public:
  explicit TemperatureStage(float t) : t_(t) {}
  const char* name() const override { return "temperature"; }
  void apply(Candidates& c) override;

 private:
  float t_;
};

// Picks the largest logit (lowest id on ties).
class GreedyStage : public SamplerStage {
 public:
  const char* name() const override { return "greedy"; }
  void apply(Candidates& c) override;
};

// Draws from softmax(logits) with a seeded mt19937_64.
class DistStage : public SamplerStage {
 public:
  explicit DistStage(uint64_t seed) : rng_(seed) {}
  const char* name() const override { return "dist"; }
  void apply(Candidates& c) override;

 private:
  std::mt19937_64 rng_;
};

class SamplerChain {
 public:
  SamplerChain() = default;
  SamplerChain(SamplerChain&&) = default;
  SamplerChain& operator=(SamplerChain&&) = default;

  void add(std::unique_ptr<SamplerStage> stage) { stages_.push_back(std::move(stage)); }
  size_t size() const { return stages_.size(); }
  // "penalties -> top-k -> ... -> dist".
  std::string describe() const;

  // Runs every stage on the logits and returns the chosen id. The last stage must select
  // (greedy or dist); if none did, the highest remaining logit is taken. logits must be non-empty.
  int32_t sample(std::span<const float> logits);
  // Records a token chosen for the sequence (prompt tokens too, for penalties).
  void accept(int32_t token);
  void reset();

  // The seed the random stage uses (resolved when kRandomSeed was asked for).
  uint64_t seed() const { return seed_; }
  void set_seed(uint64_t s) { seed_ = s; }
  // The candidates after the last sample() (for inspection and tests).
  const Candidates& last_candidates() const { return cand_; }

 private:
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  Candidates cand_;
  uint64_t seed_ = 0;
};

// Builds the standard chain for `params` (see the header comment for the order). Stages that are
// off (top_k <= 0, top_p >= 1, min_p <= 0, no penalties) are left out.
SamplerChain make_sampler_chain(const SamplingParams& params);

}  // namespace edgelm
