// Valid frames the fuzz targets start from, so that mutations reach deep
// into the records instead of failing at the first length. A fuzz input
// whose first byte has its top bit set picks a seed and flips its bytes;
// any other input is decoded as it is.
#pragma once

#include <cstdint>
#include <vector>

#include "coord/protocol/codec.h"

namespace coord::protocol::fuzz {

inline std::vector<Bytes> request_payloads() {
  std::vector<Bytes> out;
  auto add = [&out](OpCode op, const RequestBody& body) {
    Bytes frame;
    append_request_frame(frame, RequestHeader{1, op}, body);
    out.emplace_back(frame.begin() + 4, frame.end());
  };
  add(OpCode::Create, CreateRequest{"/a", "d", open_acl_unsafe(), CreateMode::Ephemeral});
  add(OpCode::CreateTtl,
      CreateTtlRequest{"/t", "x", open_acl_unsafe(), CreateMode::PersistentWithTtl, 10});
  add(OpCode::SetAcl, SetAclRequest{"/a", {{perm::read, {"digest", "u:h"}}}, 1});
  add(OpCode::SetWatches2, SetWatches2{Zxid(5), {"/a"}, {"/b"}, {"/c"}, {"/d"}, {"/e"}});
  add(OpCode::Auth, AuthPacket{0, "digest", "u:p"});
  MultiRequest m;
  m.ops.push_back({OpCode::Create,
                   CreateRequest{"/m", std::nullopt, open_acl_unsafe(), CreateMode::Persistent}});
  m.ops.push_back({OpCode::SetData, SetDataRequest{"/m", "v", -1}});
  m.ops.push_back({OpCode::Check, CheckVersionRequest{"/m", 0}});
  m.ops.push_back({OpCode::Delete, DeleteRequest{"/m", 0}});
  add(OpCode::Multi, m);
  add(OpCode::MultiRead, MultiRequest{{{OpCode::GetData, GetDataRequest{"/a", false}},
                                       {OpCode::GetChildren, GetChildrenRequest{"/", false}}}});
  return out;
}

// Picks a seed and applies 0-3 (position, xor) pairs from the input to it,
// or returns the input unchanged.
inline Bytes shape_input(const std::vector<Bytes>& seeds, const std::uint8_t* data,
                         std::size_t size) {
  if (size < 2 || (data[0] & 0x80) == 0) return Bytes(data, data + size);
  Bytes b = seeds[data[1] % seeds.size()];
  const std::size_t end = 2 + 2 * std::size_t{data[0] & 3u};
  for (std::size_t i = 2; i + 1 < size && i < end; i += 2)
    b[data[i] % b.size()] ^= data[i + 1];
  if (data[0] & 0x40) b.resize(b.size() - (data[0] >> 2 & 0x0f) % b.size());
  return b;
}

}  // namespace coord::protocol::fuzz
