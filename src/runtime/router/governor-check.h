// Adapts the governor (runtime/governor) to the router's GovernorCheck: before any device work
// on a request the router asks Governor::before_request; "refuse" sends the request to the
// cloud (or fails it when device-only), "defer" counts as a refusal only when the wait would
// exceed max_defer_ms (a short pacing wait keeps the request on the device).
//
//   auto gov = std::make_shared<governor::Governor>(policy, std::make_shared<SysfsSensor>());
//   Router router(cfg, device, cloud, governor_check(gov));
#pragma once

#include <memory>
#include <string>

#include "runtime/governor/governor.h"
#include "runtime/router/policy.h"

namespace edgelm::router {

GovernorCheck governor_check(std::shared_ptr<governor::Governor> governor,
                             int64_t max_defer_ms = 1000);

// Why the governor stopped a generation, from its last decision: "reason (code)".
std::string governor_stop_reason(const governor::Decision& d);

}  // namespace edgelm::router
