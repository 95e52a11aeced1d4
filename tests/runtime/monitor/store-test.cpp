// Feature store: rows persist across reopen, ring buffer keeps the newest max_rows, text only
// when opted in, WAL journal, schema version recorded; a newer schema, a non-SQLite file and a
// foreign SQLite database are refused and left intact.
#include "runtime/monitor/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace edgelm::monitor {
namespace {

RequestFeatures row(int i) {
  RequestFeatures f;
  f.timestamp_ms = 1000 + i;
  f.model = "m";
  f.source = i % 2 ? "canary" : "request";
  f.prompt_tokens = i;
  f.output_tokens = 2 * i;
  f.mean_logprob = -0.1 * i;
  f.stop_reason = StopReason::kStopString;
  f.prompt_text = "prompt " + std::to_string(i);
  f.output_text = "output " + std::to_string(i);
  return f;
}

struct TempDb {
  std::string path = edgelm::testing::temp_path("monitor-store.db");
  TempDb() { clean(); }
  ~TempDb() { clean(); }
  void clean() {
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path + s);
  }
};

std::string sql_scalar(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    out = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(MonitorStore, RingBufferKeepsNewestRows) {
  TempDb db;
  StoreOptions so;
  so.max_rows = 5;
  {
    auto s = FeatureStore::open(db.path, so);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    for (int i = 0; i < 12; ++i) ASSERT_TRUE((*s)->add(row(i)).ok());
    EXPECT_EQ(*(*s)->count(), 5);
  }
  auto s = FeatureStore::open(db.path, so);  // persisted
  ASSERT_TRUE(s.ok());
  auto rows = (*s)->recent(0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 5u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ((*rows)[k].prompt_tokens, 7 + k);  // oldest first
    EXPECT_EQ((*rows)[k].stop_reason, StopReason::kStopString);
  }
  auto last2 = (*s)->recent(2);
  ASSERT_EQ(last2->size(), 2u);
  EXPECT_EQ((*last2)[1].prompt_tokens, 11);
  auto canary = (*s)->recent(0, "canary");
  ASSERT_TRUE(canary.ok());
  for (const auto& r : *canary) EXPECT_EQ(r.source, "canary");
  EXPECT_EQ(canary->size(), 3u);  // 7, 9, 11
  EXPECT_EQ(sql_scalar(db.path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sql_scalar(db.path, "PRAGMA user_version"),
            std::to_string(FeatureStore::kSchemaVersion));
}

TEST(MonitorStore, TextOnlyWhenOptedIn) {
  TempDb db;
  {
    auto s = FeatureStore::open(db.path, {});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->add(row(1)).ok());
    auto rows = (*s)->recent(0);
    EXPECT_FALSE((*rows)[0].prompt_text.has_value());
    EXPECT_FALSE((*rows)[0].output_text.has_value());
  }
  // Not in the file either.
  EXPECT_EQ(sql_scalar(db.path, "SELECT count(*) FROM requests WHERE prompt_text IS NOT NULL"),
            "0");
  StoreOptions keep;
  keep.keep_text = true;
  auto s = FeatureStore::open(db.path, keep);
  ASSERT_TRUE((*s)->add(row(2)).ok());
  auto rows = (*s)->recent(1);
  ASSERT_TRUE((*rows)[0].prompt_text.has_value());
  EXPECT_EQ(*(*rows)[0].prompt_text, "prompt 2");
  EXPECT_EQ(*(*rows)[0].output_text, "output 2");
}

TEST(MonitorStore, RefusesNewerSchemaForeignAndNonSqliteFiles) {
  TempDb db;
  {
    auto s = FeatureStore::open(db.path, {});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->add(row(0)).ok());
  }
  sql_scalar(db.path, "PRAGMA user_version=99");
  auto newer = FeatureStore::open(db.path, {});
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("99"), std::string::npos);
  EXPECT_EQ(sql_scalar(db.path, "SELECT count(*) FROM requests"), "1");  // untouched

  TempDb junk;
  {
    std::ofstream out(junk.path, std::ios::binary);
    out << "this is not a database, just some text that must survive the attempt.\n";
    for (int i = 0; i < 200; ++i) out << "filler line " << i << "\n";
  }
  std::stringstream before;
  before << std::ifstream(junk.path, std::ios::binary).rdbuf();
  auto bad = FeatureStore::open(junk.path, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find(junk.path), std::string::npos);
  std::stringstream after;
  after << std::ifstream(junk.path, std::ios::binary).rdbuf();
  EXPECT_EQ(before.str(), after.str());

  TempDb foreign;
  sql_scalar(foreign.path, "CREATE TABLE accounts (id INTEGER)");
  auto f = FeatureStore::open(foreign.path, {});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sql_scalar(foreign.path, "SELECT count(*) FROM sqlite_master WHERE name='requests'"),
            "0");
}

TEST(MonitorStore, OptionErrors) {
  TempDb db;
  StoreOptions so;
  so.max_rows = 0;
  EXPECT_EQ(FeatureStore::open(db.path, so).status().code(), StatusCode::kInvalidArgument);
  StoreOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_EQ(FeatureStore::open(db.path, no_create).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(db.path));
}

}  // namespace
}  // namespace edgelm::monitor
