// Fuzz target for the peer codec: any input either fails to decode, or
// decodes to a message that encodes back to the same frame. Each input is
// tried as it is and with its checksum recomputed, so that mutations reach
// the body parser instead of stopping at the CRC.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/base/checksum.h"
#include "coord/consensus/codec.h"

namespace {

void check(std::string_view in) {
  using namespace coord::consensus;
  (void)codec::frame_size(in);
  auto m = codec::decode(in);
  if (!m.ok()) return;
  auto again = codec::encode(*m);
  if (!again.ok() || *again != in) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check(in);
  constexpr std::size_t header = coord::consensus::codec::frame_header_bytes;
  if (size >= header) {
    std::string sealed(in);
    std::uint32_t crc = coord::crc32c_extend(0, sealed.data(), 8);
    crc = coord::crc32c_extend(crc, sealed.data() + header, sealed.size() - header);
    for (int i = 0; i < 4; ++i)
      sealed[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    check(sealed);
  }
  return 0;
}
