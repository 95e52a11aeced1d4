// The routing backend of `edgelm serve --cloud` (see serve-router.h).
#include "serve-router.h"

#include <fmt/format.h>

#include <atomic>

#include "base/log.h"
#include "engine/chat.h"
#include "runtime/router/router.h"

namespace edgelm::cli {

namespace {

using namespace edgelm::router;

// The server's LocalBackend as the router's device, for one request.
class LocalDevice : public DeviceBackend {
 public:
  LocalDevice(server::LocalBackend& local, const server::CompletionRequest& request,
              const std::atomic<bool>* cancel)
      : local_(local), request_(request), cancel_(cancel) {}
  bool loaded() const override { return true; }
  DeviceCapability capability() const override {
    DeviceCapability c;
    c.ram_available_bytes = available_ram_bytes();
    c.model_bytes = local_.engine().model().weights_bytes();
    return c;
  }
  StatusOr<DeviceProbe> probe(const RouteRequest&) override {
    return Status::unimplemented("the server's device does not measure prompt uncertainty");
  }
  StatusOr<DeviceAnswer> generate(const RouteRequest&, std::string_view continuation,
                                  const DeltaCallback& on_delta) override {
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
    ASSIGN_OR_RETURN(auto completion, local_.prepare(req));
    ASSIGN_OR_RETURN(server::CompletionOutcome out, completion->run(on_delta, cancel_));
    DeviceAnswer a;
    a.text = std::move(out.text);
    a.finish_reason = server::finish_reason_name(out.finish_reason);
    a.stats.prompt_tokens = out.prompt_tokens;
    a.stats.generated_tokens = out.completion_tokens;
    return a;
  }

 private:
  server::LocalBackend& local_;
  server::CompletionRequest request_;
  const std::atomic<bool>* cancel_;
};

class RoutedCompletion : public server::Completion {
 public:
  RoutedCompletion(server::LocalBackend& local, std::shared_ptr<CloudBackend> cloud,
                   RouterConfig config, server::CompletionRequest request, RouteRequest route)
      : local_(local),
        cloud_(std::move(cloud)),
        config_(std::move(config)),
        request_(std::move(request)),
        route_(std::move(route)) {}

  StatusOr<server::CompletionOutcome> run(const server::DeltaCallback& on_delta,
                                          const std::atomic<bool>* cancel) override {
    auto device = std::make_shared<LocalDevice>(local_, request_, cancel);
    Router router(config_, device, cloud_);
    RouteResult r = router.handle(route_, on_delta);
    EDGELM_LOG_INFO("route: {}", r.decision.to_json());
    if (!r.status.ok()) return r.status;
    server::CompletionOutcome out;
    out.text = std::move(r.text);
    out.prompt_tokens = r.decision.prompt_tokens;
    out.finish_reason = r.finish_reason == "length"      ? server::FinishReason::kLength
                        : r.finish_reason == "cancelled" ? server::FinishReason::kCancelled
                                                         : server::FinishReason::kStop;
    return out;
  }

 private:
  server::LocalBackend& local_;
  std::shared_ptr<CloudBackend> cloud_;
  RouterConfig config_;
  server::CompletionRequest request_;
  RouteRequest route_;
};

class RouterBackend : public server::Backend {
 public:
  RouterBackend(server::LocalBackend& local, const ServeRouteOptions& o)
      : local_(local), cloud_(std::make_shared<CloudClient>(o.cloud)), config_(o.config) {
    config_.uncertainty_threshold.reset();  // no probe on the pooled sessions
  }
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
    return std::unique_ptr<server::Completion>(
        new RoutedCompletion(local_, cloud_, config_, request, std::move(route)));
  }

 private:
  server::LocalBackend& local_;
  std::shared_ptr<CloudBackend> cloud_;
  RouterConfig config_;
};

}  // namespace

std::unique_ptr<server::Backend> make_router_backend(server::LocalBackend& local,
                                                     const ServeRouteOptions& options) {
  return std::make_unique<RouterBackend>(local, options);
}

}  // namespace edgelm::cli
