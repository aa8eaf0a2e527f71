// Valid commands and replica snapshots, made by the real encoders: the seed
// corpora of the replica's fuzz targets (tests/coordd_core/fuzz_corpus,
// written by COORD_WRITE_FUZZ_CORPUS=<dir> coordd_core_test
// --gtest_filter='*FuzzCorpus*').
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "coord/core/command.h"
#include "coord/core/replica.h"

namespace coord::core::fuzz {

inline std::vector<std::pair<std::string, std::string>> command_seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](std::string name, Command c) { out.emplace_back(name, encode_command(c)); };
  const Origin origin{NodeId(1), 7, 3};
  add("create-session",
      Command{origin, TimeMs(1'700'000'000'000), CreateSessionCmd{30'000, std::string(16, 'p')}});
  add("close-session", Command{origin, TimeMs(5), CloseSessionCmd{SessionId(42), true}});
  add("move-session", Command{origin, TimeMs(6), MoveSessionCmd{SessionId(42)}});
  const std::vector<Id> ids{{"ip", "127.0.0.1"}, {"digest", "u:h"}};
  add("create", Command{origin, TimeMs(9),
                        TxnCmd{SessionId(42), ids,
                               znode::CreateOp{"/a/b", std::string("data"), open_acl_unsafe(),
                                               CreateMode::EphemeralSequential, 0}}});
  add("create-ttl", Command{origin, TimeMs(9),
                            TxnCmd{SessionId(42), ids,
                                   znode::CreateOp{"/t", std::nullopt, open_acl_unsafe(),
                                                   CreateMode::PersistentWithTtl, 5'000}}});
  add("set-data", Command{origin, TimeMs(9),
                          TxnCmd{SessionId(42), ids, znode::SetDataOp{"/a", std::string("v"), 3}}});
  add("set-acl", Command{origin, TimeMs(9),
                         TxnCmd{SessionId(42), ids,
                                znode::SetAclOp{"/a", {{perm::read, {"world", "anyone"}}}, -1}}});
  znode::MultiOp multi;
  multi.ops.emplace_back(znode::CheckOp{"/a", 1});
  multi.ops.emplace_back(znode::DeleteOp{"/a/b", -1});
  multi.ops.emplace_back(znode::SetDataOp{"/a", std::string("w"), -1});
  add("multi", Command{origin, TimeMs(9), TxnCmd{SessionId(42), ids, multi}});
  add("reap", Command{Origin{NodeId(1), 0, 0}, TimeMs(9),
                      TxnCmd{SessionId(0), {{"super", ""}}, znode::ReapOp{"/c"}}});
  return out;
}

inline void write_corpus(const std::string& dir,
                         const std::vector<std::pair<std::string, std::string>>& seeds) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : seeds) {
    std::ofstream(std::filesystem::path(dir) / (name + ".bin"), std::ios::binary) << bytes;
  }
}

}  // namespace coord::core::fuzz

#include "coord/protocol/codec.h"

namespace coord::core::fuzz {

// The snapshot payload of a replica holding sessions, ephemeral,
// sequential, TTL and container nodes, data and ACLs.
inline std::string replica_snapshot_seed() {
  namespace pr = coord::protocol;
  MemoryReplicaStorage storage(consensus::ConfState{{NodeId(1)}, {}});
  ReplicaConfig config;
  auto r = Replica::create(config, storage, std::nullopt, Random(3),
                           [] { return std::string(16, 'k'); });
  if (!r.ok()) return "";
  Replica& replica = **r;
  TimeMs now(1'000);
  for (int i = 0; i < 20 && !replica.ready(); ++i) {
    now = TimeMs(now.value() + config.tick_ms);
    replica.tick(now, now);
  }
  replica.connection_opened(1, "127.0.0.1", now, now);
  pr::Bytes frame;
  pr::append_connect_request_frame(frame, pr::ConnectRequest{});
  std::int32_t xid = 1;
  auto request = [&](pr::OpCode op, const pr::RequestBody& body) {
    pr::append_request_frame(frame, pr::RequestHeader{xid++, op}, body);
  };
  request(pr::OpCode::Create,
          pr::CreateRequest{"/a", "data", open_acl_unsafe(), CreateMode::Persistent});
  request(pr::OpCode::Create,
          pr::CreateRequest{"/a/e", "", open_acl_unsafe(), CreateMode::EphemeralSequential});
  request(pr::OpCode::CreateContainer,
          pr::CreateRequest{"/c", "", open_acl_unsafe(), CreateMode::Container});
  request(pr::OpCode::CreateTtl, pr::CreateTtlRequest{"/t", "x", open_acl_unsafe(),
                                                      CreateMode::PersistentWithTtl, 60'000});
  request(pr::OpCode::SetAcl, pr::SetAclRequest{"/a", {{perm::all, {"digest", "u:h"}}}, -1});
  replica.bytes_received(1, pr::ByteSpan(frame), now, now);
  (void)replica.take_output();
  return replica.snapshot_payload();
}

}  // namespace coord::core::fuzz
