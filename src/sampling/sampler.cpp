// Sampler stages and chain (see sampler.h).
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace edgelm {

namespace {

bool better(const TokenData& a, const TokenData& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

// Uniform double in [0, 1) from 53 random bits: the same on every platform (unlike
// std::uniform_real_distribution, whose algorithm is left to the library).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

void Candidates::assign(std::span<const float> logits) {
  data.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    float l = logits[i];
    if (std::isnan(l)) l = -std::numeric_limits<float>::infinity();
    data[i] = TokenData{static_cast<int32_t>(i), l, 0.0f};
  }
  sorted = false;
  selected = -1;
}

void Candidates::sort() {
  if (sorted) return;
  std::sort(data.begin(), data.end(), better);
  sorted = true;
}

void Candidates::keep_top(size_t k) {
  if (k == 0 || k >= data.size()) {
    sort();
    return;
  }
  if (!sorted) {
    std::partial_sort(data.begin(), data.begin() + static_cast<ptrdiff_t>(k), data.end(), better);
  }
  data.resize(k);
  sorted = true;
}

void Candidates::softmax() {
  if (data.empty()) return;
  sort();
  const float max_l = data[0].logit;
  if (std::isinf(max_l) && max_l < 0) {  // everything -inf: uniform
    for (auto& t : data) t.p = 1.0f / static_cast<float>(data.size());
    return;
  }
  double sum = 0;
  for (auto& t : data) {
    t.p = std::exp(t.logit - max_l);
    sum += t.p;
  }
  for (auto& t : data) t.p = static_cast<float>(t.p / sum);
}

// ---------------------------------------------------------------------------------------------

PenaltiesStage::PenaltiesStage(int32_t last_n, float repeat, float frequency, float presence)
    : last_n_(last_n), repeat_(repeat), frequency_(frequency), presence_(presence) {}

void PenaltiesStage::accept(int32_t token) {
  if (last_n_ == 0) return;
  history_.push_back(token);
  if (last_n_ > 0) {
    while (history_.size() > static_cast<size_t>(last_n_)) history_.pop_front();
  }
}

void PenaltiesStage::apply(Candidates& c) {
  if (history_.empty()) return;
  if (repeat_ == 1.0f && frequency_ == 0.0f && presence_ == 0.0f) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t t : history_) ++counts[t];
  for (auto& td : c.data) {
    auto it = counts.find(td.id);
    if (it == counts.end()) continue;
    if (repeat_ != 1.0f) {
      td.logit = td.logit <= 0 ? td.logit * repeat_ : td.logit / repeat_;
    }
    td.logit -= static_cast<float>(it->second) * frequency_ + presence_;
  }
  c.sorted = false;
}

void TopKStage::apply(Candidates& c) {
  if (k_ <= 0) return;
  c.keep_top(static_cast<size_t>(k_));
}

void TopPStage::apply(Candidates& c) {
  if (p_ >= 1.0f || c.data.empty()) return;
  // Large unsorted vocabularies: sort only a growing head (256, 1024, ...) until it holds
  // probability p, instead of sorting everything.
  if (!c.sorted && c.data.size() > 2048) {
    float max_l = -std::numeric_limits<float>::infinity();
    for (const auto& t : c.data) max_l = std::max(max_l, t.logit);
    if (std::isfinite(max_l)) {
      double sum = 0;
      for (const auto& t : c.data) sum += std::exp(static_cast<double>(t.logit) - max_l);
      for (size_t k = 256; k < c.data.size() / 2; k *= 4) {
        std::partial_sort(c.data.begin(), c.data.begin() + static_cast<ptrdiff_t>(k), c.data.end(),
                          better);
        double cum = 0;
        for (size_t i = 0; i < k; ++i) {
          const double pi = std::exp(static_cast<double>(c.data[i].logit) - max_l) / sum;
          cum += pi;
          if (cum >= p_ && i + 1 >= min_keep_) {
            c.data.resize(i + 1);
            for (auto& t : c.data) {
              t.p = static_cast<float>(std::exp(static_cast<double>(t.logit) - max_l) / sum);
            }
            c.sorted = true;
            return;
          }
        }
      }
    }
  }
  c.softmax();
  double cum = 0;
  size_t keep = c.data.size();
  for (size_t i = 0; i < c.data.size(); ++i) {
    cum += c.data[i].p;
    if (cum >= p_ && i + 1 >= min_keep_) {
      keep = i + 1;
      break;
    }
  }
  c.data.resize(keep);
}

void MinPStage::apply(Candidates& c) {
  if (p_ <= 0.0f || c.data.empty()) return;
  float max_l = -std::numeric_limits<float>::infinity();
  for (const auto& t : c.data) max_l = std::max(max_l, t.logit);
  // p_i >= p * p_max  <=>  logit_i >= max_logit + log(p)
  const float min_logit = max_l + std::log(p_);
  std::vector<TokenData> kept;
  kept.reserve(c.data.size());
  for (const auto& t : c.data) {
    if (t.logit >= min_logit) kept.push_back(t);
  }
  if (kept.size() < min_keep_) {
    c.keep_top(min_keep_);
    return;
  }
  c.data = std::move(kept);  // filtering keeps the order, so `sorted` stays valid
}

void TemperatureStage::apply(Candidates& c) {
  if (t_ <= 0.0f || t_ == 1.0f) return;
  for (auto& t : c.data) t.logit /= t_;
}

void GreedyStage::apply(Candidates& c) {
  if (c.data.empty()) return;
  if (c.sorted) {
    c.selected = 0;
    return;
  }
  size_t best = 0;
  for (size_t i = 1; i < c.data.size(); ++i) {
    if (better(c.data[i], c.data[best])) best = i;
  }
  c.selected = static_cast<int32_t>(best);
}

void DistStage::apply(Candidates& c) {
  if (c.data.empty()) return;
  c.softmax();
  const double u = uniform01(rng_);
  double cum = 0;
  for (size_t i = 0; i < c.data.size(); ++i) {
    cum += c.data[i].p;
    if (u < cum) {
      c.selected = static_cast<int32_t>(i);
      return;
    }
  }
  c.selected = static_cast<int32_t>(c.data.size() - 1);  // rounding: cum ended below 1
}

// ---------------------------------------------------------------------------------------------

std::string SamplerChain::describe() const {
  std::string s;
  for (const auto& st : stages_) {
    if (!s.empty()) s += " -> ";
    s += st->name();
  }
  return s;
}

int32_t SamplerChain::sample(std::span<const float> logits) {
  cand_.assign(logits);
  for (auto& st : stages_) st->apply(cand_);
  if (cand_.data.empty()) return 0;
  if (cand_.selected < 0 || static_cast<size_t>(cand_.selected) >= cand_.data.size()) {
    GreedyStage().apply(cand_);
  }
  return cand_.data[static_cast<size_t>(cand_.selected)].id;
}

void SamplerChain::accept(int32_t token) {
  for (auto& st : stages_) st->accept(token);
}

void SamplerChain::reset() {
  for (auto& st : stages_) st->reset();
}

SamplerChain make_sampler_chain(const SamplingParams& p) {
  SamplerChain chain;
  const bool penalties =
      p.repeat_last_n != 0 &&
      (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
  if (penalties) {
    chain.add(std::make_unique<PenaltiesStage>(p.repeat_last_n, p.repeat_penalty,
                                               p.frequency_penalty, p.presence_penalty));
  }
  if (p.temperature <= 0.0f) {
    chain.add(std::make_unique<GreedyStage>());
    chain.set_seed(p.seed == kRandomSeed ? 0 : p.seed);
    return chain;
  }
  if (p.top_k > 0) chain.add(std::make_unique<TopKStage>(p.top_k));
  if (p.top_p < 1.0f) chain.add(std::make_unique<TopPStage>(p.top_p));
  if (p.min_p > 0.0f) chain.add(std::make_unique<MinPStage>(p.min_p));
  chain.add(std::make_unique<TemperatureStage>(p.temperature));
  uint64_t seed = p.seed;
  if (seed == kRandomSeed) {
    std::random_device rd;
    seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if (seed == kRandomSeed) seed = 0;
  }
  chain.set_seed(seed);
  chain.add(std::make_unique<DistStage>(seed));
  return chain;
}

}  // namespace edgelm
