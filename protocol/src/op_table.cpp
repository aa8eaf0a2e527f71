#include "coord/protocol/op_table.h"

#include <algorithm>
#include <array>

#include "coord/base/zk_types.h"

namespace coord::protocol {

namespace {

using K = OpKind;
using Q = RequestRecord;
using P = ResponseRecord;
constexpr bool multi = true;
constexpr bool multi_read = true;
constexpr bool on_parent = true;

// Ordered by opcode (checked by a test). ACL bits follow docs/PROTOCOL.md §3.1: create and
// delete are checked on the parent; getACL accepts READ or ADMIN; exists,
// sync, whoAmI and getEphemerals check nothing.
constexpr std::array<OpInfo, 33> kOps{{
    {OpCode::CloseSession, "closeSession", K::Write, 0, false, Q::Empty, P::Empty, "close", false,
     false},
    {OpCode::CreateSession, "createSession", K::Internal, 0, false, Q::Empty, P::Empty, "", false,
     false},
    {OpCode::Error, "error", K::Internal, 0, false, Q::Empty, P::Error, "", false, false},
    {OpCode::Notification, "notification", K::Internal, 0, false, Q::Empty, P::Empty, "", false,
     false},
    {OpCode::Create, "create", K::Write, perm::create, on_parent, Q::Create, P::Create, "create",
     multi, false},
    {OpCode::Delete, "delete", K::Write, perm::remove, on_parent, Q::Delete, P::Empty, "delete",
     multi, false},
    {OpCode::Exists, "exists", K::Read, 0, false, Q::Exists, P::Exists, "stat", false, false},
    {OpCode::GetData, "getData", K::Read, perm::read, false, Q::GetData, P::GetData, "get", false,
     multi_read},
    {OpCode::SetData, "setData", K::Write, perm::write, false, Q::SetData, P::SetData, "set", multi,
     false},
    {OpCode::GetAcl, "getACL", K::Read, perm::read | perm::admin, false, Q::GetAcl, P::GetAcl,
     "getAcl", false, false},
    {OpCode::SetAcl, "setACL", K::Write, perm::admin, false, Q::SetAcl, P::SetAcl, "setAcl", false,
     false},
    {OpCode::GetChildren, "getChildren", K::Read, perm::read, false, Q::GetChildren, P::GetChildren,
     "ls", false, multi_read},
    {OpCode::Sync, "sync", K::Read, 0, false, Q::Sync, P::Sync, "sync", false, false},
    {OpCode::Ping, "ping", K::Connection, 0, false, Q::Empty, P::Empty, "", false, false},
    {OpCode::GetChildren2, "getChildren2", K::Read, perm::read, false, Q::GetChildren2,
     P::GetChildren2, "ls", false, false},
    // Standalone check: 3.8 never answers it, 3.9+ answers with a Stat; we
    // follow 3.9. Inside multi it is a version precondition.
    {OpCode::Check, "check", K::Read, perm::read, false, Q::CheckVersion, P::SetData, "", multi,
     false},
    {OpCode::Multi, "multi", K::Write, 0, false, Q::Multi, P::Multi, "", false, false},
    {OpCode::Create2, "create2", K::Write, perm::create, on_parent, Q::Create, P::Create2, "create",
     multi, false},
    {OpCode::Reconfig, "reconfig", K::Write, perm::admin, false, Q::Reconfig, P::GetData,
     "reconfig", false, false},
    {OpCode::CheckWatches, "checkWatches", K::Read, 0, false, Q::CheckWatches, P::Empty, "", false,
     false},
    {OpCode::RemoveWatches, "removeWatches", K::Read, 0, false, Q::RemoveWatches, P::Empty,
     "removewatches", false, false},
    {OpCode::CreateContainer, "createContainer", K::Write, perm::create, on_parent, Q::Create,
     P::Create2, "create", multi, false},
    {OpCode::DeleteContainer, "deleteContainer", K::Internal, perm::remove, on_parent, Q::Delete,
     P::Empty, "", false, false},
    {OpCode::CreateTtl, "createTTL", K::Write, perm::create, on_parent, Q::CreateTtl, P::Create2,
     "create", multi, false},
    {OpCode::MultiRead, "multiRead", K::Read, 0, false, Q::Multi, P::Multi, "", false, false},
    {OpCode::Auth, "auth", K::Connection, 0, false, Q::Auth, P::Empty, "addauth", false, false},
    {OpCode::SetWatches, "setWatches", K::Connection, 0, false, Q::SetWatches, P::Empty, "", false,
     false},
    {OpCode::Sasl, "sasl", K::Connection, 0, false, Q::GetSasl, P::SetSasl, "", false, false},
    {OpCode::GetEphemerals, "getEphemerals", K::Read, 0, false, Q::GetEphemerals, P::GetEphemerals,
     "getEphemerals", false, false},
    {OpCode::GetAllChildrenNumber, "getAllChildrenNumber", K::Read, perm::read, false,
     Q::GetAllChildrenNumber, P::GetAllChildrenNumber, "getAllChildrenNumber", false, false},
    {OpCode::SetWatches2, "setWatches2", K::Connection, 0, false, Q::SetWatches2, P::Empty, "",
     false, false},
    {OpCode::AddWatch, "addWatch", K::Read, 0, false, Q::AddWatch, P::Error, "addWatch", false,
     false},
    {OpCode::WhoAmI, "whoAmI", K::Read, 0, false, Q::Empty, P::WhoAmI, "whoami", false, false},
}};

constexpr bool sorted_by_code() {
  for (std::size_t i = 1; i < kOps.size(); ++i) {
    if (to_int(kOps[i - 1].code) >= to_int(kOps[i].code)) return false;
  }
  return true;
}
static_assert(sorted_by_code(), "op table rows must be ordered by opcode");

// Every request looks its opcode up several times on its way through the
// server: a direct index over the span the opcodes occupy, not a search.
constexpr std::int32_t kCodeLow = -16;
constexpr std::int32_t kCodeHigh = 128;
constexpr std::array<std::int8_t, kCodeHigh - kCodeLow> kRowOfCode = [] {
  std::array<std::int8_t, kCodeHigh - kCodeLow> rows{};
  rows.fill(-1);
  for (std::size_t i = 0; i < kOps.size(); ++i)
    rows.at(static_cast<std::size_t>(to_int(kOps[i].code) - kCodeLow)) =
        static_cast<std::int8_t>(i);
  return rows;
}();

}  // namespace

std::span<const OpInfo> op_table() {
  return kOps;
}

const OpInfo* find_op(std::int32_t code) {
  if (code < kCodeLow || code >= kCodeHigh) return nullptr;
  const std::int8_t row = kRowOfCode[static_cast<std::size_t>(code - kCodeLow)];
  return row < 0 ? nullptr : &kOps[static_cast<std::size_t>(row)];
}

const OpInfo* find_op_by_name(std::string_view name) {
  for (const OpInfo& op : kOps) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

std::string_view op_name(OpCode code) {
  const OpInfo* op = find_op(code);
  return op ? op->name : std::string_view();
}

std::string_view request_record_name(RequestRecord r) {
  switch (r) {
    case RequestRecord::Empty:
      return "(empty)";
    case RequestRecord::Create:
      return "CreateRequest";
    case RequestRecord::CreateTtl:
      return "CreateTTLRequest";
    case RequestRecord::Delete:
      return "DeleteRequest";
    case RequestRecord::Exists:
      return "ExistsRequest";
    case RequestRecord::GetData:
      return "GetDataRequest";
    case RequestRecord::SetData:
      return "SetDataRequest";
    case RequestRecord::GetAcl:
      return "GetACLRequest";
    case RequestRecord::SetAcl:
      return "SetACLRequest";
    case RequestRecord::GetChildren:
      return "GetChildrenRequest";
    case RequestRecord::GetChildren2:
      return "GetChildren2Request";
    case RequestRecord::Sync:
      return "SyncRequest";
    case RequestRecord::CheckVersion:
      return "CheckVersionRequest";
    case RequestRecord::Multi:
      return "MultiRequest";
    case RequestRecord::Reconfig:
      return "ReconfigRequest";
    case RequestRecord::CheckWatches:
      return "CheckWatchesRequest";
    case RequestRecord::RemoveWatches:
      return "RemoveWatchesRequest";
    case RequestRecord::Auth:
      return "AuthPacket";
    case RequestRecord::SetWatches:
      return "SetWatches";
    case RequestRecord::GetSasl:
      return "GetSASLRequest";
    case RequestRecord::GetEphemerals:
      return "GetEphemeralsRequest";
    case RequestRecord::GetAllChildrenNumber:
      return "GetAllChildrenNumberRequest";
    case RequestRecord::SetWatches2:
      return "SetWatches2";
    case RequestRecord::AddWatch:
      return "AddWatchRequest";
  }
  return "?";
}

std::string_view response_record_name(ResponseRecord r) {
  switch (r) {
    case ResponseRecord::Empty:
      return "(empty)";
    case ResponseRecord::Create:
      return "CreateResponse";
    case ResponseRecord::Create2:
      return "Create2Response";
    case ResponseRecord::Exists:
      return "ExistsResponse";
    case ResponseRecord::GetData:
      return "GetDataResponse";
    case ResponseRecord::SetData:
      return "SetDataResponse";
    case ResponseRecord::GetAcl:
      return "GetACLResponse";
    case ResponseRecord::SetAcl:
      return "SetACLResponse";
    case ResponseRecord::GetChildren:
      return "GetChildrenResponse";
    case ResponseRecord::GetChildren2:
      return "GetChildren2Response";
    case ResponseRecord::Sync:
      return "SyncResponse";
    case ResponseRecord::Multi:
      return "MultiResponse";
    case ResponseRecord::GetEphemerals:
      return "GetEphemeralsResponse";
    case ResponseRecord::GetAllChildrenNumber:
      return "GetAllChildrenNumberResponse";
    case ResponseRecord::WhoAmI:
      return "WhoAmIResponse";
    case ResponseRecord::Error:
      return "ErrorResponse";
    case ResponseRecord::SetSasl:
      return "SetSASLResponse";
  }
  return "?";
}

std::string_view op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::Read:
      return "read";
    case OpKind::Write:
      return "write";
    case OpKind::Connection:
      return "connection";
    case OpKind::Internal:
      return "internal";
  }
  return "?";
}

}  // namespace coord::protocol
