// ZooKeeper's path rule (PathUtils.validatePath in 3.8), restated over
// UTF-8: ZooKeeper checks UTF-16 code units of the decoded string, so
// malformed UTF-8 (decoded to U+FFFD), characters outside the BMP
// (surrogate pairs) and the listed control and private-use ranges are all
// refused.
#include "coord/base/limits.h"
#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances
// i, or -1 for a malformed or overlong sequence.
std::int32_t decode_utf8(std::string_view s, std::size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len;
  std::int32_t cp;
  std::int32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (i + len > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  i += len;
  return cp;
}

bool disallowed(std::int32_t c) {
  return (c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
         (c >= 0xfff0 && c <= 0xffff) || c > 0xffff;
}

Status bad(std::string_view path, const char* why) {
  return Status(ErrorCode::BadArguments,
                std::string(why) + ": " + std::string(path.substr(0, 200)));
}

}  // namespace

Status validate_path(std::string_view path) {
  if (path.empty()) return bad(path, "path must not be empty");
  if (path.size() > limits::znode_path_bytes_max) return bad(path, "path too long");
  if (path[0] != '/') return bad(path, "path must start with /");
  if (path.size() == 1) return Status();
  if (path.back() == '/') return bad(path, "path must not end with /");
  std::size_t i = 1;
  std::size_t component_start = 1;
  while (i < path.size()) {
    char c = path[i];
    if (c == '\0') return bad(path, "null character in path");
    if (c == '/') {
      std::string_view comp = path.substr(component_start, i - component_start);
      if (comp.empty()) return bad(path, "empty node name");
      if (comp == "." || comp == "..") return bad(path, "relative paths not allowed");
      ++i;
      component_start = i;
      continue;
    }
    std::int32_t cp = decode_utf8(path, i);
    if (cp < 0 || disallowed(cp)) return bad(path, "invalid character in path");
  }
  std::string_view last = path.substr(component_start);
  if (last == "." || last == "..") return bad(path, "relative paths not allowed");
  return Status();
}

std::string_view parent_path(std::string_view path) {
  if (path == "/" || path.empty()) return "";
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace coord::znode
