// Logging for coord's programs: one line per event on stderr, with time,
// level and component, e.g.
//
//   2026-11-22T10:15:02.123Z INFO  coordd: serving ZooKeeper clients on 127.0.0.1:2181
//
// The pure cores never log (their outputs are values); the edge and the
// programs do. Thread-safe: each line is written with a single write(2).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace coord {

enum class LogLevel : int { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

// Lines below `level` are dropped. Default: Info.
void set_log_level(LogLevel level);
LogLevel log_level();
// "debug", "info", "warn", "error", "off"; false for anything else.
bool parse_log_level(std::string_view text, LogLevel* out);

void log_line(LogLevel level, std::string_view component, std::string_view message);

namespace detail {
template <typename... Args>
void log_format(LogLevel level, std::string_view component, const Args&... args) {
  if (level < log_level()) return;
  std::ostringstream os;
  (os << ... << args);
  log_line(level, component, os.str());
}
}  // namespace detail

}  // namespace coord

#define COORD_LOG_DEBUG(component, ...) \
  ::coord::detail::log_format(::coord::LogLevel::Debug, component, __VA_ARGS__)
#define COORD_LOG_INFO(component, ...) \
  ::coord::detail::log_format(::coord::LogLevel::Info, component, __VA_ARGS__)
#define COORD_LOG_WARN(component, ...) \
  ::coord::detail::log_format(::coord::LogLevel::Warn, component, __VA_ARGS__)
#define COORD_LOG_ERROR(component, ...) \
  ::coord::detail::log_format(::coord::LogLevel::Error, component, __VA_ARGS__)
