// The two tiers of failure in magrq.
//
// - ConfigError, DataError, NumericalError: typed exceptions for bad options, bad data and
//   recoverable numerical failures. The message states what was found and what was
//   expected, naming the file, tensor, layer or key.
// - MAGRQ_CHECK: an internal invariant. A failure is a bug in magrq, so the message
//   names the expression, the location and the values involved.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace magrq {

// Bad arguments or options from the caller (a command-line flag, an options struct).
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Bad or inconsistent data: a file, a tensor, a Hessian, a non-finite value.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A numerical failure that a caller may recover from (for example by a fallback).
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A broken internal invariant.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}

}  // namespace detail

}  // namespace magrq

// Throws InternalError naming the failed expression, its location and a message built
// from the remaining arguments (streamed in order).
#define MAGRQ_CHECK(expression, ...)                                                   \
  do {                                                                                 \
    if (!(expression)) {                                                               \
      throw ::magrq::InternalError(::magrq::detail::concat(                            \
          "internal check failed: ", #expression, " at ", __FILE__, ":", __LINE__, ": ", \
          __VA_ARGS__));                                                               \
    }                                                                                  \
  } while (false)
