// The library's one error channel on the inside: a code and a message. The C ABI turns it into
// a linattn_status and the thread's last-error string.
#pragma once

#include <string>
#include <utility>

#include "linattn/linattn.h"

namespace linattn::detail {

class Status {
 public:
  Status() = default;
  Status(linattn_status code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return Status(); }
  bool ok() const { return code_ == LINATTN_OK; }
  linattn_status code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  linattn_status code_ = LINATTN_OK;
  std::string message_;
};

inline Status invalid(std::string message) {
  return Status(LINATTN_ERROR_INVALID_ARGUMENT, std::move(message));
}
inline Status unsupported(std::string message) {
  return Status(LINATTN_ERROR_UNSUPPORTED, std::move(message));
}

#define LINATTN_RETURN_IF_ERROR(expr)              \
  do {                                             \
    ::linattn::detail::Status _st = (expr);        \
    if (!_st.ok()) return _st;                     \
  } while (0)

}  // namespace linattn::detail
