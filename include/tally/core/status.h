// Status and Result<T>: the one error strategy of tally.
//
// Library code returns [[nodiscard]] Status or Result<T>; no exception crosses a module
// boundary. A message names what went wrong and where (view, relation, column, LSN, offset).
// Swallowing an error needs an explicit, greppable IgnoreError(). retryable() tells the
// daemon's policy whether to back off and retry (connection lost) or to stop (everything else).
//
// Thread safety: values; no shared state.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tally {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,  // bad configuration, bad SQL, bad usage: exit code 2
  kNotSupported,     // SQL the compiler cannot maintain incrementally: exit code 2
  kCorruption,       // malformed wire bytes or stored state
  kIOError,          // local I/O (RocksDB, files)
  kUnavailable,      // retryable: connection lost, server restarting
  kFailedPrecondition,  // the world is not as expected (slot missing, state of another db)
  kNotFound,
  kTimeout,
  kInternal,  // a bug
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotSupported(std::string m) { return {StatusCode::kNotSupported, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool retryable() const { return code_ == StatusCode::kUnavailable; }

  // Prefixes context, e.g. WithContext("view user_stats") -> "view user_stats: <message>".
  Status WithContext(std::string_view context) const;
  std::string ToString() const;

  // The only way to drop an error on purpose.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT(runtime/explicit)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(runtime/explicit)
    assert(!std::get<Status>(data_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace tally

#define TALLY_CONCAT_INNER_(a, b) a##b
#define TALLY_CONCAT_(a, b) TALLY_CONCAT_INNER_(a, b)

#define TALLY_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::tally::Status tally_status_ = (expr);  \
    if (!tally_status_.ok()) return tally_status_; \
  } while (0)

#define TALLY_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// TALLY_ASSIGN_OR_RETURN(auto x, Foo()); or TALLY_ASSIGN_OR_RETURN(x, Foo());
#define TALLY_ASSIGN_OR_RETURN(lhs, expr) \
  TALLY_ASSIGN_OR_RETURN_IMPL_(TALLY_CONCAT_(tally_result_, __LINE__), lhs, expr)
