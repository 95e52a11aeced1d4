// Governor -> GovernorCheck (see governor-check.h).
#include "runtime/router/governor-check.h"

#include <fmt/format.h>

#include <chrono>

namespace edgelm::router {

GovernorCheck governor_check(std::shared_ptr<governor::Governor> governor, int64_t max_defer_ms) {
  return [governor, max_defer_ms](const RouteRequest&) {
    const double now_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    const governor::Decision d = governor->before_request(now_s);
    GovernorVerdict v;
    switch (d.action) {
      case governor::Action::kAllow:
        v.allow = true;
        break;
      case governor::Action::kDefer:
        v.allow = d.delay_ms <= max_defer_ms;
        v.reason = fmt::format("defer {} ms ({}): {}", d.delay_ms, d.code, d.reason);
        return v;
      case governor::Action::kRefuse:
        v.allow = false;
        break;
    }
    v.reason = fmt::format("{} ({})", d.reason, d.code);
    return v;
  };
}

std::string governor_stop_reason(const governor::Decision& d) {
  return d.reason.empty() ? std::string("the governor refused")
                          : fmt::format("{} ({})", d.reason, d.code);
}

}  // namespace edgelm::router
