// `edgelm serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--api-key KEY] ...`
//
// An OpenAI-compatible HTTP server (docs/server.md): /v1/chat/completions, /v1/completions,
// /v1/models, /health, /metrics. Prints "edgelm: listening on http://HOST:PORT" on stderr once
// it accepts connections (with --port 0 the port is chosen by the system). Ctrl-C or SIGTERM
// stops it: running generations are cancelled, exit status 0.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "serve-canary.h"
#include "serve-router.h"
#include "server/http-server.h"
#include "server/local-backend.h"
#include "server/request-monitor.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct ServeOptions {
  server::LocalBackendOptions backend;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  size_t max_body = 4u << 20;
  int http_threads = 0;
  ServeRouteOptions route;  // --cloud: route each request (serve-router.h)
  std::string router_config;
  std::string governor_policy;  // --governor: every local generation under it (serve-router.h)
  std::string sensor;
  std::string sysfs_root;
  server::RequestMonitorOptions monitor;  // --monitor DB: record every request (docs/monitor.md)
  ServeCanaryOptions canary;              // --canary BASELINE: idle-time canary runs
};

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

int run_serve(ServeOptions o) {
  if (o.api_key.empty()) {
    if (const char* env = std::getenv("EDGELM_API_KEY")) o.api_key = env;
  }
  std::unique_ptr<server::RequestMonitor> monitor;  // opened first: a bad path fails fast
  if (!o.monitor.db_path.empty()) {
    auto m = server::RequestMonitor::open(o.monitor);
    if (!m.ok()) return report_error(m.status());
    monitor = std::move(*m);
  }
  if (o.governor_policy.empty() && (!o.sensor.empty() || !o.sysfs_root.empty())) {
    return report_error("--sensor and --sysfs-root need --governor POLICY.json");
  }
  if (!o.governor_policy.empty()) {  // before loading the model: a bad policy fails fast
    auto gov = load_serve_governor(o.governor_policy, o.sensor, o.sysfs_root);
    if (!gov.ok()) return report_error(gov.status());
    o.route.governor = *gov;
  }
  auto backend = server::LocalBackend::create(o.backend);
  if (!backend.ok()) return report_error(backend.status());
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  so.limits.max_body_bytes = o.max_body;
  so.n_http_threads = o.http_threads > 0
                          ? o.http_threads
                          : o.backend.n_parallel + o.backend.max_queue + 16;  // + /health etc.
  if (monitor) {
    so.on_completion = monitor->hook();
    so.extra_metrics = monitor->metrics_hook();
  }
  std::unique_ptr<server::Backend> routed;
  if (!o.route.cloud.url.empty()) {
    if (!o.router_config.empty()) {
      auto cfg = router::RouterConfig::load(o.router_config);
      if (!cfg.ok()) return report_error(cfg.status());
      o.route.config = *cfg;
    }
    if (Status c = check_serve_router_config(o.route.config); !c.ok()) return report_error(c);
    routed = make_router_backend(**backend, o.route);
    fmt::print(stderr, "edgelm: routing between the device and the cloud {}\n", o.route.cloud.url);
  } else if (o.route.governor) {
    routed = make_governed_backend(**backend, o.route.governor);
  }
  if (o.route.governor) {
    fmt::print(stderr, "edgelm: every local generation runs under the governor policy {}\n",
               o.governor_policy);
  }
  server::HttpServer http(routed ? *routed : static_cast<server::Backend&>(**backend), so);
  Status st = http.bind();
  if (!st.ok()) return report_error(st);

  std::unique_ptr<ServeCanary> canary;  // runs only while no request is running or queued
  if (!o.canary.baseline.empty()) {
    o.canary.db = o.monitor.db_path;
    auto gov = o.route.governor;
    auto c = ServeCanary::start(o.canary, (*backend)->engine(), [&backend, gov] {
      if ((*backend)->active() != 0 || (*backend)->queue_depth() != 0) return false;
      if (!gov) return true;
      const double now =
          std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
              .count();
      return gov->before_request(now).allowed();  // e.g. plugged in, cool enough
    });
    if (!c.ok()) return report_error(c.status());
    canary = std::move(*c);
    fmt::print(stderr, "edgelm: canary set of {} every {} s while idle\n", o.canary.baseline,
               o.canary.every_s);
  }
  g_stop.store(false);
  auto old_int = std::signal(SIGINT, on_stop_signal);
  auto old_term = std::signal(SIGTERM, on_stop_signal);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) {
      if (g_stop.load()) {
        (*backend)->shutdown();
        http.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const auto models = (*backend)->models();
  fmt::print(stderr, "edgelm: serving '{}' (context {} tokens, {} parallel, queue {}{})\n",
             models.front().id, (*backend)->n_ctx(), o.backend.n_parallel, o.backend.max_queue,
             o.api_key.empty() ? "" : ", API key required");
  if (monitor) {
    fmt::print(stderr, "edgelm: recording every request in the monitor store {} ({}, {} rows)\n",
               monitor->label(), o.monitor.keep_text ? "with text" : "no text", o.monitor.max_rows);
  }
  fmt::print(stderr, "edgelm: listening on http://{}:{}\n", o.host, http.port());
  std::fflush(stderr);
  st = http.serve();
  done.store(true);
  watcher.join();
  canary.reset();  // stops a canary run in progress
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (monitor) {
    monitor->flush();
    const auto ms = monitor->stats();
    fmt::print(stderr,
               "edgelm: monitor: {} requests recorded in {} ({} dropped, {} store errors{})\n",
               ms.written, monitor->label(), ms.dropped, ms.errors,
               ms.last_error.empty() ? "" : "; last: " + ms.last_error);
  }
  if (!st.ok()) return report_error(st);
  fmt::print(stderr, "edgelm: server stopped\n");
  return 0;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  sub->footer(
      "Endpoints: POST /v1/chat/completions, POST /v1/completions (\"stream\": true for "
      "server-sent\n"
      "events), GET /v1/models, GET /health, GET /metrics (Prometheus). Point an OpenAI SDK at\n"
      "http://HOST:PORT/v1 (any API key unless --api-key is set). See docs/server.md.\n"
      "Example: edgelm serve -m model.gguf --port 8080 --parallel 2");
  sub->add_option("-m,--model", o->backend.model_path, "GGUF model file")->required();
  sub->add_option("--host", o->host, "Address to listen on (loopback by default)")
      ->capture_default_str();
  sub->add_option("--port", o->port, "TCP port; 0 = any free port")->capture_default_str();
  sub->add_option("--parallel,-P", o->backend.n_parallel,
                  "Requests generated at the same time (one KV cache each)")
      ->capture_default_str();
  sub->add_option("--max-queue", o->backend.max_queue,
                  "Requests that may wait for a free slot; more get HTTP 503")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->backend.n_ctx,
                  "Context size per slot in tokens; 0 = model's, at most 4096")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->backend.n_threads, "Threads per slot; 0 = cores / parallel")
      ->capture_default_str();
  sub->add_option("-n,--n-predict", o->backend.default_max_tokens,
                  "Tokens to generate when a request gives no max_tokens; -1 = until the end")
      ->capture_default_str();
  sub->add_option("--alias", o->backend.model_alias,
                  "Model id to advertise (default: the file name without .gguf)");
  sub->add_option("--chat-format", o->backend.chat_format,
                  "chatml, llama3, llama2, phi3 or plain (default: from the model)");
  sub->add_flag("--strict-quant", o->backend.strict_quant,
                "Refuse to load if a tensor would be converted at load (see `edgelm audit`)");
  sub->add_option("--api-key", o->api_key,
                  "Require 'Authorization: Bearer KEY' (default: $EDGELM_API_KEY, or none)");
  sub->add_option("--max-body", o->max_body, "Largest request body in bytes")
      ->capture_default_str();
  sub->add_option("--http-threads", o->http_threads,
                  "Connection threads; 0 = parallel + max-queue + 16")
      ->capture_default_str();
  sub->add_option("--cloud", o->route.cloud.url,
                  "Route requests between this device and an OpenAI-compatible cloud URL "
                  "(header x-edgelm-privacy: device-only keeps one on the device; docs/router.md)");
  sub->add_option("--cloud-key", o->route.cloud.api_key, "API key for the cloud (Bearer)");
  sub->add_option("--cloud-model", o->route.cloud.model,
                  "\"model\" sent to the cloud (default: the first of its /v1/models)");
  sub->add_option("--router-config", o->router_config, "Router config JSON (docs/router.md)");
  sub->add_option("--governor", o->governor_policy,
                  "Governor policy JSON: checked before every local generation and before each "
                  "token (docs/governor.md)");
  sub->add_option(
      "--sensor", o->sensor,
      "Governor sensors: sysfs or none (default: the policy's \"sensors\", else sysfs)");
  sub->add_option("--sysfs-root", o->sysfs_root,
                  "sysfs root for the governor (default: the policy's sysfs_root, else /sys)");
  sub->add_option("--monitor", o->monitor.db_path,
                  "Record every request's features (no text) in this SQLite store for drift "
                  "checks with `edgelm monitor report` (docs/monitor.md)");
  sub->add_flag("--monitor-keep-text", o->monitor.keep_text,
                "Also store each prompt and answer in the --monitor store (opt-in)");
  sub->add_option("--monitor-max-rows", o->monitor.max_rows,
                  "Rows the --monitor store keeps (the oldest are dropped)")
      ->capture_default_str();
  sub->add_option("--canary", o->canary.baseline,
                  "With --monitor: re-run this baseline's canary set while idle (and allowed by "
                  "--governor) and print drift alarms (docs/monitor.md)");
  sub->add_option("--canary-every", o->canary.every_s, "Seconds between canary runs")
      ->capture_default_str();
  sub->callback([o] { exit_with(run_serve(*o)); });
}

}  // namespace edgelm::cli
