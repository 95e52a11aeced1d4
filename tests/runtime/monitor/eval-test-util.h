// Fakes for the eval tests: a byte-level codec, an executor whose logits are a closed-form
// function of the cached sequence (so tests can recompute them by hand), and an executor that
// "answers" known prompts (for task metrics).
//
//   FnExecutor ex(32, 64, [](std::span<const int32_t> seq, int v) { return 0.1f * v; });
//   AnswerExecutor ans(codec, {{"2+2=", "4"}}, 128);
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/executor.h"

namespace edgelm::testing {

// Token 3 + b is byte b; 1 = BOS, 2 = EOS, 0 = unused.
class EvalByteCodec : public TokenCodec {
 public:
  static constexpr int32_t kBos = 1, kEos = 2;
  static int32_t tok(unsigned char b) { return 3 + b; }
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                        bool) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(kBos);
    for (unsigned char c : text) ids.push_back(tok(c));
    return ids;
  }
  std::string token_to_piece(int32_t id) const override {
    return id >= 3 ? std::string(1, static_cast<char>(id - 3)) : std::string();
  }
  bool is_eog(int32_t id) const override { return id == kEos; }
  int32_t bos() const override { return kBos; }
  int n_vocab() const override { return 3 + 256; }
};

// Logits[v] = fn(sequence so far, v).
class FnExecutor : public Executor {
 public:
  using Fn = std::function<float(std::span<const int32_t> seq, int v)>;
  FnExecutor(int n_vocab, int n_ctx, Fn fn)
      : n_vocab_(n_vocab), n_ctx_(n_ctx), fn_(std::move(fn)), logits_(n_vocab) {}
  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens) override {
    if (tokens.empty()) return Status::invalid_argument("fn eval: no tokens");
    if (static_cast<int>(seq_.size() + tokens.size()) > n_ctx_) {
      return Status::out_of_range(
          fmt::format("fn eval: {} + {} > {}", seq_.size(), tokens.size(), n_ctx_));
    }
    seq_.insert(seq_.end(), tokens.begin(), tokens.end());
    for (int v = 0; v < n_vocab_; ++v) logits_[v] = fn_(seq_, v);
    return std::span<const float>(logits_);
  }
  int n_vocab() const override { return n_vocab_; }
  int n_ctx() const override { return n_ctx_; }
  int n_past() const override { return static_cast<int>(seq_.size()); }
  void reset() override { seq_.clear(); }
  void truncate(int n) override {
    if (n < static_cast<int>(seq_.size())) seq_.resize(static_cast<size_t>(std::max(n, 0)));
  }

 private:
  int n_vocab_, n_ctx_;
  Fn fn_;
  std::vector<int32_t> seq_;
  std::vector<float> logits_;
};

// Predicts, after a known prompt, the bytes of its answer and then EOS (logit 10 against a
// small ramp elsewhere); after an unknown prompt, EOS.
inline FnExecutor::Fn answering(std::map<std::string, std::string> answers) {
  return [answers = std::move(answers)](std::span<const int32_t> seq, int v) -> float {
    std::string text;
    for (int32_t t : seq)
      if (t >= 3) text += static_cast<char>(t - 3);
    int32_t want = EvalByteCodec::kEos;
    for (const auto& [p, a] : answers) {
      if (text.size() >= p.size() && text.compare(0, p.size(), p) == 0) {
        const size_t i = text.size() - p.size();
        if (i < a.size()) want = EvalByteCodec::tok(static_cast<unsigned char>(a[i]));
      }
    }
    return v == want ? 10.0f : 0.001f * static_cast<float>(v % 97);
  };
}

// Mean NLL and KL computed the slow way, for comparisons: log-softmax by hand in long double.
inline std::vector<long double> slow_log_softmax(std::span<const float> l) {
  long double mx = l[0];
  for (float x : l) mx = std::max<long double>(mx, x);
  long double s = 0;
  for (float x : l) s += std::exp(static_cast<long double>(x) - mx);
  std::vector<long double> out;
  for (float x : l) out.push_back(static_cast<long double>(x) - mx - std::log(s));
  return out;
}

}  // namespace edgelm::testing
