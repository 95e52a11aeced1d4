// Updates over HTTP from a release folder served on loopback by an in-process cpp-httplib
// server: v1.0.0 (full file, transfer cut midway, resumed by the next run with a Range
// request) -> v1.1.0 (delta, cut and resumed within the same run) -> v1.2.0 (delta); HTTP
// errors name the URL and status (runtime/update/installer.h, fetch.h).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "runtime/update/fetch.h"
#include "runtime/update/hash.h"
#include "runtime/update/installer.h"
#include "update-test-util.h"

namespace edgelm::update {
namespace {

namespace fs = std::filesystem;
using testing::ReleaseFixture;
using testing::slurp;

// Serves `root` read-only. The first request for `cut_path` is cut off after `cut_bytes`
// payload bytes (the connection is dropped), to simulate an interrupted transfer.
class TestServer {
 public:
  struct Request {
    std::string path;
    std::string range;  // the Range header, "" if none
    uint64_t bytes_sent = 0;
  };

  explicit TestServer(std::string root) : root_(std::move(root)) {
    server_.Get(R"(/(.*))",
                [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~TestServer() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  void cut(const std::string& path, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    cut_path_ = path;
    cut_bytes_ = bytes;
  }
  std::vector<Request> requests_for(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Request> out;
    for (const auto& r : requests_) {
      if (r->path == path) out.push_back(*r);
    }
    return out;
  }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    const std::string rel = req.matches[1];
    const std::string file = root_ + "/" + rel;
    if (rel.find("..") != std::string::npos || !fs::is_regular_file(file)) {
      res.status = 404;
      res.set_content("not found", "text/plain");
      return;
    }
    auto data = std::make_shared<std::string>(slurp(file));
    auto record = std::make_shared<Request>();
    record->path = rel;
    record->range = req.get_header_value("Range");
    uint64_t cut = UINT64_MAX;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(record);
      if (rel == cut_path_) {
        cut = cut_bytes_;
        cut_path_.clear();  // only the first request is cut
      }
    }
    res.set_content_provider(
        data->size(), "application/octet-stream",
        [data, record, cut, this](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t n = std::min<size_t>(length, 16384);
          std::lock_guard<std::mutex> lock(mu_);
          if (record->bytes_sent + n > cut) {
            const size_t part = cut - record->bytes_sent;
            if (part > 0) sink.write(data->data() + offset, part);
            record->bytes_sent += part;
            return false;  // drop the connection mid-body
          }
          sink.write(data->data() + offset, n);
          record->bytes_sent += n;
          return true;
        });
  }

  std::string root_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string cut_path_;
  uint64_t cut_bytes_ = 0;
  std::vector<std::shared_ptr<Request>> requests_;
};

std::string sha_of(const std::string& path) { return to_hex(sha256_file(path).value()); }

TEST(HttpUpdate, ThreeVersionsWithInterruptedAndResumedTransfers) {
  ReleaseFixture f("http");
  f.make_versions(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.release(i).ok());
  TestServer server(f.release_dir);

  UpdateOptions o;
  o.from = server.url();
  o.models_dir = f.models_dir;
  o.pubkey_path = f.pub;
  o.version = "1.0.0";
  o.fetch.retries = 0;  // the first run gives up at the cut
  o.fetch.retry_delay_ms = 1;
  uint64_t last_done = 0, last_total = 0;
  o.fetch.progress = [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  };

  // 1.0.0: the transfer is cut after 300 KB; the error says what happened and where.
  const std::string full_rel = "1.0.0/tiny-1.0.0.gguf";
  const uint64_t full_size = fs::file_size(f.model(0));
  server.cut(full_rel, 300000);
  auto r = update_model(o);
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find(server.url() + "/" + full_rel), std::string::npos) << msg;
  EXPECT_NE(msg.find("next run resumes"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(f.models_dir + "/state.json"));
  const std::string part = f.models_dir + "/.downloads/tiny-1.0.0.gguf.part";
  ASSERT_TRUE(fs::exists(part));
  const uint64_t have = fs::file_size(part);
  EXPECT_GT(have, 0u);
  EXPECT_LE(have, 300000u);

  // The next run resumes from the .part file with a Range request.
  r = update_model(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(sha_of(f.models_dir + "/current.gguf"), sha_of(f.model(0)));
  EXPECT_EQ(r->fetch.resumed_transfers, 1);
  EXPECT_EQ(r->fetch.bytes_resumed, have);
  auto reqs = server.requests_for(full_rel);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].range, "");
  EXPECT_EQ(reqs[1].range, "bytes=" + std::to_string(have) + "-");
  EXPECT_EQ(reqs[1].bytes_sent, full_size - have) << "only the missing bytes were sent";
  EXPECT_EQ(last_done, full_size);
  EXPECT_EQ(last_total, full_size);
  EXPECT_FALSE(fs::exists(part));

  // 1.1.0 by delta; the patch transfer is cut and resumed within the same run.
  const std::string patch_rel = "1.1.0/deltas/1.0.0-1.1.0.elmd";
  const uint64_t patch_size = fs::file_size(f.release_dir + "/" + patch_rel);
  server.cut(patch_rel, patch_size / 2);
  o.version = "1.1.0";
  o.fetch.retries = 2;
  r = update_model(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].kind, "delta");
  EXPECT_EQ(r->fetch.interrupted_transfers, 1);
  EXPECT_EQ(r->fetch.resumed_transfers, 1);
  EXPECT_EQ(sha_of(f.models_dir + "/current.gguf"), sha_of(f.model(1)));
  reqs = server.requests_for(patch_rel);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_FALSE(reqs[1].range.empty());

  // Latest (1.2.0): the cheapest plan is the one delta from 1.1.0.
  o.version.clear();
  o.pubkey_path.clear();  // pinned by the first run
  r = update_model(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->to_version, "1.2.0");
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].from_version, "1.1.0");
  EXPECT_EQ(r->plan[0].kind, "delta");
  EXPECT_EQ(sha_of(f.models_dir + "/current.gguf"), sha_of(f.model(2)));
  EXPECT_TRUE(server.requests_for("1.2.0/tiny-1.2.0.gguf").empty()) << "no full download";

  // Rollback works offline.
  auto back = rollback_model(f.models_dir);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "1.1.0");
  EXPECT_EQ(sha_of(f.models_dir + "/current.gguf"), sha_of(f.model(1)));
}

TEST(HttpUpdate, HttpErrorsNameUrlAndStatus) {
  ReleaseFixture f("http-errors");
  f.make_versions(1);
  ASSERT_TRUE(f.release(0).ok());
  TestServer server(f.release_dir);
  UpdateOptions o;
  o.from = server.url() + "/missing";
  o.models_dir = f.models_dir;
  o.pubkey_path = f.pub;
  auto r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("HTTP 404"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(server.url() + "/missing/index.json"), std::string::npos);

  // Nobody listening.
  const std::string dead = server.url();
  server.stop();
  o.from = dead;
  o.fetch.connect_timeout_s = 5;
  r = update_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(dead + "/index.json"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(f.models_dir + "/state.json"));
}

TEST(HttpUpdate, SourceDownloadVerifiesAndRestartsABadPart) {
  ReleaseFixture f("http-part");
  f.make_versions(1);
  ASSERT_TRUE(f.release(0).ok());
  TestServer server(f.release_dir);
  auto src = Source::open(server.url(), {});
  ASSERT_TRUE(src.ok());
  const std::string rel = "1.0.0/tiny-1.0.0.gguf";
  const uint64_t size = fs::file_size(f.model(0));
  const std::string sha = sha_of(f.model(0));
  const std::string dest = f.root + "/dl.gguf";
  // A stale .part with wrong bytes: the resumed result fails the hash, is discarded and
  // reported; the next try starts from zero and succeeds.
  testing::spit(dest + ".part", std::string(1000, 'x'));
  Status st = (*src)->download(rel, size, sha, dest);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("does not match the manifest"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest + ".part"));
  EXPECT_FALSE(fs::exists(dest));
  st = (*src)->download(rel, size, sha, dest);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(sha_of(dest), sha);
  // A wrong expected size is caught too.
  fs::remove(dest);
  st = (*src)->download(rel, size - 1, sha, dest);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("more than"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace edgelm::update
