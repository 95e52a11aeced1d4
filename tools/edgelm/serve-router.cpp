// The routing and governed backends of `edgelm serve` (see serve-router.h).
#include "serve-router.h"

#include <fmt/format.h>

#include <atomic>
#include <optional>

#include "base/log.h"
#include "engine/chat.h"
#include "runtime/governor/engine-hook.h"
#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"
#include "runtime/router/governor-check.h"
#include "runtime/router/router.h"

namespace edgelm::cli {

namespace {

using namespace edgelm::router;

// Installs the governor's per-token hook on an admitted completion; the outcome holds the
// governor's last decision (its refusal when it stopped generation).
std::shared_ptr<governor::HookOutcome> govern(server::Completion& c,
                                              const std::shared_ptr<governor::Governor>& gov) {
  if (!gov) return nullptr;
  auto outcome = std::make_shared<governor::HookOutcome>();
  c.set_before_token(governor::make_before_token_hook(gov, outcome));
  return outcome;
}

// The server's LocalBackend as the router's device, for one request. The probe admits the
// request (a pooled session, waiting in the server's queue like any request) and evaluates the
// prompt there; the answer then runs on that same session, whose cache holds the prompt.
class LocalDevice : public DeviceBackend {
 public:
  LocalDevice(server::LocalBackend& local, const server::CompletionRequest& request,
              std::shared_ptr<governor::Governor> gov)
      : local_(local), request_(request), governor_(std::move(gov)) {}
  bool loaded() const override { return true; }
  DeviceCapability capability() const override {
    DeviceCapability c;
    c.ram_available_bytes = available_ram_bytes();
    c.model_bytes = local_.engine().model().weights_bytes();
    return c;
  }
  StatusOr<DeviceProbe> probe(const RouteRequest&) override {
    if (!admitted_) {
      ASSIGN_OR_RETURN(admitted_, local_.prepare(request_));
    }
    ASSIGN_OR_RETURN(server::PromptProbe p, admitted_->probe_prompt());
    DeviceProbe d;
    d.prompt_tokens = p.prompt_tokens;
    d.entropy = p.entropy;
    d.ms = p.ms;
    return d;
  }
  StatusOr<DeviceAnswer> generate(const RouteRequest&, std::string_view continuation,
                                  const DeltaCallback& on_delta) override {
    std::unique_ptr<server::Completion> completion;
    if (continuation.empty() && admitted_) {
      completion = std::move(admitted_);  // the probed session: the prompt is cached
    } else {
      admitted_.reset();
      server::CompletionRequest req = request_;
      if (!continuation.empty()) {
        // Continue the text a cut cloud stream delivered: the rendered chat plus that text.
        const ChatFormat format = local_.engine().chat_format();
        if (req.endpoint == server::Endpoint::kChat) {
          req.prompt = apply_chat_template(format, req.messages, true);
          for (const auto& s : chat_stop_strings(format)) req.stop.push_back(s);
          req.endpoint = server::Endpoint::kCompletion;
          req.messages.clear();
        }
        req.prompt.append(continuation);
      }
      ASSIGN_OR_RETURN(completion, local_.prepare(req));
    }
    auto outcome = govern(*completion, governor_);
    ASSIGN_OR_RETURN(server::CompletionOutcome out, completion->run(on_delta, cancel_));
    completion.reset();  // frees the session
    DeviceAnswer a;
    a.text = std::move(out.text);
    a.finish_reason = server::finish_reason_name(out.finish_reason);
    a.stats.prompt_tokens = out.prompt_tokens;
    a.stats.generated_tokens = out.completion_tokens;
    if (out.stopped_by_hook) a.governor_stop = governor_stop_reason(outcome->last);
    last_generation_ = std::move(out.generation);
    return a;
  }
  // The pooled session goes back to the pool (the request goes to the cloud).
  void release() { admitted_.reset(); }
  void set_cancel(const std::atomic<bool>* cancel) { cancel_ = cancel; }
  std::optional<GenerateResult>& last_generation() { return last_generation_; }

 private:
  server::LocalBackend& local_;
  server::CompletionRequest request_;
  std::shared_ptr<governor::Governor> governor_;
  const std::atomic<bool>* cancel_ = nullptr;
  std::unique_ptr<server::Completion> admitted_;
  std::optional<GenerateResult> last_generation_;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

class RoutedCompletion : public server::Completion {
 public:
  RoutedCompletion(std::shared_ptr<Router> router, std::shared_ptr<LocalDevice> device,
                   RouteRequest route, RoutePlan plan, std::string model_id)
      : router_(std::move(router)),
        device_(std::move(device)),
        route_(std::move(route)),
        plan_(std::move(plan)),
        model_id_(std::move(model_id)) {}

  std::optional<server::RouteHeaders> route_headers() const override {
    return server::RouteHeaders{route_target_name(plan_.primary), join(plan_.decision.reasons)};
  }

  StatusOr<server::CompletionOutcome> run(const server::DeltaCallback& on_delta,
                                          const std::atomic<bool>* cancel) override {
    device_->set_cancel(cancel);
    RouteResult r = router_->execute(route_, plan_, on_delta);
    device_->release();
    const std::string decision = r.decision.to_json();
    EDGELM_LOG_INFO("route: {}", decision);
    if (!r.status.ok()) return r.status;
    server::CompletionOutcome out;
    out.text = std::move(r.text);
    out.prompt_tokens =
        r.usage.prompt_tokens > 0 ? r.usage.prompt_tokens : r.decision.prompt_tokens;
    out.completion_tokens = r.usage.completion_tokens;
    out.finish_reason = r.finish_reason == "length"      ? server::FinishReason::kLength
                        : r.finish_reason == "cancelled" ? server::FinishReason::kCancelled
                                                         : server::FinishReason::kStop;
    out.ran_on = route_target_name(r.decision.target);
    out.route_json = decision;
    if (r.decision.target == RouteTarget::kDevice) {
      out.answered_by_model = model_id_;
      out.generation = std::move(device_->last_generation());
      if (out.generation && out.completion_tokens == 0) {
        out.completion_tokens = static_cast<int>(out.generation->tokens.size());
      }
    }
    return out;
  }

 private:
  std::shared_ptr<Router> router_;
  std::shared_ptr<LocalDevice> device_;
  RouteRequest route_;
  RoutePlan plan_;
  std::string model_id_;
};

class RouterBackend : public server::Backend {
 public:
  RouterBackend(server::LocalBackend& local, const ServeRouteOptions& o)
      : local_(local),
        cloud_(std::make_shared<CloudClient>(o.cloud)),
        config_(o.config),
        governor_(o.governor),
        max_defer_ms_(o.max_defer_ms) {}
  std::vector<server::ModelInfo> models() const override { return local_.models(); }
  int queue_depth() const override { return local_.queue_depth(); }
  int active() const override { return local_.active(); }

  StatusOr<std::unique_ptr<server::Completion>> prepare(
      const server::CompletionRequest& request) override {
    auto privacy = parse_privacy_class(request.privacy);
    if (!privacy.ok()) {
      return Status::invalid_argument("header x-edgelm-privacy: " + privacy.status().message());
    }
    if (!request.route_prefer.empty() && request.route_prefer != "device" &&
        request.route_prefer != "cloud") {
      return Status::invalid_argument(fmt::format(
          "header x-edgelm-prefer: '{}': expected 'device' or 'cloud'", request.route_prefer));
    }
    RouteRequest route;
    route.messages = request.messages;
    route.prompt = request.prompt;
    route.privacy = *privacy;
    route.hints.prefer = request.route_prefer;
    route.max_tokens = request.max_tokens.value_or(-1);
    route.temperature = request.temperature;
    route.stream = request.stream;
    // One router per request: its device is this request on the server's pool.
    auto device = std::make_shared<LocalDevice>(local_, request, governor_);
    auto router = std::make_shared<Router>(
        config_, device, cloud_,
        governor_ ? governor_check(governor_, max_defer_ms_) : GovernorCheck{});
    RoutePlan plan = router->plan(route);
    if (plan.primary == RouteTarget::kNone) {
      // Fails before the first byte (HTTP 503 with every reason).
      RouteResult r = router->execute(route, plan);
      EDGELM_LOG_INFO("route: {}", r.decision.to_json());
      return r.status;
    }
    if (plan.primary != RouteTarget::kDevice) device->release();
    return std::unique_ptr<server::Completion>(
        new RoutedCompletion(std::move(router), std::move(device), std::move(route),
                             std::move(plan), local_.models().front().id));
  }

 private:
  server::LocalBackend& local_;
  std::shared_ptr<CloudBackend> cloud_;
  RouterConfig config_;
  std::shared_ptr<governor::Governor> governor_;
  int64_t max_defer_ms_;
};

// A local completion under the governor's per-token hook.
class GovernedCompletion : public server::Completion {
 public:
  GovernedCompletion(std::unique_ptr<server::Completion> inner,
                     std::shared_ptr<governor::HookOutcome> outcome)
      : inner_(std::move(inner)), outcome_(std::move(outcome)) {}
  StatusOr<server::CompletionOutcome> run(const server::DeltaCallback& on_delta,
                                          const std::atomic<bool>* cancel) override {
    auto out = inner_->run(on_delta, cancel);
    if (out.ok() && out->stopped_by_hook) {
      EDGELM_LOG_WARN("governor: stopped a generation after {} tokens (finish_reason \"{}\"): {}",
                      out->completion_tokens, server::finish_reason_name(out->finish_reason),
                      governor_stop_reason(outcome_->last));
    }
    return out;
  }

 private:
  std::unique_ptr<server::Completion> inner_;
  std::shared_ptr<governor::HookOutcome> outcome_;
};

class GovernedBackend : public server::Backend {
 public:
  GovernedBackend(server::LocalBackend& local, std::shared_ptr<governor::Governor> gov,
                  int64_t max_defer_ms)
      : local_(local), governor_(gov), check_(governor_check(std::move(gov), max_defer_ms)) {}
  std::vector<server::ModelInfo> models() const override { return local_.models(); }
  int queue_depth() const override { return local_.queue_depth(); }
  int active() const override { return local_.active(); }

  StatusOr<std::unique_ptr<server::Completion>> prepare(
      const server::CompletionRequest& request) override {
    // The same before-request rule the router applies (refuse, or a wait over max_defer_ms).
    const GovernorVerdict v = check_(RouteRequest{});
    if (!v.allow) {
      EDGELM_LOG_INFO("governor: request refused: {}", v.reason);
      return Status::failed_precondition(
          "The device governor does not allow running the model now: " + v.reason +
          ". Retry later.");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<server::Completion> c, local_.prepare(request));
    auto outcome = govern(*c, governor_);
    return std::unique_ptr<server::Completion>(new GovernedCompletion(std::move(c), outcome));
  }

 private:
  server::LocalBackend& local_;
  std::shared_ptr<governor::Governor> governor_;
  GovernorCheck check_;
};

}  // namespace

Status check_serve_router_config(const RouterConfig& config) {
  if (config.uncertainty_threshold && config.signal == "nll") {
    return Status::invalid_argument(
        "router config: signal 'nll' is not measured by `edgelm serve` (its probe gives the "
        "next-token entropy): use \"signal\": \"entropy\" or \"none\"");
  }
  return Status::ok_status();
}

StatusOr<std::shared_ptr<governor::Governor>> load_serve_governor(const std::string& policy_path,
                                                                  const std::string& sensor,
                                                                  const std::string& sysfs_root) {
  ASSIGN_OR_RETURN(governor::GovernorPolicy policy, governor::load_policy(policy_path));
  if (!sysfs_root.empty()) policy.sysfs_root = sysfs_root;
  governor::SensorSource source = policy.sensors.value_or(governor::SensorSource::kSysfs);
  if (sensor == "sysfs") {
    source = governor::SensorSource::kSysfs;
  } else if (sensor == "none") {
    source = governor::SensorSource::kNone;
  } else if (!sensor.empty()) {
    return Status::invalid_argument(
        fmt::format("--sensor '{}': expected 'sysfs' or 'none'", sensor));
  }
  if (source == governor::SensorSource::kPush) {
    return Status::invalid_argument(fmt::format(
        "{}: \"sensors\": \"push\" needs an app pushing values (C API); `edgelm serve` reads "
        "\"sysfs\" or \"none\" (--sensor)",
        policy_path));
  }
  policy.sensors = source;
  auto s = governor::make_sensor(policy, source);
  return std::make_shared<governor::Governor>(std::move(policy), std::move(s));
}

std::unique_ptr<server::Backend> make_router_backend(server::LocalBackend& local,
                                                     const ServeRouteOptions& options) {
  return std::make_unique<RouterBackend>(local, options);
}

std::unique_ptr<server::Backend> make_governed_backend(server::LocalBackend& local,
                                                       std::shared_ptr<governor::Governor> gov,
                                                       int64_t max_defer_ms) {
  return std::make_unique<GovernedBackend>(local, std::move(gov), max_defer_ms);
}

}  // namespace edgelm::cli
