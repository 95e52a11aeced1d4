// SHA-256 helpers over libsodium (see hash.h).
#include "runtime/update/hash.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace edgelm::update {

namespace {

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; it only fails when no entropy source exists,
  // which does not matter for hashing.
  static const int kInit = sodium_init();
  (void)kInit;
}

}  // namespace

Sha256 sha256(const void* data, size_t size) {
  ensure_sodium();
  Sha256 out{};
  crypto_hash_sha256(out.data(), static_cast<const unsigned char*>(data), size);
  return out;
}

StatusOr<Sha256> sha256_file(const std::string& path) {
  ensure_sodium();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<unsigned char> buf(1 << 20);
  uint64_t offset = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return Status::io(
          fmt::format("reading '{}' at offset {}: {}", path, offset, std::strerror(e)));
    }
    if (n == 0) break;
    crypto_hash_sha256_update(&st, buf.data(), static_cast<unsigned long long>(n));
    offset += static_cast<uint64_t>(n);
  }
  ::close(fd);
  Sha256 out{};
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

std::string to_hex(const Sha256& h) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < h.size(); ++i) {
    s[2 * i] = kDigits[h[i] >> 4];
    s[2 * i + 1] = kDigits[h[i] & 15];
  }
  return s;
}

StatusOr<Sha256> sha256_from_hex(const std::string& hex) {
  if (hex.size() != 64) {
    return Status::invalid_argument(
        fmt::format("SHA-256 hex: expected 64 hex digits, found {} characters", hex.size()));
  }
  Sha256 out{};
  for (size_t i = 0; i < 64; ++i) {
    const char c = hex[i];
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else
      return Status::invalid_argument(
          fmt::format("SHA-256 hex: invalid character '{}' at position {}", c, i));
    out[i / 2] = static_cast<uint8_t>(i % 2 == 0 ? v << 4 : out[i / 2] | v);
  }
  return out;
}

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "Sha256Hasher::state_ too small");

Sha256Hasher::Sha256Hasher() {
  ensure_sodium();
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}

void Sha256Hasher::update(const void* data, size_t size) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_),
                            static_cast<const unsigned char*>(data),
                            static_cast<unsigned long long>(size));
}

Sha256 Sha256Hasher::finish() {
  Sha256 out{};
  auto* st = reinterpret_cast<crypto_hash_sha256_state*>(state_);
  crypto_hash_sha256_final(st, out.data());
  crypto_hash_sha256_init(st);
  return out;
}

}  // namespace edgelm::update
