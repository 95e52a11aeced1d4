// SQLite feature store (see store.h).
#include "runtime/monitor/store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>

namespace edgelm::monitor {

namespace {

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS requests ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp_ms INTEGER NOT NULL, model TEXT NOT NULL, "
    "source TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, "
    "mean_logprob REAL NOT NULL, mean_entropy REAL NOT NULL, stop_reason TEXT NOT NULL, "
    "empty_output INTEGER NOT NULL, repeated_ngram_share REAL NOT NULL, latency_ms REAL NOT NULL, "
    "ttft_ms REAL NOT NULL, tokens_per_s REAL NOT NULL, prompt_text TEXT, output_text TEXT)";

// Finalizes a statement on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

Status FeatureStore::error(const char* what) const {
  return Status::io(fmt::format("monitor store '{}': {}: {}", path_, what, sqlite3_errmsg(db_)));
}

Status FeatureStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return Status::io(fmt::format("monitor store '{}': {}: {}", path_, sql, m));
  }
  return Status::ok_status();
}

StatusOr<std::unique_ptr<FeatureStore>> FeatureStore::open(const std::string& path,
                                                           const StoreOptions& options) {
  if (options.max_rows <= 0) {
    return Status::invalid_argument(
        fmt::format("monitor store '{}': max_rows must be > 0, found {}", path, options.max_rows));
  }
  if (!options.create_if_missing && !std::filesystem::exists(path)) {
    return Status::not_found(fmt::format("monitor store '{}': no such file", path));
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::io(fmt::format("monitor store '{}': cannot open: {}", path, m));
  }
  std::unique_ptr<FeatureStore> store(new FeatureStore(path, options, db));
  sqlite3_busy_timeout(db, 5000);
  // Read the schema version first: this is where a file that is not SQLite is detected,
  // before anything is written to it.
  int version = 0;
  {
    Stmt st;
    int prc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st.s, nullptr);
    if (prc == SQLITE_OK) prc = sqlite3_step(st.s);
    if (prc == SQLITE_NOTADB || prc == SQLITE_CORRUPT) {
      return Status::data_loss(fmt::format(
          "monitor store '{}': not an SQLite database (or corrupt): {}", path, sqlite3_errmsg(db)));
    }
    if (prc != SQLITE_ROW) return store->error("reading the schema version");
    version = sqlite3_column_int(st.s, 0);
  }
  if (version > kSchemaVersion) {
    return Status::failed_precondition(fmt::format(
        "monitor store '{}': schema version {} is newer than this runtime's {} (upgrade edgelm)",
        path, version, kSchemaVersion));
  }
  if (version == 0) {
    // New file, or an SQLite file of someone else's: refuse foreign tables.
    Stmt st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table'", -1, &st.s,
                           nullptr) != SQLITE_OK ||
        sqlite3_step(st.s) != SQLITE_ROW) {
      return store->error("listing tables");
    }
    if (sqlite3_column_int(st.s, 0) != 0) {
      return Status::failed_precondition(fmt::format(
          "monitor store '{}': an SQLite database with other tables and no edgelm schema version "
          "(expected user_version {} or an empty file)",
          path, kSchemaVersion));
    }
  }
  RETURN_IF_ERROR(store->exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->exec("PRAGMA synchronous=NORMAL"));
  if (version == 0) {
    RETURN_IF_ERROR(store->exec("BEGIN"));
    RETURN_IF_ERROR(store->exec(kCreateTable));
    RETURN_IF_ERROR(
        store->exec("CREATE INDEX IF NOT EXISTS requests_source ON requests(source, id)"));
    RETURN_IF_ERROR(store->exec(fmt::format("PRAGMA user_version={}", kSchemaVersion).c_str()));
    RETURN_IF_ERROR(store->exec("COMMIT"));
  }
  return store;
}

FeatureStore::~FeatureStore() { sqlite3_close(db_); }

Status FeatureStore::add(const RequestFeatures& f) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT INTO requests (timestamp_ms, model, source, prompt_tokens, "
                         "output_tokens, mean_logprob, mean_entropy, stop_reason, empty_output, "
                         "repeated_ngram_share, latency_ms, ttft_ms, tokens_per_s, prompt_text, "
                         "output_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    return error("preparing insert");
  }
  sqlite3_bind_int64(st.s, 1, f.timestamp_ms);
  sqlite3_bind_text(st.s, 2, f.model.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, f.source.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st.s, 4, f.prompt_tokens);
  sqlite3_bind_int(st.s, 5, f.output_tokens);
  sqlite3_bind_double(st.s, 6, f.mean_logprob);
  sqlite3_bind_double(st.s, 7, f.mean_entropy);
  sqlite3_bind_text(st.s, 8, stop_reason_name(f.stop_reason), -1, SQLITE_STATIC);
  sqlite3_bind_int(st.s, 9, f.empty_output ? 1 : 0);
  sqlite3_bind_double(st.s, 10, f.repeated_ngram_share);
  sqlite3_bind_double(st.s, 11, f.latency_ms);
  sqlite3_bind_double(st.s, 12, f.ttft_ms);
  sqlite3_bind_double(st.s, 13, f.tokens_per_s);
  if (options_.keep_text && f.prompt_text) {
    sqlite3_bind_text(st.s, 14, f.prompt_text->c_str(), -1, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_null(st.s, 14);
  }
  if (options_.keep_text && f.output_text) {
    sqlite3_bind_text(st.s, 15, f.output_text->c_str(), -1, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_null(st.s, 15);
  }
  RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  if (sqlite3_step(st.s) != SQLITE_DONE) {
    Status s = error("inserting a row");
    (void)exec("ROLLBACK");
    return s;
  }
  const std::string trim = fmt::format(
      "DELETE FROM requests WHERE id <= (SELECT max(id) FROM requests) - {}", options_.max_rows);
  Status s = exec(trim.c_str());
  if (!s.ok()) {
    (void)exec("ROLLBACK");
    return s;
  }
  return exec("COMMIT");
}

StatusOr<std::vector<RequestFeatures>> FeatureStore::recent(int64_t limit,
                                                            const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  const char* sql =
      "SELECT timestamp_ms, model, source, prompt_tokens, output_tokens, mean_logprob, "
      "mean_entropy, stop_reason, empty_output, repeated_ngram_share, latency_ms, ttft_ms, "
      "tokens_per_s, prompt_text, output_text FROM requests WHERE (?1 = '' OR source = ?1) "
      "ORDER BY id DESC LIMIT ?2";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr) != SQLITE_OK) {
    return error("preparing select");
  }
  sqlite3_bind_text(st.s, 1, source.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, limit > 0 ? limit : -1);
  std::vector<RequestFeatures> rows;
  int rc;
  auto text = [&](int col) {
    const unsigned char* t = sqlite3_column_text(st.s, col);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    RequestFeatures f;
    f.timestamp_ms = sqlite3_column_int64(st.s, 0);
    f.model = text(1);
    f.source = text(2);
    f.prompt_tokens = sqlite3_column_int(st.s, 3);
    f.output_tokens = sqlite3_column_int(st.s, 4);
    f.mean_logprob = sqlite3_column_double(st.s, 5);
    f.mean_entropy = sqlite3_column_double(st.s, 6);
    auto reason = parse_stop_reason(text(7));
    if (!reason.ok()) return reason.status().with_context(fmt::format("monitor store '{}'", path_));
    f.stop_reason = *reason;
    f.empty_output = sqlite3_column_int(st.s, 8) != 0;
    f.repeated_ngram_share = sqlite3_column_double(st.s, 9);
    f.latency_ms = sqlite3_column_double(st.s, 10);
    f.ttft_ms = sqlite3_column_double(st.s, 11);
    f.tokens_per_s = sqlite3_column_double(st.s, 12);
    if (sqlite3_column_type(st.s, 13) != SQLITE_NULL) f.prompt_text = text(13);
    if (sqlite3_column_type(st.s, 14) != SQLITE_NULL) f.output_text = text(14);
    rows.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return error("reading rows");
  std::reverse(rows.begin(), rows.end());
  return rows;
}

StatusOr<int64_t> FeatureStore::count() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM requests", -1, &st.s, nullptr) != SQLITE_OK ||
      sqlite3_step(st.s) != SQLITE_ROW) {
    return error("counting rows");
  }
  return static_cast<int64_t>(sqlite3_column_int64(st.s, 0));
}

}  // namespace edgelm::monitor
