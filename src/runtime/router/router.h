// The Router: answers a request on the device or in the cloud, as the policy (policy.h) decides,
// and falls back both ways: a device failure or a governor refusal goes to the cloud (unless the
// request is device-only, which then fails with a clear reason); a cloud failure (refused
// connection, HTTP 5xx, timeout, stream cut, open circuit breaker) goes to the device, which
// continues any text a cut stream already delivered. Every result carries its RouteDecision.
// Thread-safe: requests may come from several threads (the device side serialises them).
//
//   auto device = std::shared_ptr<EngineDevice>(EngineDevice::load("model.gguf").value());
//   auto cloud = std::make_shared<CloudClient>(CloudOptions{.url = "https://api.example.com"});
//   Router router(RouterConfig{}, device, cloud, governor_check);
//   RouteResult r = router.handle(req, [](std::string_view t) { fwrite(...); return true; });
//   fmt::print("{}\n", r.decision.to_json());
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
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

class Router {
 public:
  // device and cloud may be null (that side is unavailable); governor unset = always allow.
  Router(RouterConfig config, std::shared_ptr<DeviceBackend> device,
         std::shared_ptr<CloudBackend> cloud, GovernorCheck governor = {});

  RouteResult handle(const RouteRequest& req, const DeltaCallback& on_delta = {});

  RouterConfig config() const;
  void set_config(RouterConfig config);
  RouterCounters counters() const;
  // Counters as JSON (for /metrics-like endpoints).
  std::string counters_json() const;

 private:
  bool run_device(const RouteRequest& req, std::string_view continuation,
                  const DeltaCallback& on_delta, RouteResult& res);
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
