// Fuzz target for snapshot files: any bytes either fail the checks with an
// error or decode to a snapshot that encodes back to the same bytes. Each
// input is tried as it is and with its checksum recomputed, so that
// mutations of the header reach the length and index checks.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/base/bytes.h"
#include "coord/base/checksum.h"
#include "coord/io/snapshot_store.h"

namespace {

// magic(8) version(4) index(8) term(8) length(8) crc(4)
constexpr std::size_t kHeaderBytes = 40;

void check(std::string_view in) {
  using namespace coord;
  const LogIndex index(
      in.size() >= 20 ? get_be64(reinterpret_cast<const unsigned char*>(in.data()) + 12) : 0);
  auto f = io::SnapshotStore::decode(in, index, "fuzz.snap");
  if (!f.ok()) {
    if (f.status().message().rfind("fuzz.snap: ", 0) != 0) std::abort();
    return;
  }
  if (io::SnapshotStore::encode(f->index, f->term, f->payload) != in) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check(in);
  if (size >= kHeaderBytes) {
    std::string sealed(in);
    const std::uint32_t crc =
        coord::crc32c_extend(coord::crc32c(sealed.data(), kHeaderBytes - 4),
                             sealed.data() + kHeaderBytes, sealed.size() - kHeaderBytes);
    for (int i = 0; i < 4; ++i)
      sealed[kHeaderBytes - 4 + i] = static_cast<char>(crc >> (24 - 8 * i));
    check(sealed);
  }
  return 0;
}
