// The device side of the router: a DeviceBackend answers requests with the local model and
// measures how unsure that model is about a prompt before answering (the probe). EngineDevice is
// the real one over an Engine: the probe runs the prompt once (prefill plus one greedy step,
// giving the entropy of the next-token distribution after the prompt) and leaves the prompt in
// the KV cache, so a device answer that follows reuses it (only the last prompt token is
// evaluated again). Optionally also the mean negative log-likelihood of the prompt's last
// `nll_tail` tokens (token by token; costs one more prefill). With a governor
// (EngineDeviceOptions::governor) every answer runs under its per-token hook
// (governor/engine-hook.h): a refusal stops generation and DeviceAnswer::governor_stop says why,
// so the router can continue the answer in the cloud.
//
//   ASSIGN_OR_RETURN(auto device, EngineDevice::load("model.gguf", {.n_ctx = 2048}));
//   ASSIGN_OR_RETURN(DeviceProbe p, device->probe(req));      // p.entropy, p.prompt_tokens
//   ASSIGN_OR_RETURN(DeviceAnswer a, device->generate(req, "", on_delta));
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/status.h"
#include "engine/engine.h"
#include "engine/session.h"
#include "runtime/governor/governor.h"
#include "runtime/router/route-types.h"

namespace edgelm::router {

struct DeviceProbe {
  int prompt_tokens = 0;
  double entropy = 0;              // nats, of the next-token distribution after the prompt
  std::optional<double> mean_nll;  // nats/token over the prompt's last tokens (if asked)
  double ms = 0;
};

struct DeviceAnswer {
  std::string text;
  std::string finish_reason;  // "stop", "length", "cancelled"
  GenerationStats stats;
  // Set when the governor stopped generation (before the prompt or between tokens): its
  // reason; `text` holds what was produced until then (stats.generated_tokens tokens).
  std::optional<std::string> governor_stop;
};

struct DeviceCapability {
  uint64_t ram_available_bytes = 0;  // MemAvailable now (0 = unknown)
  uint64_t model_bytes = 0;          // the model's weights (0 = unknown)
  double decode_tps = 0;             // measured on this device (moving average; 0 = not yet)
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual bool loaded() const = 0;
  virtual DeviceCapability capability() const = 0;
  // The request's prompt as the device sees it (chat rendered with the model's template).
  virtual StatusOr<DeviceProbe> probe(const RouteRequest& req) = 0;
  // Answers `req`; `continuation` is assistant text already delivered (e.g. by a cloud stream
  // that was cut): the device continues after it and returns only the new text.
  virtual StatusOr<DeviceAnswer> generate(const RouteRequest& req, std::string_view continuation,
                                          const DeltaCallback& on_delta) = 0;
};

struct EngineDeviceOptions {
  SessionOptions session;
  bool probe_nll = false;  // also measure the prompt's mean NLL (one more prefill)
  int nll_tail = 16;       // tokens at the end of the prompt whose NLL is averaged
  // Consulted before the prompt and before every decode step of an answer (not the probe).
  std::shared_ptr<governor::Governor> governor;
};

class EngineDevice : public DeviceBackend {
 public:
  EngineDevice(std::shared_ptr<const Engine> engine, EngineDeviceOptions options = {});
  static StatusOr<std::unique_ptr<EngineDevice>> load(const std::string& model_path,
                                                      EngineDeviceOptions options = {});

  bool loaded() const override { return engine_ != nullptr; }
  DeviceCapability capability() const override;
  StatusOr<DeviceProbe> probe(const RouteRequest& req) override;
  StatusOr<DeviceAnswer> generate(const RouteRequest& req, std::string_view continuation,
                                  const DeltaCallback& on_delta) override;
  // The prompt text the device evaluates for `req`.
  std::string render(const RouteRequest& req) const;
  const Engine& engine() const { return *engine_; }

 private:
  Status ensure_session();
  std::shared_ptr<const Engine> engine_;
  EngineDeviceOptions options_;
  std::mutex mu_;  // one request at a time on the session
  std::unique_ptr<Session> session_;
  std::atomic<double> tps_ewma_{0};
};

// MemAvailable from /proc/meminfo in bytes (0 when unknown).
uint64_t available_ram_bytes();

}  // namespace edgelm::router
