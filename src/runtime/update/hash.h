// SHA-256 of files and buffers (libsodium), and their lowercase hex form used in manifests.
//
//   ASSIGN_OR_RETURN(Sha256 h, sha256_file("model.gguf"));
//   std::string hex = to_hex(h);
//   Sha256Hasher s;  s.update(buf, n);  Sha256 d = s.finish();   // streaming
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace edgelm::update {

using Sha256 = std::array<uint8_t, 32>;

Sha256 sha256(const void* data, size_t size);
StatusOr<Sha256> sha256_file(const std::string& path);
std::string to_hex(const Sha256& h);
StatusOr<Sha256> sha256_from_hex(const std::string& hex);

// Incremental SHA-256 for data that arrives in pieces:
//   Sha256Hasher h;  h.update(a, na);  h.update(b, nb);  Sha256 d = h.finish();
class Sha256Hasher {
 public:
  Sha256Hasher();
  void update(const void* data, size_t size);
  // The digest of everything passed to update(); the hasher starts over afterwards.
  Sha256 finish();

 private:
  alignas(16) unsigned char state_[128];  // crypto_hash_sha256_state (104 bytes)
};

}  // namespace edgelm::update
