// The built `edgelm` CLI (path in EDGELM_CLI) on the shared conformance model: greedy `run`
// reproduces llama.cpp's continuation (golden greedy[0], up to the near-tie rule), prints a
// stats JSON line; stop strings; `info` text and JSON; clear errors and non-zero exit codes for
// missing, corrupt and non-GGUF files; `chat` over piped stdin.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli-util.h"
#include "engine/engine.h"
#include "test_util.h"

namespace edgelm {
namespace {

constexpr const char* kModel = "models/conf-llama-spm-f16.gguf";
constexpr const char* kGolden = "golden/conformance/conf-llama-spm-f16.json";

using CmdResult = testing::CliRun;
using testing::shell_quote;

// Runs `edgelm ARGS` (ARGS already shell-quoted), optionally feeding stdin_text.
CmdResult run_cli(const std::string& args, const std::string& stdin_text = "") {
  return testing::run_command(std::string(EDGELM_CLI) + " " + args, stdin_text);
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

TEST(Cli, RunGreedyMatchesLlamaCppContinuation) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  EDGELM_REQUIRE_SHARED(golden_path, kGolden);
  const auto golden = nlohmann::json::parse(testing::slurp(golden_path));
  const auto& g = golden["greedy"][0];
  const std::string prompt = g["prompt"];
  ASSERT_EQ(prompt, "Once upon a time");
  const std::vector<int32_t> ids = g["ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(ids.size(), 32u);

  // Near-tie rule: where the reference's top two log-probabilities are closer than 0.01, the
  // other choice is not an error and the comparison ends there.
  size_t n_cmp = ids.size();
  for (size_t i = 0; i < g["steps"].size(); ++i) {
    const auto& top = g["steps"][i]["top"];
    if (top.size() >= 2 &&
        top[0]["logprob"].get<double>() - top[1]["logprob"].get<double>() < 0.01) {
      n_cmp = i;
      break;
    }
  }
  // The text of the first n_cmp golden tokens, by the project's tokenizer (checked against
  // the golden text, so a tokenizer bug cannot hide behind it).
  auto file = GgufFile::open(model);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const std::string expect_prefix = (*tok)->decode(std::span<const int32_t>(ids.data(), n_cmp));
  const std::string golden_text = g["text"];
  ASSERT_EQ(golden_text.substr(0, expect_prefix.size()), expect_prefix);
  ASSERT_GT(expect_prefix.size(), 20u);

  CmdResult r = run_cli("run -m " + shell_quote(model) + " -p " + shell_quote(prompt) +
                        " -n 32 --temp 0 -t 2 -c 128");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // stdout: prompt, continuation, "\n".
  ASSERT_EQ(r.out.rfind(prompt, 0), 0u) << r.out;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  const std::string continuation = r.out.substr(prompt.size(), r.out.size() - prompt.size() - 1);
  EXPECT_EQ(continuation.substr(0, expect_prefix.size()), expect_prefix)
      << "compared the first " << n_cmp << " tokens";
  if (n_cmp == ids.size()) {
    EXPECT_EQ(continuation, golden_text);
  }

  // stderr's last line: the stats JSON.
  const auto st = nlohmann::json::parse(last_line(r.err));
  EXPECT_EQ(st["prompt_tokens"], g["prompt_ids"].size());
  EXPECT_EQ(st["generated_tokens"], 32);
  EXPECT_EQ(st["decode_tokens"], 31);
  EXPECT_EQ(st["stop_reason"], "max_tokens");
  EXPECT_EQ(st["n_ctx"], 128);
  EXPECT_GT(st["decode_tps"].get<double>(), 0.0);
  EXPECT_GT(st["prefill_tps"].get<double>(), 0.0);
  EXPECT_GT(st["peak_rss_bytes"].get<double>(), 0.0);
  EXPECT_GE(st["ttft_ms"].get<double>(), st["prefill_ms"].get<double>());
}

TEST(Cli, RunStopStringAndNoDisplayPrompt) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  EDGELM_REQUIRE_SHARED(golden_path, kGolden);
  const auto golden = nlohmann::json::parse(testing::slurp(golden_path));
  const std::string text = golden["greedy"][0]["text"];
  // "json" appears around token 11 of the greedy continuation (before any near-tie).
  const size_t pos = text.find(" json");
  ASSERT_NE(pos, std::string::npos);
  CmdResult r = run_cli("run -m " + shell_quote(model) +
                        " -p 'Once upon a time' -n 16 --temp 0 -t 2 -c 64 --no-display-prompt"
                        " --stop ' json' --no-stats");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, text.substr(0, pos) + "\n");
  EXPECT_EQ(r.err.find("{\"load_ms\""), std::string::npos) << "--no-stats";
}

TEST(Cli, InfoTextAndJson) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  CmdResult r = run_cli("info " + shell_quote(model));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos);
  EXPECT_NE(r.out.find("f16"), std::string::npos);
  EXPECT_NE(r.out.find("parameters:"), std::string::npos);

  CmdResult j = run_cli("info --json " + shell_quote(model));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["metadata"]["general.architecture"], "llama");
  EXPECT_EQ(doc["version"], 3);
  int64_t sum = 0;
  uint64_t bytes = 0;
  for (const auto& t : doc["tensors"]) {
    int64_t n = 1;
    for (int64_t d : t["shape"]) n *= d;
    EXPECT_EQ(t["n_elements"].get<int64_t>(), n) << t["name"];
    sum += n;
    bytes += t["bytes"].get<uint64_t>();
  }
  EXPECT_EQ(doc["n_params"].get<int64_t>(), sum);
  EXPECT_EQ(doc["tensor_bytes"].get<uint64_t>(), bytes);
  EXPECT_GT(sum, 8000000);  // 32000 x 256 embeddings alone are 8.2M
  EXPECT_TRUE(doc["type_summary"].contains("f16"));
  EXPECT_TRUE(doc["type_summary"].contains("f32"));
  // Long arrays (the vocabulary) are summarized.
  EXPECT_EQ(doc["metadata"]["tokenizer.ggml.tokens"]["count"], 32000);
}

TEST(Cli, MissingFileIsAClearError) {
  const std::string missing = testing::temp_path("does-not-exist.gguf");
  for (const std::string& sub : {std::string("info "), std::string("run -p hi -m ")}) {
    CmdResult r = run_cli(sub + shell_quote(missing));
    EXPECT_NE(r.exit_code, 0) << sub;
    EXPECT_NE(r.err.find("edgelm: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("does-not-exist.gguf"), std::string::npos) << r.err;
  }
}

TEST(Cli, CorruptAndNonGgufFilesAreClearErrors) {
  // Not a GGUF at all.
  const std::string junk = testing::temp_path("junk.gguf");
  {
    std::ofstream f(junk, std::ios::binary);
    f << "this is not a gguf file, just some text that is long enough to have a header";
  }
  CmdResult r = run_cli("info " + shell_quote(junk));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("edgelm: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("junk.gguf"), std::string::npos) << r.err;
  CmdResult r2 = run_cli("run -p hi -m " + shell_quote(junk));
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_NE(r2.err.find("edgelm: error:"), std::string::npos) << r2.err;
  std::filesystem::remove(junk);

  // A real model cut short: the reader names the problem.
  EDGELM_REQUIRE_SHARED(model, kModel);
  const std::string cut = testing::temp_path("truncated.gguf");
  {
    const std::string bytes = testing::slurp(model);
    std::ofstream f(cut, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CmdResult r3 = run_cli("info " + shell_quote(cut));
  EXPECT_NE(r3.exit_code, 0);
  EXPECT_NE(r3.err.find("edgelm: error:"), std::string::npos) << r3.err;
  EXPECT_NE(r3.err.find("truncated.gguf"), std::string::npos) << r3.err;
  std::filesystem::remove(cut);
}

TEST(Cli, UsageErrorsExitWithTwo) {
  CmdResult r = run_cli("run --no-such-flag");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  CmdResult r2 = run_cli("");
  EXPECT_EQ(r2.exit_code, 2) << r2.err;
  CmdResult r3 = run_cli("run -m model.gguf");  // no prompt
  EXPECT_EQ(r3.exit_code, 2) << r3.err;
  EXPECT_NE(r3.err.find("-p TEXT"), std::string::npos) << r3.err;
  CmdResult h = run_cli("run --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--top-p"), std::string::npos);
  EXPECT_NE(h.out.find("stats"), std::string::npos);
}

TEST(Cli, ChatReadsStdinUntilExit) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  CmdResult r = run_cli(
      "chat -m " + shell_quote(model) + " -n 4 --temp 0 -t 2 -c 256 --stats --system 'Be brief.'",
      "Hello there\nHow are you?\n/exit\nnever read\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two replies, two stats lines; the second turn reuses the first from the KV cache.
  std::vector<nlohmann::json> stats;
  std::istringstream es(r.err);
  std::string line;
  while (std::getline(es, line)) {
    if (line.rfind("{\"load_ms\"", 0) == 0) stats.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(stats.size(), 2u) << r.err;
  EXPECT_EQ(stats[0]["cached_tokens"], 0);
  EXPECT_GT(stats[1]["cached_tokens"].get<int>(), stats[0]["prompt_tokens"].get<int>() / 2);
  EXPECT_LT(stats[1]["prefill_tokens"].get<int>(), stats[1]["prompt_tokens"].get<int>());
  size_t newlines = 0;
  for (char c : r.out) newlines += c == '\n';
  EXPECT_GE(newlines, 2u);
}

}  // namespace
}  // namespace edgelm
