// The C API (include/edgelm/edgelm.h) over the engine: the only place where Status becomes an
// int code. Every entry point catches everything; no exception leaves the library.
#include "edgelm/edgelm.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "engine/engine.h"
#include "runtime/governor/engine-hook.h"
#include "runtime/governor/governor.h"
#include "runtime/monitor/monitor.h"
#include "runtime/router/governor-check.h"
#include "runtime/router/router.h"

struct edgelm_model {
  std::shared_ptr<edgelm::Engine> engine;
};

struct edgelm_session {
  std::shared_ptr<edgelm::Engine> engine;  // keeps the model alive
  std::unique_ptr<edgelm::Session> session;
  bool has_stats = false;
  edgelm::GenerateResult last_result;                    // edgelm_monitor_record
  std::shared_ptr<edgelm::governor::Governor> governor;  // edgelm_session_set_governor
};

struct edgelm_governor {
  std::shared_ptr<edgelm::governor::Governor> governor;
  std::shared_ptr<edgelm::governor::PushedSensor> pushed;  // null unless "sensors": "push"
};

struct edgelm_router {
  std::unique_ptr<edgelm::router::Router> router;
  std::mutex mu;  // last_decision
  std::string last_decision;
};

namespace {

thread_local std::string t_last_error;

int fail(int code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

int fail(const edgelm::Status& s) { return fail(static_cast<int>(s.code()), s.to_string()); }

int ok() {
  t_last_error.clear();
  return EDGELM_OK;
}

// Runs fn, turning any exception into an error code.
template <typename Fn>
int guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(EDGELM_ERR_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED: out of memory");
  } catch (const std::exception& e) {
    return fail(EDGELM_ERR_UNKNOWN, fmt::format("UNKNOWN: unexpected exception: {}", e.what()));
  } catch (...) {
    return fail(EDGELM_ERR_UNKNOWN, "UNKNOWN: unexpected exception");
  }
}

int copy_out(const std::string& s, char* buf, size_t buf_size, size_t* n_out) {
  *n_out = s.size();
  if (buf == nullptr || buf_size <= s.size()) {
    if (buf != nullptr && buf_size > 0) buf[0] = '\0';
    return fail(EDGELM_ERR_OUT_OF_RANGE,
                fmt::format("OUT_OF_RANGE: buffer of {} bytes, {} needed (with the NUL)", buf_size,
                            s.size() + 1));
  }
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return ok();
}

// Pushes one sensor value into a governor created with pushed sensors.
template <typename Fn>
int governor_push(edgelm_governor* g, double value, double lo, double hi, const char* what,
                  Fn&& fn) {
  return guarded([&] {
    if (g == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: NULL governor");
    if (!(value >= lo && value <= hi)) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  fmt::format("INVALID_ARGUMENT: {} {} outside [{}, {}]", what, value, lo, hi));
    }
    if (!g->pushed) {
      return fail(EDGELM_ERR_FAILED_PRECONDITION,
                  "FAILED_PRECONDITION: this governor reads its own sensors (policy \"sensors\")");
    }
    fn(*g->pushed);
    g->governor->invalidate_readings();
    return ok();
  });
}

}  // namespace

extern "C" {

edgelm_model_params edgelm_model_default_params(void) {
  edgelm_model_params p;
  p.log_summary = false;
  p.strict_quant = false;
  return p;
}

edgelm_session_params edgelm_session_default_params(void) {
  edgelm_session_params p;
  p.n_ctx = 0;
  p.n_threads = 0;
  return p;
}

edgelm_generate_params edgelm_generate_default_params(void) {
  const edgelm::SamplingParams sp;
  const edgelm::GenerateParams gp;
  edgelm_generate_params p;
  p.max_tokens = gp.max_tokens;
  p.temperature = sp.temperature;
  p.top_k = sp.top_k;
  p.top_p = sp.top_p;
  p.min_p = sp.min_p;
  p.repeat_penalty = sp.repeat_penalty;
  p.repeat_last_n = sp.repeat_last_n;
  p.frequency_penalty = sp.frequency_penalty;
  p.presence_penalty = sp.presence_penalty;
  p.seed = EDGELM_RANDOM_SEED;
  p.stop = nullptr;
  p.n_stop = 0;
  p.add_special = gp.add_special;
  p.parse_special = gp.parse_special;
  p.reuse_cache = gp.reuse_cache;
  return p;
}

const char* edgelm_last_error(void) { return t_last_error.c_str(); }

const char* edgelm_status_name(int status) {
  if (status == EDGELM_ERR_UNKNOWN || status < 0 || status > EDGELM_ERR_FAILED_PRECONDITION) {
    return "UNKNOWN";
  }
  return edgelm::status_code_name(static_cast<edgelm::StatusCode>(status));
}

const char* edgelm_version(void) {
  static const std::string v = [] {
    try {
      return edgelm::build_info();
    } catch (...) {
      return std::string("edgelm");
    }
  }();
  return v.c_str();
}

int edgelm_model_load(const char* path, const edgelm_model_params* params, edgelm_model** out) {
  return guarded([&] {
    if (out == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: out is NULL");
    *out = nullptr;
    if (path == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: path is NULL");
    const edgelm_model_params p = params ? *params : edgelm_model_default_params();
    edgelm::EngineOptions eo;
    eo.model.log_summary = p.log_summary;
    eo.model.strict_quant = p.strict_quant;
    auto engine = edgelm::Engine::load(path, eo);
    if (!engine.ok()) return fail(engine.status());
    auto m = std::make_unique<edgelm_model>();
    m->engine = std::shared_ptr<edgelm::Engine>(std::move(engine).value());
    *out = m.release();
    return ok();
  });
}

void edgelm_model_free(edgelm_model* model) {
  try {
    delete model;
  } catch (...) {
  }
}

int32_t edgelm_model_n_vocab(const edgelm_model* model) {
  if (model == nullptr) return -1;
  return model->engine->tokenizer().n_vocab();
}

int edgelm_tokenize(const edgelm_model* model, const char* text, size_t text_len, bool add_special,
                    bool parse_special, int32_t* tokens, int32_t n_max, int32_t* n_out) {
  return guarded([&] {
    if (model == nullptr || text == nullptr || n_out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: model, text and n_out must not be NULL");
    }
    if (n_max < 0 || (n_max > 0 && tokens == nullptr)) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: tokens is NULL or n_max < 0");
    }
    auto ids = model->engine->tokenizer().encode(std::string_view(text, text_len), add_special,
                                                 parse_special);
    if (!ids.ok()) return fail(ids.status());
    *n_out = static_cast<int32_t>(ids->size());
    if (ids->size() > static_cast<size_t>(n_max)) {
      return fail(
          EDGELM_ERR_OUT_OF_RANGE,
          fmt::format("OUT_OF_RANGE: {} tokens do not fit in n_max = {}", ids->size(), n_max));
    }
    std::copy(ids->begin(), ids->end(), tokens);
    return ok();
  });
}

int edgelm_token_to_piece(const edgelm_model* model, int32_t token, char* buf, size_t buf_size,
                          size_t* n_out) {
  return guarded([&] {
    if (model == nullptr || n_out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: model and n_out must not be NULL");
    }
    const auto& tok = model->engine->tokenizer();
    if (token < 0 || token >= tok.n_vocab()) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  fmt::format("INVALID_ARGUMENT: token {} outside the vocabulary [0, {})", token,
                              tok.n_vocab()));
    }
    return copy_out(tok.token_to_piece(token), buf, buf_size, n_out);
  });
}

int edgelm_session_create(edgelm_model* model, const edgelm_session_params* params,
                          edgelm_session** out) {
  return guarded([&] {
    if (out == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: out is NULL");
    *out = nullptr;
    if (model == nullptr)
      return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: model is NULL");
    const edgelm_session_params p = params ? *params : edgelm_session_default_params();
    if (p.n_ctx < 0 || p.n_threads < 0) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  fmt::format("INVALID_ARGUMENT: n_ctx = {} and n_threads = {} must be >= 0",
                              p.n_ctx, p.n_threads));
    }
    edgelm::SessionOptions so;
    so.n_ctx = p.n_ctx;
    so.n_threads = p.n_threads;
    auto session = model->engine->open_session(so);
    if (!session.ok()) return fail(session.status());
    auto s = std::make_unique<edgelm_session>();
    s->engine = model->engine;
    s->session = std::move(session).value();
    *out = s.release();
    return ok();
  });
}

void edgelm_session_free(edgelm_session* session) {
  try {
    delete session;
  } catch (...) {
  }
}

void edgelm_session_reset(edgelm_session* session) {
  if (session == nullptr) return;
  try {
    session->session->reset();
  } catch (...) {
  }
}

void edgelm_session_cancel(edgelm_session* session) {
  if (session != nullptr) session->session->cancel();
}

int edgelm_generate(edgelm_session* session, const char* prompt,
                    const edgelm_generate_params* params, edgelm_text_callback callback,
                    void* user_data) {
  return guarded([&] {
    if (session == nullptr || prompt == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: session and prompt must not be NULL");
    }
    const edgelm_generate_params p = params ? *params : edgelm_generate_default_params();
    if (p.n_stop > 0 && p.stop == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: n_stop > 0 but stop is NULL");
    }
    edgelm::GenerateParams gp;
    gp.max_tokens = p.max_tokens;
    gp.sampling.temperature = p.temperature;
    gp.sampling.top_k = p.top_k;
    gp.sampling.top_p = p.top_p;
    gp.sampling.min_p = p.min_p;
    gp.sampling.repeat_penalty = p.repeat_penalty;
    gp.sampling.repeat_last_n = p.repeat_last_n;
    gp.sampling.frequency_penalty = p.frequency_penalty;
    gp.sampling.presence_penalty = p.presence_penalty;
    gp.sampling.seed = p.seed == EDGELM_RANDOM_SEED ? edgelm::kRandomSeed : p.seed;
    for (size_t i = 0; i < p.n_stop; ++i) {
      if (p.stop[i] != nullptr) gp.stop.emplace_back(p.stop[i]);
    }
    gp.add_special = p.add_special;
    gp.parse_special = p.parse_special;
    gp.reuse_cache = p.reuse_cache;

    auto gov_outcome = std::make_shared<edgelm::governor::HookOutcome>();
    if (session->governor) {
      gp.before_token = edgelm::governor::make_before_token_hook(session->governor, gov_outcome);
    }

    edgelm::TokenCallback cb;
    if (callback != nullptr) {
      cb = [callback, user_data](std::string_view text, int32_t token) {
        return callback(text.data(), text.size(), token, user_data);
      };
    }
    auto r = session->session->generate(prompt, gp, cb);
    if (!r.ok()) return fail(r.status());
    session->has_stats = true;
    session->last_result = *r;
    if (r->stop_reason == edgelm::StopReason::kCancelled) {
      return fail(EDGELM_ERR_CANCELLED, "CANCELLED: generation cancelled by edgelm_session_cancel");
    }
    if (r->stop_reason == edgelm::StopReason::kGovernor && r->stats.prefill_tokens == 0 &&
        r->tokens.empty()) {
      return fail(EDGELM_ERR_FAILED_PRECONDITION,
                  "FAILED_PRECONDITION: the governor refused: " + gov_outcome->last.reason);
    }
    return ok();
  });
}

int edgelm_session_stats_json(const edgelm_session* session, char* buf, size_t buf_size,
                              size_t* n_out) {
  return guarded([&] {
    if (session == nullptr || n_out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: session and n_out must not be NULL");
    }
    if (!session->has_stats) {
      *n_out = 0;
      return fail(EDGELM_ERR_FAILED_PRECONDITION,
                  "FAILED_PRECONDITION: no generation has run on this session yet");
    }
    return copy_out(session->session->last_stats().to_json(), buf, buf_size, n_out);
  });
}

int edgelm_governor_create(const char* config_json, edgelm_governor** out) {
  return guarded([&] {
    if (out == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: out is NULL");
    *out = nullptr;
    auto policy = edgelm::governor::parse_policy(config_json ? config_json : "{}", "config_json");
    if (!policy.ok()) return fail(policy.status());
    auto g = std::make_unique<edgelm_governor>();
    auto sensor = edgelm::governor::make_sensor(*policy, edgelm::governor::SensorSource::kPush);
    g->pushed = std::dynamic_pointer_cast<edgelm::governor::PushedSensor>(sensor);
    g->governor = std::make_shared<edgelm::governor::Governor>(*policy, sensor);
    *out = g.release();
    return ok();
  });
}

void edgelm_governor_free(edgelm_governor* governor) { delete governor; }

int edgelm_governor_push_temperature(edgelm_governor* governor, double celsius) {
  return governor_push(governor, celsius, -273.15, 1000, "temperature",
                       [&](edgelm::governor::PushedSensor& s) { s.set_temperature(celsius); });
}

int edgelm_governor_push_battery(edgelm_governor* governor, double percent) {
  return governor_push(governor, percent, 0, 100, "battery level",
                       [&](edgelm::governor::PushedSensor& s) { s.set_battery(percent); });
}

int edgelm_governor_push_plugged(edgelm_governor* governor, bool plugged) {
  return governor_push(governor, 0, 0, 0, "plugged",
                       [&](edgelm::governor::PushedSensor& s) { s.set_plugged(plugged); });
}

int edgelm_governor_decide(edgelm_governor* governor, edgelm_governor_decision* out) {
  return guarded([&] {
    if (governor == nullptr || out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: governor and out must not be NULL");
    }
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    const edgelm::governor::Decision d = governor->governor->before_request(now);
    out->action = static_cast<int32_t>(d.action);
    out->delay_ms = d.delay_ms;
    std::snprintf(out->code, sizeof(out->code), "%s", d.code.c_str());
    std::snprintf(out->reason, sizeof(out->reason), "%s", d.reason.c_str());
    return ok();
  });
}

int edgelm_session_set_governor(edgelm_session* session, edgelm_governor* governor) {
  return guarded([&] {
    if (session == nullptr)
      return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: NULL session");
    session->governor = governor ? governor->governor : nullptr;
    return ok();
  });
}

// ---- router ----

edgelm_router_params edgelm_router_default_params(void) {
  edgelm_router_params p;
  p.cloud_url = nullptr;
  p.cloud_api_key = nullptr;
  p.cloud_model = nullptr;
  p.config_json = nullptr;
  p.timeout_ms = 60000;
  p.connect_timeout_ms = 2000;
  p.max_retries = 2;
  p.n_ctx = 0;
  p.n_threads = 0;
  return p;
}

edgelm_route_params edgelm_route_default_params(void) {
  edgelm_route_params p;
  p.privacy = EDGELM_PRIVACY_EITHER;
  p.max_tokens = 128;
  p.temperature = 0.0f;
  p.stream = false;
  p.prefer = nullptr;
  p.task = nullptr;
  p.difficulty = nullptr;
  p.system = nullptr;
  return p;
}

int edgelm_router_create(edgelm_model* model, const edgelm_router_params* params,
                         edgelm_governor* governor, edgelm_router** out) {
  return guarded([&] {
    if (out == nullptr) return fail(EDGELM_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT: NULL out");
    *out = nullptr;
    const edgelm_router_params p = params ? *params : edgelm_router_default_params();
    namespace r = edgelm::router;
    r::RouterConfig cfg;
    if (p.config_json != nullptr) {
      auto c = r::RouterConfig::from_json(p.config_json);
      if (!c.ok()) return fail(c.status());
      cfg = *c;
    }
    std::shared_ptr<r::DeviceBackend> device;
    if (model != nullptr) {
      r::EngineDeviceOptions eo;
      eo.session.n_ctx = p.n_ctx;
      eo.session.n_threads = p.n_threads;
      eo.probe_nll = cfg.signal == "nll";
      if (governor != nullptr) eo.governor = governor->governor;  // per-token hook too
      device = std::make_shared<r::EngineDevice>(model->engine, eo);
    }
    std::shared_ptr<r::CloudBackend> cloud;
    if (p.cloud_url != nullptr && p.cloud_url[0] != '\0') {
      r::CloudOptions co;
      co.url = p.cloud_url;
      if (p.cloud_api_key) co.api_key = p.cloud_api_key;
      if (p.cloud_model) co.model = p.cloud_model;
      co.timeout_ms = p.timeout_ms;
      co.connect_timeout_ms = p.connect_timeout_ms;
      co.backoff.max_retries = p.max_retries;
      cloud = std::make_shared<r::CloudClient>(co);
    }
    r::GovernorCheck check;
    if (governor != nullptr) check = r::governor_check(governor->governor);
    auto rt = std::make_unique<edgelm_router>();
    rt->router = std::make_unique<r::Router>(cfg, device, cloud, check);
    *out = rt.release();
    return ok();
  });
}

void edgelm_router_free(edgelm_router* router) { delete router; }

int edgelm_route(edgelm_router* router, const char* prompt, const edgelm_route_params* params,
                 edgelm_text_callback callback, void* user_data) {
  return guarded([&] {
    if (router == nullptr || prompt == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: router and prompt must not be NULL");
    }
    const edgelm_route_params p = params ? *params : edgelm_route_default_params();
    if (p.privacy != EDGELM_PRIVACY_EITHER && p.privacy != EDGELM_PRIVACY_DEVICE_ONLY) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  fmt::format("INVALID_ARGUMENT: privacy {} (expected 0 = either, 1 = device-only)",
                              p.privacy));
    }
    namespace r = edgelm::router;
    r::RouteRequest req;
    if (p.system != nullptr) req.messages.push_back({"system", p.system});
    req.messages.push_back({"user", prompt});
    req.privacy = p.privacy == EDGELM_PRIVACY_DEVICE_ONLY ? r::PrivacyClass::kDeviceOnly
                                                          : r::PrivacyClass::kEither;
    req.max_tokens = p.max_tokens;
    req.temperature = p.temperature;
    req.stream = p.stream;
    if (p.prefer) req.hints.prefer = p.prefer;
    if (p.task) req.hints.task = p.task;
    if (p.difficulty) req.hints.difficulty = p.difficulty;
    r::DeltaCallback on_delta;
    if (callback != nullptr) {
      on_delta = [&](std::string_view t) { return callback(t.data(), t.size(), -1, user_data); };
    }
    r::RouteResult res = router->router->handle(req, on_delta);
    {
      std::lock_guard<std::mutex> lock(router->mu);
      router->last_decision = res.decision.to_json();
    }
    if (!res.status.ok()) return fail(res.status);
    return ok();
  });
}

int edgelm_router_last_decision_json(edgelm_router* router, char* buf, size_t buf_size,
                                     size_t* n_out) {
  return guarded([&] {
    if (router == nullptr || n_out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: router and n_out must not be NULL");
    }
    std::string d;
    {
      std::lock_guard<std::mutex> lock(router->mu);
      d = router->last_decision;
    }
    if (d.empty()) {
      *n_out = 0;
      return fail(EDGELM_ERR_FAILED_PRECONDITION, "FAILED_PRECONDITION: nothing was routed yet");
    }
    return copy_out(d, buf, buf_size, n_out);
  });
}

struct edgelm_monitor {
  std::unique_ptr<edgelm::monitor::Monitor> monitor;
};

edgelm_monitor_params edgelm_monitor_default_params(void) {
  edgelm_monitor_params p{};
  p.max_rows = 10000;
  return p;
}

int edgelm_monitor_open(const char* db_path, const edgelm_monitor_params* params,
                        edgelm_monitor** out) {
  return guarded([&] {
    if (db_path == nullptr || out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: db_path and out must not be NULL");
    }
    *out = nullptr;
    const edgelm_monitor_params p = params ? *params : edgelm_monitor_default_params();
    edgelm::monitor::MonitorConfig cfg;
    cfg.store.max_rows = p.max_rows;
    cfg.store.keep_text = p.keep_text;
    if (p.config_path != nullptr) {
      auto c = edgelm::monitor::load_monitor_config(p.config_path);
      if (!c.ok()) return fail(c.status());
      cfg = *c;
    }
    std::optional<edgelm::monitor::Baseline> baseline;
    if (p.baseline_path != nullptr) {
      auto b = edgelm::monitor::load_baseline(p.baseline_path);
      if (!b.ok()) return fail(b.status());
      baseline = std::move(*b);
    }
    auto m = edgelm::monitor::Monitor::open(db_path, cfg);
    if (!m.ok()) return fail(m.status());
    if (baseline) (*m)->set_baseline(std::move(*baseline));
    if (p.on_alert != nullptr) {
      (*m)->on_alert([cb = p.on_alert, ud = p.user_data](const edgelm::monitor::Alert& a) {
        cb(a.kind.c_str(), a.feature.c_str(), a.message.c_str(), a.value, a.threshold, ud);
      });
    }
    *out = new edgelm_monitor{std::move(*m)};
    return ok();
  });
}

void edgelm_monitor_free(edgelm_monitor* monitor) { delete monitor; }

int edgelm_monitor_record(edgelm_monitor* monitor, const edgelm_session* session,
                          const char* model_name, const char* prompt) {
  return guarded([&] {
    if (monitor == nullptr || session == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: monitor and session must not be NULL");
    }
    if (!session->has_stats) {
      return fail(EDGELM_ERR_FAILED_PRECONDITION,
                  "FAILED_PRECONDITION: the session has generated nothing yet");
    }
    std::optional<std::string> text;
    if (prompt != nullptr) text = std::string(prompt);
    edgelm::Status s = monitor->monitor->record(session->last_result, model_name ? model_name : "",
                                                std::move(text));
    if (!s.ok()) return fail(s);
    return ok();
  });
}

int edgelm_monitor_check(edgelm_monitor* monitor, bool* alarm, char* buf, size_t buf_size,
                         size_t* n_out) {
  return guarded([&] {
    if (monitor == nullptr || n_out == nullptr) {
      return fail(EDGELM_ERR_INVALID_ARGUMENT,
                  "INVALID_ARGUMENT: monitor and n_out must not be NULL");
    }
    auto rep = monitor->monitor->check();
    if (!rep.ok()) return fail(rep.status());
    if (alarm != nullptr) *alarm = rep->alarm();
    return copy_out(rep->to_json().dump(), buf, buf_size, n_out);
  });
}

}  // extern "C"
