// Where releases come from: an http(s):// base URL (libcurl), a file:// URL or a plain folder.
// Small documents are read into memory; model files and patches are downloaded to DEST.part
// and resumed from it with an HTTP Range request after an interrupted transfer (within the
// same call up to `retries` times, or by the next call), then checked against the expected
// size and SHA-256 and renamed to DEST. Errors name the URL, the HTTP status or curl's reason.
//
//   ASSIGN_OR_RETURN(auto src, Source::open("https://cdn.example.com/tiny", {}));
//   ASSIGN_OR_RETURN(std::string index, src->get_text("index.json"));
//   RETURN_IF_ERROR(src->download("1.1.0/tiny-1.1.0.gguf", size, sha_hex, "/tmp/x.gguf"));
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

namespace edgelm::update {

struct FetchOptions {
  long connect_timeout_s = 15;
  long stall_timeout_s = 30;  // abort a transfer that moves < 1 byte/s for this long
  int retries = 3;            // resumed attempts after an interrupted transfer
  long retry_delay_ms = 500;
  // Bytes done and total of the current download (done includes resumed bytes).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct FetchStats {
  uint64_t bytes_transferred = 0;  // payload bytes received over the network or copied
  uint64_t bytes_resumed = 0;      // bytes already present in .part files when resuming
  int resumed_transfers = 0;
  int interrupted_transfers = 0;
};

class Source {
 public:
  // `from`: "http://...", "https://...", "file:///path" or a folder path.
  static StatusOr<std::unique_ptr<Source>> open(const std::string& from, FetchOptions opts = {});
  virtual ~Source() = default;

  // Full URL or path of `rel` (for messages).
  virtual std::string locate(const std::string& rel) const = 0;
  virtual StatusOr<std::string> get_text(const std::string& rel,
                                         uint64_t max_bytes = 64ull << 20) = 0;
  // Downloads `rel` to `dest` through `dest`.part, verifying size and SHA-256 (lowercase hex).
  // On a hash mismatch the .part file is removed; after an interruption it is kept for resume.
  virtual Status download(const std::string& rel, uint64_t size, const std::string& sha256_hex,
                          const std::string& dest) = 0;

  const FetchStats& stats() const { return stats_; }

 protected:
  explicit Source(FetchOptions opts) : opts_(std::move(opts)) {}
  FetchOptions opts_;
  FetchStats stats_;
};

}  // namespace edgelm::update
