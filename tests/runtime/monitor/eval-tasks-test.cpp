// Task sets (runtime/monitor/eval-tasks.h): the JSONL schema with its errors (each naming the
// line), the four metrics, and the runner over a fake model that answers known prompts.
#include "runtime/monitor/eval-tasks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval-test-util.h"
#include "test_util.h"

namespace edgelm {
namespace {

using testing::answering;
using testing::EvalByteCodec;
using testing::FnExecutor;

std::string parse_error(const std::string& jsonl) {
  auto r = parse_task_set(jsonl, "t.jsonl");
  return r.ok() ? std::string("(parsed)") : r.status().message();
}

TEST(EvalTasksParse, AllFieldsAndDefaults) {
  const std::string text =
      "# a comment\n"
      "\n"
      R"({"id": "a", "prompt": "2+2=", "expected": "4", "metric": "exact", "difficulty": "easy"})"
      "\n"
      R"({"prompt": "Sky:", "metric": "choice", "choices": [" green", " blue"], "expected": 1})"
      "\n"
      R"({"id": "r", "prompt": "Year:", "expected": "19[0-9]{2}", "metric": "regex", )"
      R"("ignore_case": true, "max_tokens": 5, "stop": [".", "!"], "category": "history"})"
      "\n";
  auto r = parse_task_set(text, "dir/basic.jsonl");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->name, "basic");
  ASSERT_EQ(r->tasks.size(), 3u);
  const Task& a = r->tasks[0];
  EXPECT_EQ(a.line, 3);
  EXPECT_EQ(a.metric, TaskMetric::kExact);
  EXPECT_EQ(a.difficulty, "easy");
  EXPECT_EQ(a.max_tokens, 32);
  EXPECT_EQ(a.stop, std::vector<std::string>{"\n"});
  const Task& b = r->tasks[1];
  EXPECT_EQ(b.id, "line-4");
  EXPECT_EQ(b.metric, TaskMetric::kChoice);
  EXPECT_EQ(b.expected_choice, 1);
  EXPECT_EQ(b.expected, " blue");
  const Task& c = r->tasks[2];
  EXPECT_EQ(c.metric, TaskMetric::kRegex);
  EXPECT_TRUE(c.ignore_case);
  EXPECT_EQ(c.max_tokens, 5);
  EXPECT_EQ(c.stop, (std::vector<std::string>{".", "!"}));
  EXPECT_EQ(c.category, "history");
}

TEST(EvalTasksParse, MalformedLinesNameTheLine) {
  const std::string ok = R"({"prompt": "p", "expected": "e", "metric": "exact"})";
  struct Case {
    std::string line, want;
  };
  const std::vector<Case> cases = {
      {R"({"prompt": "p", "expected": "e", "metric": "exact")", "t.jsonl:2: not valid JSON"},
      {R"(["prompt"])", "t.jsonl:2: expected a JSON object"},
      {R"({"expected": "e", "metric": "exact"})", "t.jsonl:2: missing \"prompt\""},
      {R"({"prompt": "p", "expected": "e"})", "t.jsonl:2: missing \"metric\""},
      {R"({"prompt": "p", "expected": "e", "metric": "fuzzy"})", "unknown metric \"fuzzy\""},
      {R"({"prompt": 3, "expected": "e", "metric": "exact"})", "\"prompt\" must be a string"},
      {R"({"prompt": "p", "metric": "exact"})", "t.jsonl:2: missing \"expected\""},
      {R"({"prompt": "p", "expected": " ", "metric": "contains"})", "empty \"expected\""},
      {R"({"prompt": "p", "expected": "a", "metric": "choice"})", "needs \"choices\""},
      {R"({"prompt": "p", "expected": "c", "metric": "choice", "choices": ["a", "b"]})",
       "not one of \"choices\""},
      {R"({"prompt": "p", "expected": 2, "metric": "choice", "choices": ["a", "b"]})",
       "index 2 is outside"},
      {R"({"prompt": "p", "expected": "a", "metric": "choice", "choices": ["a", ""]})",
       "non-empty string"},
      {R"({"prompt": "p", "expected": "a", "metric": "exact", "choices": ["a", "b"]})",
       "only for metric \"choice\""},
      {R"({"prompt": "p", "expected": "([0-9", "metric": "regex"})", "t.jsonl:2: invalid regex"},
      {R"({"prompt": "p", "expected": "e", "metric": "exact", "expect": "x"})",
       "unknown key \"expect\""},
      {R"({"prompt": "p", "expected": "e", "metric": "exact", "max_tokens": 0})",
       "\"max_tokens\" must be an integer"},
      {R"({"prompt": "p", "expected": "e", "metric": "exact", "stop": "x"})",
       "\"stop\" must be an array"},
      {R"({"prompt": "p", "expected": "e", "metric": "exact", "ignore_case": 1})",
       "\"ignore_case\" must be true or false"},
  };
  for (const auto& c : cases) {
    const std::string err = parse_error(ok + "\n" + c.line + "\n" + ok + "\n");
    EXPECT_NE(err.find(c.want), std::string::npos)
        << "line: " << c.line << "\nerror: " << err << "\nwanted: " << c.want;
    EXPECT_NE(err.find("t.jsonl:2"), std::string::npos) << err;
  }
  // Line numbers count blank and comment lines.
  EXPECT_NE(parse_error("\n# x\n" + ok + "\n{bad\n").find("t.jsonl:4: not valid JSON"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"id": "x", "prompt": "p", "expected": "e", "metric": "exact"})"
                        "\n"
                        R"({"id": "x", "prompt": "q", "expected": "e", "metric": "exact"})")
                .find("t.jsonl:2: duplicate id \"x\""),
            std::string::npos);
  EXPECT_NE(parse_error("# only a comment\n\n").find("no tasks"), std::string::npos);
  auto missing = load_task_set("/nonexistent/dir/tasks.jsonl");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/tasks.jsonl"), std::string::npos);
}

Task make(TaskMetric m, std::string expected, bool icase = false) {
  std::string metric = task_metric_name(m);
  std::string line = "{\"prompt\": \"p\", \"metric\": \"" + metric +
                     "\", \"expected\": " + nlohmann::json(expected).dump() +
                     (icase ? ", \"ignore_case\": true}" : "}");
  auto r = parse_task_set(line, "m.jsonl");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->tasks[0] : Task{};
}

TEST(EvalTasksScore, ExactContainsRegex) {
  EXPECT_TRUE(score_output(make(TaskMetric::kExact, "Paris"), "  Paris \n"));
  EXPECT_FALSE(score_output(make(TaskMetric::kExact, "Paris"), "Paris, France"));
  EXPECT_FALSE(score_output(make(TaskMetric::kExact, "Paris"), "paris"));
  EXPECT_TRUE(score_output(make(TaskMetric::kExact, "Paris", true), "paris"));
  EXPECT_TRUE(score_output(make(TaskMetric::kContains, "Paris"), "It is Paris, France"));
  EXPECT_FALSE(score_output(make(TaskMetric::kContains, "Paris"), "It is paris"));
  EXPECT_TRUE(score_output(make(TaskMetric::kContains, "Paris", true), "IT IS PARIS"));
  EXPECT_TRUE(score_output(make(TaskMetric::kRegex, "\\b19[0-9]{2}\\b"), "in 1969."));
  EXPECT_FALSE(score_output(make(TaskMetric::kRegex, "\\b19[0-9]{2}\\b"), "in 2069."));
  EXPECT_FALSE(score_output(make(TaskMetric::kRegex, "^yes$"), "YES"));
  EXPECT_TRUE(score_output(make(TaskMetric::kRegex, "^yes$", true), "YES"));
}

TEST(EvalTasksRun, MetricsOverAFakeModel) {
  auto codec = std::make_shared<EvalByteCodec>();
  auto exec = std::make_unique<FnExecutor>(codec->n_vocab(), 256,
                                           answering({{"2+2=", "4"},
                                                      {"3+3=", "7"},
                                                      {"Capital of France:", " Paris, of course"},
                                                      {"Moon landing:", " in 1969.\nNext"},
                                                      {"Count:", "abcdef"},
                                                      {"Sky:", " blue"}}));
  Session session(std::move(exec), codec);
  const std::string jsonl =
      R"({"id": "e1", "prompt": "2+2=", "expected": "4", "metric": "exact", "difficulty": "easy"})"
      "\n"
      R"({"id": "e2", "prompt": "3+3=", "expected": "6", "metric": "exact", "difficulty": "easy"})"
      "\n"
      R"({"id": "c1", "prompt": "Capital of France:", "expected": "paris", "metric": "contains", "ignore_case": true})"
      "\n"
      R"({"id": "c2", "prompt": "Capital of France:", "expected": "London", "metric": "contains"})"
      "\n"
      R"({"id": "r1", "prompt": "Moon landing:", "expected": "^ in 19[0-9]{2}\\.$", "metric": "regex", "difficulty": "hard"})"
      "\n"
      R"({"id": "m1", "prompt": "Count:", "expected": "abc", "metric": "exact", "max_tokens": 3})"
      "\n"
      R"({"id": "k1", "prompt": "Sky:", "metric": "choice", "choices": [" green", " blue", " red"], "expected": " blue", "difficulty": "hard"})"
      "\n"
      R"({"id": "k2", "prompt": "Sky:", "metric": "choice", "choices": [" blue", " grey"], "expected": 1})"
      "\n";
  auto set = parse_task_set(jsonl, "fake.jsonl");
  ASSERT_TRUE(set.ok()) << set.status().to_string();
  int progress_calls = 0;
  auto r = run_task_set(session, *set, [&](int done, int total) {
    EXPECT_EQ(done, ++progress_calls);
    EXPECT_EQ(total, 8);
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->results.size(), 8u);
  auto by_id = [&](const std::string& id) -> const TaskResult& {
    for (const auto& x : r->results)
      if (x.id == id) return x;
    ADD_FAILURE() << "no result " << id;
    return r->results[0];
  };
  EXPECT_TRUE(by_id("e1").correct);
  EXPECT_EQ(by_id("e1").output, "4");
  EXPECT_FALSE(by_id("e2").correct);
  EXPECT_EQ(by_id("e2").output, "7");
  EXPECT_TRUE(by_id("c1").correct);
  EXPECT_FALSE(by_id("c2").correct);
  EXPECT_TRUE(by_id("r1").correct) << by_id("r1").output;  // stopped at "\n"
  EXPECT_EQ(by_id("r1").output, " in 1969.");
  EXPECT_TRUE(by_id("m1").correct);
  EXPECT_EQ(by_id("m1").output, "abc");
  const TaskResult& k1 = by_id("k1");
  EXPECT_TRUE(k1.correct);
  EXPECT_EQ(k1.chosen, 1);
  ASSERT_EQ(k1.choice_logprob.size(), 3u);
  EXPECT_GT(k1.choice_logprob[1], k1.choice_logprob[0]);
  EXPECT_GT(k1.choice_logprob[1], k1.choice_logprob[2]);
  EXPECT_LE(k1.choice_logprob[1], 0.0);
  EXPECT_FALSE(by_id("k2").correct);
  EXPECT_EQ(by_id("k2").chosen, 0);
  EXPECT_EQ(r->n, 8);
  EXPECT_EQ(r->correct, 5);
  EXPECT_DOUBLE_EQ(r->accuracy, 5.0 / 8);
  EXPECT_EQ(r->by_metric.at("exact").n, 3);
  EXPECT_EQ(r->by_metric.at("exact").correct, 2);
  EXPECT_EQ(r->by_metric.at("choice").correct, 1);
  EXPECT_EQ(r->by_difficulty.at("easy").correct, 1);
  EXPECT_EQ(r->by_difficulty.at("hard").correct, 2);
  EXPECT_EQ(r->by_difficulty.at("unlabelled").n, 4);
  EXPECT_EQ(session.executor().n_past(), 0);  // the cache is left empty
}

TEST(EvalTasksRun, ChoiceLogProbIsTheSumOverTheOptionTokens) {
  // Uniform logits: every token has log-probability -ln(V); an option of k bytes scores -k ln V.
  auto codec = std::make_shared<EvalByteCodec>();
  const int V = codec->n_vocab();
  auto exec =
      std::make_unique<FnExecutor>(V, 64, [](std::span<const int32_t>, int) { return 0.5f; });
  Session session(std::move(exec), codec);
  auto set = parse_task_set(
      R"({"prompt": "q", "metric": "choice", "choices": ["ab", "c"], "expected": "c"})", "u");
  ASSERT_TRUE(set.ok());
  auto r = run_task_set(session, *set);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& lp = r->results[0].choice_logprob;
  ASSERT_EQ(lp.size(), 2u);
  EXPECT_NEAR(lp[0], -2 * std::log(static_cast<double>(V)), 1e-9);
  EXPECT_NEAR(lp[1], -std::log(static_cast<double>(V)), 1e-9);
  EXPECT_TRUE(r->results[0].correct);
}

TEST(EvalTasksRun, PromptTooLongForTheContextIsAnError) {
  auto codec = std::make_shared<EvalByteCodec>();
  auto exec = std::make_unique<FnExecutor>(codec->n_vocab(), 8, answering({}));
  Session session(std::move(exec), codec);
  auto set = parse_task_set(
      R"({"prompt": "a long prompt", "metric": "choice", "choices": ["x", "y"], "expected": 0})",
      "long.jsonl");
  ASSERT_TRUE(set.ok());
  auto r = run_task_set(session, *set);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("long.jsonl"), std::string::npos) << r.status().to_string();
}

// The project's own task sets parse, and every task carries an easy/hard label.
TEST(EvalTasksShipped, ProjectTaskSetsAreValidAndLabelled) {
  const std::filesystem::path dir = std::filesystem::path(EDGELM_SOURCE_DIR) / "eval" / "tasks";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "SKIPPED: " << dir << " is absent";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".jsonl") continue;
    ++files;
    auto set = load_task_set(e.path().string());
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    int easy = 0, hard = 0;
    for (const auto& t : set->tasks) {
      EXPECT_TRUE(t.difficulty == "easy" || t.difficulty == "hard")
          << e.path() << ":" << t.line << " difficulty \"" << t.difficulty << "\"";
      easy += t.difficulty == "easy";
      hard += t.difficulty == "hard";
    }
    EXPECT_GT(easy, 0) << e.path();
    EXPECT_GT(hard, 0) << e.path();
  }
  EXPECT_GT(files, 0) << "no .jsonl in " << dir;
}

}  // namespace
}  // namespace edgelm
