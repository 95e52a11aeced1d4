// EngineDevice (see device.h).
#include "runtime/router/device.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "engine/chat.h"
#include "runtime/governor/engine-hook.h"
#include "runtime/router/governor-check.h"

namespace edgelm::router {

namespace {

using Clock = std::chrono::steady_clock;

std::string finish_reason(StopReason r) {
  if (r == StopReason::kEog || r == StopReason::kStopString) return "stop";
  if (r == StopReason::kMaxTokens || r == StopReason::kContextFull || r == StopReason::kGovernor) {
    return "length";
  }
  return "cancelled";
}

}  // namespace

uint64_t available_ram_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream ss(line.substr(13));
      uint64_t kib = 0;
      ss >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

EngineDevice::EngineDevice(std::shared_ptr<const Engine> engine, EngineDeviceOptions options)
    : engine_(std::move(engine)), options_(options) {}

StatusOr<std::unique_ptr<EngineDevice>> EngineDevice::load(const std::string& model_path,
                                                           EngineDeviceOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::load(model_path));
  return std::make_unique<EngineDevice>(std::shared_ptr<const Engine>(std::move(engine)), options);
}

DeviceCapability EngineDevice::capability() const {
  DeviceCapability c;
  c.ram_available_bytes = available_ram_bytes();
  if (engine_) c.model_bytes = engine_->model().weights_bytes();
  c.decode_tps = tps_ewma_.load();
  return c;
}

std::string EngineDevice::render(const RouteRequest& req) const {
  if (req.messages.empty()) return req.prompt;
  return apply_chat_template(engine_->chat_format(), req.messages, true);
}

Status EngineDevice::ensure_session() {
  if (!engine_) return Status::failed_precondition("no model is loaded on the device");
  if (session_) return Status::ok_status();
  ASSIGN_OR_RETURN(session_, engine_->open_session(options_.session));
  return Status::ok_status();
}

StatusOr<DeviceProbe> EngineDevice::probe(const RouteRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(ensure_session());
  const auto t0 = Clock::now();
  const std::string prompt = render(req);
  DeviceProbe p;
  if (options_.probe_nll) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine_->codec()->encode(prompt, true, true));
    if (ids.size() >= 2) {
      session_->reset();
      const size_t tail = std::min<size_t>(std::max(1, options_.nll_tail), ids.size() - 1);
      const size_t head = ids.size() - tail;
      Executor& ex = session_->executor();
      auto logits = ex.eval(std::span<const int32_t>(ids.data(), head));
      if (!logits.ok()) {
        session_->reset();
        return logits.status().with_context("probe (nll)");
      }
      double nll = 0;
      std::span<const float> cur = *logits;
      for (size_t i = head; i < ids.size(); ++i) {
        nll -= token_logprob(cur, ids[i]).logprob;
        if (i + 1 == ids.size()) break;
        auto next = ex.eval(std::span<const int32_t>(&ids[i], 1));
        if (!next.ok()) {
          session_->reset();
          return next.status().with_context("probe (nll)");
        }
        cur = *next;
      }
      p.mean_nll = nll / static_cast<double>(tail);
      session_->reset();  // the executor ran outside the Session's bookkeeping
    }
  }
  // Prefill + one greedy step: the entropy of the first distribution; the prompt stays cached.
  GenerateParams gp;
  gp.max_tokens = 1;
  gp.sampling = SamplingParams::greedy();
  gp.ignore_eog = true;
  ASSIGN_OR_RETURN(GenerateResult r, session_->generate(prompt, gp));
  if (r.token_entropies.empty()) {
    return Status::internal("probe: the engine reported no entropy for the first token");
  }
  p.entropy = r.token_entropies.front();
  p.prompt_tokens = r.stats.prompt_tokens;
  p.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return p;
}

StatusOr<DeviceAnswer> EngineDevice::generate(const RouteRequest& req,
                                              std::string_view continuation,
                                              const DeltaCallback& on_delta) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(ensure_session());
  std::string prompt = render(req);
  prompt.append(continuation);
  GenerateParams gp;
  gp.max_tokens = req.max_tokens;
  gp.sampling = req.temperature > 0 ? SamplingParams{} : SamplingParams::greedy();
  if (req.temperature > 0) gp.sampling.temperature = req.temperature;
  if (!req.messages.empty()) gp.stop = chat_stop_strings(engine_->chat_format());
  auto hook_outcome = std::make_shared<governor::HookOutcome>();
  if (options_.governor) {
    gp.before_token = governor::make_before_token_hook(options_.governor, hook_outcome);
  }
  TokenCallback cb;
  if (on_delta) {
    cb = [&](std::string_view text, int32_t) { return text.empty() || on_delta(text); };
  }
  ASSIGN_OR_RETURN(GenerateResult r, session_->generate(prompt, gp, cb));
  DeviceAnswer a;
  a.text = std::move(r.text);
  a.finish_reason = finish_reason(r.stop_reason);
  a.stats = r.stats;
  if (r.stop_reason == StopReason::kGovernor) {
    a.governor_stop = governor_stop_reason(hook_outcome->last);
  }
  if (r.stats.decode_tps() > 0) {
    const double prev = tps_ewma_.load();
    tps_ewma_.store(prev == 0 ? r.stats.decode_tps() : 0.7 * prev + 0.3 * r.stats.decode_tps());
  }
  return a;
}

}  // namespace edgelm::router
