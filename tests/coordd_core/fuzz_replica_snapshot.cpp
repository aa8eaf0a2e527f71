// Fuzz target for the replica's snapshot payload (session table and tree),
// what a server loads at start from its newest snapshot file: any bytes
// either fail to load with an error or load, never crash. Each input is
// tried as it is and with its checksum recomputed, so that mutations reach
// the session table and the tree decoder instead of stopping at the CRC.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coord/base/bytes.h"
#include "coord/base/checksum.h"
#include "coord/core/replica.h"

namespace {

// magic(8) crc(4), then the body the CRC covers.
constexpr std::size_t kHeaderBytes = 12;

void load(std::string payload) {
  using namespace coord;
  core::MemoryReplicaStorage storage(consensus::ConfState{{NodeId(1)}, {}});
  core::ReplicaConfig config;
  (void)core::Replica::create(config, storage, std::move(payload), Random(1),
                              [] { return std::string(16, 'k'); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  load(in);
  if (size >= kHeaderBytes) {
    std::string sealed = in;
    const std::uint32_t crc = coord::crc32c(sealed.data() + kHeaderBytes, size - kHeaderBytes);
    for (int i = 0; i < 4; ++i)
      sealed[8 + i] = static_cast<char>(crc >> (24 - 8 * i));
    load(std::move(sealed));
  }
  return 0;
}
