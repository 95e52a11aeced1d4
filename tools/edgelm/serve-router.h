// `edgelm serve --cloud URL`: the local server becomes the routing point. A server::Backend that
// sends each request through the router (runtime/router): the device side is the server's own
// LocalBackend (its session pool and queue), the cloud side any OpenAI-compatible endpoint.
// The privacy class comes from the request header "x-edgelm-privacy: device-only" (or
// "either", the default) and an optional "x-edgelm-prefer: device|cloud"; each decision is
// logged as one JSON line (info level) and counted.
//
//   auto local = server::LocalBackend::create(lo).value();
//   ServeRouteOptions ro;  ro.cloud.url = "https://api.example.com/v1";
//   auto routed = make_router_backend(*local, ro);
//   server::HttpServer http(*routed, so);
#pragma once

#include <memory>
#include <string>

#include "runtime/router/cloud-client.h"
#include "runtime/router/policy.h"
#include "server/backend.h"
#include "server/local-backend.h"

namespace edgelm::cli {

struct ServeRouteOptions {
  router::CloudOptions cloud;
  router::RouterConfig config;  // no uncertainty probe on the server's device (see docs)
};

std::unique_ptr<server::Backend> make_router_backend(server::LocalBackend& local,
                                                     const ServeRouteOptions& options);

}  // namespace edgelm::cli
