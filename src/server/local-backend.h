// Backend over the in-process engine: one Engine (weights loaded once) and a pool of N Sessions
// (one KV cache each) shared by all requests through a fair FIFO queue. A request waits for a
// free session; when `max_queue` requests already wait, it is refused at once
// (RESOURCE_EXHAUSTED -> HTTP 503). A free session whose cache shares the longest prefix with
// the new prompt is preferred, so a chat's earlier turns are not evaluated again.
//
//   LocalBackendOptions o;  o.model_path = "model.gguf";  o.n_parallel = 2;
//   ASSIGN_OR_RETURN(auto backend, LocalBackend::create(o));
//   HttpServer server(*backend, ServerOptions{});
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/backend.h"

namespace edgelm::server {

struct LocalBackendOptions {
  std::string model_path;
  std::string model_alias;      // "" = the file name without .gguf
  std::string chat_format;      // "" = detect from the model
  int n_parallel = 1;           // sessions decoded at the same time
  int n_ctx = 0;                // per session; 0 = min(training context, 4096)
  int n_threads = 0;            // per session; 0 = physical cores / n_parallel (at least 1)
  int max_queue = 64;           // requests waiting beyond the n_parallel running ones
  int default_max_tokens = -1;  // when the request gives none; -1 = until the context is full
  bool strict_quant = false;    // refuse a model whose tensors would be converted at load
};

class LocalBackend : public Backend {
 public:
  static StatusOr<std::unique_ptr<LocalBackend>> create(const LocalBackendOptions& options);
  ~LocalBackend() override;

  std::vector<ModelInfo> models() const override;
  StatusOr<std::unique_ptr<Completion>> prepare(const CompletionRequest& request) override;
  int queue_depth() const override;
  int active() const override;
  // Wakes every waiting request with an error (server shutdown).
  void shutdown();

  const Engine& engine() const { return *engine_; }
  int n_ctx() const { return n_ctx_; }

 private:
  friend class LocalCompletion;
  LocalBackend() = default;
  // Waits for a free session (FIFO) and returns its index; RESOURCE_EXHAUSTED when the queue is
  // full, FAILED_PRECONDITION after shutdown().
  StatusOr<int> acquire(const std::vector<int32_t>& prompt);
  void release(int slot);

  LocalBackendOptions options_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::string> ids_;  // accepted model names (first = advertised id)
  int64_t created_ = 0;
  int n_ctx_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> busy_;
  std::deque<uint64_t> waiting_;  // tickets, FIFO
  uint64_t next_ticket_ = 0;
  int active_ = 0;
  bool shutdown_ = false;
};

}  // namespace edgelm::server
