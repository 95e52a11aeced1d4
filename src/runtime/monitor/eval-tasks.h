// Task sets for `edgelm eval`: JSONL files, one task per line, scored by greedy generation
// (metrics exact, contains, regex) or by log-likelihood ranking of given options (choice).
// The schema is documented in docs/eval.md and eval/tasks/README.md:
//
//   {"id": "cap-fr", "prompt": "The capital of France is", "expected": "Paris",
//    "metric": "contains", "difficulty": "easy", "max_tokens": 8}
//   {"id": "sky", "prompt": "The sky is", "metric": "choice",
//    "choices": [" blue", " green"], "expected": " blue"}
//
//   ASSIGN_OR_RETURN(TaskSet set, load_task_set("eval/tasks/basic.jsonl"));
//   ASSIGN_OR_RETURN(TaskSetResult r, run_task_set(*session, set));
//   fmt::print("{}: {}/{} correct\n", r.name, r.correct, r.n);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/session.h"

namespace edgelm {

struct CompiledRegex;  // std::regex, kept out of this header (eval-tasks.cpp)

enum class TaskMetric { kExact, kContains, kChoice, kRegex };

const char* task_metric_name(TaskMetric m);

struct Task {
  int line = 0;    // 1-based line in the file
  std::string id;  // "id" or "line-<n>"
  std::string prompt;
  std::string expected;
  TaskMetric metric = TaskMetric::kExact;
  std::vector<std::string> choices;  // choice: the options, expected_choice indexes them
  int expected_choice = -1;
  std::string difficulty;  // "easy", "hard" or "" (free labels are kept as given)
  std::string category;
  int max_tokens = 32;                      // generation limit (not for choice)
  std::vector<std::string> stop{"\n"};      // generation stops at these (not for choice)
  bool ignore_case = false;                 // exact, contains, regex
  std::shared_ptr<const CompiledRegex> re;  // regex: compiled "expected"
};

struct TaskSet {
  std::string name;  // file name without directory and extension
  std::string path;
  std::vector<Task> tasks;
};

// Parses JSONL text. Blank lines and lines starting with '#' or "//" are skipped. Errors name
// `source`, the line number and what is wrong (bad JSON, missing or mistyped field, unknown
// metric, expected not among choices, invalid regex, unknown key). An empty set is an error.
StatusOr<TaskSet> parse_task_set(std::string_view jsonl, const std::string& source);
StatusOr<TaskSet> load_task_set(const std::string& path);

// Scores generated text for exact (trimmed equality), contains (substring) and regex
// (std::regex_search, ECMAScript); ignore_case applies to all three. false for choice.
bool score_output(const Task& task, std::string_view output);

struct TaskResult {
  std::string id;
  int line = 0;
  TaskMetric metric = TaskMetric::kExact;
  std::string difficulty;
  bool correct = false;
  std::string output;                  // generated text (exact, contains, regex)
  int chosen = -1;                     // choice: index of the most likely option
  std::vector<double> choice_logprob;  // choice: summed log-probability of each option
};

struct Tally {
  int n = 0, correct = 0;
  double accuracy() const { return n > 0 ? static_cast<double>(correct) / n : 0; }
};

struct TaskSetResult {
  std::string name, path;
  int n = 0, correct = 0;
  double accuracy = 0;
  std::map<std::string, Tally> by_metric;      // "exact", "contains", "choice", "regex"
  std::map<std::string, Tally> by_difficulty;  // labels as given; "" becomes "unlabelled"
  std::vector<TaskResult> results;
  double seconds = 0;
};

// Called after each task: tasks done, tasks in all.
using TaskProgress = std::function<void(int done, int total)>;

// Runs every task from an empty cache: greedy generation through the Session (stops as the
// task says) or, for choice, the summed log-probability of each option's tokens after the
// prompt (prompt tokenized with BOS as the model asks; each option tokenized on its own without
// special tokens, so write options with the leading space the text would have). The highest
// wins; ties go to the first. The Session's cache is left empty.
StatusOr<TaskSetResult> run_task_set(Session& session, const TaskSet& set,
                                     const TaskProgress& progress = {});

}  // namespace edgelm
