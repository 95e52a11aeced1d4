// Ed25519 keys, signatures and signed JSON documents (see signing.h).
#include "runtime/update/signing.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <vector>

#include "runtime/update/file-util.h"

namespace edgelm::update {

namespace {

void ensure_sodium() {
  static const int rc = sodium_init();
  (void)rc;  // 0 = initialized, 1 = already; -1 cannot happen on supported platforms
}

std::string hex_of(const uint8_t* p, size_t n) {
  std::string s(n * 2 + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.pop_back();
  return s;
}

// The first non-comment, non-blank line of a key file, trimmed.
std::string key_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    return line.substr(b);
  }
  return {};
}

template <size_t N>
Status parse_hex(const std::string& hex, std::array<uint8_t, N>& out, const std::string& name,
                 const char* what) {
  size_t len = 0;
  if (hex.size() != N * 2 ||
      sodium_hex2bin(out.data(), N, hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != N) {
    return Status::invalid_argument(fmt::format("{}: expected a {} of {} hex digits, found '{}'",
                                                name, what, N * 2,
                                                hex.size() > 40 ? hex.substr(0, 40) + "..." : hex));
  }
  return Status::ok_status();
}

}  // namespace

std::string PublicKey::hex() const { return hex_of(bytes.data(), bytes.size()); }

std::string PublicKey::key_id() const {
  ensure_sodium();
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, bytes.data(), bytes.size());
  return hex_of(h, 8);
}

PublicKey SecretKey::public_key() const {
  PublicKey pk;
  crypto_sign_ed25519_sk_to_pk(pk.bytes.data(), bytes.data());
  return pk;
}

SecretKey::~SecretKey() { sodium_memzero(bytes.data(), bytes.size()); }

std::string public_key_file_text(const PublicKey& pk) {
  return fmt::format("# edgelm Ed25519 public key (key id {})\n{}\n", pk.key_id(), pk.hex());
}

Status generate_key_files(const std::string& path, bool overwrite) {
  ensure_sodium();
  const std::string pub = path + ".pub";
  if (!overwrite) {
    for (const auto& p : {path, pub}) {
      if (std::filesystem::exists(p)) {
        return Status::failed_precondition(
            fmt::format("'{}' already exists; refusing to overwrite a key", p));
      }
    }
  }
  SecretKey sk;
  PublicKey pk;
  crypto_sign_keypair(pk.bytes.data(), sk.bytes.data());
  std::string secret_text =
      fmt::format("# edgelm Ed25519 secret key (key id {}): keep private, never publish\n{}\n",
                  pk.key_id(), hex_of(sk.bytes.data(), sk.bytes.size()));
  Status st = write_file_atomic(path, secret_text, 0600);
  sodium_memzero(secret_text.data(), secret_text.size());
  RETURN_IF_ERROR(st);
  // The temp file was created 0600, but umask could have been stricter: make it exact.
  ::chmod(path.c_str(), 0600);
  return write_file_atomic(pub, public_key_file_text(pk), 0644);
}

StatusOr<SecretKey> load_secret_key(const std::string& path) {
  ensure_sodium();
  ASSIGN_OR_RETURN(std::string text, read_file(path, 1 << 16));
  SecretKey sk;
  Status st = parse_hex(key_line(text), sk.bytes, path, "secret key");
  sodium_memzero(text.data(), text.size());
  RETURN_IF_ERROR(st);
  // The second half must be the public key of the seed in the first half.
  PublicKey derived;
  SecretKey check;
  crypto_sign_seed_keypair(derived.bytes.data(), check.bytes.data(), sk.bytes.data());
  if (!(derived == sk.public_key())) {
    return Status::invalid_argument(
        fmt::format("{}: corrupt secret key (its public half does not match its seed)", path));
  }
  return sk;
}

StatusOr<PublicKey> parse_public_key(const std::string& text, const std::string& name) {
  PublicKey pk;
  RETURN_IF_ERROR(parse_hex(key_line(text), pk.bytes, name, "public key"));
  return pk;
}

StatusOr<PublicKey> load_public_key(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, read_file(path, 1 << 16));
  return parse_public_key(text, path);
}

std::string sign_message(std::string_view message, const SecretKey& sk) {
  ensure_sodium();
  uint8_t sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(message.data()),
                       message.size(), sk.bytes.data());
  return hex_of(sig, sizeof(sig));
}

Status verify_message(std::string_view message, const std::string& signature_hex,
                      const PublicKey& pk, const std::string& what) {
  ensure_sodium();
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  RETURN_IF_ERROR(parse_hex(signature_hex, sig, what, "signature"));
  if (crypto_sign_verify_detached(sig.data(), reinterpret_cast<const uint8_t*>(message.data()),
                                  message.size(), pk.bytes.data()) != 0) {
    return Status::data_loss(fmt::format(
        "{}: bad signature: it does not verify against the pinned public key {} (the document "
        "was modified or signed with another key)",
        what, pk.key_id()));
  }
  return Status::ok_status();
}

std::string canonical_form(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("signature")) return doc.dump();
  nlohmann::json copy = doc;
  copy.erase("signature");
  return copy.dump();
}

void sign_document(nlohmann::json& doc, const SecretKey& sk) {
  const std::string sig = sign_message(canonical_form(doc), sk);
  doc["signature"] = {
      {"algorithm", "ed25519"}, {"key_id", sk.public_key().key_id()}, {"value", sig}};
}

Status verify_document(const nlohmann::json& doc, const PublicKey& pk, const std::string& what) {
  if (!doc.is_object()) {
    return Status::data_loss(fmt::format("{}: expected a JSON object", what));
  }
  auto it = doc.find("signature");
  if (it == doc.end()) {
    return Status::data_loss(fmt::format("{}: not signed (no \"signature\" member)", what));
  }
  const nlohmann::json& sig = *it;
  if (!sig.is_object() || !sig.contains("value") || !sig["value"].is_string() ||
      sig.value("algorithm", "") != "ed25519") {
    return Status::data_loss(fmt::format(
        "{}: malformed \"signature\": expected {{\"algorithm\": \"ed25519\", \"key_id\", "
        "\"value\"}}",
        what));
  }
  if (sig.contains("key_id") && sig["key_id"].is_string() && sig["key_id"] != pk.key_id()) {
    return Status::data_loss(fmt::format("{}: signed with key {} but the pinned public key is {}",
                                         what, sig["key_id"].get<std::string>(), pk.key_id()));
  }
  return verify_message(canonical_form(doc), sig["value"].get<std::string>(), pk, what);
}

}  // namespace edgelm::update
