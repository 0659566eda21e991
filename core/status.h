// Status and Result<T>: how every expected failure crosses a module boundary.
//
// No exceptions cross module boundaries. A function that can fail returns a
// Status (or a Result<T> carrying either a value or a Status); both are
// [[nodiscard]] so a failure cannot be ignored by accident.
//
// Status codes are *internal*. The wire error codes and close codes that
// clients see are defined separately (docs/PROTOCOL.md) and mapped at the edge.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace tailbus {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is malformed; retrying it will not help
  kNotFound,           // the named thing does not exist
  kCorruption,         // the database file is damaged or is not a tailbus log
  kIoError,            // the operating system or SQLite failed an operation
  kBusy,               // SQLite stayed locked past the busy timeout; retry later
  kDiskFull,           // no space left for the write; nothing was written
  kUnsupported,        // e.g. a database written by a newer schema version
  kEvicted,            // the requested offset was removed by retention
  kResourceExhausted,  // a bounded queue or limit is full; retry later
  kUnavailable,        // the component is shutting down or closed
};

// Name of a code, e.g. "InvalidArgument".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {StatusCode::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
  static Status Busy(std::string msg) { return {StatusCode::kBusy, std::move(msg)}; }
  static Status DiskFull(std::string msg) { return {StatusCode::kDiskFull, std::move(msg)}; }
  static Status Unsupported(std::string msg) { return {StatusCode::kUnsupported, std::move(msg)}; }
  static Status Evicted(std::string msg) { return {StatusCode::kEvicted, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) {
    return {StatusCode::kResourceExhausted, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "<CodeName>: <message>".
  std::string ToString() const;

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
  }

  bool ok() const { return value_.has_value(); }
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
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tailbus

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define TAILBUS_RETURN_IF_ERROR(expr) \
  do {                                \
    ::tailbus::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)
