// Status / StatusOr<T>: error values with messages that name the file, tensor, offset, expected
// and found values. No exceptions cross module boundaries; the C API turns codes into ints.
//
//   StatusOr<int> parse(std::string_view s);
//   Status load() {
//     ASSIGN_OR_RETURN(int v, parse("42"));
//     if (v < 0) return Status::invalid_argument(fmt::format("negative: {}", v));
//     return Status::ok_status();
//   }
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace edgelm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kOutOfRange = 3,
  kDataLoss = 4,       // corrupt or truncated input
  kUnimplemented = 5,  // valid input we do not support
  kResourceExhausted = 6,
  kCancelled = 7,
  kInternal = 8,
  kIo = 9,
  kFailedPrecondition = 10,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
  static Status invalid_argument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status resource_exhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status io(std::string m) { return {StatusCode::kIo, std::move(m)}; }
  static Status failed_precondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "DATA_LOSS: tensor 'x' ..." (or "OK").
  std::string to_string() const;
  // Prefix context: status.with_context("loading model.gguf").
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace internal_status {
inline const Status& get_status(const Status& s) { return s; }
template <typename T>
const Status& get_status(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal_status

}  // namespace edgelm

#define EDGELM_CONCAT_INNER(a, b) a##b
#define EDGELM_CONCAT(a, b) EDGELM_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                                        \
  do {                                                                               \
    ::edgelm::Status edgelm_status_ = ::edgelm::internal_status::get_status((expr)); \
    if (!edgelm_status_.ok()) return edgelm_status_;                                 \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(EDGELM_CONCAT(edgelm_statusor_, __LINE__), lhs, expr)
