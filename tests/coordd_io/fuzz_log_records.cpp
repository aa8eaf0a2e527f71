// Fuzz target for the records of the log store (entries, hard state,
// snapshot record, the configuration inside it): any input either fails to
// decode or decodes to a value that encodes back to the same bytes. Sealed
// records are tried as they are and with their checksum recomputed, so that
// mutations reach the body decoders instead of stopping at the CRC.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/io/log_records.h"
#include "coord/io/raft_storage.h"
#include "fuzz_seeds.h"

namespace {

using namespace coord::io;
namespace rec = coord::io::records;

std::string reseal(std::string_view key, std::string_view value) {
  return rec::seal(key, value.size() >= rec::seal_bytes ? value.substr(rec::seal_bytes) : "");
}

void sealed(std::string_view key, std::string_view value, fuzz::RecordKind kind) {
  for (const std::string& v : {std::string(value), reseal(key, value)}) {
    auto body = rec::unseal(key, v);
    if (!body) continue;
    if (kind == fuzz::RecordKind::HardState) {
      auto h = rec::decode_hard_state(*body);
      if (h.ok() && rec::hard_state_body(*h) != *body) std::abort();
    } else {
      auto m = rec::decode_snapshot(*body);
      if (!m.ok()) continue;
      if (rec::snapshot_body(*m) != *body) std::abort();
      auto conf = decode_conf_state(m->config);
      if (conf.ok() && encode_conf_state(*conf) != m->config) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto kind = static_cast<fuzz::RecordKind>(data[0] % fuzz::record_kinds);
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (kind) {
    case fuzz::RecordKind::Entry: {
      const std::string_view key = in.substr(0, rec::index_key_bytes);
      const std::string_view value = in.substr(key.size());
      for (const std::string& v : {std::string(value), reseal(key, value)}) {
        auto e = rec::decode_entry(key, v);
        if (!e.ok()) continue;
        if (rec::index_key(e->index) != key || rec::seal(key, rec::entry_body(*e)) != v) {
          std::abort();
        }
      }
      break;
    }
    case fuzz::RecordKind::HardState:
      sealed("hard_state", in, kind);
      break;
    case fuzz::RecordKind::Snapshot:
      sealed("snapshot", in, kind);
      break;
    case fuzz::RecordKind::ConfState: {
      auto conf = decode_conf_state(in);
      if (conf.ok() && encode_conf_state(*conf) != in) std::abort();
      break;
    }
  }
  return 0;
}
