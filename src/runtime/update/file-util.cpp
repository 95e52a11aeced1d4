// Crash-safe file helpers (see file-util.h).
#include "runtime/update/file-util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace edgelm::update {

namespace fs = std::filesystem;

namespace {

Status errno_status(const std::string& what, const std::string& path, int err) {
  const std::string msg = fmt::format("{} '{}': {}", what, path, std::strerror(err));
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return Status::resource_exhausted(msg);
  if (err == ENOENT) return Status::not_found(msg);
  return Status::io(msg);
}

std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter++);
}

Status write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write", path, errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok_status();
}

std::string parent_dir(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

StatusOr<std::string> read_file(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open", path, errno);
  std::string out;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return errno_status("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::out_of_range(
          fmt::format("'{}' is larger than the {} bytes expected at most", path, max_bytes));
    }
  }
  ::close(fd);
  return out;
}

Status fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open for fsync", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on folders (EINVAL): nothing more we can do there.
  if (rc != 0 && err != EINVAL) return errno_status("cannot fsync", path, err);
  return Status::ok_status();
}

Status rename_durable(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return errno_status(fmt::format("cannot rename '{}' to", from), to, errno);
  }
  return fsync_path(parent_dir(to));
}

Status write_file_atomic(const std::string& path, std::string_view data, int mode) {
  const std::string tmp = temp_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_status("cannot create", tmp, errno);
  Status st = write_all(fd, data.data(), data.size(), tmp);
  if (st.ok() && ::fsync(fd) != 0) st = errno_status("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && st.ok()) st = errno_status("cannot close", tmp, errno);
  if (st.ok()) st = rename_durable(tmp, path);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Status copy_file_atomic(const std::string& src, const std::string& dst) {
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_status("cannot open", src, errno);
  const std::string tmp = temp_name(dst);
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return errno_status("cannot create", tmp, err);
  }
  Status st;
  std::vector<char> buf(1 << 20);
  while (st.ok()) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = errno_status("cannot read", src, errno);
      break;
    }
    if (n == 0) break;
    st = write_all(out, buf.data(), static_cast<size_t>(n), tmp);
  }
  ::close(in);
  if (st.ok() && ::fsync(out) != 0) st = errno_status("cannot fsync", tmp, errno);
  if (::close(out) != 0 && st.ok()) st = errno_status("cannot close", tmp, errno);
  if (st.ok()) st = rename_durable(tmp, dst);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Status replace_symlink(const std::string& target, const std::string& link_path) {
  const std::string tmp = temp_name(link_path);
  if (::symlink(target.c_str(), tmp.c_str()) != 0) {
    return errno_status("cannot create symlink", tmp, errno);
  }
  Status st = rename_durable(tmp, link_path);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

StatusOr<uint64_t> free_disk_bytes(const std::string& path) {
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return errno_status("cannot statvfs", path, errno);
  return static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize);
}

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.2f} KiB", static_cast<double>(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

}  // namespace edgelm::update
