// The op table: one row per opcode of ZooKeeper's client protocol
// (docs/PROTOCOL.md §6), the single place that says what an opcode is
// called, whether it reads or writes, which ACL permission it needs, which
// records carry its request and its reply, which zkCli verb issues it and
// whether it may appear inside multi or multiRead. The codec decodes by it,
// the server routes by it, the SDK and the shell name things by it: adding
// an op is one row here plus its records.
//
// Thread safety: immutable static data and pure lookups.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace coord::protocol {

enum class OpCode : std::int32_t {
  Notification = 0,
  Create = 1,
  Delete = 2,
  Exists = 3,
  GetData = 4,
  SetData = 5,
  GetAcl = 6,
  SetAcl = 7,
  GetChildren = 8,
  Sync = 9,
  Ping = 11,
  GetChildren2 = 12,
  Check = 13,
  Multi = 14,
  Create2 = 15,
  Reconfig = 16,
  CheckWatches = 17,
  RemoveWatches = 18,
  CreateContainer = 19,
  DeleteContainer = 20,
  CreateTtl = 21,
  MultiRead = 22,
  Auth = 100,
  SetWatches = 101,
  Sasl = 102,
  GetEphemerals = 103,
  GetAllChildrenNumber = 104,
  SetWatches2 = 105,
  AddWatch = 106,
  WhoAmI = 107,
  CreateSession = -10,
  CloseSession = -11,
  Error = -1,
};

constexpr std::int32_t to_int(OpCode op) {
  return static_cast<std::int32_t>(op);
}

// Reserved xids (docs/PROTOCOL.md §5). Ordinary requests use positive xids.
inline constexpr std::int32_t xid_watch_event = -1;
inline constexpr std::int32_t xid_ping = -2;
inline constexpr std::int32_t xid_auth = -4;
inline constexpr std::int32_t xid_set_watches = -8;

// The request records, in the order of the RequestBody variant (records.h).
enum class RequestRecord : std::uint8_t {
  Empty,
  Create,
  CreateTtl,
  Delete,
  Exists,
  GetData,
  SetData,
  GetAcl,
  SetAcl,
  GetChildren,
  GetChildren2,
  Sync,
  CheckVersion,
  Multi,
  Reconfig,
  CheckWatches,
  RemoveWatches,
  Auth,
  SetWatches,
  GetSasl,
  GetEphemerals,
  GetAllChildrenNumber,
  SetWatches2,
  AddWatch,
};

// The success reply records, in the order of the ResponseBody variant.
enum class ResponseRecord : std::uint8_t {
  Empty,
  Create,
  Create2,
  Exists,
  GetData,
  SetData,
  GetAcl,
  SetAcl,
  GetChildren,
  GetChildren2,
  Sync,
  Multi,
  GetEphemerals,
  GetAllChildrenNumber,
  WhoAmI,
  Error,
  SetSasl,
};

// How the server handles an op.
enum class OpKind : std::uint8_t {
  Read,        // answered from the local tree, in session order; no log entry
  Write,       // a log entry: changes the tree or the session table
  Connection,  // handled by the connection itself (ping, auth, setWatches, sasl)
  Internal,    // never sent by a client; a server answers Unimplemented
};

struct OpInfo {
  OpCode code;
  std::string_view name;  // ZooKeeper's name for the opcode ("getData")
  OpKind kind;
  // ACL bits of which the caller needs at least one; 0 = no ACL check.
  std::int32_t perms_any;
  // The permission is checked on the parent (create*, delete), not the node.
  bool perm_on_parent;
  RequestRecord request;
  ResponseRecord response;
  // The zkCli / coordctl verb that issues this op; empty when none does.
  std::string_view shell_verb;
  bool in_multi;       // may appear inside multi (14)
  bool in_multi_read;  // may appear inside multiRead (22)
};

// Every row, ordered by opcode.
std::span<const OpInfo> op_table();
// nullptr for an opcode that is not in the table.
const OpInfo* find_op(std::int32_t code);
inline const OpInfo* find_op(OpCode code) {
  return find_op(to_int(code));
}
const OpInfo* find_op_by_name(std::string_view name);

// "getData", or "op(99)"-style text is left to callers: empty for unknown.
std::string_view op_name(OpCode code);
std::string_view request_record_name(RequestRecord r);
std::string_view response_record_name(ResponseRecord r);
std::string_view op_kind_name(OpKind k);

}  // namespace coord::protocol
