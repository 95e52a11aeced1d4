// The router end to end: the device is the shared conformance model in-process (EngineDevice);
// the cloud is a real second `edgelm serve` (the built CLI, on a free loopback port, same small
// model) behind the in-process fault-injecting proxy (fault-proxy.h). Faults: refused
// connections, HTTP 500s, a stream cut midway, slow answers, a device that cannot fit the
// prompt, a governor refusal. Every request is answered or fails with its reason; device-only
// requests never reach the cloud (asserted on the cloud's own /metrics and on the proxy).
// Skips with a message when the model or a working `edgelm serve` is absent.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "fault-proxy.h"
#include "runtime/router/router.h"
#include "test_util.h"

namespace edgelm::router {
namespace {

using testing::Fault;
using testing::FaultProxy;

constexpr const char* kModel = "models/conf-llama-spm-f16.gguf";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `edgelm serve -m MODEL --port 0` as a child process; the port is read from its stderr.
class CloudServer {
 public:
  explicit CloudServer(const std::string& model, std::vector<std::string> extra = {}) {
    // One log per instance: two servers in one test must not read each other's port.
    static int instances = 0;
    log_ = edgelm::testing::temp_path("router-cloud-serve-" + std::to_string(++instances) + ".log");
    std::filesystem::remove(log_);  // never read a port left by an earlier run
    if (!std::filesystem::exists(EDGELM_CLI)) {
      error_ = std::string("the edgelm CLI is not built: ") + EDGELM_CLI;
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log_.c_str(), "w", stderr);
      (void)f;
      std::freopen("/dev/null", "w", stdout);
      std::vector<std::string> args = {EDGELM_CLI, "serve", "-m", model, "--port", "0",
                                       "-c",       "256",   "-t", "1",   "-n",     "8"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(EDGELM_CLI, argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1200; ++i) {  // up to 120 s (ASan builds load slowly)
      const std::string text = slurp(log_);
      const size_t at = text.find("listening on http://");
      const size_t colon = at == std::string::npos ? at : text.find(':', at + 20);
      if (colon != std::string::npos && colon + 1 < text.size() &&
          std::isdigit(static_cast<unsigned char>(text[colon + 1]))) {
        port_ = std::atoi(text.c_str() + colon + 1);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        error_ = "`edgelm serve` exited before listening: " + text.substr(0, 400);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    error_ = "`edgelm serve` did not print its port within 120 s";
  }
  ~CloudServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::filesystem::remove(log_);
  }
  int port() const { return port_; }
  const std::string& error() const { return error_; }
  // chat_requests() once it equals `expected`, or after 3 s: the server counts a request
  // after its response was sent, so the count may lag the client's view by a moment.
  int chat_requests_settled(int expected) const {
    int n = chat_requests();
    for (int i = 0; i < 60 && n != expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      n = chat_requests();
    }
    return n;
  }
  // Chat requests the server itself counted (edgelm_requests_total{endpoint="chat",...}).
  int chat_requests() const {
    httplib::Client cli("127.0.0.1", port_);
    auto r = cli.Get("/metrics");
    if (!r || r->status != 200) return -1;
    int total = 0;
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("edgelm_requests_total{endpoint=\"chat\"", 0) == 0) {
        total += std::stoi(line.substr(line.rfind(' ') + 1));
      }
    }
    return total;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_, error_;
};

RouteRequest ask(const std::string& text, PrivacyClass privacy = PrivacyClass::kEither) {
  RouteRequest r;
  r.messages = {{"user", text}};
  r.privacy = privacy;
  r.max_tokens = 4;
  return r;
}

CloudOptions fast(const std::string& url) {
  CloudOptions o;
  o.url = url;
  o.connect_timeout_ms = 1000;
  o.timeout_ms = 20000;
  o.backoff = {.max_retries = 1, .base_ms = 5, .max_ms = 20, .seed = 11};
  o.breaker = {.failure_threshold = 1000, .open_ms = 60000};
  return o;
}

std::string reasons(const RouteResult& r) {
  std::string s;
  for (const auto& x : r.decision.reasons) s += x + " | ";
  return s + r.status.to_string();
}

TEST(RouterEndToEnd, RealServeAsCloudWithFaults) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  CloudServer server(model);
  if (!server.error().empty()) GTEST_SKIP() << "SKIPPED: " << server.error();
  FaultProxy proxy;
  proxy.set_upstream("127.0.0.1", server.port());

  EngineDeviceOptions eo;
  eo.session.n_ctx = 256;
  eo.session.n_threads = 1;
  auto loaded = EngineDevice::load(model, eo);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  std::shared_ptr<EngineDevice> device = std::move(loaded).value();
  auto cloud = std::make_shared<CloudClient>(fast(proxy.url()));
  bool refuse = false;
  Router router({}, device, cloud, [&](const RouteRequest&) {
    return GovernorVerdict{!refuse, refuse ? "temperature 48.0 C >= max 45 C" : ""};
  });
  int answered = 0, failed_with_reason = 0;
  auto account = [&](const RouteResult& r) {
    if (r.status.ok()) {
      ++answered;
      EXPECT_NE(r.decision.target, RouteTarget::kNone);
    } else {
      ++failed_with_reason;
      EXPECT_EQ(r.decision.target, RouteTarget::kNone);
      EXPECT_FALSE(r.status.message().empty());
      EXPECT_FALSE(r.decision.reasons.empty());
    }
  };

  // 1. The cloud answers (plain and streamed) through the real server.
  RouteRequest to_cloud = ask("Hello from the router");
  to_cloud.hints.prefer = "cloud";
  RouteResult r = router.handle(to_cloud);
  account(r);
  ASSERT_TRUE(r.status.ok()) << reasons(r);
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_FALSE(r.text.empty());
  to_cloud.stream = true;
  std::string streamed;
  r = router.handle(to_cloud, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  account(r);
  ASSERT_TRUE(r.status.ok()) << reasons(r);
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  EXPECT_EQ(streamed, r.text);
  const int cloud_before = server.chat_requests_settled(2);
  const int proxy_before = proxy.requests();
  EXPECT_GE(cloud_before, 2);

  // 2. Device-only requests never reach the cloud, even when the device cannot answer.
  for (int i = 0; i < 3; ++i) {
    RouteRequest priv = ask("my medical record says", PrivacyClass::kDeviceOnly);
    priv.hints.prefer = "cloud";
    r = router.handle(priv);
    account(r);
    ASSERT_TRUE(r.status.ok()) << reasons(r);
    EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  }
  refuse = true;
  r = router.handle(ask("private and the device is hot", PrivacyClass::kDeviceOnly));
  account(r);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("48.0 C"), std::string::npos) << reasons(r);
  refuse = false;
  RouteRequest too_long = ask(std::string(3000, 'x') + " summarise", PrivacyClass::kDeviceOnly);
  r = router.handle(too_long);  // does not fit the device's 256-token context
  account(r);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("device-only"), std::string::npos) << reasons(r);
  EXPECT_EQ(server.chat_requests_settled(cloud_before), cloud_before);
  EXPECT_EQ(proxy.requests(), proxy_before);

  // 3. Governor refusal and device failure go to the cloud.
  refuse = true;
  r = router.handle(ask("hot device"));
  account(r);
  ASSERT_TRUE(r.status.ok()) << reasons(r);
  EXPECT_EQ(r.decision.target, RouteTarget::kCloud);
  refuse = false;
  RouteRequest long_either = ask(std::string(1500, 'y') + " summarise");
  long_either.hints.prefer = "device";
  r = router.handle(long_either);
  account(r);
  // The real cloud server has the same 256-token context, so it refuses too (HTTP 400): the
  // request fails with both reasons rather than silently.
  EXPECT_FALSE(r.status.ok()) << reasons(r);
  EXPECT_NE(reasons(r).find("device failed"), std::string::npos) << reasons(r);
  EXPECT_NE(reasons(r).find("fallback: cloud"), std::string::npos) << reasons(r);

  // 4. Cloud faults go to the device.
  for (Fault fault : {Fault::kHttp500, Fault::kCutStream, Fault::kSlow}) {
    proxy.set_fault(fault, -1, 2500);
    CloudOptions o = fast(proxy.url());
    if (fault == Fault::kSlow) o.timeout_ms = 500;
    Router faulty({}, device, std::make_shared<CloudClient>(o));
    RouteRequest req = ask("tell me a story about a cat and a dog");
    req.hints.prefer = "cloud";
    req.stream = fault == Fault::kCutStream;
    req.max_tokens = 8;
    r = faulty.handle(req);
    account(r);
    ASSERT_TRUE(r.status.ok()) << reasons(r);
    EXPECT_EQ(r.decision.target, RouteTarget::kDevice) << reasons(r);
    EXPECT_NE(reasons(r).find("cloud failed"), std::string::npos);
  }
  proxy.set_fault(Fault::kNone);
  // Refused connections: nothing listens at the cloud's address.
  const std::string dead_url = [] {
    FaultProxy p;
    std::string u = p.url();
    p.stop();
    return u;
  }();
  Router offline({}, device, std::make_shared<CloudClient>(fast(dead_url)));
  RouteRequest req = ask("no network");
  req.hints.prefer = "cloud";
  r = offline.handle(req);
  account(r);
  ASSERT_TRUE(r.status.ok()) << reasons(r);
  EXPECT_EQ(r.decision.target, RouteTarget::kDevice);
  EXPECT_EQ(r.decision.attempts.front().http_status, 0);

  std::printf("[ figures  ] answered %d, failed with a reason %d, cloud chat requests %d\n",
              answered, failed_with_reason, server.chat_requests());
  EXPECT_EQ(answered + failed_with_reason, 13);
}

// `edgelm serve --cloud URL` as the routing point in front of a second `edgelm serve`: the
// header x-edgelm-privacy: device-only keeps a request off the cloud (the cloud's /metrics do
// not move), x-edgelm-prefer: cloud sends one there, a bad header value is a 400.
TEST(RouterEndToEnd, ServeWithCloudRoutesByHeader) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  CloudServer cloud(model);
  if (!cloud.error().empty()) GTEST_SKIP() << "SKIPPED: " << cloud.error();
  CloudServer edge(model, {"--cloud", "http://127.0.0.1:" + std::to_string(cloud.port())});
  if (!edge.error().empty()) GTEST_SKIP() << "SKIPPED: " << edge.error();
  httplib::Client cli("127.0.0.1", edge.port());
  cli.set_read_timeout(std::chrono::seconds(120));
  const std::string body =
      R"({"model":"conf-llama-spm-f16","messages":[{"role":"user","content":"hi"}],)"
      R"("max_tokens":4})";
  const int before = cloud.chat_requests();
  for (int i = 0; i < 3; ++i) {
    auto r = cli.Post("/v1/chat/completions",
                      {{"x-edgelm-privacy", "device-only"}, {"x-edgelm-prefer", "cloud"}}, body,
                      "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  EXPECT_EQ(cloud.chat_requests_settled(before), before);  // never reached the cloud
  auto r =
      cli.Post("/v1/chat/completions", {{"x-edgelm-prefer", "cloud"}}, body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  {  // the cloud's own token counts come back as the answer's usage
    const auto usage = nlohmann::json::parse(r->body)["usage"];
    EXPECT_GT(usage["prompt_tokens"].get<int>(), 0) << r->body;
    EXPECT_GT(usage["completion_tokens"].get<int>(), 0) << r->body;
    EXPECT_LE(usage["completion_tokens"].get<int>(), 4) << r->body;
  }
  EXPECT_EQ(cloud.chat_requests_settled(before + 1), before + 1);
  {  // streamed through the edge: the cloud's usage chunk reaches the client's usage chunk
    const std::string streamed =
        R"({"model":"conf-llama-spm-f16","messages":[{"role":"user","content":"hi"}],)"
        R"("max_tokens":4,"stream":true,"stream_options":{"include_usage":true}})";
    auto s = cli.Post("/v1/chat/completions", {{"x-edgelm-prefer", "cloud"}}, streamed,
                      "application/json");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->status, 200) << s->body;
    int completion_tokens = -1;
    std::istringstream lines(s->body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("data: {", 0) != 0) continue;
      const auto j = nlohmann::json::parse(line.substr(6));
      if (j.contains("usage") && j["usage"].is_object()) {
        completion_tokens = j["usage"]["completion_tokens"].get<int>();
      }
    }
    EXPECT_GT(completion_tokens, 0) << s->body;
    EXPECT_EQ(cloud.chat_requests_settled(before + 2), before + 2);
  }
  r = cli.Post("/v1/chat/completions", {{"x-edgelm-privacy", "secret-ish"}}, body,
               "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("x-edgelm-privacy"), std::string::npos) << r->body;
  std::printf(
      "[ figures  ] serve --cloud: 3 device-only requests -> cloud +0 expected, 2 prefer "
      "cloud -> cloud +%d (2 expected)\n",
      cloud.chat_requests() - before);
}

// A fake sysfs tree with one thermal zone whose temperature a test sets.
class FakeThermal {
 public:
  FakeThermal() : root_(edgelm::testing::temp_path("router-sysfs")) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ + "/class/thermal/thermal_zone0");
    std::ofstream(root_ + "/class/thermal/thermal_zone0/type") << "cpu-thermal\n";
    set(30);
  }
  ~FakeThermal() { std::filesystem::remove_all(root_); }
  void set(double c) {
    const std::string tmp = root_ + "/class/thermal/thermal_zone0/temp.tmp";
    std::ofstream(tmp) << static_cast<long>(c * 1000) << "\n";
    std::filesystem::rename(tmp, root_ + "/class/thermal/thermal_zone0/temp");
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// Writes a governor policy: max 45 C, sensors read at every decision, and a token budget of
// 20 tokens/s (burst 1) so that an answer lasts long enough to be stopped midway.
std::string write_policy() {
  const std::string path = edgelm::testing::temp_path("router-serve-policy.json");
  std::ofstream(path) << R"({"name": "e2e", "max_temp_c": 45, "resume_temp_c": 40,)"
                      << R"( "sensor_interval_ms": 0,)"
                      << R"( "token_budget": {"tokens_per_s": 20, "burst": 1}})";
  return path;
}

struct Streamed {
  int status = -1;
  std::string route_header, reason_header;
  std::vector<nlohmann::json> events;  // the "data: " JSON payloads ([DONE] left out)
  std::string text;                    // the content deltas concatenated
};

// POSTs a streamed request; `on_first_text` runs once, when the first content delta arrives.
Streamed stream_post(httplib::Client& cli, const std::string& path, const nlohmann::json& body,
                     httplib::Headers headers, const std::function<void()>& on_first_text) {
  Streamed out;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = std::move(headers);
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buf;
  bool fired = false;
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buf.append(d, n);
    size_t pos = 0;
    while (true) {
      const size_t start = buf.find("data: ", pos);
      if (start == std::string::npos) break;
      const size_t end = buf.find("\n\n", start);
      if (end == std::string::npos) break;
      const std::string data = buf.substr(start + 6, end - start - 6);
      pos = end + 2;
      if (data == "[DONE]") continue;
      auto j = nlohmann::json::parse(data, nullptr, false);
      if (j.is_discarded()) continue;
      out.events.push_back(j);
      if (j.contains("choices") && !j["choices"].empty()) {
        const auto& c = j["choices"][0];
        std::string piece;
        if (c.contains("delta") && c["delta"].contains("content")) {
          piece = c["delta"]["content"].get<std::string>();
        } else if (c.contains("text")) {
          piece = c["text"].get<std::string>();
        }
        out.text += piece;
        if (!piece.empty() && !fired && on_first_text) {
          fired = true;
          on_first_text();
        }
      }
    }
    buf.erase(0, pos);
    return true;
  };
  auto r = cli.send(req);
  if (r) {
    out.status = r->status;
    out.route_header = r->get_header_value("x-edgelm-route");
    out.reason_header = r->get_header_value("x-edgelm-route-reason");
  }
  return out;
}

// The event that carries finish_reason, and the route decision in it (streamed responses put
// "edgelm_route" in that last chunk).
const nlohmann::json* finish_event(const Streamed& s) {
  for (const auto& e : s.events) {
    if (e.contains("choices") && !e["choices"].empty() &&
        e["choices"][0]["finish_reason"].is_string()) {
      return &e;
    }
  }
  return nullptr;
}

// `edgelm serve --cloud URL --router-config CFG --governor POLICY`: the uncertainty threshold
// splits requests (the probe runs on the server's pooled session); every response says where
// it ran and why (headers + "edgelm_route"); a governor refusal before the request sends it to
// the cloud, one in the middle of an answer hands the rest to the cloud.
TEST(RouterEndToEnd, ServeRoutesByUncertaintyAndGovernorAndSaysWhere) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  // The entropy the device measures for a few prompts (same model, context and threads as the
  // server); the threshold goes midway between the lowest and the highest.
  EngineDeviceOptions eo;
  eo.session.n_ctx = 256;
  eo.session.n_threads = 1;
  auto loaded = EngineDevice::load(model, eo);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const std::vector<std::string> prompts = {
      "hi", "What is 2 + 2?", "Tell me a story", "Translate cat", "x y z", "Why is the sky blue"};
  std::string low, high;
  double low_e = 1e9, high_e = -1e9;
  for (const std::string& p : prompts) {
    auto probe = (*loaded)->probe(ask(p));
    ASSERT_TRUE(probe.ok()) << probe.status().to_string();
    if (probe->entropy < low_e) low_e = probe->entropy, low = p;
    if (probe->entropy > high_e) high_e = probe->entropy, high = p;
  }
  loaded->reset();
  if (high_e - low_e < 0.02) GTEST_SKIP() << "SKIPPED: the prompts' entropies are too close";
  const double threshold = (low_e + high_e) / 2;
  const std::string cfg = edgelm::testing::temp_path("router-serve-config.json");
  std::ofstream(cfg) << nlohmann::json({{"uncertainty_threshold", threshold}}).dump();
  FakeThermal thermal;
  const std::string policy = write_policy();

  CloudServer cloud(model);
  if (!cloud.error().empty()) GTEST_SKIP() << "SKIPPED: " << cloud.error();
  CloudServer edge(
      model, {"--cloud", "http://127.0.0.1:" + std::to_string(cloud.port()), "--router-config", cfg,
              "--governor", policy, "--sysfs-root", thermal.root()});
  ASSERT_TRUE(edge.error().empty()) << edge.error();  // the CLI runs (the cloud started)
  httplib::Client cli("127.0.0.1", edge.port());
  cli.set_read_timeout(std::chrono::seconds(120));
  auto chat = [](const std::string& text, int max_tokens) {
    return nlohmann::json{{"model", "conf-llama-spm-f16"},
                          {"messages", {{{"role", "user"}, {"content", text}}}},
                          {"max_tokens", max_tokens}};
  };

  // 1. Low entropy: the device answers; headers and body say so, with the measured entropy.
  int before = cloud.chat_requests();
  auto r = cli.Post("/v1/chat/completions", chat(low, 4).dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("x-edgelm-route"), "device");
  EXPECT_NE(r->get_header_value("x-edgelm-route-reason").find("<= threshold"), std::string::npos)
      << r->get_header_value("x-edgelm-route-reason");
  auto body = nlohmann::json::parse(r->body);
  ASSERT_TRUE(body.contains("edgelm_route")) << r->body;
  EXPECT_EQ(body["edgelm_route"]["target"], "device");
  EXPECT_NEAR(body["edgelm_route"]["uncertainty"].get<double>(), low_e, 1e-3);
  EXPECT_EQ(body["edgelm_route"]["attempts"].size(), 1u);
  EXPECT_EQ(cloud.chat_requests_settled(before), before);

  // 2. High entropy, streamed: the cloud answers; the decision is in the last chunk.
  nlohmann::json hard = chat(high, 4);
  hard["stream"] = true;
  Streamed s = stream_post(cli, "/v1/chat/completions", hard, {}, {});
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.route_header, "cloud");
  EXPECT_NE(s.reason_header.find("> threshold"), std::string::npos) << s.reason_header;
  const nlohmann::json* fin = finish_event(s);
  ASSERT_NE(fin, nullptr);
  ASSERT_TRUE(fin->contains("edgelm_route")) << fin->dump();
  EXPECT_EQ((*fin)["edgelm_route"]["target"], "cloud");
  EXPECT_EQ(cloud.chat_requests_settled(before + 1), before + 1);

  // 3. The governor refuses before the request: the cloud answers; device-only gets a 503.
  thermal.set(50);
  r = cli.Post("/v1/chat/completions", chat(low, 4).dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("x-edgelm-route"), "cloud");
  EXPECT_NE(r->get_header_value("x-edgelm-route-reason").find("governor refuses"),
            std::string::npos);
  EXPECT_EQ(cloud.chat_requests_settled(before + 2), before + 2);
  r = cli.Post("/v1/chat/completions", {{"x-edgelm-privacy", "device-only"}}, chat(low, 4).dump(),
               "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("max_temp"), std::string::npos) << r->body;
  EXPECT_EQ(cloud.chat_requests_settled(before + 2), before + 2);

  // 4. The governor stops the device mid-answer: the cloud continues it.
  thermal.set(30);
  nlohmann::json long_answer = chat(low, 40);
  long_answer["stream"] = true;
  s = stream_post(cli, "/v1/chat/completions", long_answer, {{"x-edgelm-prefer", "device"}},
                  [&] { thermal.set(50); });
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.route_header, "device");  // the plan, sent before the first byte
  fin = finish_event(s);
  ASSERT_NE(fin, nullptr);
  ASSERT_TRUE(fin->contains("edgelm_route")) << fin->dump();
  const std::string decision = (*fin)["edgelm_route"].dump();
  EXPECT_EQ((*fin)["edgelm_route"]["target"], "cloud") << decision;
  EXPECT_NE(decision.find("the governor stopped the device"), std::string::npos) << decision;
  EXPECT_NE(decision.find("fallback: cloud"), std::string::npos) << decision;
  EXPECT_EQ(cloud.chat_requests_settled(before + 3), before + 3);
  thermal.set(30);
  std::printf(
      "[ figures  ] serve --cloud: entropy %.4f -> device, %.4f -> cloud (threshold %.4f); "
      "governor hot -> cloud, device-only hot -> 503; mid-answer stop -> %s\n",
      low_e, high_e, threshold, (*fin)["edgelm_route"]["target"].get<std::string>().c_str());
}

// `edgelm serve --governor POLICY` without a cloud: a refusal before the request is an HTTP 503
// naming the governor's reason; one between tokens ends the answer early with finish_reason
// "length".
TEST(RouterEndToEnd, ServeGovernorWithoutCloud) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  FakeThermal thermal;
  const std::string policy = write_policy();
  CloudServer server(model, {"--governor", policy, "--sysfs-root", thermal.root()});
  if (server.error().starts_with("the edgelm CLI is not built")) {
    GTEST_SKIP() << "SKIPPED: " << server.error();
  }
  ASSERT_TRUE(server.error().empty()) << server.error();
  httplib::Client cli("127.0.0.1", server.port());
  cli.set_read_timeout(std::chrono::seconds(120));
  nlohmann::json body = {
      {"model", "conf-llama-spm-f16"}, {"prompt", "Once upon a time there was"}, {"max_tokens", 4}};
  auto r = cli.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(r->get_header_value("x-edgelm-route").empty());  // not routed

  thermal.set(50);
  r = cli.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  auto err = nlohmann::json::parse(r->body, nullptr, false);
  ASSERT_FALSE(err.is_discarded()) << r->body;
  EXPECT_NE(err["error"]["message"].get<std::string>().find("temperature 50.0 C"),
            std::string::npos)
      << r->body;

  thermal.set(30);
  body["max_tokens"] = 40;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  Streamed s = stream_post(cli, "/v1/completions", body, {}, [&] { thermal.set(50); });
  ASSERT_EQ(s.status, 200);
  const nlohmann::json* fin = finish_event(s);
  ASSERT_NE(fin, nullptr);
  EXPECT_EQ((*fin)["choices"][0]["finish_reason"], "length");
  int completion_tokens = -1;
  for (const auto& e : s.events) {
    if (e.contains("usage") && e["usage"].is_object()) {
      completion_tokens = e["usage"]["completion_tokens"].get<int>();
    }
  }
  EXPECT_GT(completion_tokens, 0);
  EXPECT_LT(completion_tokens, 40);  // stopped by the governor, not by max_tokens
  std::printf(
      "[ figures  ] serve --governor: hot -> 503; mid-answer refusal after %d of 40 tokens\n",
      completion_tokens);
}

// Bad serve options fail at startup with a clear message and exit status 1.
TEST(RouterEndToEnd, ServeRejectsBadGovernorAndRouterOptions) {
  EDGELM_REQUIRE_SHARED(model, kModel);
  if (!std::filesystem::exists(EDGELM_CLI)) GTEST_SKIP() << "SKIPPED: the edgelm CLI is not built";
  const std::string err = edgelm::testing::temp_path("router-serve-bad.err");
  auto run = [&](const std::string& args) {
    // `timeout`: a server that wrongly starts is stopped (exit status 124) instead of hanging.
    const std::string cmd = "timeout 120 " + std::string(EDGELM_CLI) + " serve -m " + model +
                            " --port 0 -c 64 -t 1 " + args + " 2>" + err + " >/dev/null";
    const int rc = std::system(cmd.c_str());
    return std::make_pair(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(err));
  };
  const std::string missing = edgelm::testing::temp_path("no-such-policy.json");
  auto [rc, text] = run("--governor " + missing);
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("no-such-policy.json"), std::string::npos) << text;

  const std::string bad_policy = edgelm::testing::temp_path("router-bad-policy.json");
  std::ofstream(bad_policy) << R"({"max_temp_c": "hot"})";
  std::tie(rc, text) = run("--governor " + bad_policy);
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("max_temp_c"), std::string::npos) << text;

  const std::string policy = write_policy();
  std::tie(rc, text) = run("--governor " + policy + " --sensor thermometer");
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("--sensor 'thermometer'"), std::string::npos) << text;

  std::tie(rc, text) = run("--sensor none");
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("need --governor"), std::string::npos) << text;

  const std::string nll = edgelm::testing::temp_path("router-nll-config.json");
  std::ofstream(nll) << R"({"signal": "nll", "uncertainty_threshold": 3})";
  std::tie(rc, text) = run("--cloud http://127.0.0.1:9 --router-config " + nll);
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("signal 'nll'"), std::string::npos) << text;
  for (const auto& f : {err, bad_policy, nll}) std::filesystem::remove(f);
}

}  // namespace
}  // namespace edgelm::router
