// The layout of the console's files as cmake/EmbedConsole.cmake generates
// them (console_assets_data.cpp in the build tree); console_assets.cpp is
// their only reader.
// Thread safety: immutable data.
#pragma once

#include <cstddef>

namespace coord::io::console_data {

struct EmbeddedFile {
  const char* name;
  const char* content_type;
  const unsigned char* bytes;  // `size` bytes and a trailing zero
  std::size_t size;
};

extern const EmbeddedFile files[];
extern const std::size_t file_count;

}  // namespace coord::io::console_data
