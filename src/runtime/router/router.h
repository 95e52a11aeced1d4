// The Router: answers a request on the device or in the cloud, as the policy (policy.h) decides,
// and falls back both ways: a device failure or a governor refusal goes to the cloud (unless the
// request is device-only, which then fails with a clear reason); a cloud failure (refused
// connection, HTTP 5xx, timeout, stream cut, open circuit breaker) goes to the device, which
// continues any text a cut stream already delivered. A governor that stops the device in the
// middle of an answer (DeviceAnswer::governor_stop) hands the rest to the cloud, which is asked
// to continue the text already produced (device-only: the request fails with the governor's
// reason). Every result carries its RouteDecision. handle() = plan() + execute(): plan() decides
// (governor, policy, the device's uncertainty probe) before any answer text exists, so a server
// can announce the target before its first byte.
// Thread-safe: requests may come from several threads (the device side serialises them).
//
//   auto device = std::shared_ptr<EngineDevice>(EngineDevice::load("model.gguf").value());
//   auto cloud = std::make_shared<CloudClient>(CloudOptions{.url = "https://api.example.com"});
//   Router router(RouterConfig{}, device, cloud, governor_check);
//   RouteResult r = router.handle(req, [](std::string_view t) { fwrite(...); return true; });
//   fmt::print("{}\n", r.decision.to_json());
//   RoutePlan p = router.plan(req);                  // or in two steps
//   RouteResult r2 = router.execute(req, std::move(p), on_delta);
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/router/cloud-client.h"
#include "runtime/router/device.h"
#include "runtime/router/policy.h"
#include "runtime/router/route-types.h"

namespace edgelm::router {

struct RouterCounters {
  uint64_t requests = 0;
  uint64_t device = 0;          // answered on the device
  uint64_t cloud = 0;           // answered in the cloud
  uint64_t failed = 0;          // no answer
  uint64_t fallbacks = 0;       // answered by the side that was not chosen first
  uint64_t cloud_requests = 0;  // HTTP tries sent to the cloud
};

// What the policy decided for a request before any answer is produced.
struct RoutePlan {
  RouteTarget primary = RouteTarget::kNone;  // kNone: no side can answer (see reasons)
  bool fallback_allowed = false;
  RouteDecision decision;  // privacy, reasons, prompt_tokens, uncertainty, threshold so far
};

// The request the cloud gets to continue `produced` (text already delivered): the request's
// messages (a plain prompt as one user message) plus an assistant message holding `produced`;
// max_tokens less the `produced_tokens` already spent (at least 1).
RouteRequest continuation_request(const RouteRequest& req, const std::string& produced,
                                  int produced_tokens);

class Router {
 public:
  // device and cloud may be null (that side is unavailable); governor unset = always allow.
  Router(RouterConfig config, std::shared_ptr<DeviceBackend> device,
         std::shared_ptr<CloudBackend> cloud, GovernorCheck governor = {});

  RouteResult handle(const RouteRequest& req, const DeltaCallback& on_delta = {});
  // The two halves of handle(). plan() asks the governor, runs the policy and, when the policy
  // needs it, the device's uncertainty probe (which leaves the prompt in the device's cache).
  RoutePlan plan(const RouteRequest& req);
  RouteResult execute(const RouteRequest& req, RoutePlan plan, const DeltaCallback& on_delta = {});

  RouterConfig config() const;
  void set_config(RouterConfig config);
  RouterCounters counters() const;
  // Counters as JSON (for /metrics-like endpoints).
  std::string counters_json() const;

 private:
  // True when the device produced an answer; *governor_stop is set when the governor cut it.
  bool run_device(const RouteRequest& req, std::string_view continuation,
                  const DeltaCallback& on_delta, RouteResult& res,
                  std::optional<std::string>* governor_stop, int* tokens);
  // The governor stopped the device after res.text: continue in the cloud, or end there.
  bool after_governor_stop(const RouteRequest& req, const RoutePlan& plan,
                           const std::string& reason, int tokens, const DeltaCallback& on_delta,
                           RouteResult& res);
  bool run_cloud(const RouteRequest& req, const DeltaCallback& on_delta, RouteResult& res,
                 std::string* partial);

  mutable std::mutex mu_;  // config_
  RouterConfig config_;
  std::shared_ptr<DeviceBackend> device_;
  std::shared_ptr<CloudBackend> cloud_;
  GovernorCheck governor_;
  std::atomic<uint64_t> requests_{0}, device_n_{0}, cloud_n_{0}, failed_{0}, fallbacks_{0},
      cloud_requests_{0};
};

}  // namespace edgelm::router
