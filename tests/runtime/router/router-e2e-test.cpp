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
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
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
  const int cloud_before = server.chat_requests();
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
  EXPECT_EQ(server.chat_requests(), cloud_before);
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
  EXPECT_EQ(cloud.chat_requests(), before);  // never reached the cloud
  auto r =
      cli.Post("/v1/chat/completions", {{"x-edgelm-prefer", "cloud"}}, body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(cloud.chat_requests(), before + 1);
  r = cli.Post("/v1/chat/completions", {{"x-edgelm-privacy", "secret-ish"}}, body,
               "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("x-edgelm-privacy"), std::string::npos) << r->body;
  std::printf(
      "[ figures  ] serve --cloud: 3 device-only requests -> cloud +0 expected, 1 prefer "
      "cloud -> cloud +%d\n",
      cloud.chat_requests() - before);
}

}  // namespace
}  // namespace edgelm::router
