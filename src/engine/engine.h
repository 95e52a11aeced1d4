// Engine: a loaded model with its tokenizer (and chat template), from which Sessions are opened
// (one KV cache each). The real Executor / TokenCodec adapters over model::Context and
// Tokenizer live here; Sessions keep the loaded model alive, so an Engine may be destroyed
// before its Sessions.
//
//   ASSIGN_OR_RETURN(auto engine, Engine::load("model.gguf"));
//   ASSIGN_OR_RETURN(auto session, engine->open_session({.n_ctx = 2048, .n_threads = 4}));
//   GenerateParams gp;  gp.max_tokens = 32;  gp.sampling = SamplingParams::greedy();
//   ASSIGN_OR_RETURN(GenerateResult r, session->generate("Once upon a time", gp, on_token));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/executor.h"
#include "engine/session.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"
#include "tokenizer/chat-template.h"
#include "tokenizer/tokenizer.h"

namespace edgelm {

struct EngineOptions {
  ModelOptions model;
  // Chat format name ("chatml", "llama3", "llama2", "phi3", "plain"); "" = detect from the
  // GGUF's tokenizer.chat_template.
  std::string chat_format;
};

struct SessionOptions {
  int n_ctx = 0;             // 0: min(training context, 4096)
  int n_threads = 0;         // 0: physical cores
  const Ops* ops = nullptr;  // nullptr: best_ops()
};

// Model and tokenizer, shared by the Engine and every Session opened from it.
struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// TokenCodec over the GGUF tokenizer.
class TokenizerCodec : public TokenCodec {
 public:
  explicit TokenizerCodec(std::shared_ptr<const LoadedModel> loaded) : loaded_(std::move(loaded)) {}
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special,
                                        bool parse_special) const override;
  std::string token_to_piece(int32_t id) const override;
  bool is_eog(int32_t id) const override;
  int32_t bos() const override;
  int n_vocab() const override;

 private:
  std::shared_ptr<const LoadedModel> loaded_;
};

// Executor over model::Context.
class ContextExecutor : public Executor {
 public:
  ContextExecutor(std::shared_ptr<const LoadedModel> loaded, std::unique_ptr<Context> ctx)
      : loaded_(std::move(loaded)), ctx_(std::move(ctx)) {}
  StatusOr<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int n_vocab() const override { return ctx_->n_vocab(); }
  int n_ctx() const override { return ctx_->n_ctx(); }
  int n_past() const override { return ctx_->n_past(); }
  void reset() override { ctx_->reset(); }
  void truncate(int n) override { ctx_->truncate(n); }
  int n_threads() const override { return ctx_->n_threads(); }
  Context& context() { return *ctx_; }

 private:
  std::shared_ptr<const LoadedModel> loaded_;  // declared first: outlives ctx_
  std::unique_ptr<Context> ctx_;
};

class Engine {
 public:
  // Loads the model and its tokenizer. Errors name the file (missing, not GGUF, corrupt,
  // unsupported architecture ...).
  static StatusOr<std::unique_ptr<Engine>> load(const std::string& path,
                                                const EngineOptions& options = {});

  StatusOr<std::unique_ptr<Session>> open_session(const SessionOptions& options = {}) const;

  const Model& model() const { return *loaded_->model; }
  const Tokenizer& tokenizer() const { return *loaded_->tokenizer; }
  std::shared_ptr<const TokenCodec> codec() const { return codec_; }
  double load_ms() const { return load_ms_; }
  ChatFormat chat_format() const { return chat_format_; }

 private:
  Engine() = default;
  std::shared_ptr<LoadedModel> loaded_;
  std::shared_ptr<const TokenCodec> codec_;
  double load_ms_ = 0;
  ChatFormat chat_format_ = ChatFormat::kPlain;
};

}  // namespace edgelm
