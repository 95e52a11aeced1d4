// Local engine backend: session pool + FIFO queue (see local-backend.h).
#include "server/local-backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/chat.h"

namespace edgelm::server {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

class LocalCompletion : public Completion {
 public:
  LocalCompletion(LocalBackend& backend, int slot, std::vector<int32_t> prompt, GenerateParams gp)
      : backend_(backend), slot_(slot), prompt_(std::move(prompt)), gp_(std::move(gp)) {}
  ~LocalCompletion() override { backend_.release(slot_); }

  StatusOr<CompletionOutcome> run(const DeltaCallback& on_delta,
                                  const std::atomic<bool>* cancel) override {
    Session& session = *backend_.sessions_[slot_];
    bool client_gone = false;
    auto r = session.generate_tokens(
        prompt_, gp_,
        [&](std::string_view text, int32_t) {
          if (text.empty() || !on_delta) return true;
          if (!on_delta(text)) {
            client_gone = true;
            return false;
          }
          return true;
        },
        cancel);
    if (!r.ok()) return r.status();
    CompletionOutcome out;
    out.text = std::move(r->text);
    out.prompt_tokens = static_cast<int>(prompt_.size());
    out.completion_tokens = static_cast<int>(r->tokens.size());
    switch (r->stop_reason) {
      case StopReason::kEog:
      case StopReason::kStopString:
        out.finish_reason = FinishReason::kStop;
        break;
      case StopReason::kMaxTokens:
      case StopReason::kContextFull:
      default:  // e.g. a governor's budget: the answer was cut short
        out.finish_reason = FinishReason::kLength;
        break;
      case StopReason::kCancelled:
      case StopReason::kCallback:
        out.finish_reason = FinishReason::kCancelled;
        break;
    }
    if (client_gone) out.finish_reason = FinishReason::kCancelled;
    out.stopped_by_hook = r->stop_reason == StopReason::kGovernor;
    out.answered_by_model = backend_.ids_.front();
    out.generation = std::move(*r);  // for the monitor; its text was moved into out.text
    return out;
  }

  StatusOr<PromptProbe> probe_prompt() override {
    const auto t0 = std::chrono::steady_clock::now();
    GenerateParams gp;
    gp.max_tokens = 1;
    gp.sampling = SamplingParams::greedy();
    gp.ignore_eog = true;
    gp.reuse_cache = true;
    auto r = backend_.sessions_[slot_]->generate_tokens(prompt_, gp);
    if (!r.ok()) return r.status().with_context("prompt probe");
    if (r->token_entropies.empty()) {
      return Status::internal("prompt probe: the engine reported no entropy for the first token");
    }
    PromptProbe p;
    p.prompt_tokens = static_cast<int>(prompt_.size());
    p.entropy = r->token_entropies.front();
    p.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return p;
  }

  void set_before_token(std::function<bool(int)> hook) override {
    gp_.before_token = std::move(hook);
  }

 private:
  LocalBackend& backend_;
  int slot_;
  std::vector<int32_t> prompt_;
  GenerateParams gp_;
};

StatusOr<std::unique_ptr<LocalBackend>> LocalBackend::create(const LocalBackendOptions& options) {
  if (options.n_parallel < 1 || options.n_parallel > 256) {
    return Status::invalid_argument(
        fmt::format("--parallel must be between 1 and 256, got {}", options.n_parallel));
  }
  if (options.max_queue < 0) {
    return Status::invalid_argument(
        fmt::format("--max-queue must be >= 0, got {}", options.max_queue));
  }
  std::unique_ptr<LocalBackend> b(new LocalBackend());
  b->options_ = options;
  EngineOptions eo;
  eo.model.strict_quant = options.strict_quant;
  eo.chat_format = options.chat_format;
  auto engine = Engine::load(options.model_path, eo);
  if (!engine.ok()) return engine.status();
  b->engine_ = std::move(*engine);
  SessionOptions so;
  so.n_ctx = options.n_ctx;
  so.n_threads = options.n_threads;
  if (so.n_threads == 0) {
    const int cores = std::max(1u, std::thread::hardware_concurrency());
    so.n_threads = std::max(1, cores / options.n_parallel);
  }
  for (int i = 0; i < options.n_parallel; ++i) {
    auto s = b->engine_->open_session(so);
    if (!s.ok()) return s.status();
    b->sessions_.push_back(std::move(*s));
  }
  b->n_ctx_ = b->sessions_[0]->n_ctx();
  b->busy_.assign(b->sessions_.size(), false);
  const std::filesystem::path p(options.model_path);
  std::string stem = p.filename().string();
  if (stem.size() > 5 && stem.ends_with(".gguf")) stem.resize(stem.size() - 5);
  if (!options.model_alias.empty()) b->ids_.push_back(options.model_alias);
  b->ids_.push_back(stem);
  b->ids_.push_back(p.filename().string());
  b->ids_.push_back(options.model_path);
  std::error_code ec;
  auto mtime = std::filesystem::last_write_time(p, ec);
  if (!ec) {
    const auto sys = std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         mtime - std::filesystem::file_time_type::clock::now());
    b->created_ = std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
  }
  return b;
}

LocalBackend::~LocalBackend() { shutdown(); }

std::vector<ModelInfo> LocalBackend::models() const {
  ModelInfo m;
  m.id = ids_.front();
  m.created = created_;
  return {m};
}

int LocalBackend::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(waiting_.size());
}

int LocalBackend::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

void LocalBackend::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

StatusOr<int> LocalBackend::acquire(const std::vector<int32_t>& prompt) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shutdown_) return Status::failed_precondition("the server is shutting down");
  const bool any_free = std::find(busy_.begin(), busy_.end(), false) != busy_.end();
  if (!(any_free && waiting_.empty()) && static_cast<int>(waiting_.size()) >= options_.max_queue) {
    return Status::resource_exhausted(
        fmt::format("The server is busy: {} requests are running and {} are queued (the queue "
                    "holds at most {}). Retry later.",
                    active_, waiting_.size(), options_.max_queue));
  }
  const uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  cv_.wait(lock, [&] {
    return shutdown_ || (waiting_.front() == ticket &&
                         std::find(busy_.begin(), busy_.end(), false) != busy_.end());
  });
  waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
  if (shutdown_) {
    cv_.notify_all();
    return Status::failed_precondition("the server is shutting down");
  }
  // The free session sharing the longest prefix with the prompt.
  int best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < busy_.size(); ++i) {
    if (busy_[i]) continue;
    const auto& cached = sessions_[i]->cached_tokens();
    size_t n = 0;
    while (n < cached.size() && n < prompt.size() && cached[n] == prompt[n]) ++n;
    if (best < 0 || n > best_len) {
      best = static_cast<int>(i);
      best_len = n;
    }
  }
  busy_[best] = true;
  ++active_;
  lock.unlock();
  cv_.notify_all();  // the next ticket may proceed if another session is free
  return best;
}

void LocalBackend::release(int slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_[slot] = false;
    --active_;
  }
  cv_.notify_all();
}

StatusOr<std::unique_ptr<Completion>> LocalBackend::prepare(const CompletionRequest& request) {
  if (std::find(ids_.begin(), ids_.end(), request.model) == ids_.end()) {
    return Status::not_found(fmt::format("The model '{}' does not exist. This server serves '{}'.",
                                         request.model, ids_.front()));
  }
  const ChatFormat format = engine_->chat_format();
  std::string prompt;
  GenerateParams gp;
  if (request.endpoint == Endpoint::kChat) {
    prompt = apply_chat_template(format, request.messages, /*add_generation_prompt=*/true);
    gp.stop = chat_stop_strings(format);
  } else {
    prompt = request.prompt;
  }
  for (const auto& s : request.stop) gp.stop.push_back(s);
  auto tokens = engine_->codec()->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) return Status::invalid_argument("The prompt is empty.");
  if (static_cast<int>(tokens->size()) >= n_ctx_) {
    return Status::out_of_range(
        fmt::format("This model's maximum context length is {} tokens. However, your "
                    "{} resulted in {} tokens. Please reduce the length of the {}.",
                    n_ctx_, request.endpoint == Endpoint::kChat ? "messages" : "prompt",
                    tokens->size(), request.endpoint == Endpoint::kChat ? "messages" : "prompt"));
  }
  gp.max_tokens = request.max_tokens.value_or(options_.default_max_tokens);
  gp.sampling.temperature = request.temperature;
  gp.sampling.top_p = request.top_p;
  gp.sampling.top_k = 0;
  gp.sampling.min_p = 0.0f;
  gp.sampling.frequency_penalty = request.frequency_penalty;
  gp.sampling.presence_penalty = request.presence_penalty;
  gp.sampling.seed = request.seed.value_or(kRandomSeed);
  gp.add_special = true;
  gp.parse_special = true;
  gp.reuse_cache = true;
  auto slot = acquire(*tokens);
  if (!slot.ok()) return slot.status();
  return std::unique_ptr<Completion>(
      new LocalCompletion(*this, *slot, std::move(*tokens), std::move(gp)));
}

}  // namespace edgelm::server
