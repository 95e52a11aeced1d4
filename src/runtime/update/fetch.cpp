// Release sources: libcurl for http(s), plain file reads for folders (see fetch.h).
#include "runtime/update/fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "runtime/update/file-util.h"
#include "runtime/update/hash.h"

namespace edgelm::update {

namespace fs = std::filesystem;

namespace {

Status verify_part(const std::string& part, const std::string& shown, uint64_t size,
                   const std::string& sha256_hex) {
  std::error_code ec;
  const uint64_t have = fs::file_size(part, ec);
  if (ec) return Status::io(fmt::format("'{}': {}", part, ec.message()));
  if (have != size) {
    fs::remove(part, ec);
    return Status::data_loss(fmt::format(
        "download of {}: {} bytes received, the manifest says {}; discarded", shown, have, size));
  }
  ASSIGN_OR_RETURN(Sha256 h, sha256_file(part));
  if (to_hex(h) != sha256_hex) {
    fs::remove(part, ec);
    return Status::data_loss(fmt::format(
        "download of {}: SHA-256 {} does not match the manifest's {} (corrupt or tampered "
        "file); discarded",
        shown, to_hex(h), sha256_hex));
  }
  return Status::ok_status();
}

// ---- plain folders ----------------------------------------------------------------------------

class DirSource : public Source {
 public:
  DirSource(std::string root, FetchOptions opts)
      : Source(std::move(opts)), root_(std::move(root)) {}

  std::string locate(const std::string& rel) const override {
    return (fs::path(root_) / rel).string();
  }

  StatusOr<std::string> get_text(const std::string& rel, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(std::string s, read_file(locate(rel), max_bytes));
    stats_.bytes_transferred += s.size();
    return s;
  }

  Status download(const std::string& rel, uint64_t size, const std::string& sha256_hex,
                  const std::string& dest) override {
    const std::string src = locate(rel);
    const std::string part = dest + ".part";
    RETURN_IF_ERROR(copy_file_atomic(src, part));
    stats_.bytes_transferred += size;
    if (opts_.progress) opts_.progress(size, size);
    RETURN_IF_ERROR(verify_part(part, src, size, sha256_hex));
    return rename_durable(part, dest);
  }

 private:
  std::string root_;
};

// ---- HTTP(S) through libcurl ------------------------------------------------------------------

void ensure_curl() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

struct CurlHandle {
  CURL* h = curl_easy_init();
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

struct TextSink {
  std::string data;
  uint64_t max_bytes = 0;
  bool too_large = false;
};

size_t text_write(char* ptr, size_t size, size_t n, void* user) {
  auto* s = static_cast<TextSink*>(user);
  const size_t bytes = size * n;
  if (s->data.size() + bytes > s->max_bytes) {
    s->too_large = true;
    return 0;
  }
  s->data.append(ptr, bytes);
  return bytes;
}

struct FileSink {
  CURL* curl = nullptr;
  int fd = -1;
  std::string path;
  uint64_t offset = 0;   // bytes in the .part file before this attempt
  uint64_t written = 0;  // bytes written in this attempt
  uint64_t expected = 0;
  bool checked_status = false;
  bool restarted = false;  // server ignored the Range request: started over
  long http_status = 0;
  int write_errno = 0;
  bool too_large = false;
  const FetchOptions* opts = nullptr;
};

size_t file_write(char* ptr, size_t size, size_t n, void* user) {
  auto* s = static_cast<FileSink*>(user);
  const size_t bytes = size * n;
  if (!s->checked_status) {
    s->checked_status = true;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->http_status);
    if (s->http_status >= 400) return 0;  // error body: not part of the file
    if (s->offset > 0 && s->http_status == 200) {
      // The server sent the whole file instead of the range: start the .part over.
      if (::ftruncate(s->fd, 0) != 0 || ::lseek(s->fd, 0, SEEK_SET) != 0) {
        s->write_errno = errno;
        return 0;
      }
      s->offset = 0;
      s->restarted = true;
    }
  }
  if (s->offset + s->written + bytes > s->expected) {
    s->too_large = true;
    return 0;
  }
  const char* p = ptr;
  size_t left = bytes;
  while (left > 0) {
    const ssize_t w = ::write(s->fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      s->write_errno = errno;
      return 0;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  s->written += bytes;
  return bytes;
}

int file_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* s = static_cast<FileSink*>(user);
  if (s->opts->progress) s->opts->progress(s->offset + s->written, s->expected);
  return 0;
}

class HttpSource : public Source {
 public:
  HttpSource(std::string base, FetchOptions opts)
      : Source(std::move(opts)), base_(std::move(base)) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  std::string locate(const std::string& rel) const override { return base_ + "/" + rel; }

  StatusOr<std::string> get_text(const std::string& rel, uint64_t max_bytes) override {
    ensure_curl();
    const std::string url = locate(rel);
    CurlHandle c;
    if (!c.h) return Status::internal("curl_easy_init failed");
    TextSink sink;
    sink.max_bytes = max_bytes;
    common_options(c.h, url);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, text_write);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &sink);
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, err);
    const CURLcode rc = curl_easy_perform(c.h);
    long status = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400) return http_error(url, status);
    if (sink.too_large) {
      return Status::out_of_range(
          fmt::format("GET {}: larger than the {} bytes expected at most", url, max_bytes));
    }
    if (rc != CURLE_OK) return curl_error(url, rc, err);
    stats_.bytes_transferred += sink.data.size();
    return std::move(sink.data);
  }

  Status download(const std::string& rel, uint64_t size, const std::string& sha256_hex,
                  const std::string& dest) override {
    ensure_curl();
    const std::string url = locate(rel);
    const std::string part = dest + ".part";
    bool started_over = false;
    for (int attempt = 0;; ++attempt) {
      std::error_code ec;
      uint64_t offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (offset > size) {  // not ours or stale: start over
        fs::remove(part, ec);
        offset = 0;
      }
      if (offset == size && size > 0) {
        Status v = verify_part(part, url, size, sha256_hex);
        if (v.ok()) return rename_durable(part, dest);
        if (started_over) return v;
        started_over = true;  // a complete but wrong .part: fetch once more from zero
        continue;
      }
      if (offset > 0) {
        stats_.bytes_resumed += offset;
        stats_.resumed_transfers += 1;
      }
      const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        return Status::io(fmt::format("cannot open '{}': {}", part, std::strerror(errno)));
      }
      CurlHandle c;
      FileSink sink;
      sink.curl = c.h;
      sink.fd = fd;
      sink.path = part;
      sink.offset = offset;
      sink.expected = size;
      sink.opts = &opts_;
      common_options(c.h, url);
      curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, file_write);
      curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &sink);
      curl_easy_setopt(c.h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c.h, CURLOPT_XFERINFOFUNCTION, file_progress);
      curl_easy_setopt(c.h, CURLOPT_XFERINFODATA, &sink);
      if (offset > 0) curl_easy_setopt(c.h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);
      char err[CURL_ERROR_SIZE] = {0};
      curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, err);
      const CURLcode rc = curl_easy_perform(c.h);
      long status = sink.http_status;
      if (!sink.checked_status) curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
      int sync_errno = 0;
      if (::fsync(fd) != 0) sync_errno = errno;
      ::close(fd);
      stats_.bytes_transferred += sink.written;
      if (sink.write_errno != 0 || (sync_errno != 0 && sync_errno != EINVAL)) {
        const int e = sink.write_errno ? sink.write_errno : sync_errno;
        const std::string msg =
            fmt::format("cannot write '{}' (downloading {}): {}", part, url, std::strerror(e));
        if (e == ENOSPC || e == EDQUOT || e == EFBIG) return Status::resource_exhausted(msg);
        return Status::io(msg);
      }
      if (sink.too_large) {
        fs::remove(part, ec);
        return Status::data_loss(fmt::format(
            "download of {}: the server sent more than the {} bytes the manifest lists; discarded",
            url, size));
      }
      // A range beyond the file (416) or a server without range support: start over once.
      if (offset > 0 && !started_over && (status == 416 || rc == CURLE_RANGE_ERROR)) {
        fs::remove(part, ec);
        started_over = true;
        continue;
      }
      if (status >= 400) return http_error(url, status);
      if (rc == CURLE_OK) {
        Status v = verify_part(part, url, size, sha256_hex);
        if (!v.ok()) return v;
        if (opts_.progress) opts_.progress(size, size);
        return rename_durable(part, dest);
      }
      stats_.interrupted_transfers += 1;
      const uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (attempt >= opts_.retries) {
        Status e = curl_error(url, rc, err);
        return Status(e.code(), fmt::format("{} ({} of {} bytes received; the partial download "
                                            "is kept in '{}' and the next run resumes it)",
                                            e.message(), have, size, part));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(opts_.retry_delay_ms));
    }
  }

 private:
  void common_options(CURL* h, const std::string& url) const {
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opts_.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, opts_.stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "edgelm-update/1");
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
  }

  static Status http_error(const std::string& url, long status) {
    const std::string msg = fmt::format("GET {}: HTTP {}", url, status);
    if (status == 404 || status == 410) return Status::not_found(msg);
    return Status::io(msg);
  }

  static Status curl_error(const std::string& url, CURLcode rc, const char* err) {
    const std::string why = err && *err ? std::string(err) : std::string(curl_easy_strerror(rc));
    const std::string msg = fmt::format("GET {}: {}", url, why);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Status::io(msg + " (timed out)");
    return Status::io(msg);
  }

  std::string base_;
};

}  // namespace

StatusOr<std::unique_ptr<Source>> Source::open(const std::string& from, FetchOptions opts) {
  if (from.rfind("http://", 0) == 0 || from.rfind("https://", 0) == 0) {
    return std::unique_ptr<Source>(new HttpSource(from, std::move(opts)));
  }
  std::string dir = from;
  if (from.rfind("file://", 0) == 0) {
    dir = from.substr(7);
    if (dir.rfind("localhost/", 0) == 0) dir = dir.substr(9);
    if (dir.empty() || dir.front() != '/') {
      return Status::invalid_argument(
          fmt::format("'{}': a file:// URL needs an absolute path (file:///srv/releases)", from));
    }
  } else if (from.find("://") != std::string::npos) {
    return Status::invalid_argument(fmt::format(
        "'{}': unsupported URL scheme (use http://, https://, file:// or a folder path)", from));
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::not_found(fmt::format("release source '{}': no such folder", dir));
  }
  return std::unique_ptr<Source>(new DirSource(dir, std::move(opts)));
}

}  // namespace edgelm::update
