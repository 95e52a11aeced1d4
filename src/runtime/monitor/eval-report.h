// The `edgelm eval` report (one self-contained JSON object, embedded by the release tooling
// into the release manifest under "quality") and quality gates: thresholds in a JSON file that
// a candidate model must meet (CI blocks a bad quantization on them). Keys of both are listed
// in docs/eval.md.
//
//   EvalReport rep;  rep.model = {.file = "m-q4_k_m.gguf", .size_bytes = n};
//   rep.text = text_result;  rep.tasks = {task_result};
//   ASSIGN_OR_RETURN(QualityGate gate, load_gate("gate.json"));
//   ASSIGN_OR_RETURN(std::vector<GateCheck> checks, check_gate(gate, rep));
//   bool pass = gate_passed(checks);
//   std::string json = report_to_json(rep, &checks).dump(2);
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/monitor/eval-tasks.h"
#include "runtime/monitor/eval.h"

namespace edgelm {

struct ModelFileInfo {
  std::string file;  // file name as given on the command line
  uint64_t size_bytes = 0;
  std::string sha256;  // hex; "" = not computed (left out of the JSON)
};

struct EvalReport {
  ModelFileInfo model;
  std::optional<ModelFileInfo> baseline;
  std::string text_file;  // held-out text ("" = none)
  int64_t text_tokens = 0;
  ChunkOptions chunk;  // n_ctx / max_chunks used
  int n_threads = 0;
  std::optional<TextEvalResult> text;
  std::vector<TaskSetResult> tasks;
  std::string timestamp;  // ISO 8601 UTC; "" = now when serialized
  std::string gate_file;  // "" = no gate
};

// Overall task accuracy over every set (0 tasks: nullopt).
std::optional<double> overall_task_accuracy(const std::vector<TaskSetResult>& sets);

// Thresholds; absent ones are not checked. min_task_accuracy applies to every task set and to
// the overall accuracy; min_task_accuracy_by_set overrides it for named sets.
struct QualityGate {
  std::optional<double> max_perplexity;           // absolute PPL of the candidate
  std::optional<double> max_perplexity_increase;  // PPL / baseline PPL - 1 (0.05 = +5 %)
  std::optional<double> max_kl;                   // mean KL(baseline || candidate), nats
  std::optional<double> max_kl_p99;               // 99th percentile of KL
  std::optional<double> min_top1;                 // top-1 agreement, fraction in [0, 1]
  std::optional<double> min_task_accuracy;        // fraction in [0, 1]
  std::map<std::string, double> min_task_accuracy_by_set;
};

// Parses a gate file's JSON. Errors: not an object, unknown key (so a typo is not silently
// ignored), a value that is not a finite number (or, for min_task_accuracy_by_set, an object
// of numbers), fractions outside [0, 1], negative limits, an empty gate.
StatusOr<QualityGate> parse_gate(std::string_view json_text, const std::string& source);
StatusOr<QualityGate> load_gate(const std::string& path);

struct GateCheck {
  std::string name;  // "max_kl", "min_task_accuracy[basic]" ...
  double threshold = 0;
  double measured = 0;
  bool passed = false;
};

// Every threshold against the report. Error (FAILED_PRECONDITION) when a threshold needs a
// figure the report does not have (e.g. max_kl without a baseline, min_task_accuracy without
// tasks, a by-set name with no such set): a gate that cannot be checked must not pass.
StatusOr<std::vector<GateCheck>> check_gate(const QualityGate& gate, const EvalReport& report);
bool gate_passed(const std::vector<GateCheck>& checks);
// "max_kl: measured 0.2314 > threshold 0.05" style line per failed check.
std::vector<std::string> gate_failures(const std::vector<GateCheck>& checks);

// The report as one JSON object (schema "edgelm.eval/1"); `checks` adds the "gate" entry.
nlohmann::ordered_json report_to_json(const EvalReport& report,
                                      const std::vector<GateCheck>* checks = nullptr);

// Current UTC time as "2026-11-26T03:40:00Z".
std::string utc_timestamp();

}  // namespace edgelm
