// Fuzz target for the peer codec: any input either fails to decode, or
// decodes to a message that encodes back to the same frame. Each input is
// tried as it is and with its checksum recomputed, so that mutations reach
// the body parser instead of stopping at the CRC. The configuration changes
// carried in entries (one-server and joint encodings) must decode or fail
// cleanly too, and a change that decodes (with or without contexts) encodes
// back to its bytes.

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
  for (const Entry& e : m->entries) {
    if (e.type != EntryType::ConfChange) continue;
    ConfState base;
    base.voters = {coord::NodeId(1), coord::NodeId(2), coord::NodeId(3)};
    (void)apply_conf_entry(e.data, base);
    auto j = JointConfChange::decode(e.data);
    if (j.ok() && j->encode() != e.data) std::abort();
    auto c = ConfChange::decode(e.data);
    if (c.ok() && c->encode() != e.data) std::abort();
    auto changes = conf_entry_changes(e.data);
    if (changes.ok() != (j.ok() || c.ok())) std::abort();
  }
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
