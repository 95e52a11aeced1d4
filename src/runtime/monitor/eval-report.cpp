// Eval report JSON and quality gates (see eval-report.h).
#include "runtime/monitor/eval-report.h"

#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

namespace edgelm {

using ojson = nlohmann::ordered_json;

std::optional<double> overall_task_accuracy(const std::vector<TaskSetResult>& sets) {
  int n = 0, correct = 0;
  for (const auto& s : sets) {
    n += s.n;
    correct += s.correct;
  }
  if (n == 0) return std::nullopt;
  return static_cast<double>(correct) / n;
}

namespace {

bool is_fraction_key(const std::string& k) { return k == "min_top1" || k == "min_task_accuracy"; }

Status read_number(const nlohmann::json& v, const std::string& where, const std::string& key,
                   bool fraction, double& out) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    return Status::invalid_argument(
        fmt::format("{}: \"{}\" must be a finite number, found {}", where, key, v.dump()));
  }
  out = v.get<double>();
  if (fraction && (out < 0 || out > 1)) {
    return Status::invalid_argument(
        fmt::format("{}: \"{}\" is a fraction in [0, 1] (0.9 = 90 %), found {}", where, key, out));
  }
  if (!fraction && out < 0) {
    return Status::invalid_argument(
        fmt::format("{}: \"{}\" must be >= 0, found {}", where, key, out));
  }
  return Status::ok_status();
}

}  // namespace

StatusOr<QualityGate> parse_gate(std::string_view json_text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (j.is_discarded()) return Status::invalid_argument(fmt::format("{}: not valid JSON", source));
  if (!j.is_object()) {
    return Status::invalid_argument(
        fmt::format("{}: a gate is a JSON object, found {}", source, j.type_name()));
  }
  QualityGate g;
  int n = 0;
  for (const auto& [k, v] : j.items()) {
    if (k == "description" || k == "comment") continue;  // free text for humans
    double x = 0;
    std::optional<double>* slot = nullptr;
    if (k == "max_perplexity") slot = &g.max_perplexity;
    if (k == "max_perplexity_increase") slot = &g.max_perplexity_increase;
    if (k == "max_kl") slot = &g.max_kl;
    if (k == "max_kl_p99") slot = &g.max_kl_p99;
    if (k == "min_top1") slot = &g.min_top1;
    if (k == "min_task_accuracy") slot = &g.min_task_accuracy;
    if (slot != nullptr) {
      RETURN_IF_ERROR(read_number(v, source, k, is_fraction_key(k), x));
      *slot = x;
      ++n;
      continue;
    }
    if (k == "min_task_accuracy_by_set") {
      if (!v.is_object()) {
        return Status::invalid_argument(fmt::format(
            "{}: \"min_task_accuracy_by_set\" must be an object {{\"set name\": fraction}}, "
            "found {}",
            source, v.type_name()));
      }
      for (const auto& [set, f] : v.items()) {
        RETURN_IF_ERROR(
            read_number(f, source, "min_task_accuracy_by_set." + set, /*fraction=*/true, x));
        g.min_task_accuracy_by_set[set] = x;
        ++n;
      }
      continue;
    }
    return Status::invalid_argument(fmt::format(
        "{}: unknown key \"{}\" (known: max_perplexity, max_perplexity_increase, max_kl, "
        "max_kl_p99, min_top1, min_task_accuracy, min_task_accuracy_by_set, description)",
        source, k));
  }
  if (n == 0)
    return Status::invalid_argument(fmt::format("{}: the gate has no thresholds", source));
  return g;
}

StatusOr<QualityGate> load_gate(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("cannot read gate file '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_gate(ss.str(), path);
}

StatusOr<std::vector<GateCheck>> check_gate(const QualityGate& g, const EvalReport& r) {
  std::vector<GateCheck> out;
  auto need = [](const std::string& key, const char* what) {
    return Status::failed_precondition(fmt::format(
        "gate threshold \"{}\" needs {}, which this evaluation did not measure", key, what));
  };
  auto max_check = [&](const std::string& name, double threshold, double measured) {
    out.push_back({name, threshold, measured, measured <= threshold});
  };
  auto min_check = [&](const std::string& name, double threshold, double measured) {
    out.push_back({name, threshold, measured, measured >= threshold});
  };
  if (g.max_perplexity) {
    if (!r.text) return need("max_perplexity", "perplexity (give a text with -f)");
    max_check("max_perplexity", *g.max_perplexity, r.text->ppl.ppl);
  }
  const bool have_kl = r.text && r.text->kl && r.text->baseline_ppl;
  if (g.max_perplexity_increase) {
    if (!have_kl) return need("max_perplexity_increase", "a baseline (--baseline MODEL, -f TEXT)");
    max_check("max_perplexity_increase", *g.max_perplexity_increase,
              r.text->ppl.ppl / r.text->baseline_ppl->ppl - 1.0);
  }
  if (g.max_kl) {
    if (!have_kl) return need("max_kl", "a baseline (--baseline MODEL, -f TEXT)");
    max_check("max_kl", *g.max_kl, r.text->kl->mean);
  }
  if (g.max_kl_p99) {
    if (!have_kl) return need("max_kl_p99", "a baseline (--baseline MODEL, -f TEXT)");
    max_check("max_kl_p99", *g.max_kl_p99, r.text->kl->p99);
  }
  if (g.min_top1) {
    if (!have_kl) return need("min_top1", "a baseline (--baseline MODEL, -f TEXT)");
    min_check("min_top1", *g.min_top1, r.text->kl->top1);
  }
  if (g.min_task_accuracy) {
    auto overall = overall_task_accuracy(r.tasks);
    if (!overall) return need("min_task_accuracy", "task results (--tasks FILE)");
    min_check("min_task_accuracy", *g.min_task_accuracy, *overall);
    for (const auto& s : r.tasks) {
      if (g.min_task_accuracy_by_set.count(s.name)) continue;
      if (r.tasks.size() > 1) {
        min_check("min_task_accuracy[" + s.name + "]", *g.min_task_accuracy, s.accuracy);
      }
    }
  }
  for (const auto& [name, threshold] : g.min_task_accuracy_by_set) {
    const TaskSetResult* found = nullptr;
    for (const auto& s : r.tasks)
      if (s.name == name) found = &s;
    if (found == nullptr) {
      return need("min_task_accuracy_by_set." + name,
                  fmt::format("a task set named \"{}\" (--tasks {}.jsonl)", name, name).c_str());
    }
    min_check("min_task_accuracy[" + name + "]", threshold, found->accuracy);
  }
  return out;
}

bool gate_passed(const std::vector<GateCheck>& checks) {
  for (const auto& c : checks)
    if (!c.passed) return false;
  return true;
}

std::vector<std::string> gate_failures(const std::vector<GateCheck>& checks) {
  std::vector<std::string> out;
  for (const auto& c : checks) {
    if (c.passed) continue;
    const bool is_min = c.name.rfind("min_", 0) == 0;
    out.push_back(fmt::format("{}: measured {:.6g} {} threshold {:.6g}", c.name, c.measured,
                              is_min ? "<" : ">", c.threshold));
  }
  return out;
}

std::string utc_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

ojson file_json(const ModelFileInfo& m) {
  ojson j;
  j["file"] = m.file;
  j["size_bytes"] = m.size_bytes;
  if (!m.sha256.empty()) j["sha256"] = m.sha256;
  return j;
}

ojson ppl_json(const PerplexityResult& p) {
  ojson j;
  j["value"] = p.ppl;
  j["stderr"] = p.ppl_stderr;
  j["ln_ppl"] = p.ln_ppl;
  j["tokens_scored"] = p.tokens;
  j["chunks"] = p.chunks;
  return j;
}

ojson tally_json(const std::map<std::string, Tally>& m) {
  ojson j = ojson::object();
  for (const auto& [k, t] : m)
    j[k] = {{"n", t.n}, {"correct", t.correct}, {"accuracy", t.accuracy()}};
  return j;
}

}  // namespace

ojson report_to_json(const EvalReport& r, const std::vector<GateCheck>* checks) {
  ojson j;
  j["schema"] = "edgelm.eval/1";
  j["timestamp"] = r.timestamp.empty() ? utc_timestamp() : r.timestamp;
  j["model"] = file_json(r.model);
  j["baseline"] = r.baseline ? file_json(*r.baseline) : ojson(nullptr);
  ojson settings;
  settings["text_file"] = r.text_file.empty() ? ojson(nullptr) : ojson(r.text_file);
  settings["text_tokens"] = r.text_tokens;
  settings["n_ctx"] = r.chunk.n_ctx;
  settings["max_chunks"] = r.chunk.max_chunks;
  settings["threads"] = r.n_threads;
  j["settings"] = settings;

  if (r.text) {
    ojson p = ppl_json(r.text->ppl);
    if (r.text->baseline_ppl) {
      p["baseline"] = r.text->baseline_ppl->ppl;
      p["baseline_stderr"] = r.text->baseline_ppl->ppl_stderr;
      p["relative_increase"] = r.text->ppl.ppl / r.text->baseline_ppl->ppl - 1.0;
    }
    j["perplexity"] = p;
  } else {
    j["perplexity"] = nullptr;
  }
  if (r.text && r.text->kl) {
    const KlResult& k = *r.text->kl;
    j["kl"] = {{"mean", k.mean},
               {"stderr", k.stderr_mean},
               {"max", k.max},
               {"p99_9", k.p99_9},
               {"p99", k.p99},
               {"p95", k.p95},
               {"p90", k.p90},
               {"median", k.median},
               {"p10", k.p10},
               {"p5", k.p5},
               {"p1", k.p1},
               {"min", k.min},
               {"ln_ppl_ratio", k.ln_ppl_ratio},
               {"positions", k.positions}};
    j["top1"] = {{"agreement", k.top1}, {"stderr", k.top1_stderr}};
    j["delta_p"] = {{"mean", k.delta_p_mean}, {"rms", k.delta_p_rms}};
  } else {
    j["kl"] = nullptr;
    j["top1"] = nullptr;
  }

  if (!r.tasks.empty()) {
    ojson t;
    auto overall = overall_task_accuracy(r.tasks);
    int n = 0, correct = 0;
    for (const auto& s : r.tasks) {
      n += s.n;
      correct += s.correct;
    }
    t["n"] = n;
    t["correct"] = correct;
    t["accuracy"] = overall.value_or(0);
    ojson sets = ojson::array();
    for (const auto& s : r.tasks) {
      ojson e;
      e["name"] = s.name;
      e["file"] = s.path;
      e["n"] = s.n;
      e["correct"] = s.correct;
      e["accuracy"] = s.accuracy;
      e["seconds"] = s.seconds;
      e["by_metric"] = tally_json(s.by_metric);
      e["by_difficulty"] = tally_json(s.by_difficulty);
      ojson items = ojson::array();
      for (const auto& x : s.results) {
        ojson it;
        it["id"] = x.id;
        it["line"] = x.line;
        it["metric"] = task_metric_name(x.metric);
        if (!x.difficulty.empty()) it["difficulty"] = x.difficulty;
        it["correct"] = x.correct;
        if (x.metric == TaskMetric::kChoice) {
          it["chosen"] = x.chosen;
          it["choice_logprob"] = x.choice_logprob;
        } else {
          // May end inside a UTF-8 character: dump with error_handler_t::replace.
          it["output"] = x.output;
        }
        items.push_back(it);
      }
      e["items"] = items;
      sets.push_back(e);
    }
    t["sets"] = sets;
    j["tasks"] = t;
  } else {
    j["tasks"] = nullptr;
  }
  if (r.text) {
    j["timing"] = {{"text_seconds", r.text->seconds},
                   {"text_tokens_per_second",
                    r.text->seconds > 0 ? r.text->tokens_evaluated / r.text->seconds : 0.0}};
  }
  if (checks != nullptr) {
    ojson g;
    g["file"] = r.gate_file;
    g["passed"] = gate_passed(*checks);
    ojson arr = ojson::array();
    for (const auto& c : *checks) {
      arr.push_back({{"name", c.name},
                     {"threshold", c.threshold},
                     {"measured", c.measured},
                     {"passed", c.passed}});
    }
    g["checks"] = arr;
    j["gate"] = g;
  }
  return j;
}

}  // namespace edgelm
