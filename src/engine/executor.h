// The engine's seams (ExecuTorch LLM-runner style): everything above the model talks to an
// Executor (runs tokens through the network, owns the KV cache) and a TokenCodec (text <->
// token ids). Real ones wrap model::Context and Tokenizer (engine.h); tests pass fakes, so
// stop strings, cancellation, callbacks, stats and UTF-8 streaming are tested without weights.
//
//   class FakeExecutor : public Executor { ... };   // scripted logits
//   Session s(std::make_unique<FakeExecutor>(...), std::make_shared<FakeCodec>(...));
//   auto r = s.generate("hi", GenerateParams{}, on_token);
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace edgelm {

class Executor {
 public:
  virtual ~Executor() = default;
  // Appends `tokens` (non-empty) to the cache at position n_past() and returns the logits of
  // the last one: n_vocab() floats, valid until the next call. Fails (without changing the
  // cache) when n_past() + tokens.size() > n_ctx().
  virtual StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens) = 0;
  virtual int n_vocab() const = 0;
  virtual int n_ctx() const = 0;
  // Tokens currently in the cache.
  virtual int n_past() const = 0;
  // Empties the cache.
  virtual void reset() = 0;
  // Keeps the first n cached tokens (0 <= n <= n_past()).
  virtual void truncate(int n) = 0;
  // Threads used per eval (for stats; 0 = unknown).
  virtual int n_threads() const { return 0; }
};

class TokenCodec {
 public:
  virtual ~TokenCodec() = default;
  // add_special: add BOS/EOS as the model's metadata asks. parse_special: text such as "<s>"
  // or "<|im_start|>" becomes the special token instead of plain text.
  virtual StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                                bool parse_special) const = 0;
  // Raw bytes of one token's text (may be part of a UTF-8 character).
  virtual std::string token_to_piece(int32_t id) const = 0;
  // End of generation (EOS, EOT, <|im_end|> ...).
  virtual bool is_eog(int32_t id) const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int n_vocab() const = 0;
};

}  // namespace edgelm
