// The Router (see router.h).
#include "runtime/router/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace edgelm::router {

namespace {
using Clock = std::chrono::steady_clock;
}

Router::Router(RouterConfig config, std::shared_ptr<DeviceBackend> device,
               std::shared_ptr<CloudBackend> cloud, GovernorCheck governor)
    : config_(std::move(config)),
      device_(std::move(device)),
      cloud_(std::move(cloud)),
      governor_(std::move(governor)) {}

RouterConfig Router::config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

void Router::set_config(RouterConfig config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
}

RouterCounters Router::counters() const {
  RouterCounters c;
  c.requests = requests_.load();
  c.device = device_n_.load();
  c.cloud = cloud_n_.load();
  c.failed = failed_.load();
  c.fallbacks = fallbacks_.load();
  c.cloud_requests = cloud_requests_.load();
  return c;
}

std::string Router::counters_json() const {
  const RouterCounters c = counters();
  nlohmann::ordered_json j;
  j["requests"] = c.requests;
  j["device"] = c.device;
  j["cloud"] = c.cloud;
  j["failed"] = c.failed;
  j["fallbacks"] = c.fallbacks;
  j["cloud_requests"] = c.cloud_requests;
  return j.dump();
}

RouteRequest continuation_request(const RouteRequest& req, const std::string& produced,
                                  int produced_tokens) {
  RouteRequest c = req;
  if (produced.empty()) return c;
  if (c.messages.empty()) c.messages.push_back({"user", req.prompt});
  c.messages.push_back({"assistant", produced});
  if (c.max_tokens > 0) c.max_tokens = std::max(1, c.max_tokens - produced_tokens);
  return c;
}

bool Router::run_device(const RouteRequest& req, std::string_view continuation,
                        const DeltaCallback& on_delta, RouteResult& res,
                        std::optional<std::string>* governor_stop, int* tokens) {
  const auto t0 = Clock::now();
  auto a = device_->generate(req, continuation, on_delta);
  RouteAttempt att;
  att.target = RouteTarget::kDevice;
  att.ok = a.ok() && !a->governor_stop;
  att.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!a.ok()) {
    att.error = a.status().to_string();
    res.decision.attempts.push_back(att);
    res.status = a.status();
    return false;
  }
  if (a->governor_stop) {
    att.error = fmt::format("stopped by the governor after {} tokens: {}",
                            a->stats.generated_tokens, *a->governor_stop);
  }
  res.decision.attempts.push_back(att);
  res.text += a->text;
  res.finish_reason = a->finish_reason;
  res.decision.target = RouteTarget::kDevice;
  res.status = Status::ok_status();
  if (res.decision.prompt_tokens == 0) res.decision.prompt_tokens = a->stats.prompt_tokens;
  if (res.usage.prompt_tokens == 0) res.usage.prompt_tokens = a->stats.prompt_tokens;
  res.usage.completion_tokens += a->stats.generated_tokens;
  if (governor_stop) *governor_stop = a->governor_stop;
  if (tokens) *tokens = a->stats.generated_tokens;
  return true;
}

bool Router::after_governor_stop(const RouteRequest& req, const RoutePlan& plan,
                                 const std::string& reason, int tokens,
                                 const DeltaCallback& on_delta, RouteResult& res) {
  RouteDecision& d = res.decision;
  const std::string produced = res.text;  // already delivered to on_delta
  d.reasons.push_back(
      fmt::format("the governor stopped the device after {} bytes: {}", produced.size(), reason));
  res.finish_reason = "length";
  if (req.privacy == PrivacyClass::kDeviceOnly) {
    res.status = Status::failed_precondition(
        "device-only request stopped by the governor (the cloud is not used for device-only "
        "requests): " +
        reason);
    return false;
  }
  if (!plan.fallback_allowed || !cloud_ || !cloud_->available()) {
    d.reasons.push_back(
        "no fallback (" +
        (cloud_ ? cloud_->unavailable_reason() : std::string("no cloud configured")) +
        (plan.fallback_allowed ? "" : "; the cloud was unavailable when the route was chosen") +
        "): the answer stays cut short");
    return true;
  }
  d.reasons.push_back(
      produced.empty() ? std::string("fallback: cloud")
                       : fmt::format("fallback: cloud continues the {} bytes the device produced",
                                     produced.size()));
  std::string partial;
  if (run_cloud(continuation_request(req, produced, tokens), on_delta, res, &partial)) {
    fallbacks_.fetch_add(1);
    return true;
  }
  d.reasons.push_back("cloud failed: " + res.status.to_string() + ": the answer stays cut short");
  res.text += partial;  // what a cut cloud stream delivered is part of the answer
  res.status = Status::ok_status();
  res.decision.target = RouteTarget::kDevice;
  res.finish_reason = "length";
  return true;
}

bool Router::run_cloud(const RouteRequest& req, const DeltaCallback& on_delta, RouteResult& res,
                       std::string* partial) {
  CloudOutcome out = cloud_->complete(req, on_delta);
  for (const RouteAttempt& t : out.tries) {
    if (t.http_status != 0 || t.error.find("circuit breaker") == std::string::npos) {
      cloud_requests_.fetch_add(1);
    }
    res.decision.attempts.push_back(t);
  }
  if (!out.status.ok()) {
    res.status = out.status;
    if (partial) *partial = out.text;
    return false;
  }
  res.text += out.text;
  if (res.usage.prompt_tokens == 0) res.usage.prompt_tokens = out.usage.prompt_tokens;
  res.usage.completion_tokens += out.usage.completion_tokens;
  res.finish_reason = out.finish_reason.empty() ? "stop" : out.finish_reason;
  res.decision.target = RouteTarget::kCloud;
  res.status = Status::ok_status();
  return true;
}

RouteResult Router::handle(const RouteRequest& req, const DeltaCallback& on_delta) {
  return execute(req, plan(req), on_delta);
}

RoutePlan Router::plan(const RouteRequest& req) {
  requests_.fetch_add(1);
  const RouterConfig cfg = config();
  RoutePlan out;
  RouteDecision& d = out.decision;
  d.privacy = req.privacy;

  Signals s;
  s.privacy = req.privacy;
  s.hints = req.hints;
  s.device_loaded = device_ != nullptr && device_->loaded();
  if (s.device_loaded) {
    s.capability = device_->capability();
    if (governor_) s.governor = governor_(req);
  }
  // A device-only request never even asks whether the cloud is there.
  if (req.privacy != PrivacyClass::kDeviceOnly) {
    s.cloud_available = cloud_ != nullptr && cloud_->available();
    s.cloud_unavailable_reason =
        cloud_ == nullptr ? "no cloud endpoint is configured" : cloud_->unavailable_reason();
  }
  s.prompt_chars = request_text(req).size();

  Plan plan = decide(cfg, s);
  if (plan.need_probe) {
    auto probe = device_->probe(req);
    if (probe.ok()) {
      s.prompt_tokens = probe->prompt_tokens;
      d.prompt_tokens = probe->prompt_tokens;
      if (cfg.signal == "nll") {
        if (probe->mean_nll) {
          s.uncertainty = *probe->mean_nll;
        } else {
          s.probe_error = "the device did not measure the prompt's NLL (probe_nll is off)";
        }
      } else {
        s.uncertainty = probe->entropy;
      }
      d.uncertainty = s.uncertainty;
    } else {
      s.probe_error = probe.status().to_string();
    }
    d.threshold = cfg.uncertainty_threshold;
    plan = decide(cfg, s);
  }
  d.reasons = plan.reasons;
  out.primary = plan.primary;
  out.fallback_allowed = plan.fallback_allowed;
  return out;
}

RouteResult Router::execute(const RouteRequest& req, RoutePlan plan,
                            const DeltaCallback& on_delta) {
  RouteResult res;
  res.decision = plan.decision;
  RouteDecision& d = res.decision;

  if (plan.primary == RouteTarget::kNone) {
    std::string why;
    for (const std::string& r : d.reasons) why += (why.empty() ? "" : "; ") + r;
    res.status = Status::failed_precondition("no route: " + why);
    failed_.fetch_add(1);
    return res;
  }

  bool ok = false;
  std::optional<std::string> governor_stop;
  int tokens = 0;
  if (plan.primary == RouteTarget::kDevice) {
    ok = run_device(req, "", on_delta, res, &governor_stop, &tokens);
    if (ok && governor_stop) {
      ok = after_governor_stop(req, plan, *governor_stop, tokens, on_delta, res);
    } else if (!ok) {
      const Status device_error = res.status;
      d.reasons.push_back("device failed: " + device_error.to_string());
      if (req.privacy == PrivacyClass::kDeviceOnly) {
        res.status = Status(device_error.code(),
                            "device-only request failed on the device (the cloud is not used for "
                            "device-only requests): " +
                                device_error.message());
      } else if (plan.fallback_allowed && cloud_ && cloud_->available()) {
        d.reasons.push_back("fallback: cloud");
        ok = run_cloud(req, on_delta, res, nullptr);
        if (ok) fallbacks_.fetch_add(1);
        if (!ok) d.reasons.push_back("cloud failed too: " + res.status.to_string());
      } else {
        d.reasons.push_back("no fallback: " + (cloud_ ? cloud_->unavailable_reason()
                                                      : std::string("no cloud configured")));
      }
    }
  } else {
    std::string partial;
    ok = run_cloud(req, on_delta, res, &partial);
    if (!ok) {
      d.reasons.push_back("cloud failed: " + res.status.to_string());
      if (plan.fallback_allowed) {
        if (partial.empty()) {
          d.reasons.push_back("fallback: device");
        } else {
          d.reasons.push_back(
              fmt::format("fallback: device continues the {} bytes the cloud stream delivered",
                          partial.size()));
          res.text = partial;
        }
        ok = run_device(req, partial, on_delta, res, &governor_stop, &tokens);
        if (ok) fallbacks_.fetch_add(1);
        if (ok && governor_stop) {
          d.reasons.push_back(fmt::format(
              "the governor stopped the device after {} bytes: {}: the answer stays cut short "
              "(the cloud already failed)",
              res.text.size(), *governor_stop));
          res.finish_reason = "length";
        }
        if (!ok) d.reasons.push_back("device failed too: " + res.status.to_string());
      } else {
        d.reasons.push_back("no fallback to the device (it was unavailable)");
      }
    }
  }
  if (ok) {
    (d.target == RouteTarget::kDevice ? device_n_ : cloud_n_).fetch_add(1);
  } else {
    d.target = RouteTarget::kNone;
    failed_.fetch_add(1);
  }
  return res;
}

}  // namespace edgelm::router
