// Thin RAII wrappers over the edgelm C API (edgelm.h): unique ownership of the handles and a
// std::function callback. Nothing else: errors are still the C status codes, and messages come
// from edgelm_last_error().
//
//   edgelm::cpp::Model model;
//   if (int rc = model.load("model.gguf"); rc != EDGELM_OK) { puts(edgelm_last_error()); }
//   edgelm::cpp::Session session;
//   session.create(model);
//   edgelm_generate_params gp = edgelm_generate_default_params();
//   session.generate("Once upon a time", gp, [](std::string_view text, int32_t) {
//     fwrite(text.data(), 1, text.size(), stdout);
//     return true;
//   });
#ifndef EDGELM_EDGELM_HPP
#define EDGELM_EDGELM_HPP

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgelm/edgelm.h"

namespace edgelm::cpp {

class Model {
 public:
  Model() = default;
  ~Model() { edgelm_model_free(handle_); }
  Model(Model&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  Model& operator=(Model&& o) noexcept {
    if (this != &o) {
      edgelm_model_free(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Returns edgelm_model_load's code; replaces any model held before on success.
  int load(const char* path, const edgelm_model_params* params = nullptr) {
    edgelm_model* m = nullptr;
    const int rc = edgelm_model_load(path, params, &m);
    if (rc == EDGELM_OK) {
      edgelm_model_free(handle_);
      handle_ = m;
    }
    return rc;
  }
  // Returns edgelm_tokenize's code; fills `out`.
  int tokenize(std::string_view text, std::vector<int32_t>& out, bool add_special = true,
               bool parse_special = true) const {
    int32_t n = 0;
    out.resize(text.size() + 8);
    int rc = edgelm_tokenize(handle_, text.data(), text.size(), add_special, parse_special,
                             out.data(), static_cast<int32_t>(out.size()), &n);
    if (rc == EDGELM_ERR_OUT_OF_RANGE) {
      out.resize(static_cast<size_t>(n));
      rc = edgelm_tokenize(handle_, text.data(), text.size(), add_special, parse_special,
                           out.data(), n, &n);
    }
    out.resize(rc == EDGELM_OK ? static_cast<size_t>(n) : 0);
    return rc;
  }

  edgelm_model* get() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  edgelm_model* handle_ = nullptr;
};

class Session {
 public:
  // text, token -> continue?
  using Callback = std::function<bool(std::string_view text, int32_t token)>;

  Session() = default;
  ~Session() { edgelm_session_free(handle_); }
  Session(Session&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  Session& operator=(Session&& o) noexcept {
    if (this != &o) {
      edgelm_session_free(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Returns edgelm_session_create's code.
  int create(const Model& model, const edgelm_session_params* params = nullptr) {
    edgelm_session* s = nullptr;
    const int rc = edgelm_session_create(model.get(), params, &s);
    if (rc == EDGELM_OK) {
      edgelm_session_free(handle_);
      handle_ = s;
    }
    return rc;
  }
  // Returns edgelm_generate's code. An exception thrown by `cb` stops generation and is not
  // propagated through the C library (the call then returns EDGELM_OK with what was generated).
  int generate(const std::string& prompt, const edgelm_generate_params& params,
               const Callback& cb = {}) {
    if (!cb) return edgelm_generate(handle_, prompt.c_str(), &params, nullptr, nullptr);
    return edgelm_generate(handle_, prompt.c_str(), &params, &Session::trampoline,
                           const_cast<Callback*>(&cb));
  }
  void cancel() { edgelm_session_cancel(handle_); }
  void reset() { edgelm_session_reset(handle_); }
  // The last generation's stats JSON line ("" if none).
  std::string stats_json() const {
    size_t n = 0;
    std::string s(512, '\0');
    int rc = edgelm_session_stats_json(handle_, s.data(), s.size(), &n);
    if (rc == EDGELM_ERR_OUT_OF_RANGE) {
      s.assign(n + 1, '\0');
      rc = edgelm_session_stats_json(handle_, s.data(), s.size(), &n);
    }
    if (rc != EDGELM_OK) return {};
    s.resize(n);
    return s;
  }

  edgelm_session* get() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  static bool trampoline(const char* text, size_t len, int32_t token, void* user) {
    try {
      return (*static_cast<Callback*>(user))(std::string_view(text, len), token);
    } catch (...) {
      return false;
    }
  }
  edgelm_session* handle_ = nullptr;
};

}  // namespace edgelm::cpp

#endif  // EDGELM_EDGELM_HPP
