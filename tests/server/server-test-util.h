// Helpers shared by the server tests. make_small_backend: the real LocalBackend over a small
// conformance model, sized for fast sanitizer runs (context 128, one thread per session); adds a
// test failure and returns null when the model does not load. read_monitor_rows: every row a
// monitor store holds (optionally of one source), opened read-only and closed again.
//
//   EDGELM_REQUIRE_SHARED(path, "models/conf-llama-spm-q8_0.gguf");
//   auto backend = make_small_backend(path);  ASSERT_TRUE(backend);
//   auto rows = read_monitor_rows(db_path, "canary");
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/monitor/store.h"
#include "server/local-backend.h"

namespace edgelm::server {

inline std::unique_ptr<LocalBackend> make_small_backend(const std::string& path, int parallel = 1,
                                                        int max_queue = 64) {
  LocalBackendOptions o;
  o.model_path = path;
  o.n_parallel = parallel;
  o.max_queue = max_queue;
  o.n_ctx = 128;
  o.n_threads = 1;
  auto b = LocalBackend::create(o);
  EXPECT_TRUE(b.ok()) << b.status().to_string();
  return b.ok() ? std::move(*b) : nullptr;
}

inline std::vector<monitor::RequestFeatures> read_monitor_rows(const std::string& db,
                                                               const std::string& source = "") {
  monitor::StoreOptions so;
  so.create_if_missing = false;
  auto store = monitor::FeatureStore::open(db, so);
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return {};
  auto rows = (*store)->recent(0, source);
  EXPECT_TRUE(rows.ok()) << rows.status().to_string();
  return rows.ok() ? *rows : std::vector<monitor::RequestFeatures>{};
}

}  // namespace edgelm::server
