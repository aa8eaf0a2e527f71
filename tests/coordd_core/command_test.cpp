#include <gtest/gtest.h>

#include "coord/core/command.h"

namespace coord::core {
namespace {

Command with(std::variant<CreateSessionCmd, CloseSessionCmd, TxnCmd, MoveSessionCmd> body) {
  Command c;
  c.origin = Origin{NodeId(3), 77, 12345};
  c.time = TimeMs(1'700'000'000'123);
  c.body = std::move(body);
  return c;
}

TEST(Command, EveryKindRoundTrips) {
  std::vector<Command> cmds;
  cmds.push_back(with(CreateSessionCmd{30'000, std::string(16, '\x5a')}));
  cmds.push_back(with(CloseSessionCmd{SessionId(42), true}));
  cmds.push_back(with(MoveSessionCmd{SessionId(43)}));
  const std::vector<Id> ids{{"ip", "127.0.0.1"}, {"digest", "bob:abc="}};
  const AclList acl{{perm::all, {"world", "anyone"}}, {perm::read, {"ip", "10.0.0.0/8"}}};
  cmds.push_back(with(TxnCmd{SessionId(9), ids,
                             znode::CreateOp{"/a", std::string("x\0y", 3), acl,
                                             CreateMode::PersistentSequentialWithTtl, 5000}}));
  cmds.push_back(with(TxnCmd{SessionId(9), ids,
                             znode::CreateOp{"/n", std::nullopt, acl, CreateMode::Ephemeral, 0}}));
  cmds.push_back(with(TxnCmd{SessionId(9), ids, znode::DeleteOp{"/a", 3}}));
  cmds.push_back(with(TxnCmd{SessionId(9), ids, znode::SetDataOp{"/a", std::string(), -1}}));
  cmds.push_back(with(TxnCmd{SessionId(9), ids, znode::SetAclOp{"/a", acl, 2}}));
  cmds.push_back(with(TxnCmd{SessionId(9), ids, znode::CheckOp{"/a", 7}}));
  cmds.push_back(with(TxnCmd{SessionId(0), {}, znode::ReapOp{"/c"}}));
  cmds.push_back(with(TxnCmd{SessionId(0), {}, znode::CloseSessionOp{SessionId(5)}}));
  znode::MultiOp multi;
  multi.ops.emplace_back(znode::CreateOp{"/m", std::string("d"), acl, CreateMode::Container, 0});
  multi.ops.emplace_back(znode::CheckOp{"/m", 0});
  multi.ops.emplace_back(znode::SetDataOp{"/m", std::nullopt, 0});
  multi.ops.emplace_back(znode::DeleteOp{"/m", -1});
  cmds.push_back(with(TxnCmd{SessionId(9), ids, multi}));
  for (const Command& c : cmds) {
    const std::string bytes = encode_command(c);
    auto back = decode_command(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, c);
  }
}

TEST(Command, DamagedBytesAreErrorsNotCrashes) {
  const std::string good =
      encode_command(with(TxnCmd{SessionId(9),
                                 {{"ip", "1.2.3.4"}},
                                 znode::CreateOp{"/a",
                                                 std::string("data"),
                                                 {{perm::all, {"world", "anyone"}}},
                                                 CreateMode::Persistent,
                                                 0}}));
  for (std::size_t len = 0; len < good.size(); ++len) {
    EXPECT_FALSE(decode_command(good.substr(0, len)).ok()) << "prefix of " << len << " bytes";
  }
  EXPECT_FALSE(decode_command(good + "x").ok());
  std::string wrong_version = good;
  wrong_version[0] = 9;
  EXPECT_EQ(decode_command(wrong_version).code(), ErrorCode::MarshallingError);
}

}  // namespace
}  // namespace coord::core

#include <cstdlib>

#include "fuzz_seeds.h"

namespace coord::core {
namespace {

// COORD_WRITE_FUZZ_CORPUS=<dir> writes the seed corpora of the replica's
// fuzz targets (tests/coordd_core/fuzz_corpus) from the real encoders.
TEST(ReplicaFuzzCorpus, WrittenWhenAsked) {
  for (const auto& [name, bytes] : fuzz::command_seeds()) {
    auto c = decode_command(bytes);
    EXPECT_TRUE(c.ok()) << name << ": " << c.status();
  }
  const std::string snapshot = fuzz::replica_snapshot_seed();
  {
    MemoryReplicaStorage storage(consensus::ConfState{{NodeId(1)}, {}});
    auto r = Replica::create(ReplicaConfig{}, storage, snapshot, Random(1),
                             [] { return std::string(16, 'k'); });
    // It loads; only its index differs from the empty storage's.
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("the log's snapshot is at 0"), std::string::npos)
        << r.status();
  }
  const char* dir = std::getenv("COORD_WRITE_FUZZ_CORPUS");
  if (!dir) GTEST_SKIP() << "set COORD_WRITE_FUZZ_CORPUS to write the corpus";
  fuzz::write_corpus(std::string(dir) + "/command", fuzz::command_seeds());
  fuzz::write_corpus(std::string(dir) + "/replica_snapshot", {{"tree", snapshot}});
}

}  // namespace
}  // namespace coord::core
