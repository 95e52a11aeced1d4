// AsyncRecorder: rows reach the store off the caller's thread, a full queue drops (never
// blocks), sink errors are counted and never returned, the destructor writes what is queued,
// and a store damaged while running (its table dropped by another connection) only counts
// errors.
#include "runtime/monitor/recorder.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "test_util.h"

namespace edgelm::monitor {
namespace {

RequestFeatures row(int output_tokens) {
  RequestFeatures f;
  f.model = "m";
  f.source = "request";
  f.prompt_tokens = 5;
  f.output_tokens = output_tokens;
  f.mean_logprob = -1.5;
  f.stop_reason = StopReason::kEog;
  f.prompt_text = "secret prompt";
  f.output_text = "secret answer";
  return f;
}

std::string fresh_db(const std::string& name) {
  const std::string p = edgelm::testing::temp_path(name);
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(p + ext);
  return p;
}

TEST(RecorderTest, WritesEveryRowToTheStoreWithoutText) {
  const std::string db = fresh_db("recorder-basic.db");
  auto store = FeatureStore::open(db);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto rec = AsyncRecorder::over_store(std::move(*store));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rec->submit(row(i + 1)));
  rec->flush();
  const RecorderStats s = rec->stats();
  EXPECT_EQ(s.submitted, 5u);
  EXPECT_EQ(s.written, 5u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.errors, 0u);
  rec.reset();
  auto again = FeatureStore::open(db);
  ASSERT_TRUE(again.ok());
  auto rows = (*again)->recent(0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 5u);
  for (size_t i = 0; i < rows->size(); ++i) {
    EXPECT_EQ((*rows)[i].output_tokens, static_cast<int>(i) + 1);
    EXPECT_FALSE((*rows)[i].prompt_text.has_value());  // keep_text not set
    EXPECT_FALSE((*rows)[i].output_text.has_value());
  }
}

TEST(RecorderTest, FullQueueDropsInsteadOfBlocking) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> entered{0};
  std::atomic<int> stored{0};
  RecorderOptions o;
  o.max_queue = 2;
  AsyncRecorder rec(
      [&](const RequestFeatures&) {
        ++entered;
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return release; });
        ++stored;
        return Status::ok_status();
      },
      o);
  ASSERT_TRUE(rec.submit(row(1)));
  for (int i = 0; i < 500 && entered.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(entered.load(), 1);  // the writer holds row 1, blocked in the sink
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(rec.submit(row(2)));
  EXPECT_TRUE(rec.submit(row(3)));
  EXPECT_FALSE(rec.submit(row(4)));  // queue full: dropped at once
  EXPECT_FALSE(rec.submit(row(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  rec.flush();
  const RecorderStats s = rec.stats();
  EXPECT_EQ(s.submitted, 5u);
  EXPECT_EQ(s.written, 3u);
  EXPECT_EQ(s.dropped, 2u);
  EXPECT_EQ(stored.load(), 3);
}

TEST(RecorderTest, SinkErrorsAreCountedAndTheRecorderGoesOn) {
  std::atomic<int> calls{0};
  AsyncRecorder rec([&](const RequestFeatures& f) {
    ++calls;
    if (f.output_tokens % 2 == 0) return Status::io("disk full (test)");
    return Status::ok_status();
  });
  for (int i = 1; i <= 6; ++i) EXPECT_TRUE(rec.submit(row(i)));
  rec.flush();
  const RecorderStats s = rec.stats();
  EXPECT_EQ(calls.load(), 6);
  EXPECT_EQ(s.written, 3u);
  EXPECT_EQ(s.errors, 3u);
  EXPECT_NE(s.last_error.find("disk full"), std::string::npos) << s.last_error;
}

TEST(RecorderTest, DestructorWritesWhatIsQueued) {
  std::atomic<int> stored{0};
  {
    AsyncRecorder rec([&](const RequestFeatures&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ++stored;
      return Status::ok_status();
    });
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(rec.submit(row(i)));
  }
  EXPECT_EQ(stored.load(), 20);
}

TEST(RecorderTest, StoreDamagedWhileRunningOnlyCountsErrors) {
  const std::string db = fresh_db("recorder-damaged.db");
  auto store = FeatureStore::open(db);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto rec = AsyncRecorder::over_store(std::move(*store));
  ASSERT_TRUE(rec->submit(row(1)));
  rec->flush();
  ASSERT_EQ(rec->stats().written, 1u);
  // Someone else breaks the database under the running recorder.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "DROP TABLE requests", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rec->submit(row(i)));
  rec->flush();
  const RecorderStats s = rec->stats();
  EXPECT_EQ(s.written, 1u);
  EXPECT_EQ(s.errors, 3u);
  EXPECT_NE(s.last_error.find("requests"), std::string::npos) << s.last_error;
  EXPECT_NE(s.last_error.find(db), std::string::npos) << s.last_error;  // names the store
}

}  // namespace
}  // namespace edgelm::monitor
