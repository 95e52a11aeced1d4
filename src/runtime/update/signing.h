// Ed25519 keys and signatures for release manifests (libsodium crypto_sign_detached), and the
// signed-JSON-document convention used by manifest.json and index.json (docs/formats/manifest.md):
// the signature covers the document's canonical form, i.e. nlohmann::json::dump() of the
// document without its "signature" member (keys sorted, no whitespace, UTF-8).
//
//   RETURN_IF_ERROR(generate_key_files("release.key"));           // release.key + release.key.pub
//   ASSIGN_OR_RETURN(SecretKey sk, load_secret_key("release.key"));
//   sign_document(manifest_json, sk);
//   ASSIGN_OR_RETURN(PublicKey pk, load_public_key("release.key.pub"));
//   RETURN_IF_ERROR(verify_document(manifest_json, pk, "manifest.json"));
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace edgelm::update {

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  std::string hex() const;
  // First 16 hex digits of SHA-256(public key): names the key in signatures and messages.
  std::string key_id() const;
  bool operator==(const PublicKey& o) const { return bytes == o.bytes; }
};

struct SecretKey {
  std::array<uint8_t, 64> bytes{};  // libsodium layout: 32-byte seed, then the public key
  PublicKey public_key() const;
  ~SecretKey();
};

// Writes `path` (secret key, mode 0600) and `path`.pub. Refuses to overwrite either unless
// `overwrite`. File format: '#' comment lines, then one line of lowercase hex (128 digits for
// the secret key, 64 for the public key).
Status generate_key_files(const std::string& path, bool overwrite = false);

StatusOr<SecretKey> load_secret_key(const std::string& path);
StatusOr<PublicKey> load_public_key(const std::string& path);
// Parses the text of a public key file (or a bare 64-digit hex string).
StatusOr<PublicKey> parse_public_key(const std::string& text, const std::string& name);
std::string public_key_file_text(const PublicKey& pk);

// Detached Ed25519 signature of `message` as 128 hex digits.
std::string sign_message(std::string_view message, const SecretKey& sk);
Status verify_message(std::string_view message, const std::string& signature_hex,
                      const PublicKey& pk, const std::string& what);

// The bytes that are signed: `doc` without "signature", dumped with sorted keys, no whitespace.
std::string canonical_form(const nlohmann::json& doc);
// Sets doc["signature"] = {"algorithm": "ed25519", "key_id": ..., "value": hex}.
void sign_document(nlohmann::json& doc, const SecretKey& sk);
// Checks doc["signature"] against `pk`; `what` (a path or URL) appears in errors.
Status verify_document(const nlohmann::json& doc, const PublicKey& pk, const std::string& what);

}  // namespace edgelm::update
