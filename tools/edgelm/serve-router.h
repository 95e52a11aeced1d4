// `edgelm serve --cloud URL` and `edgelm serve --governor POLICY.json`: Backends that wrap the
// server's LocalBackend.
//
// make_router_backend: the local server becomes the routing point. Each request goes through
// the router (runtime/router): the device side is the server's own LocalBackend (its session
// pool and queue), the cloud side any OpenAI-compatible endpoint. The privacy class comes from
// the request header "x-edgelm-privacy: device-only" (or "either", the default) and an optional
// "x-edgelm-prefer: device|cloud". The route is chosen when the request is admitted (before the
// first byte): the governor is asked, and with an uncertainty threshold in the router config
// the prompt is evaluated on an admitted pooled session (its next-token entropy; the prompt
// stays in that session's KV cache for the device answer). The response says where it ran and
// why: headers x-edgelm-route / x-edgelm-route-reason (the plan) and "edgelm_route" (the final
// decision with every attempt) in the JSON body or the last SSE chunk. Each decision is logged
// as one JSON line (info level).
//
// make_governed_backend: without a cloud, every local generation runs under the governor: a
// refusal before the request is FAILED_PRECONDITION (HTTP 503 naming the reason); a refusal
// between tokens ends the answer with finish_reason "length" and logs the reason (warn level).
//
//   auto local = server::LocalBackend::create(lo).value();
//   ServeRouteOptions ro;  ro.cloud.url = "https://api.example.com/v1";
//   ro.governor = load_serve_governor("policy.json", "", "").value();    // optional
//   auto routed = make_router_backend(*local, ro);
//   server::HttpServer http(*routed, so);
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "runtime/governor/governor.h"
#include "runtime/router/cloud-client.h"
#include "runtime/router/policy.h"
#include "server/backend.h"
#include "server/local-backend.h"

namespace edgelm::cli {

struct ServeRouteOptions {
  router::CloudOptions cloud;
  router::RouterConfig config;  // signal "entropy" or "none" (see check_serve_router_config)
  std::shared_ptr<governor::Governor> governor;  // null: no governor
  int64_t max_defer_ms = 1000;                   // a longer governor "defer" counts as a refusal
};

// The config errors serve can tell at startup: the server's probe measures the next-token
// entropy only, so signal "nll" with a threshold is INVALID_ARGUMENT.
Status check_serve_router_config(const router::RouterConfig& config);

// The governor for `serve --governor POLICY.json [--sensor sysfs|none] [--sysfs-root DIR]`:
// `sensor` "" = the policy's "sensors", else sysfs; `sysfs_root` "" = the policy's sysfs_root.
// Errors name the file and key (policy), or the unsupported sensor ("push": nothing pushes
// values into a server).
StatusOr<std::shared_ptr<governor::Governor>> load_serve_governor(const std::string& policy_path,
                                                                  const std::string& sensor,
                                                                  const std::string& sysfs_root);

std::unique_ptr<server::Backend> make_router_backend(server::LocalBackend& local,
                                                     const ServeRouteOptions& options);

std::unique_ptr<server::Backend> make_governed_backend(server::LocalBackend& local,
                                                       std::shared_ptr<governor::Governor> governor,
                                                       int64_t max_defer_ms = 1000);

}  // namespace edgelm::cli
