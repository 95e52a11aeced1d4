// `edgelm route -m MODEL --cloud URL [--cloud-key K] [--private] -p PROMPT`
// `edgelm route calibrate --set labelled.jsonl -m MODEL --target-device-share X [--out FILE]`
//
// route: answers one prompt on the device or in the cloud as the router decides (docs/router.md).
//   stdout: the answer as it is produced, then "\n" (with --json instead: one JSON object
//           {"text":..., "decision":{...}});
//   stderr: diagnostics, and as its LAST line the decision JSON (target, reasons, attempts).
//   Exit status: 0 answered; 1 no answer (the reason is on stderr and in the decision); 2 usage.
// calibrate: measures the device's uncertainty on every prompt of a labelled JSONL set (one
//   object per line: "prompt" or "messages", and "difficulty": "easy" | "hard"), picks the
//   threshold that keeps the target share on the device and prints the report JSON (routing
//   accuracy against the labels, AUC); --out writes a router config with that threshold.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/governor/governor.h"
#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"
#include "runtime/router/calibrate.h"
#include "runtime/router/governor-check.h"
#include "runtime/router/router.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

using namespace edgelm::router;

struct RouteOptions {
  std::string model;
  std::string cloud;
  std::string cloud_key;
  std::string cloud_model;
  std::string config;
  std::string governor_policy;
  bool is_private = false;
  std::string prefer, task, difficulty;
  std::string prompt;
  std::string system;
  int n_predict = 128;
  float temperature = 0.0f;
  bool stream = false;
  bool json = false;
  double threshold = -1;  // < 0: from --config / none
  std::string signal;
  int timeout_ms = 60000;
  int connect_timeout_ms = 2000;
  int retries = 2;
  int n_ctx = 0;
  int n_threads = 0;
};

struct CalibrateOptions {
  std::string set;
  std::string model;
  double target = 0.5;
  std::string signal = "entropy";
  std::string out;
  std::string config;
  int n_ctx = 0;
  int n_threads = 0;
  bool per_prompt = false;
};

StatusOr<RouterConfig> load_config(const std::string& path) {
  if (path.empty()) return RouterConfig{};
  return RouterConfig::load(path);
}

int run_route(const RouteOptions& o) {
  auto cfg = load_config(o.config);
  if (!cfg.ok()) return report_error(cfg.status());
  if (o.threshold >= 0) cfg->uncertainty_threshold = o.threshold;
  if (!o.signal.empty()) cfg->signal = o.signal;

  std::shared_ptr<DeviceBackend> device;
  if (!o.model.empty()) {
    EngineDeviceOptions eo;
    eo.session.n_ctx = o.n_ctx;
    eo.session.n_threads = o.n_threads;
    eo.probe_nll = cfg->signal == "nll";
    auto d = EngineDevice::load(o.model, eo);
    // A model that does not load is a device that is not available (the cloud may answer);
    // the reason goes to stderr.
    if (!d.ok()) {
      fmt::print(stderr, "edgelm: warning: device model unavailable: {}\n", d.status().to_string());
    } else {
      device = std::shared_ptr<EngineDevice>(std::move(d).value());
    }
  }
  std::shared_ptr<CloudBackend> cloud;
  if (!o.cloud.empty()) {
    CloudOptions co;
    co.url = o.cloud;
    co.api_key = o.cloud_key;
    co.model = o.cloud_model;
    co.timeout_ms = o.timeout_ms;
    co.connect_timeout_ms = o.connect_timeout_ms;
    co.backoff.max_retries = o.retries;
    cloud = std::make_shared<CloudClient>(co);
  }
  GovernorCheck gov;
  if (!o.governor_policy.empty()) {
    auto policy = governor::load_policy(o.governor_policy);
    if (!policy.ok()) return report_error(policy.status());
    gov = governor_check(std::make_shared<governor::Governor>(
        *policy, std::make_shared<governor::SysfsSensor>("/sys")));
  }
  Router router(*cfg, device, cloud, gov);

  RouteRequest req;
  if (!o.system.empty()) req.messages.push_back({"system", o.system});
  req.messages.push_back({"user", o.prompt});
  req.privacy = o.is_private ? PrivacyClass::kDeviceOnly : PrivacyClass::kEither;
  req.hints = {o.prefer, o.task, o.difficulty};
  req.max_tokens = o.n_predict;
  req.temperature = o.temperature;
  req.stream = o.stream;
  DeltaCallback on_delta;
  if (!o.json) {
    on_delta = [](std::string_view t) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  RouteResult r = router.handle(req, on_delta);
  if (o.json) {
    nlohmann::ordered_json j;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    j["decision"] = nlohmann::json::parse(r.decision.to_json());
    if (!r.status.ok()) j["error"] = r.status.to_string();
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fputs("\n", stdout);
  }
  std::fflush(stdout);
  if (!r.status.ok()) report_error(r.status);
  fmt::print(stderr, "{}\n", r.decision.to_json());
  std::fflush(stderr);
  return r.status.ok() ? 0 : 1;
}

struct LabelledPrompt {
  RouteRequest req;
  bool hard = false;
  std::string id;
};

StatusOr<std::vector<LabelledPrompt>> read_set(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("labelled set '{}': cannot open", path));
  std::vector<LabelledPrompt> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    auto bad = [&](const std::string& what) {
      return Status::invalid_argument(fmt::format("{}:{}: {}", path, line_no, what));
    };
    if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
    LabelledPrompt p;
    if (j.contains("messages") && j["messages"].is_array()) {
      for (const auto& m : j["messages"]) {
        if (!m.is_object() || !m.contains("content") || !m["content"].is_string()) {
          return bad("messages[] need a string \"content\"");
        }
        p.req.messages.push_back({m.value("role", "user"), m["content"].get<std::string>()});
      }
    } else if (j.contains("prompt") && j["prompt"].is_string()) {
      p.req.messages.push_back({"user", j["prompt"].get<std::string>()});
    } else {
      return bad("needs \"prompt\" (string) or \"messages\" (array)");
    }
    const std::string d = j.value("difficulty", std::string());
    if (d != "easy" && d != "hard") {
      return bad(fmt::format("\"difficulty\" must be \"easy\" or \"hard\", found '{}'", d));
    }
    p.hard = d == "hard";
    if (j.contains("id")) p.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    out.push_back(std::move(p));
  }
  if (out.empty()) return Status::invalid_argument(fmt::format("labelled set '{}' is empty", path));
  return out;
}

int run_calibrate(const CalibrateOptions& o) {
  if (o.signal != "entropy" && o.signal != "nll" && o.signal != "tokens") {
    return report_error(fmt::format("--signal '{}': expected entropy, nll or tokens", o.signal));
  }
  auto set = read_set(o.set);
  if (!set.ok()) return report_error(set.status());
  auto base = load_config(o.config);
  if (!base.ok()) return report_error(base.status());
  EngineDeviceOptions eo;
  eo.session.n_ctx = o.n_ctx;
  eo.session.n_threads = o.n_threads;
  eo.probe_nll = o.signal == "nll";
  auto device = EngineDevice::load(o.model, eo);
  if (!device.ok()) return report_error(device.status());
  std::vector<LabelledScore> xs;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const LabelledPrompt& p : *set) {
    auto probe = (*device)->probe(p.req);
    if (!probe.ok()) return report_error(probe.status().with_context("probe"));
    double score = probe->entropy;
    if (o.signal == "nll") score = probe->mean_nll.value_or(0.0);
    if (o.signal == "tokens") score = probe->prompt_tokens;
    xs.push_back({score, p.hard});
    if (o.per_prompt) {
      rows.push_back({{"id", p.id},
                      {"difficulty", p.hard ? "hard" : "easy"},
                      {"prompt_tokens", probe->prompt_tokens},
                      {"entropy", probe->entropy},
                      {"score", score}});
    }
  }
  auto report = calibrate_threshold(xs, o.target);
  if (!report.ok()) return report_error(report.status());
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(report->to_json());
  j["signal"] = o.signal;
  j["model"] = o.model;
  j["set"] = o.set;
  if (o.per_prompt) j["prompts"] = rows;
  if (!o.out.empty()) {
    if (o.signal == "tokens") {
      return report_error(
          "--out: a 'tokens' threshold is not a router signal; use "
          "max_device_prompt_tokens in the config instead");
    }
    RouterConfig cfg = *base;
    cfg.signal = o.signal;
    cfg.uncertainty_threshold = report->threshold;
    const std::string tmp = o.out + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << cfg.to_json() << "\n";
      if (!f) return report_error(fmt::format("cannot write '{}'", tmp));
    }
    if (std::rename(tmp.c_str(), o.out.c_str()) != 0) {
      return report_error(fmt::format("cannot rename '{}' to '{}'", tmp, o.out));
    }
    j["config"] = o.out;
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace

void register_route(CLI::App& app) {
  auto o = std::make_shared<RouteOptions>();
  CLI::App* sub =
      app.add_subcommand("route", "Answer a prompt on the device or in the cloud (router)");
  sub->footer(
      "Output: the answer on stdout; the decision JSON ({\"target\",\"reasons\",\"attempts\"...})\n"
      "as the last line of stderr (--json: one object with text and decision on stdout).\n"
      "Exit status: 0 answered, 1 no answer (reason on stderr), 2 usage. See docs/router.md.\n"
      "Example: edgelm route -m model.gguf --cloud http://127.0.0.1:8081 -p \"Hello\"\n"
      "         edgelm route calibrate --set eval/routing/labelled.jsonl -m model.gguf \\\n"
      "             --target-device-share 0.6 --out router.json");
  sub->add_option("-m,--model", o->model, "GGUF model for the device side (none: cloud only)");
  sub->add_option("--cloud", o->cloud,
                  "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8081 or https://host/v1");
  sub->add_option("--cloud-key", o->cloud_key, "API key for the cloud (Bearer)");
  sub->add_option("--cloud-model", o->cloud_model,
                  "\"model\" sent to the cloud (default: the first of its /v1/models)");
  sub->add_flag("--private", o->is_private,
                "Privacy class device-only: never sent to the cloud (fails if the device can't)");
  sub->add_option("-p,--prompt", o->prompt, "Prompt (one user message)");
  sub->add_option("--system", o->system, "System message");
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate at most")
      ->capture_default_str();
  sub->add_option("--temp", o->temperature, "Temperature; 0 = greedy")->capture_default_str();
  sub->add_option("--prefer", o->prefer, "Hint: device or cloud")
      ->check(CLI::IsMember({"device", "cloud"}));
  sub->add_option("--task", o->task, "Hint: task name (see cloud_tasks in the config)");
  sub->add_option("--difficulty", o->difficulty, "Hint: easy or hard")
      ->check(CLI::IsMember({"easy", "hard"}));
  sub->add_option("--config", o->config, "Router config JSON (from route calibrate --out)");
  sub->add_option("--threshold", o->threshold,
                  "Uncertainty threshold (overrides the config; higher = more on the device)");
  sub->add_option("--signal", o->signal, "Uncertainty signal: entropy, nll or none")
      ->check(CLI::IsMember({"entropy", "nll", "none"}));
  sub->add_option("--governor", o->governor_policy,
                  "Governor policy JSON: the governor may refuse device work (-> cloud)");
  sub->add_flag("--stream", o->stream, "Stream from the cloud (SSE)");
  sub->add_flag("--json", o->json, "Print {\"text\",\"decision\"} as one JSON object on stdout");
  sub->add_option("--timeout-ms", o->timeout_ms, "Cloud: limit per try")->capture_default_str();
  sub->add_option("--connect-timeout-ms", o->connect_timeout_ms, "Cloud: connect limit")
      ->capture_default_str();
  sub->add_option("--retries", o->retries, "Cloud: retries after the first try")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->n_ctx, "Device context size; 0 = model's, at most 4096");
  sub->add_option("-t,--threads", o->n_threads, "Device threads; 0 = physical cores");

  auto c = std::make_shared<CalibrateOptions>();
  CLI::App* cal = sub->add_subcommand(
      "calibrate", "Pick the uncertainty threshold on a labelled set for a target device share");
  cal->add_option("--set", c->set, "Labelled JSONL (prompt|messages, difficulty easy|hard)")
      ->required();
  cal->add_option("-m,--model", c->model, "GGUF model of the device")->required();
  cal->add_option("--target-device-share", c->target, "Fraction of requests kept on the device")
      ->capture_default_str();
  cal->add_option("--signal", c->signal, "entropy, nll (mean NLL of the prompt's tail) or tokens")
      ->capture_default_str();
  cal->add_option("--out", c->out, "Write a router config with the threshold here");
  cal->add_option("--config", c->config, "Base router config for --out");
  cal->add_flag("--per-prompt", c->per_prompt, "Include every prompt's score in the report");
  cal->add_option("-c,--ctx-size", c->n_ctx, "Context size; 0 = model's, at most 4096");
  cal->add_option("-t,--threads", c->n_threads, "Threads; 0 = physical cores");
  cal->callback([c] { exit_with(run_calibrate(*c)); });

  sub->callback([o, sub, cal] {
    if (cal->parsed()) return;
    if (o->prompt.empty()) {
      report_error("route needs a prompt: -p TEXT (see edgelm route --help)");
      exit_with(2);
    }
    if (o->model.empty() && o->cloud.empty()) {
      report_error("route needs a device model (-m) or a cloud (--cloud), or both");
      exit_with(2);
    }
    exit_with(run_route(*o));
  });
  (void)sub;
}

}  // namespace edgelm::cli
