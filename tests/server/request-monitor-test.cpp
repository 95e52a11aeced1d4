// `edgelm serve --monitor` in process: completions through the HttpServer become rows of
// features in the monitor store (sane values from the real engine on a shared model, no text
// unless opted in, cloud answers marked "cloud"); a store that cannot be opened is a clear
// error that leaves the file as it was; a store broken while serving does not fail requests
// (errors counted on /metrics).
#include "server/request-monitor.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fake-backend.h"
#include "server-test-util.h"
#include "server/http-server.h"
#include "server/local-backend.h"
#include "test_util.h"

namespace edgelm::server {
namespace {

using nlohmann::json;

constexpr const char* kModel = "models/conf-llama-spm-q8_0.gguf";

std::string fresh_db(const std::string& name) {
  const std::string p = edgelm::testing::temp_path(name);
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(p + ext);
  return p;
}

// An HttpServer on a free loopback port over `backend`, recording into `mon`.
class Served {
 public:
  Served(Backend& backend, RequestMonitor& mon) {
    ServerOptions o;
    o.port = 0;
    o.on_completion = mon.hook();
    o.extra_metrics = mon.metrics_hook();
    server_ = std::make_unique<HttpServer>(backend, o);
    EXPECT_TRUE(server_->bind().ok());
    thread_ = std::thread([this] { EXPECT_TRUE(server_->serve().ok()); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60);
    for (int i = 0; i < 200; ++i) {
      if (auto r = client_->Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Served() {
    server_->stop();
    thread_.join();
  }
  httplib::Result post(const std::string& path, const json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/json");
  }
  httplib::Client& client() { return *client_; }

 private:
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
};

json chat(const std::string& model, const std::string& text, int max_tokens, bool stream = false) {
  return {{"model", model},
          {"messages", {{{"role", "user"}, {"content", text}}}},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", stream}};
}

// The value of one Prometheus counter line, -1 when absent.
long metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

TEST(RequestMonitorTest, FeaturesOfACompletion) {
  CompletionRequest req;
  req.endpoint = Endpoint::kChat;
  req.model = "asked";
  req.messages = {{"user", "what is 2+2"}};
  CompletionOutcome o;
  o.text = "four";
  o.prompt_tokens = 12;
  o.completion_tokens = 3;
  GenerateResult g;
  g.tokens = {5, 6, 7};
  g.token_logprobs = {-1.0f, -2.0f, -3.0f};
  g.token_entropies = {0.5f, 1.0f, 1.5f};
  g.stop_reason = StopReason::kEog;
  g.stats.total_ms = 40;
  o.generation = g;
  o.answered_by_model = "served-id";
  StatusOr<CompletionOutcome> out(o);
  auto f = features_of_completion({req, out, 0.5, 0.1}, /*with_text=*/false);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->model, "served-id");
  EXPECT_EQ(f->source, "request");
  EXPECT_EQ(f->prompt_tokens, 12);
  EXPECT_EQ(f->output_tokens, 3);
  EXPECT_DOUBLE_EQ(f->mean_logprob, -2.0);
  EXPECT_DOUBLE_EQ(f->mean_entropy, 1.0);
  EXPECT_EQ(f->stop_reason, StopReason::kEog);
  EXPECT_FALSE(f->empty_output);  // from the outcome's text, not the moved-from generation's
  EXPECT_DOUBLE_EQ(f->latency_ms, 40);
  EXPECT_FALSE(f->prompt_text.has_value());
  EXPECT_FALSE(f->output_text.has_value());

  auto t = features_of_completion({req, out, 0.5, 0.1}, /*with_text=*/true);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->prompt_text.value_or(""), "user: what is 2+2\n");
  EXPECT_EQ(t->output_text.value_or(""), "four");

  // A cloud answer (no engine figures): server timings, source "cloud".
  o.generation.reset();
  o.ran_on = "cloud";
  o.text = "  ";
  o.finish_reason = FinishReason::kLength;
  StatusOr<CompletionOutcome> cloud(o);
  auto c = features_of_completion({req, cloud, 0.5, 0.1}, false);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->source, "cloud");
  EXPECT_TRUE(c->empty_output);
  EXPECT_EQ(c->stop_reason, StopReason::kMaxTokens);
  EXPECT_DOUBLE_EQ(c->latency_ms, 500);
  EXPECT_DOUBLE_EQ(c->ttft_ms, 100);
  EXPECT_NEAR(c->tokens_per_s, 2 / 0.4, 1e-9);

  // A failed completion is no answer: nothing to record.
  StatusOr<CompletionOutcome> failed = Status::io("cloud unreachable");
  EXPECT_FALSE(features_of_completion({req, failed, 0.5, -1}, false).has_value());
}

TEST(RequestMonitorTest, AStoreThatCannotBeOpenedIsAClearErrorAndIsLeftAsItWas) {
  RequestMonitorOptions o;
  o.db_path = "/nonexistent-dir/monitor.db";
  auto m = RequestMonitor::open(o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("/nonexistent-dir/monitor.db"), std::string::npos)
      << m.status().to_string();
  EXPECT_NE(m.status().to_string().find("--monitor"), std::string::npos);

  const std::string notdb = fresh_db("monitor-not-sqlite.db");
  const std::string content = "this is not an SQLite database, keep me\n";
  std::ofstream(notdb, std::ios::binary) << content;
  o.db_path = notdb;
  m = RequestMonitor::open(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status().to_string();
  std::ifstream in(notdb, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), content);

  o.db_path = fresh_db("monitor-bad-rows.db");
  o.max_rows = 0;
  m = RequestMonitor::open(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("max_rows"), std::string::npos);
}

TEST(RequestMonitorTest, StoreBrokenWhileServingDoesNotFailRequests) {
  testing::FakeBackend fake;
  RequestMonitorOptions o;
  o.db_path = fresh_db("monitor-broken.db");
  auto mon = RequestMonitor::open(o);
  ASSERT_TRUE(mon.ok()) << mon.status().to_string();
  Served s(fake, **mon);
  auto r = s.post("/v1/chat/completions", chat("fake", "hi", 3));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  (*mon)->flush();
  ASSERT_EQ((*mon)->stats().written, 1u);
  // Break the store under the running server.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(o.db_path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "DROP TABLE requests", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  for (int i = 0; i < 3; ++i) {
    auto ri = s.post("/v1/chat/completions", chat("fake", "again", 2, /*stream=*/i == 1));
    ASSERT_TRUE(ri);
    EXPECT_EQ(ri->status, 200) << ri->body;
  }
  (*mon)->flush();
  EXPECT_EQ((*mon)->stats().written, 1u);
  EXPECT_EQ((*mon)->stats().errors, 3u);
  auto m = s.client().Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, "edgelm_monitor_rows_written_total"), 1) << m->body;
  EXPECT_EQ(metric(m->body, "edgelm_monitor_store_errors_total"), 3) << m->body;
  EXPECT_EQ(metric(m->body, "edgelm_monitor_rows_dropped_total"), 0) << m->body;
}

TEST(RequestMonitorTest, StoreStaysBounded) {
  testing::FakeBackend fake;
  RequestMonitorOptions o;
  o.db_path = fresh_db("monitor-bounded.db");
  o.max_rows = 3;
  auto mon = RequestMonitor::open(o);
  ASSERT_TRUE(mon.ok()) << mon.status().to_string();
  {
    Served s(fake, **mon);
    for (int i = 1; i <= 5; ++i) {
      auto r = s.post("/v1/chat/completions", chat("fake", "hi", i));
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200);
    }
  }
  (*mon)->flush();
  const auto rows = read_monitor_rows(o.db_path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.front().output_tokens, 3);  // the newest three: max_tokens 3, 4, 5
  EXPECT_EQ(rows.back().output_tokens, 5);
}

TEST(RequestMonitorTest, LocalRequestsBecomeRowsWithSaneFeaturesAndNoText) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto backend = make_small_backend(path);
  ASSERT_TRUE(backend);
  RequestMonitorOptions o;
  o.db_path = fresh_db("monitor-local.db");
  auto mon = RequestMonitor::open(o);
  ASSERT_TRUE(mon.ok()) << mon.status().to_string();
  std::vector<int> completion_tokens;
  {
    Served s(*backend, **mon);
    for (int i = 0; i < 3; ++i) {
      auto r = s.post("/v1/chat/completions",
                      chat("conf-llama-spm-q8_0", "Tell me about rivers " + std::to_string(i), 6));
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      completion_tokens.push_back(json::parse(r->body)["usage"]["completion_tokens"].get<int>());
    }
    // A streamed plain completion too.
    auto r = s.post("/v1/completions", {{"model", "conf-llama-spm-q8_0"},
                                        {"prompt", "Once upon a time"},
                                        {"max_tokens", 5},
                                        {"stream", true}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  (*mon)->flush();
  EXPECT_EQ((*mon)->stats().errors, 0u);
  const auto rows = read_monitor_rows(o.db_path);
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& f = rows[i];
    SCOPED_TRACE(monitor::to_json(f).dump());
    EXPECT_EQ(f.model, "conf-llama-spm-q8_0");
    EXPECT_EQ(f.source, "request");
    EXPECT_GT(f.prompt_tokens, 3);
    EXPECT_GT(f.output_tokens, 0);
    EXPECT_LE(f.output_tokens, 6);
    if (i < 3) {
      EXPECT_EQ(f.output_tokens, completion_tokens[i]);
    }
    EXPECT_LT(f.mean_logprob, 0);  // log-probabilities of real tokens
    EXPECT_GT(f.mean_logprob, -30);
    EXPECT_GT(f.mean_entropy, 0);
    EXPECT_GT(f.latency_ms, 0);
    EXPECT_GE(f.repeated_ngram_share, 0);
    EXPECT_LE(f.repeated_ngram_share, 1);
    EXPECT_GT(f.timestamp_ms, 1700000000000);
    EXPECT_FALSE(f.prompt_text.has_value());  // no text without --monitor-keep-text
    EXPECT_FALSE(f.output_text.has_value());
  }
}

TEST(RequestMonitorTest, KeepTextStoresPromptAndAnswer) {
  EDGELM_REQUIRE_SHARED(path, kModel);
  auto backend = make_small_backend(path);
  ASSERT_TRUE(backend);
  RequestMonitorOptions o;
  o.db_path = fresh_db("monitor-text.db");
  o.keep_text = true;
  auto mon = RequestMonitor::open(o);
  ASSERT_TRUE(mon.ok()) << mon.status().to_string();
  std::string answer;
  {
    Served s(*backend, **mon);
    auto r = s.post("/v1/chat/completions", chat("conf-llama-spm-q8_0", "Name a colour", 5));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    answer = json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
  }
  (*mon)->flush();
  const auto rows = read_monitor_rows(o.db_path);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].prompt_text.value_or("<none>"), "user: Name a colour\n");
  EXPECT_EQ(rows[0].output_text.value_or("<none>"), answer);
}

}  // namespace
}  // namespace edgelm::server
