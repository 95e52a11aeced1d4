// `edgelm monitor baseline|canary|report|perturb`: quality-drift monitoring (docs/monitor.md).
//
//   edgelm monitor baseline -m MODEL --canary FILE -o baseline.json [--max-tokens N] [--samples K]
//   edgelm monitor baseline --from-db DB -o baseline.json [--rows N]   (recorded traffic)
//   edgelm monitor canary   -m MODEL --baseline F [--seed S] [--config C] [--db FILE] [--json]
//   edgelm monitor report   --db FILE [--baseline F] [--config C] [--json]
//   edgelm monitor perturb  -m MODEL -o OUT --tensor NAME... [--noise R]   (test utility)
//
// Exit status: 0 no alarm, 3 drift alarm (canary, report with a baseline), 1 error, 2 usage.
#include "runtime/monitor/monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "runtime/monitor/canary.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

using namespace edgelm::monitor;

constexpr int kExitAlarm = 3;

struct MonitorOptions {
  std::string model, canary, out, baseline, db, config;
  int max_tokens = 32;
  int samples = 4;
  int64_t seed = -1;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  int n_threads = 0;
  bool json = false;
  std::vector<std::string> tensors;
  double noise = 0.5;
  std::string from_db;  // baseline: from recorded production rows instead of a canary run
  int64_t rows = 0;     // baseline --from-db: the newest N rows (0 = all)
};

StatusOr<DriftThresholds> thresholds_of(const MonitorOptions& o) {
  if (o.config.empty()) return DriftThresholds{};
  ASSIGN_OR_RETURN(MonitorConfig c, load_monitor_config(o.config));
  return c.thresholds;
}

uint64_t resolve_seed(int64_t seed) {
  if (seed >= 0) return static_cast<uint64_t>(seed);
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

// A features-only baseline from the production rows of a monitor store (e.g. written by
// `edgelm serve --monitor` while the known-good model served).
int run_baseline_from_db(const MonitorOptions& o) {
  StoreOptions so;
  so.create_if_missing = false;
  auto store = FeatureStore::open(o.from_db, so);
  if (!store.ok()) return report_error(store.status());
  auto rows = (*store)->recent(o.rows, "request");
  if (!rows.ok()) return report_error(rows.status());
  auto b = baseline_from_rows(*rows, o.from_db);
  if (!b.ok()) return report_error(b.status());
  if (Status s = save_baseline(*b, o.out); !s.ok()) return report_error(s);
  std::fprintf(stderr,
               "edgelm: baseline written to %s: %zu production rows of %s from %s (features only, "
               "no canary prompts)\n",
               o.out.c_str(), rows->size(), b->model_name.c_str(), o.from_db.c_str());
  return 0;
}

int run_baseline(const MonitorOptions& o) {
  if (!o.from_db.empty()) {
    if (!o.model.empty() || !o.canary.empty()) {
      return report_error(
          Status::invalid_argument("monitor baseline: give either --from-db or -m and --canary"));
    }
    return run_baseline_from_db(o);
  }
  if (o.model.empty() || o.canary.empty()) {
    return report_error(Status::invalid_argument(
        "monitor baseline: -m MODEL and --canary FILE are required (or --from-db DB)"));
  }
  auto prompts = load_canary_file(o.canary);
  if (!prompts.ok()) return report_error(prompts.status());
  auto engine = Engine::load(o.model);
  if (!engine.ok()) return report_error(engine.status());
  CanaryOptions co;
  co.max_tokens = o.max_tokens;
  co.samples_per_prompt = o.samples;
  co.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : 1;
  co.temperature = o.temperature;
  co.top_k = o.top_k;
  co.top_p = o.top_p;
  co.n_threads = o.n_threads;
  auto b = make_baseline(**engine, o.model, *prompts, co);
  if (!b.ok()) return report_error(b.status());
  if (Status s = save_baseline(*b, o.out); !s.ok()) return report_error(s);
  double nll = 0;
  int n = 0;
  for (const auto& c : b->canary) {
    nll += std::log(c.perplexity) * c.n_scored;
    n += c.n_scored;
  }
  std::fprintf(stderr,
               "edgelm: baseline of %s written to %s: %zu canary prompts, %zu feature samples, "
               "canary perplexity %.3f\n",
               o.model.c_str(), o.out.c_str(), b->canary.size(),
               b->features.empty() ? size_t{0} : b->features.begin()->second.size(),
               n > 0 ? std::exp(nll / n) : 0.0);
  return 0;
}

int run_canary_cmd(const MonitorOptions& o) {
  auto baseline = load_baseline(o.baseline);
  if (!baseline.ok()) return report_error(baseline.status());
  auto t = thresholds_of(o);
  if (!t.ok()) return report_error(t.status());
  auto engine = Engine::load(o.model);
  if (!engine.ok()) return report_error(engine.status());
  CanaryOptions co = baseline->options;
  co.seed = resolve_seed(o.seed);
  co.n_threads = o.n_threads;
  std::vector<CanaryPrompt> prompts;
  for (const auto& c : baseline->canary) prompts.push_back({c.id, c.prompt});
  auto run = run_canary(**engine, prompts, co, &*baseline);
  if (!run.ok()) return report_error(run.status());
  if (!o.db.empty()) {
    auto store = FeatureStore::open(o.db);
    if (!store.ok()) return report_error(store.status());
    for (const auto& f : run->samples) {
      if (Status s = (*store)->add(f); !s.ok()) return report_error(s);
    }
  }
  const CanaryReport rep = compare_canary(*baseline, *run, *t);
  if (o.json) {
    nlohmann::json j = rep.to_json();
    j["model"] = o.model;
    j["seed"] = co.seed;
    std::puts(j.dump().c_str());
  } else {
    std::printf("canary of %s against %s (seed %llu)\n", o.model.c_str(), o.baseline.c_str(),
                static_cast<unsigned long long>(co.seed));
    std::printf(
        "perplexity %.3f -> %.3f (ratio %.3f, max %.2f), greedy agreement %.3f (min %.2f), "
        "token overlap %.3f (min %.2f)\n\n",
        rep.baseline_perplexity, rep.current_perplexity, rep.perplexity_ratio,
        t->perplexity_ratio_max, rep.agreement, t->agreement_min, rep.overlap, t->overlap_min);
    std::fputs(drift_table_markdown(rep.features).c_str(), stdout);
    std::puts(rep.alarm ? "" : "\nno alarm");
    for (const auto& r : rep.reasons) std::printf("ALARM: %s\n", r.c_str());
  }
  return rep.alarm ? kExitAlarm : 0;
}

int run_report(const MonitorOptions& o) {
  MonitorConfig cfg;
  if (!o.config.empty()) {
    auto c = load_monitor_config(o.config);
    if (!c.ok()) return report_error(c.status());
    cfg = *c;
  }
  cfg.store.create_if_missing = false;
  auto mon = Monitor::open(o.db, cfg);
  if (!mon.ok()) return report_error(mon.status());
  if (!o.baseline.empty()) {
    auto b = load_baseline(o.baseline);
    if (!b.ok()) return report_error(b.status());
    (*mon)->set_baseline(std::move(*b));
  }
  auto rep = (*mon)->check();
  if (!rep.ok()) return report_error(rep.status());
  if (o.json) {
    std::puts(rep->to_json().dump().c_str());
  } else {
    std::printf("monitor store %s\n", o.db.c_str());
    std::fputs(rep->to_markdown().c_str(), stdout);
  }
  return rep->alarm() ? kExitAlarm : 0;
}

int run_perturb(const MonitorOptions& o) {
  auto n = write_perturbed_model(o.model, o.out, o.tensors, o.noise, resolve_seed(o.seed));
  if (!n.ok()) return report_error(n.status());
  std::fprintf(stderr, "edgelm: %s written: noise %.3g x RMS added to %d tensors\n", o.out.c_str(),
               o.noise, *n);
  return 0;
}

}  // namespace

void register_monitor(CLI::App& app) {
  auto* mon = app.add_subcommand("monitor", "Quality-drift monitoring: baseline, canary, report");
  mon->require_subcommand(1);
  auto o = std::make_shared<MonitorOptions>();

  auto* base =
      mon->add_subcommand("baseline", "Run a canary file on a model and write its baseline JSON");
  base->footer(
      "Example: edgelm monitor baseline -m model.gguf --canary canary.txt -o baseline.json\n"
      "         edgelm monitor baseline --from-db served.db -o baseline.json  (recorded traffic)");
  base->add_option("-m,--model", o->model, "GGUF model file (with --canary)");
  base->add_option("--canary", o->canary, "Canary prompts: one per line or JSON lines");
  base->add_option("--from-db", o->from_db,
                   "Instead: the feature distributions of the production rows of this monitor "
                   "store (e.g. written by `edgelm serve --monitor`)");
  base->add_option("--rows", o->rows, "With --from-db: the newest N rows (0 = all)")
      ->capture_default_str();
  base->add_option("-o,--output", o->out, "Baseline JSON to write")->required();
  base->add_option("--max-tokens", o->max_tokens, "Tokens per generation")->capture_default_str();
  base->add_option("--samples", o->samples, "Sampled generations per prompt")
      ->capture_default_str();
  base->add_option("--seed", o->seed, "First sampling seed (-1 = 1)")->capture_default_str();
  base->add_option("--temp", o->temperature, "Sampling temperature")->capture_default_str();
  base->add_option("--top-k", o->top_k, "Top-k (0 = off)")->capture_default_str();
  base->add_option("--top-p", o->top_p, "Top-p (1 = off)")->capture_default_str();
  base->add_option("-t,--threads", o->n_threads, "Threads; 0 = physical cores");
  base->callback([o] { exit_with(run_baseline(*o)); });

  auto* can = mon->add_subcommand(
      "canary", "Re-run the baseline's canary set on a model and test it for drift");
  can->footer(
      "Exit status: 0 no alarm, 3 alarm, 1 error.\n"
      "Example: edgelm monitor canary -m model.gguf --baseline baseline.json");
  can->add_option("-m,--model", o->model, "GGUF model file")->required();
  can->add_option("--baseline", o->baseline, "Baseline JSON (or a release manifest carrying one)")
      ->required();
  can->add_option("--seed", o->seed, "Sampling seed (-1 = random)")->capture_default_str();
  can->add_option("--config", o->config, "Monitor config JSON (thresholds)");
  can->add_option("--db", o->db, "Also store the canary generations' features here");
  can->add_option("-t,--threads", o->n_threads, "Threads; 0 = physical cores");
  can->add_flag("--json", o->json, "One JSON object instead of tables");
  can->callback([o] { exit_with(run_canary_cmd(*o)); });

  auto* rep = mon->add_subcommand(
      "report", "Summarize a monitor store and test its newest rows against a baseline");
  rep->footer(
      "Exit status: 0 no alarm, 3 alarm, 1 error.\n"
      "Example: edgelm monitor report --db monitor.db --baseline baseline.json --json");
  rep->add_option("--db", o->db, "Monitor store (SQLite)")->required();
  rep->add_option("--baseline", o->baseline, "Baseline JSON (or a release manifest carrying one)");
  rep->add_option("--config", o->config, "Monitor config JSON (thresholds, window)");
  rep->add_flag("--json", o->json, "One JSON object instead of tables");
  rep->callback([o] { exit_with(run_report(*o)); });

  auto* per = mon->add_subcommand(
      "perturb", "Test utility: copy a model with Gaussian noise added to some tensors");
  per->footer(
      "Example: edgelm monitor perturb -m model.gguf -o damaged.gguf --tensor output.weight "
      "--noise 0.5");
  per->add_option("-m,--model", o->model, "GGUF model file")->required();
  per->add_option("-o,--output", o->out, "GGUF file to write")->required();
  per->add_option("--tensor", o->tensors, "Substring of tensor names to perturb (repeatable)")
      ->required();
  per->add_option("--noise", o->noise, "Noise standard deviation relative to the tensor's RMS")
      ->capture_default_str();
  per->add_option("--seed", o->seed, "Noise seed (-1 = random)")->capture_default_str();
  per->callback([o] { exit_with(run_perturb(*o)); });
}

}  // namespace edgelm::cli
