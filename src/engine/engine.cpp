// Engine loading and the adapters over model::Context and Tokenizer (see engine.h).
#include "engine/engine.h"

#include <fmt/format.h>

#include <chrono>

namespace edgelm {

StatusOr<std::vector<int32_t>> TokenizerCodec::encode(std::string_view text, bool add_special,
                                                      bool parse_special) const {
  return loaded_->tokenizer->encode(text, add_special, parse_special);
}

std::string TokenizerCodec::token_to_piece(int32_t id) const {
  return loaded_->tokenizer->token_to_piece(id);
}

bool TokenizerCodec::is_eog(int32_t id) const { return loaded_->tokenizer->is_eog(id); }

int32_t TokenizerCodec::bos() const { return loaded_->tokenizer->bos(); }

int TokenizerCodec::n_vocab() const { return loaded_->tokenizer->n_vocab(); }

StatusOr<std::span<const float>> ContextExecutor::eval(std::span<const int32_t> tokens) {
  return ctx_->eval(tokens, /*all_logits=*/false);
}

StatusOr<std::unique_ptr<Engine>> Engine::load(const std::string& path,
                                               const EngineOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto loaded = std::make_shared<LoadedModel>();
  ASSIGN_OR_RETURN(loaded->model, Model::load(path, options.model));
  auto tok = Tokenizer::from_gguf(loaded->model->gguf());
  if (!tok.ok()) return tok.status().with_context(path + ": tokenizer");
  loaded->tokenizer = std::move(tok).value();
  const int64_t nv_model = loaded->model->hparams().n_vocab;
  if (loaded->tokenizer->n_vocab() > nv_model) {
    return Status::data_loss(fmt::format(
        "{}: the tokenizer has {} tokens but the model's token_embd.weight has only {} rows", path,
        loaded->tokenizer->n_vocab(), nv_model));
  }
  std::unique_ptr<Engine> e(new Engine());
  if (!options.chat_format.empty()) {
    auto f = chat_format_from_name(options.chat_format);
    if (!f) {
      return Status::invalid_argument(
          fmt::format("unknown chat format '{}' (known: chatml, llama3, llama2, phi3, plain)",
                      options.chat_format));
    }
    e->chat_format_ = *f;
  } else {
    e->chat_format_ = detect_chat_format(loaded->tokenizer->chat_template());
  }
  e->loaded_ = std::move(loaded);
  e->codec_ = std::make_shared<TokenizerCodec>(e->loaded_);
  e->load_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return e;
}

StatusOr<std::unique_ptr<Session>> Engine::open_session(const SessionOptions& options) const {
  ContextOptions co;
  co.n_ctx = options.n_ctx;
  co.n_threads = options.n_threads;
  co.ops = options.ops;
  ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::create(*loaded_->model, co));
  auto exec = std::make_unique<ContextExecutor>(loaded_, std::move(ctx));
  return std::make_unique<Session>(std::move(exec), codec_, load_ms_);
}

}  // namespace edgelm
