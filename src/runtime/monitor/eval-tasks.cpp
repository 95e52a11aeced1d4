// Task sets: JSONL parsing, metrics and the runner (see eval-tasks.h).
// GCC 12's libstdc++ <regex> trips -Wmaybe-uninitialized (a false positive inside
// regex_automaton.h); silenced for this file only, before any header pulls <regex> in.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "runtime/monitor/eval-tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "runtime/monitor/eval.h"

namespace edgelm {

struct CompiledRegex {
  std::regex re;
};

const char* task_metric_name(TaskMetric m) {
  switch (m) {
    case TaskMetric::kExact:
      return "exact";
    case TaskMetric::kContains:
      return "contains";
    case TaskMetric::kChoice:
      return "choice";
    case TaskMetric::kRegex:
      return "regex";
  }
  return "?";
}

namespace {

using json = nlohmann::json;

const std::set<std::string> kKnownKeys = {"id",         "prompt",     "expected",   "metric",
                                          "choices",    "difficulty", "category",   "notes",
                                          "max_tokens", "stop",       "ignore_case"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads an optional string field; errors name the line.
Status get_string(const json& j, const char* key, std::string& out, const std::string& where,
                  bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Status::invalid_argument(fmt::format("{}: missing \"{}\"", where, key));
    return Status::ok_status();
  }
  if (!it->is_string()) {
    return Status::invalid_argument(
        fmt::format("{}: \"{}\" must be a string, found {}", where, key, it->type_name()));
  }
  out = it->get<std::string>();
  return Status::ok_status();
}

StatusOr<Task> parse_task(const json& j, int line, const std::string& where) {
  if (!j.is_object()) {
    return Status::invalid_argument(
        fmt::format("{}: expected a JSON object, found {}", where, j.type_name()));
  }
  for (const auto& [k, v] : j.items()) {
    if (!kKnownKeys.count(k)) {
      return Status::invalid_argument(fmt::format(
          "{}: unknown key \"{}\" (known: id, prompt, expected, metric, choices, difficulty, "
          "category, notes, max_tokens, stop, ignore_case)",
          where, k));
    }
  }
  Task t;
  t.line = line;
  RETURN_IF_ERROR(get_string(j, "id", t.id, where, false));
  if (t.id.empty()) t.id = fmt::format("line-{}", line);
  RETURN_IF_ERROR(get_string(j, "prompt", t.prompt, where, true));
  if (t.prompt.empty()) return Status::invalid_argument(fmt::format("{}: empty \"prompt\"", where));
  std::string metric;
  RETURN_IF_ERROR(get_string(j, "metric", metric, where, true));
  if (metric == "exact") {
    t.metric = TaskMetric::kExact;
  } else if (metric == "contains") {
    t.metric = TaskMetric::kContains;
  } else if (metric == "choice") {
    t.metric = TaskMetric::kChoice;
  } else if (metric == "regex") {
    t.metric = TaskMetric::kRegex;
  } else {
    return Status::invalid_argument(fmt::format(
        "{}: unknown metric \"{}\" (expected exact, contains, choice or regex)", where, metric));
  }
  RETURN_IF_ERROR(get_string(j, "difficulty", t.difficulty, where, false));
  RETURN_IF_ERROR(get_string(j, "category", t.category, where, false));
  if (auto it = j.find("ignore_case"); it != j.end()) {
    if (!it->is_boolean()) {
      return Status::invalid_argument(fmt::format(
          "{}: \"ignore_case\" must be true or false, found {}", where, it->type_name()));
    }
    t.ignore_case = it->get<bool>();
  }
  if (auto it = j.find("max_tokens"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 4096) {
      return Status::invalid_argument(fmt::format(
          "{}: \"max_tokens\" must be an integer in [1, 4096], found {}", where, it->dump()));
    }
    t.max_tokens = it->get<int>();
  }
  if (auto it = j.find("stop"); it != j.end()) {
    bool ok = it->is_array();
    if (ok) {
      for (const auto& s : *it) ok = ok && s.is_string() && !s.get<std::string>().empty();
    }
    if (!ok) {
      return Status::invalid_argument(fmt::format(
          "{}: \"stop\" must be an array of non-empty strings, found {}", where, it->dump()));
    }
    t.stop = it->get<std::vector<std::string>>();
  }

  auto exp = j.find("expected");
  if (t.metric == TaskMetric::kChoice) {
    auto ch = j.find("choices");
    if (ch == j.end() || !ch->is_array() || ch->size() < 2) {
      return Status::invalid_argument(fmt::format(
          "{}: metric \"choice\" needs \"choices\": an array of at least 2 strings", where));
    }
    for (const auto& c : *ch) {
      if (!c.is_string() || c.get<std::string>().empty()) {
        return Status::invalid_argument(
            fmt::format("{}: every entry of \"choices\" must be a non-empty string, found {}",
                        where, c.dump()));
      }
      t.choices.push_back(c.get<std::string>());
    }
    if (exp == j.end()) {
      return Status::invalid_argument(
          fmt::format("{}: missing \"expected\" (one of \"choices\" or its index)", where));
    }
    if (exp->is_number_integer()) {
      const int64_t k = exp->get<int64_t>();
      if (k < 0 || k >= static_cast<int64_t>(t.choices.size())) {
        return Status::invalid_argument(fmt::format(
            "{}: \"expected\" index {} is outside the {} choices", where, k, t.choices.size()));
      }
      t.expected_choice = static_cast<int>(k);
    } else if (exp->is_string()) {
      auto f = std::find(t.choices.begin(), t.choices.end(), exp->get<std::string>());
      if (f == t.choices.end()) {
        return Status::invalid_argument(
            fmt::format("{}: \"expected\" {} is not one of \"choices\"", where, exp->dump()));
      }
      t.expected_choice = static_cast<int>(f - t.choices.begin());
    } else {
      return Status::invalid_argument(fmt::format(
          "{}: \"expected\" must be a string or an index, found {}", where, exp->type_name()));
    }
    t.expected = t.choices[static_cast<size_t>(t.expected_choice)];
    return t;
  }
  if (j.contains("choices")) {
    return Status::invalid_argument(fmt::format(
        "{}: \"choices\" is only for metric \"choice\" (metric is \"{}\")", where, metric));
  }
  RETURN_IF_ERROR(get_string(j, "expected", t.expected, where, true));
  if (t.expected.empty() || trim(t.expected).empty()) {
    return Status::invalid_argument(fmt::format("{}: empty \"expected\"", where));
  }
  if (t.metric == TaskMetric::kRegex) {
    try {
      auto flags = std::regex::ECMAScript;
      if (t.ignore_case) flags |= std::regex::icase;
      t.re = std::make_shared<const CompiledRegex>(CompiledRegex{std::regex(t.expected, flags)});
    } catch (const std::regex_error& e) {
      return Status::invalid_argument(
          fmt::format("{}: invalid regex \"{}\": {}", where, t.expected, e.what()));
    }
  }
  return t;
}

}  // namespace

StatusOr<TaskSet> parse_task_set(std::string_view jsonl, const std::string& source) {
  TaskSet set;
  set.path = source;
  set.name = std::filesystem::path(source).stem().string();
  std::set<std::string> ids;
  size_t pos = 0;
  int line_no = 0;
  while (pos <= jsonl.size()) {
    size_t end = jsonl.find('\n', pos);
    if (end == std::string_view::npos) end = jsonl.size();
    std::string_view line = jsonl.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#' || t.substr(0, 2) == "//") {
      if (end == jsonl.size()) break;
      continue;
    }
    const std::string where = fmt::format("{}:{}", source, line_no);
    json j = json::parse(t.begin(), t.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return Status::invalid_argument(
          fmt::format("{}: not valid JSON: {}", where, std::string(t.substr(0, 80))));
    }
    ASSIGN_OR_RETURN(Task task, parse_task(j, line_no, where));
    if (!ids.insert(task.id).second) {
      return Status::invalid_argument(fmt::format("{}: duplicate id \"{}\"", where, task.id));
    }
    set.tasks.push_back(std::move(task));
    if (end == jsonl.size()) break;
  }
  if (set.tasks.empty()) {
    return Status::invalid_argument(fmt::format("{}: no tasks (empty task set)", source));
  }
  return set;
}

StatusOr<TaskSet> load_task_set(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("cannot read task set '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_task_set(ss.str(), path);
}

bool score_output(const Task& task, std::string_view output) {
  switch (task.metric) {
    case TaskMetric::kExact: {
      std::string_view a = trim(output), b = trim(task.expected);
      return task.ignore_case ? lower(a) == lower(b) : a == b;
    }
    case TaskMetric::kContains:
      if (task.ignore_case) return lower(output).find(lower(task.expected)) != std::string::npos;
      return output.find(task.expected) != std::string_view::npos;
    case TaskMetric::kRegex:
      return task.re != nullptr && std::regex_search(output.begin(), output.end(), task.re->re);
    case TaskMetric::kChoice:
      return false;
  }
  return false;
}

namespace {

// Summed log-probability of each option after the prompt.
Status score_choices(Session& session, const Task& task, TaskResult& r) {
  const TokenCodec& codec = session.codec();
  ASSIGN_OR_RETURN(std::vector<int32_t> prompt,
                   codec.encode(task.prompt, /*add_special=*/true, /*parse_special=*/true));
  if (prompt.empty()) {
    return Status::invalid_argument(
        fmt::format("task {} (line {}): the prompt has no tokens", task.id, task.line));
  }
  LogitsEvaluator ev(session.executor());
  session.reset();
  ASSIGN_OR_RETURN(std::span<const float> last,
                   ev.eval(std::span<const int32_t>(prompt), prompt.size() - 1));
  std::vector<double> lp0, lp;
  log_softmax(last, lp0);
  const size_t V = static_cast<size_t>(ev.n_vocab());
  double best = -std::numeric_limits<double>::infinity();
  for (size_t c = 0; c < task.choices.size(); ++c) {
    ASSIGN_OR_RETURN(std::vector<int32_t> opt,
                     codec.encode(task.choices[c], /*add_special=*/false, /*parse_special=*/false));
    if (opt.empty()) {
      return Status::invalid_argument(
          fmt::format("task {} (line {}): choice {} has no tokens", task.id, task.line, c));
    }
    if (prompt.size() + opt.size() > static_cast<size_t>(ev.n_ctx())) {
      return Status::out_of_range(
          fmt::format("task {} (line {}): prompt ({}) + choice {} ({}) tokens exceed n_ctx {}",
                      task.id, task.line, prompt.size(), c, opt.size(), ev.n_ctx()));
    }
    ev.truncate(static_cast<int>(prompt.size()));
    double ll = lp0[static_cast<size_t>(opt[0])];
    if (opt.size() > 1) {
      ASSIGN_OR_RETURN(std::span<const float> rows,
                       ev.eval(std::span<const int32_t>(opt).first(opt.size() - 1), 0));
      for (size_t i = 0; i + 1 < opt.size(); ++i) {
        log_softmax(rows.subspan(i * V, V), lp);
        ll += lp[static_cast<size_t>(opt[i + 1])];
      }
    }
    r.choice_logprob.push_back(ll);
    if (ll > best) {
      best = ll;
      r.chosen = static_cast<int>(c);
    }
  }
  ev.reset();
  session.reset();
  r.correct = r.chosen == task.expected_choice;
  return Status::ok_status();
}

}  // namespace

StatusOr<TaskSetResult> run_task_set(Session& session, const TaskSet& set,
                                     const TaskProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  TaskSetResult out;
  out.name = set.name;
  out.path = set.path;
  int done = 0;
  for (const Task& task : set.tasks) {
    TaskResult r;
    r.id = task.id;
    r.line = task.line;
    r.metric = task.metric;
    r.difficulty = task.difficulty;
    if (task.metric == TaskMetric::kChoice) {
      Status st = score_choices(session, task, r);
      if (!st.ok()) return st.with_context(set.path);
    } else {
      GenerateParams gp;
      gp.max_tokens = task.max_tokens;
      gp.sampling = SamplingParams::greedy();
      gp.stop = task.stop;
      gp.reuse_cache = false;
      session.reset();
      auto g = session.generate(task.prompt, gp);
      if (!g.ok()) {
        return g.status().with_context(
            fmt::format("{}: task {} (line {})", set.path, task.id, task.line));
      }
      r.output = g->text;
      r.correct = score_output(task, r.output);
      session.reset();
    }
    ++out.n;
    out.correct += r.correct ? 1 : 0;
    Tally& m = out.by_metric[task_metric_name(task.metric)];
    ++m.n;
    m.correct += r.correct ? 1 : 0;
    Tally& d = out.by_difficulty[task.difficulty.empty() ? "unlabelled" : task.difficulty];
    ++d.n;
    d.correct += r.correct ? 1 : 0;
    out.results.push_back(std::move(r));
    if (progress) progress(++done, static_cast<int>(set.tasks.size()));
  }
  out.accuracy = out.n > 0 ? static_cast<double>(out.correct) / out.n : 0;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace edgelm
