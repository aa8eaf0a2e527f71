// COORD_ASSERT: invariants that stay checked in every build, release too.
//
// A failed assertion prints the condition, the place and an optional message
// to stderr and aborts the process: a broken invariant must never turn into
// a wrong tree or a wrong reply. Expected failures (bad input, a missing
// node) are values (Status), never assertions.
// Thread-safe.
#pragma once

#include <sstream>
#include <string>

namespace coord::detail {

[[noreturn]] void assert_fail(const char* condition, const char* file, int line,
                              const std::string& message);

template <typename... Args>
std::string assert_message(const Args&... args) {
  if constexpr (sizeof...(Args) == 0) {
    return std::string();
  } else {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
  }
}

}  // namespace coord::detail

#define COORD_ASSERT(cond, ...)                                                   \
  do {                                                                            \
    if (__builtin_expect(!(cond), 0)) {                                           \
      ::coord::detail::assert_fail(#cond, __FILE__, __LINE__,                     \
                                   ::coord::detail::assert_message(__VA_ARGS__)); \
    }                                                                             \
  } while (0)

#define COORD_UNREACHABLE(...)                                    \
  ::coord::detail::assert_fail("unreachable", __FILE__, __LINE__, \
                               ::coord::detail::assert_message(__VA_ARGS__))
