// The op table against the opcode list of docs/PROTOCOL.md §6 and §7.
#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "coord/base/zk_types.h"
#include "coord/protocol/op_table.h"

namespace coord::protocol {
namespace {

TEST(OpTable, HasEveryOpcodeOfTheSpecOnce) {
  const std::set<std::int32_t> spec = {0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   11,
                                       12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,
                                       100, 101, 102, 103, 104, 105, 106, 107, -10, -11, -1};
  std::set<std::int32_t> table;
  for (const OpInfo& op : op_table()) {
    EXPECT_TRUE(table.insert(to_int(op.code)).second) << "duplicate row " << op.name;
  }
  EXPECT_EQ(table, spec);
}

TEST(OpTable, LookupByCodeAndByName) {
  for (const OpInfo& op : op_table()) {
    EXPECT_EQ(find_op(op.code), &op) << op.name;
    EXPECT_EQ(find_op_by_name(op.name), &op) << op.name;
  }
  EXPECT_EQ(find_op(99), nullptr);
  EXPECT_EQ(find_op(10), nullptr);
  for (std::int32_t code :
       {-17, -16, -2, 23, 108, 127, 128, std::numeric_limits<std::int32_t>::min(),
        std::numeric_limits<std::int32_t>::max()})
    EXPECT_EQ(find_op(code), nullptr) << code;
  EXPECT_EQ(find_op_by_name("nosuch"), nullptr);
  EXPECT_EQ(op_name(OpCode::GetChildren2), "getChildren2");
  EXPECT_EQ(find_op_by_name("createTTL")->code, OpCode::CreateTtl);
}

TEST(OpTable, MultiMembership) {
  std::set<OpCode> multi, multi_read;
  for (const OpInfo& op : op_table()) {
    if (op.in_multi) multi.insert(op.code);
    if (op.in_multi_read) multi_read.insert(op.code);
  }
  EXPECT_EQ(multi, (std::set<OpCode>{OpCode::Create, OpCode::Delete, OpCode::SetData, OpCode::Check,
                                     OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl}));
  EXPECT_EQ(multi_read, (std::set<OpCode>{OpCode::GetData, OpCode::GetChildren}));
}

TEST(OpTable, AclPermissionsOfSection31) {
  EXPECT_EQ(find_op(OpCode::GetData)->perms_any, perm::read);
  EXPECT_EQ(find_op(OpCode::SetData)->perms_any, perm::write);
  EXPECT_EQ(find_op(OpCode::SetAcl)->perms_any, perm::admin);
  EXPECT_EQ(find_op(OpCode::GetAcl)->perms_any, perm::read | perm::admin);
  EXPECT_TRUE(find_op(OpCode::Create)->perm_on_parent);
  EXPECT_EQ(find_op(OpCode::Create)->perms_any, perm::create);
  EXPECT_TRUE(find_op(OpCode::Delete)->perm_on_parent);
  EXPECT_EQ(find_op(OpCode::Delete)->perms_any, perm::remove);
  for (OpCode free : {OpCode::Exists, OpCode::Sync, OpCode::WhoAmI, OpCode::GetEphemerals}) {
    EXPECT_EQ(find_op(free)->perms_any, 0) << op_name(free);
  }
}

TEST(OpTable, RecordsAndKinds) {
  EXPECT_EQ(find_op(OpCode::Create)->response, ResponseRecord::Create);
  for (OpCode c : {OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl}) {
    EXPECT_EQ(find_op(c)->response, ResponseRecord::Create2) << op_name(c);
  }
  EXPECT_EQ(find_op(OpCode::AddWatch)->response, ResponseRecord::Error);
  EXPECT_EQ(find_op(OpCode::Reconfig)->response, ResponseRecord::GetData);
  EXPECT_EQ(find_op(OpCode::Ping)->kind, OpKind::Connection);
  EXPECT_EQ(find_op(OpCode::CreateSession)->kind, OpKind::Internal);
  EXPECT_EQ(find_op(OpCode::SetData)->kind, OpKind::Write);
  EXPECT_EQ(find_op(OpCode::GetData)->kind, OpKind::Read);
  EXPECT_EQ(request_record_name(find_op(OpCode::Auth)->request), "AuthPacket");
  EXPECT_EQ(response_record_name(find_op(OpCode::WhoAmI)->response), "WhoAmIResponse");
  EXPECT_EQ(find_op(OpCode::GetData)->shell_verb, "get");
  EXPECT_EQ(find_op(OpCode::Exists)->shell_verb, "stat");
}

}  // namespace
}  // namespace coord::protocol
