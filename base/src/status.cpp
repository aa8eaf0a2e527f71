#include "coord/base/status.h"

#include <cstdio>
#include <cstdlib>

namespace coord {

std::string Status::to_string() const {
  std::string s(error_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, const Status& s) {
  return os << s.to_string();
}
std::ostream& operator<<(std::ostream& os, ErrorCode c) {
  return os << error_name(c);
}

namespace detail {

void assert_fail(const char* condition, const char* file, int line, const std::string& message) {
  std::fprintf(stderr, "coord: assertion failed: %s at %s:%d%s%s\n", condition, file, line,
               message.empty() ? "" : ": ", message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail
}  // namespace coord
