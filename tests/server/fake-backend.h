// A scripted Backend for the server tests: model "fake", replies "tok0 tok1 ..." (max_tokens
// pieces, default 8), optionally slowly, with a bounded number of slots; records cancellations.
//
//   FakeBackend fake;  fake.delay = std::chrono::milliseconds(20);  fake.slots = 1;
//   HttpServer server(fake, {.port = 0});
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "server/backend.h"

namespace edgelm::server::testing {

class FakeBackend : public Backend {
 public:
  std::chrono::milliseconds delay{0};
  int slots = 1000;
  int max_queue = 0;  // with slots busy, prepare() fails at once (503)
  std::atomic<int> running{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> finished{0};
  std::atomic<int> prepared{0};
  CompletionRequest last;
  std::function<void()> on_release;  // runs as a completion frees its slot

  std::vector<ModelInfo> models() const override { return {{"fake", "edgelm", 1700000000}}; }

  StatusOr<std::unique_ptr<Completion>> prepare(const CompletionRequest& r) override {
    if (r.model != "fake") return Status::not_found(fmt::format("model '{}' not found", r.model));
    const std::string& text = r.endpoint == Endpoint::kChat ? r.messages.back().content : r.prompt;
    if (text.size() > 1000) return Status::out_of_range("prompt too long: 1000 bytes at most");
    if (running.load() >= slots) return Status::resource_exhausted("all slots are busy");
    last = r;
    ++prepared;
    return std::unique_ptr<Completion>(new FakeCompletion(*this, r.max_tokens.value_or(8)));
  }
  int active() const override { return running.load(); }

 private:
  class FakeCompletion : public Completion {
   public:
    FakeCompletion(FakeBackend& b, int n) : b_(b), n_(n) { ++b_.running; }
    ~FakeCompletion() override {
      if (b_.on_release) b_.on_release();
      --b_.running;
    }
    StatusOr<CompletionOutcome> run(const DeltaCallback& on_delta,
                                    const std::atomic<bool>* cancel) override {
      CompletionOutcome out;
      out.prompt_tokens = 3;
      out.finish_reason = FinishReason::kLength;
      for (int i = 0; i < n_; ++i) {
        if (b_.delay.count() > 0) std::this_thread::sleep_for(b_.delay);
        if (cancel && cancel->load()) {
          out.finish_reason = FinishReason::kCancelled;
          break;
        }
        const std::string piece = fmt::format("{}tok{}", i ? " " : "", i);
        out.text += piece;
        ++out.completion_tokens;
        if (!on_delta(piece)) {
          out.finish_reason = FinishReason::kCancelled;
          break;
        }
      }
      if (out.finish_reason == FinishReason::kCancelled) {
        ++b_.cancelled;
      } else {
        ++b_.finished;
      }
      return out;
    }

   private:
    FakeBackend& b_;
    int n_;
  };
};

}  // namespace edgelm::server::testing
