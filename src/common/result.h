// Result<T>: the value of an operation on untrusted input, or the SIP status to answer with.
//
// The data plane never throws: a parser or a check that fails returns an Error carrying the
// status code the element should answer with (400, 413, 416, 420, 483, 505...) and a short
// static reason. Callers cannot read the value without checking (value() asserts in debug builds
// and the type is [[nodiscard]]).
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace pinhole {

// Why an input was refused. `status` is the SIP status an element answers with (for a response,
// which cannot be answered, any status means "drop"). `what` is a static string for logs and for
// the Warning/reason of the answer; it never points into the input.
struct Error {
  uint16_t status = 400;
  std::string_view what;

  friend bool operator==(const Error&, const Error&) = default;
};

// Holds an optional value and an error rather than a std::variant: with GCC 12.2 (Debian 12) at
// -O1 and above, a variant-based Result<Param> passed through an inlined lambda read back garbage
// (gone with -fno-tree-sra or -fno-inline; clang and the sanitizer builds were fine). This layout
// sidesteps it; the release-build test run guards against a relapse.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : error_(error) {}         // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

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
    return *std::move(value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return error_;
  }

 private:
  std::optional<T> value_;
  Error error_{};
};

// Result of a check that produces no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(error), ok_(false) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{};
  bool ok_ = true;
};

inline Error bad_request(std::string_view what) { return Error{400, what}; }

}  // namespace pinhole

// Propagates an error from an expression returning Result<T> or Status.
#define PINHOLE_TRY(expr)                                    \
  do {                                                       \
    auto&& pinhole_try_r_ = (expr);                          \
    if (!pinhole_try_r_.ok()) return pinhole_try_r_.error(); \
  } while (0)
