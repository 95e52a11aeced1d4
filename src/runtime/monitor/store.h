// Bounded local store of per-request features (SQLite through libsqlite3). Ring-buffer
// semantics: once max_rows rows are held, each new row drops the oldest. WAL journal, schema
// versioned with PRAGMA user_version (a newer schema is refused, never rewritten). Raw prompt
// and output text are stored only when keep_text is set (opt-in); otherwise they are dropped
// before the row is written. Safe to share between threads.
//
//   StoreOptions so;  so.max_rows = 10000;
//   ASSIGN_OR_RETURN(auto store, FeatureStore::open("monitor.db", so));
//   RETURN_IF_ERROR(store->add(features_from_result(result, "model-v3")));
//   ASSIGN_OR_RETURN(std::vector<RequestFeatures> last, store->recent(500));
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/monitor/features.h"

struct sqlite3;

namespace edgelm::monitor {

struct StoreOptions {
  int64_t max_rows = 10000;       // ring-buffer capacity (> 0)
  bool keep_text = false;         // store prompt/output text (opt-in)
  bool create_if_missing = true;  // false: NOT_FOUND when the file does not exist
};

class FeatureStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database. Errors: NOT_FOUND (missing and !create_if_missing),
  // DATA_LOSS (not an SQLite database; the file is left as it was), FAILED_PRECONDITION
  // (schema version newer than kSchemaVersion, or a foreign table layout), INVALID_ARGUMENT
  // (max_rows <= 0).
  static StatusOr<std::unique_ptr<FeatureStore>> open(const std::string& path,
                                                      const StoreOptions& options = {});
  ~FeatureStore();
  FeatureStore(const FeatureStore&) = delete;
  FeatureStore& operator=(const FeatureStore&) = delete;

  // Appends one row (texts dropped unless keep_text) and trims to max_rows.
  Status add(const RequestFeatures& f);
  // The newest `limit` rows (all when limit <= 0), oldest first; `source` filters ("" = all).
  StatusOr<std::vector<RequestFeatures>> recent(int64_t limit, const std::string& source = "");
  StatusOr<int64_t> count();
  const std::string& path() const { return path_; }
  const StoreOptions& options() const { return options_; }

 private:
  FeatureStore(std::string path, StoreOptions options, sqlite3* db)
      : path_(std::move(path)), options_(options), db_(db) {}
  Status exec(const char* sql);
  Status error(const char* what) const;

  std::string path_;
  StoreOptions options_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace edgelm::monitor
