// SHA-256 of files and buffers (libsodium), and their lowercase hex form used in manifests.
//
//   ASSIGN_OR_RETURN(Sha256 h, sha256_file("model.gguf"));
//   std::string hex = to_hex(h);
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

}  // namespace edgelm::update
