// Fake Executor and TokenCodec for engine tests: no weights, fully scripted.
//
//   auto codec = std::make_shared<ByteCodec>();            // one token per byte, BOS 1, EOS 2
//   auto exec = std::make_unique<FakeExecutor>(codec->n_vocab(), 64,
//       [](std::span<const int32_t> seq) { return ByteCodec::tok('a'); });
//   Session s(std::move(exec), codec);
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/executor.h"

namespace edgelm::testing {

// Byte-level codec: token 3 + b is byte b; 0 = <unk>, 1 = BOS "<s>", 2 = EOS "</s>".
class ByteCodec : public TokenCodec {
 public:
  static constexpr int32_t kBos = 1, kEos = 2;
  static int32_t tok(unsigned char b) { return 3 + b; }

  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                        bool parse_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(kBos);
    size_t i = 0;
    while (i < text.size()) {
      if (parse_special && text.substr(i, 3) == "<s>") {
        ids.push_back(kBos);
        i += 3;
      } else if (parse_special && text.substr(i, 4) == "</s>") {
        ids.push_back(kEos);
        i += 4;
      } else {
        ids.push_back(tok(static_cast<unsigned char>(text[i++])));
      }
    }
    return ids;
  }
  std::string token_to_piece(int32_t id) const override {
    if (id == kBos || id == kEos || id == 0) return "";
    return std::string(1, static_cast<char>(id - 3));
  }
  bool is_eog(int32_t id) const override { return id == kEos; }
  int32_t bos() const override { return kBos; }
  int n_vocab() const override { return 3 + 256; }

  std::vector<int32_t> bytes(std::string_view s) const {
    std::vector<int32_t> ids;
    for (unsigned char c : s) ids.push_back(tok(c));
    return ids;
  }
};

// Logits: a deterministic non-zero ramp with a clear peak at next(cache contents).
class FakeExecutor : public Executor {
 public:
  using NextFn = std::function<int32_t(std::span<const int32_t> seq)>;
  FakeExecutor(int n_vocab, int n_ctx, NextFn next)
      : n_vocab_(n_vocab), n_ctx_(n_ctx), next_(std::move(next)), logits_(n_vocab) {}

  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens) override {
    if (tokens.empty()) return Status::invalid_argument("fake eval: no tokens");
    if (static_cast<int>(seq_.size() + tokens.size()) > n_ctx_) {
      return Status::out_of_range(
          fmt::format("fake eval: {} + {} > n_ctx {}", seq_.size(), tokens.size(), n_ctx_));
    }
    seq_.insert(seq_.end(), tokens.begin(), tokens.end());
    eval_sizes.push_back(static_cast<int>(tokens.size()));
    evaluated += static_cast<int>(tokens.size());
    const int32_t want = next_(seq_);
    for (int i = 0; i < n_vocab_; ++i) {
      logits_[i] =
          0.001f * static_cast<float>((i * 7919 + static_cast<int>(seq_.size())) % 1000) - 0.5f;
    }
    if (want >= 0 && want < n_vocab_) logits_[want] = 20.0f;
    return std::span<const float>(logits_);
  }
  int n_vocab() const override { return n_vocab_; }
  int n_ctx() const override { return n_ctx_; }
  int n_past() const override { return static_cast<int>(seq_.size()); }
  void reset() override { seq_.clear(); }
  void truncate(int n) override { seq_.resize(static_cast<size_t>(n)); }
  int n_threads() const override { return 1; }

  const std::vector<int32_t>& seq() const { return seq_; }
  std::vector<int> eval_sizes;  // tokens per eval call
  int evaluated = 0;            // tokens evaluated in total

 private:
  int n_vocab_, n_ctx_;
  NextFn next_;
  std::vector<int32_t> seq_;
  std::vector<float> logits_;
};

// next() that writes `script` after a prompt of `prompt_len` tokens, then EOS.
inline FakeExecutor::NextFn scripted(std::vector<int32_t> script, size_t prompt_len) {
  return [script = std::move(script), prompt_len](std::span<const int32_t> seq) -> int32_t {
    if (seq.size() < prompt_len) return ByteCodec::kEos;
    size_t i = seq.size() - prompt_len;
    return i < script.size() ? script[i] : ByteCodec::kEos;
  };
}

}  // namespace edgelm::testing
