// Fuzz target for the commands stored in log entries (what every server
// decodes and applies at start and on commit): any input either fails to
// decode, or decodes to a command whose encoding decodes to the same
// command.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "coord/core/command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace coord::core;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto c = decode_command(in);
  if (!c.ok()) return 0;
  auto again = decode_command(encode_command(*c));
  if (!again.ok() || !(*again == *c)) std::abort();
  return 0;
}
