// The seam between the HTTP layer and whatever produces completions. The server parses and
// validates a request (request.h), asks the Backend to admit it (prepare: model check,
// prompt length, a place in the queue; failures become 4xx/503 before any byte is sent) and
// then runs the admitted Completion, which streams text deltas back. LocalBackend
// (local-backend.h) runs the in-process engine; other backends (e.g. a device/cloud router)
// implement the same two calls.
//
//   class MyBackend : public Backend { ... };
//   ASSIGN_OR_RETURN(auto c, backend.prepare(request));       // may wait for a free slot
//   ASSIGN_OR_RETURN(CompletionOutcome out, c->run([](std::string_view d) { return send(d); },
//                                                  &cancel));
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/session.h"
#include "server/request.h"

namespace edgelm::server {

struct ModelInfo {
  std::string id;
  std::string owned_by = "edgelm";
  int64_t created = 0;  // unix seconds
};

enum class FinishReason { kStop, kLength, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct CompletionOutcome {
  std::string text;  // all deltas concatenated
  int prompt_tokens = 0;
  int completion_tokens = 0;
  FinishReason finish_reason = FinishReason::kStop;
  // For the quality monitor (`edgelm serve --monitor`, docs/monitor.md). A backend that runs
  // the engine (LocalBackend) fills `generation` (its text moved into `text` above: token ids,
  // per-token log-probabilities and entropies, stop reason, timings); others leave it empty.
  std::optional<GenerateResult> generation;
  std::string answered_by_model;  // id of the model that answered ("" = unknown)
  std::string ran_on;             // "device" or "cloud" when a router chose; "" = not routed
  // When a router chose (`edgelm serve --cloud`): its decision as one JSON object (target,
  // reasons, attempts, ...; docs/router.md), written into the response as "edgelm_route".
  std::string route_json;
  // Generation was stopped by the hook of Completion::set_before_token (e.g. the governor).
  bool stopped_by_hook = false;
};

// Where a routed request goes and why, known before its first byte (response headers
// x-edgelm-route and x-edgelm-route-reason).
struct RouteHeaders {
  std::string target;  // "device" or "cloud"
  std::string reason;  // the deciding reason
};

// What evaluating a prompt tells about it (Completion::probe_prompt).
struct PromptProbe {
  int prompt_tokens = 0;
  double entropy = 0;  // nats, of the next-token distribution after the prompt
  double ms = 0;
};

// Receives each piece of new text as it is generated (whole UTF-8 characters). Returning false
// means the client is gone: the completion stops at once.
using DeltaCallback = std::function<bool(std::string_view delta)>;

// One admitted request; holds its resources (e.g. a session from the pool) until destroyed.
class Completion {
 public:
  virtual ~Completion() = default;
  // Generates. Stops early when on_delta returns false or *cancel becomes true (finish_reason
  // kCancelled).
  virtual StatusOr<CompletionOutcome> run(const DeltaCallback& on_delta,
                                          const std::atomic<bool>* cancel) = 0;

  // Optional, for a router in front of the engine (tools/edgelm/serve-router.h):
  // where this request will run and why (sent as headers); nullopt = not routed.
  virtual std::optional<RouteHeaders> route_headers() const { return std::nullopt; }
  // Evaluates the prompt on the admitted session (prefill and one greedy step) and leaves it in
  // the KV cache, so run() evaluates only its last token again. UNIMPLEMENTED unless the
  // backend runs the engine.
  virtual StatusOr<PromptProbe> probe_prompt() {
    return Status::unimplemented("this backend does not evaluate prompts");
  }
  // Installs GenerateParams::before_token for run() (e.g. governor::make_before_token_hook):
  // returning false stops generation (finish_reason kLength, outcome.stopped_by_hook).
  // Backends that do not run the engine ignore it.
  virtual void set_before_token(std::function<bool(int n_generated)> hook) { (void)hook; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::vector<ModelInfo> models() const = 0;
  // Admits a parsed request. Errors: NOT_FOUND (unknown model), OUT_OF_RANGE (prompt longer
  // than the context), RESOURCE_EXHAUSTED (queue full), INVALID_ARGUMENT.
  virtual StatusOr<std::unique_ptr<Completion>> prepare(const CompletionRequest& request) = 0;
  // Requests waiting for a slot, and running, for /metrics.
  virtual int queue_depth() const { return 0; }
  virtual int active() const { return 0; }
};

}  // namespace edgelm::server
