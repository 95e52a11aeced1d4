// End to end with the built CLI: `edgelm serve --monitor DB` as a child process answers a few
// dozen requests and records one row each; after it stops, `edgelm monitor report` reads the
// DB as serve wrote it: no alarm against a baseline made of the same rows (`edgelm monitor
// baseline --from-db`), an alarm against a baseline whose log-probabilities and lengths are
// shifted. A --monitor path that cannot be
// opened stops serve before it listens. Skips visibly without the model or the CLI binary.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/monitor/canary.h"
#include "runtime/monitor/store.h"
#include "server-test-util.h"
#include "test_util.h"

#ifndef EDGELM_SERVE_CLI
#define EDGELM_SERVE_CLI ""
#endif

namespace edgelm::server {
namespace {

using nlohmann::json;

constexpr const char* kModel = "models/conf-llama-spm-q8_0.gguf";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `edgelm ARGS...` as a child process, stderr into a log file.
class Child {
 public:
  explicit Child(std::vector<std::string> args, const std::string& log) : log_(log) {
    std::filesystem::remove(log_);
    pid_ = fork();
    if (pid_ == 0) {
      if (!std::freopen(log_.c_str(), "w", stderr)) _exit(126);
      if (!std::freopen("/dev/null", "w", stdout)) _exit(126);
      args.insert(args.begin(), EDGELM_SERVE_CLI);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(EDGELM_SERVE_CLI, argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  // The port from "listening on http://HOST:PORT", or -1 once the child exited (or after
  // 120 s: ASan builds load slowly).
  int wait_port() {
    for (int i = 0; i < 1200; ++i) {
      const std::string text = slurp(log_);
      const size_t at = text.find("listening on http://");
      const size_t colon = at == std::string::npos ? at : text.find(':', at + 20);
      if (colon != std::string::npos && colon + 1 < text.size() &&
          std::isdigit(static_cast<unsigned char>(text[colon + 1]))) {
        return std::atoi(text.c_str() + colon + 1);
      }
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }
  // SIGTERM, then the exit status.
  int stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return exit_code_;
  }
  int exit_code() const { return exit_code_; }
  std::string log() const { return slurp(log_); }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
};

// `edgelm ARGS` to completion, stdout captured.
CliResult run_cli(const std::vector<std::string>& args) {
  std::string cmd = std::string("'") + EDGELM_SERVE_CLI + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const std::string out = edgelm::testing::temp_path("serve-monitor-cli.out");
  cmd += " >" + out + " 2>&1";
  const int st = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(out);
  std::filesystem::remove(out);
  return r;
}

std::string fresh(const std::string& name) {
  const std::string p = edgelm::testing::temp_path(name);
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(p + ext);
  return p;
}

#define REQUIRE_CLI()                                                                        \
  if (std::string(EDGELM_SERVE_CLI).empty() || !std::filesystem::exists(EDGELM_SERVE_CLI)) { \
    GTEST_SKIP() << "SKIPPED: the edgelm CLI is not built (" << EDGELM_SERVE_CLI << ")";     \
  }

TEST(ServeMonitorCliTest, UnopenableStoreStopsServeBeforeItListens) {
  REQUIRE_CLI();
  EDGELM_REQUIRE_SHARED(model, kModel);
  Child c({"serve", "-m", model, "--port", "0", "--monitor", "/nonexistent-dir/m.db"},
          fresh("serve-monitor-bad.log"));
  EXPECT_EQ(c.wait_port(), -1);
  EXPECT_EQ(c.exit_code(), 1);
  const std::string log = c.log();
  EXPECT_NE(log.find("/nonexistent-dir/m.db"), std::string::npos) << log;
  EXPECT_EQ(log.find("listening"), std::string::npos) << log;
}

TEST(ServeMonitorCliTest, ServeRecordsRequestsAndMonitorReportReadsTheDb) {
  REQUIRE_CLI();
  EDGELM_REQUIRE_SHARED(model, kModel);
  const std::string db = fresh("serve-monitor.db");
  constexpr int kRequests = 24;  // above the drift tests' 20-sample minimum
  {
    Child serve({"serve", "-m", model, "--port", "0", "-c", "128", "-t", "1", "--monitor", db},
                fresh("serve-monitor.log"));
    const int port = serve.wait_port();
    ASSERT_GT(port, 0) << serve.log();
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(60);
    for (int i = 0; i < kRequests; ++i) {
      json body = {{"model", "conf-llama-spm-q8_0"},
                   {"messages", {{{"role", "user"}, {"content", "Question " + std::to_string(i)}}}},
                   {"max_tokens", 2 + i % 5},
                   {"temperature", 0.8},
                   {"seed", i}};
      auto r = cli.Post("/v1/chat/completions", body.dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
    }
    auto m = cli.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("edgelm_monitor_store_errors_total 0"), std::string::npos) << m->body;
    EXPECT_EQ(serve.stop(), 0) << serve.log();
    EXPECT_NE(serve.log().find(fmt::format("{} requests recorded", kRequests)), std::string::npos)
        << serve.log();
  }

  // The report reads the DB as serve left it.
  CliResult rep = run_cli({"monitor", "report", "--db", db, "--json"});
  ASSERT_EQ(rep.exit_code, 0) << rep.out;
  json j = json::parse(rep.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << rep.out;
  EXPECT_EQ(j["rows"], kRequests);

  // Baselines from the rows themselves: the same distribution (no alarm) and a shifted one.
  const auto rows = read_monitor_rows(db);
  ASSERT_EQ(rows.size(), static_cast<size_t>(kRequests));
  const std::string same_path = fresh("serve-monitor-same.json");
  rep = run_cli({"monitor", "baseline", "--from-db", db, "-o", same_path});
  ASSERT_EQ(rep.exit_code, 0) << rep.out;
  auto same = monitor::load_baseline(same_path);
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_EQ(same->model_name, "conf-llama-spm-q8_0");
  EXPECT_EQ(same->features["mean_logprob"].size(), static_cast<size_t>(kRequests));
  rep = run_cli({"monitor", "report", "--db", db, "--baseline", same_path, "--json"});
  EXPECT_EQ(rep.exit_code, 0) << rep.out;
  j = json::parse(rep.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << rep.out;
  EXPECT_EQ(j["compared"], kRequests);
  EXPECT_FALSE(j["alarm"].get<bool>()) << rep.out;

  monitor::Baseline shifted = *same;
  for (double& v : shifted.features["mean_logprob"]) v -= 5.0;
  for (double& v : shifted.features["output_tokens"]) v += 40.0;
  const std::string shifted_path = fresh("serve-monitor-shifted.json");
  ASSERT_TRUE(monitor::save_baseline(shifted, shifted_path).ok());
  rep = run_cli({"monitor", "report", "--db", db, "--baseline", shifted_path, "--json"});
  EXPECT_EQ(rep.exit_code, 3) << rep.out;  // drift alarm
  j = json::parse(rep.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << rep.out;
  std::set<std::string> alarmed;
  for (const auto& a : j["alerts"]) alarmed.insert(a["feature"].get<std::string>());
  EXPECT_TRUE(alarmed.count("mean_logprob")) << rep.out;
  EXPECT_TRUE(alarmed.count("output_tokens")) << rep.out;
}

TEST(ServeMonitorCliTest, CanaryRunsWhileIdleAndIsStored) {
  REQUIRE_CLI();
  EDGELM_REQUIRE_SHARED(model, kModel);
  const std::string canary = fresh("serve-canary.txt");
  std::ofstream(canary) << "Write about the sea.\nName three colours.\n";
  const std::string baseline = fresh("serve-canary-baseline.json");
  CliResult b = run_cli({"monitor", "baseline", "-m", model, "--canary", canary, "-o", baseline,
                         "--samples", "2", "--max-tokens", "4", "-t", "1"});
  ASSERT_EQ(b.exit_code, 0) << b.out;

  // --canary needs the --monitor store.
  Child bad({"serve", "-m", model, "--port", "0", "-t", "1", "--canary", baseline},
            fresh("serve-canary-bad.log"));
  EXPECT_EQ(bad.wait_port(), -1);
  EXPECT_EQ(bad.exit_code(), 1);
  EXPECT_NE(bad.log().find("--monitor"), std::string::npos) << bad.log();

  const std::string db = fresh("serve-canary.db");
  Child serve({"serve", "-m", model, "--port", "0", "-c", "128", "-t", "1", "--monitor", db,
               "--canary", baseline, "--canary-every", "0.5"},
              fresh("serve-canary.log"));
  ASSERT_GT(serve.wait_port(), 0) << serve.log();
  bool ran = false;
  for (int i = 0; i < 600 && !ran; ++i) {  // up to 60 s
    ran = serve.log().find("edgelm: canary: ") != std::string::npos;
    if (!ran) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(serve.stop(), 0) << serve.log();
  ASSERT_TRUE(ran) << serve.log();
  EXPECT_NE(serve.log().find("greedy agreement 1.000, token overlap 1.000: no alarm"),
            std::string::npos)
      << serve.log();  // the same model reproduces its baseline
  const auto rows = read_monitor_rows(db, "canary");
  EXPECT_GE(rows.size(), 4u);  // 2 prompts x 2 samples per run
}

// serve --cloud --monitor: the row says where each answer came from. Device answers (kept on
// the device by x-edgelm-privacy: device-only) are ordinary "request" rows with the engine's
// figures; the answer the router sent to the cloud (a second serve) is a "cloud" row, which the
// drift tests leave out.
TEST(ServeMonitorCliTest, RoutedRequestsRecordWhereTheyRan) {
  REQUIRE_CLI();
  EDGELM_REQUIRE_SHARED(model, kModel);
  Child cloud({"serve", "-m", model, "--port", "0", "-c", "128", "-t", "1"},
              fresh("serve-monitor-cloud.log"));
  const int cloud_port = cloud.wait_port();
  ASSERT_GT(cloud_port, 0) << cloud.log();
  const std::string db = fresh("serve-monitor-routed.db");
  Child edge({"serve", "-m", model, "--port", "0", "-c", "128", "-t", "1", "--monitor", db,
              "--cloud", "http://127.0.0.1:" + std::to_string(cloud_port)},
             fresh("serve-monitor-edge.log"));
  const int port = edge.wait_port();
  ASSERT_GT(port, 0) << edge.log();
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(120);
  const std::string body =
      R"({"model":"conf-llama-spm-q8_0","messages":[{"role":"user","content":"hi"}],)"
      R"("max_tokens":4})";
  for (int i = 0; i < 2; ++i) {
    auto r = cli.Post("/v1/chat/completions",
                      {{"x-edgelm-privacy", "device-only"}, {"x-edgelm-prefer", "cloud"}}, body,
                      "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  auto r =
      cli.Post("/v1/chat/completions", {{"x-edgelm-prefer", "cloud"}}, body, "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(edge.stop(), 0) << edge.log();
  const auto rows = read_monitor_rows(db);
  ASSERT_EQ(rows.size(), 3u) << edge.log();
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(monitor::to_json(rows[i]).dump());
    EXPECT_EQ(rows[i].source, "request");
    EXPECT_EQ(rows[i].model, "conf-llama-spm-q8_0");
    EXPECT_LT(rows[i].mean_logprob, 0);  // the engine's figures
    EXPECT_GT(rows[i].output_tokens, 0);
  }
  SCOPED_TRACE(monitor::to_json(rows[2]).dump());
  EXPECT_EQ(rows[2].source, "cloud");
  EXPECT_GT(rows[2].latency_ms, 0);
}

}  // namespace
}  // namespace edgelm::server
