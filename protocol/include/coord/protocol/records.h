// ZooKeeper's client records (docs/PROTOCOL.md §4–§8) as C++ value
// types, with their Jute encoding.
//
// Each record lists its fields once, in wire order (COORD_JUTE_FIELDS); the
// generic codec of jute.h encodes and decodes it from that list. Records
// whose wire form is not a plain field list (the handshake with its optional
// trailing byte, multi with its op-dependent bodies) have hand-written
// put/get overloads below. Wire enums (CreateMode, EventType, ErrorCode,
// OpCode, ...) keep whatever value arrived: validating it is the job of the
// layer that owns the meaning, and it answers with ZooKeeper's error code.
//
// Null strings decode as "" and null vectors as empty; null data buffers are
// kept (Data is std::optional), since ZooKeeper distinguishes null data.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "coord/base/error.h"
#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/zk_types.h"
#include "coord/protocol/jute.h"
#include "coord/protocol/op_table.h"

namespace coord::protocol {

// ---------------------------------------------------------------------------
// Handshake (docs/PROTOCOL.md §4): no header; hand-written codec.
// ---------------------------------------------------------------------------

struct ConnectRequest {
  std::int32_t protocol_version = 0;
  Zxid last_zxid_seen{0};
  std::int32_t timeout_ms = 0;
  SessionId session_id{0};
  std::string password = std::string(limits::session_password_bytes, '\0');
  bool read_only = false;
  // Whether the trailing readOnly byte is (to be) on the wire. The reply
  // carries its own readOnly byte exactly when the request did.
  bool has_read_only = true;
  friend bool operator==(const ConnectRequest&, const ConnectRequest&) = default;
};

struct ConnectResponse {
  std::int32_t protocol_version = 0;
  std::int32_t timeout_ms = 0;  // 0 (with session id 0) = session expired or invalid
  SessionId session_id{0};
  std::string password =
      std::string(limits::session_password_bytes, '\0');  // exactly 16 bytes on the wire
  bool read_only = false;
  bool has_read_only = true;
  friend bool operator==(const ConnectResponse&, const ConnectResponse&) = default;
};

// ---------------------------------------------------------------------------
// Headers (docs/PROTOCOL.md §5)
// ---------------------------------------------------------------------------

struct RequestHeader {
  std::int32_t xid = 0;
  OpCode type = OpCode::Ping;
  COORD_JUTE_FIELDS(xid, type)
  friend bool operator==(const RequestHeader&, const RequestHeader&) = default;
};

struct ReplyHeader {
  std::int32_t xid = 0;
  Zxid zxid{0};
  ErrorCode err = ErrorCode::Ok;
  COORD_JUTE_FIELDS(xid, zxid, err)
  friend bool operator==(const ReplyHeader&, const ReplyHeader&) = default;
};

// ---------------------------------------------------------------------------
// Requests (docs/PROTOCOL.md §6.2)
// ---------------------------------------------------------------------------

// No body: ping, closeSession, whoAmI, and replies such as delete's.
struct Empty {
  COORD_JUTE_NO_FIELDS()
  friend bool operator==(const Empty&, const Empty&) = default;
};

// create (1), create2 (15), createContainer (19).
struct CreateRequest {
  std::string path;
  Data data;
  AclList acl;
  CreateMode mode = CreateMode::Persistent;  // Jute "flags"
  COORD_JUTE_FIELDS(path, data, acl, mode)
  friend bool operator==(const CreateRequest&, const CreateRequest&) = default;
};

// createTTL (21).
struct CreateTtlRequest {
  std::string path;
  Data data;
  AclList acl;
  CreateMode mode = CreateMode::PersistentWithTtl;
  std::int64_t ttl_ms = 0;
  COORD_JUTE_FIELDS(path, data, acl, mode, ttl_ms)
  friend bool operator==(const CreateTtlRequest&, const CreateTtlRequest&) = default;
};

// delete (2), deleteContainer (20).
struct DeleteRequest {
  std::string path;
  std::int32_t version = -1;
  COORD_JUTE_FIELDS(path, version)
  friend bool operator==(const DeleteRequest&, const DeleteRequest&) = default;
};

struct ExistsRequest {
  std::string path;
  bool watch = false;
  COORD_JUTE_FIELDS(path, watch)
  friend bool operator==(const ExistsRequest&, const ExistsRequest&) = default;
};

struct GetDataRequest {
  std::string path;
  bool watch = false;
  COORD_JUTE_FIELDS(path, watch)
  friend bool operator==(const GetDataRequest&, const GetDataRequest&) = default;
};

struct SetDataRequest {
  std::string path;
  Data data;
  std::int32_t version = -1;
  COORD_JUTE_FIELDS(path, data, version)
  friend bool operator==(const SetDataRequest&, const SetDataRequest&) = default;
};

struct GetAclRequest {
  std::string path;
  COORD_JUTE_FIELDS(path)
  friend bool operator==(const GetAclRequest&, const GetAclRequest&) = default;
};

struct SetAclRequest {
  std::string path;
  AclList acl;
  std::int32_t version = -1;  // compared with aversion
  COORD_JUTE_FIELDS(path, acl, version)
  friend bool operator==(const SetAclRequest&, const SetAclRequest&) = default;
};

struct GetChildrenRequest {
  std::string path;
  bool watch = false;
  COORD_JUTE_FIELDS(path, watch)
  friend bool operator==(const GetChildrenRequest&, const GetChildrenRequest&) = default;
};

struct GetChildren2Request {
  std::string path;
  bool watch = false;
  COORD_JUTE_FIELDS(path, watch)
  friend bool operator==(const GetChildren2Request&, const GetChildren2Request&) = default;
};

struct SyncRequest {
  std::string path;
  COORD_JUTE_FIELDS(path)
  friend bool operator==(const SyncRequest&, const SyncRequest&) = default;
};

struct CheckVersionRequest {
  std::string path;
  std::int32_t version = -1;
  COORD_JUTE_FIELDS(path, version)
  friend bool operator==(const CheckVersionRequest&, const CheckVersionRequest&) = default;
};

struct ReconfigRequest {
  std::string joining_servers;
  std::string leaving_servers;
  std::string new_members;
  std::int64_t cur_config_id = -1;
  COORD_JUTE_FIELDS(joining_servers, leaving_servers, new_members, cur_config_id)
  friend bool operator==(const ReconfigRequest&, const ReconfigRequest&) = default;
};

struct CheckWatchesRequest {
  std::string path;
  WatcherType type = WatcherType::Any;
  COORD_JUTE_FIELDS(path, type)
  friend bool operator==(const CheckWatchesRequest&, const CheckWatchesRequest&) = default;
};

struct RemoveWatchesRequest {
  std::string path;
  WatcherType type = WatcherType::Any;
  COORD_JUTE_FIELDS(path, type)
  friend bool operator==(const RemoveWatchesRequest&, const RemoveWatchesRequest&) = default;
};

// auth (100), sent with xid -4. For "digest" the bytes are "user:password".
struct AuthPacket {
  std::int32_t type = 0;
  std::string scheme;
  std::string auth;  // a Jute buffer; null reads as empty
  COORD_JUTE_FIELDS(type, scheme, auth)
  friend bool operator==(const AuthPacket&, const AuthPacket&) = default;
};

// setWatches (101), sent with xid -8 after a reconnect.
struct SetWatches {
  Zxid relative_zxid{0};
  std::vector<std::string> data_watches;
  std::vector<std::string> exist_watches;
  std::vector<std::string> child_watches;
  COORD_JUTE_FIELDS(relative_zxid, data_watches, exist_watches, child_watches)
  friend bool operator==(const SetWatches&, const SetWatches&) = default;
};

// setWatches2 (105): setWatches plus the persistent kinds.
struct SetWatches2 {
  Zxid relative_zxid{0};
  std::vector<std::string> data_watches;
  std::vector<std::string> exist_watches;
  std::vector<std::string> child_watches;
  std::vector<std::string> persistent_watches;
  std::vector<std::string> persistent_recursive_watches;
  COORD_JUTE_FIELDS(relative_zxid, data_watches, exist_watches, child_watches, persistent_watches,
                    persistent_recursive_watches)
  friend bool operator==(const SetWatches2&, const SetWatches2&) = default;
};

struct GetSaslRequest {
  Data token;
  COORD_JUTE_FIELDS(token)
  friend bool operator==(const GetSaslRequest&, const GetSaslRequest&) = default;
};

struct GetEphemeralsRequest {
  std::string prefix_path;
  COORD_JUTE_FIELDS(prefix_path)
  friend bool operator==(const GetEphemeralsRequest&, const GetEphemeralsRequest&) = default;
};

struct GetAllChildrenNumberRequest {
  std::string path;
  COORD_JUTE_FIELDS(path)
  friend bool operator==(const GetAllChildrenNumberRequest&,
                         const GetAllChildrenNumberRequest&) = default;
};

struct AddWatchRequest {
  std::string path;
  AddWatchMode mode = AddWatchMode::Persistent;
  COORD_JUTE_FIELDS(path, mode)
  friend bool operator==(const AddWatchRequest&, const AddWatchRequest&) = default;
};

// ---------------------------------------------------------------------------
// multi (14) and multiRead (22), docs/PROTOCOL.md §7: hand-written codec.
// ---------------------------------------------------------------------------

// Precedes every op and every result; {-1, true, -1} ends the list.
struct MultiHeader {
  OpCode type = OpCode::Error;
  bool done = true;
  ErrorCode err = static_cast<ErrorCode>(-1);
  COORD_JUTE_FIELDS(type, done, err)
  friend bool operator==(const MultiHeader&, const MultiHeader&) = default;
};

// One op of a multi. `type` says which opcode the record is for (create,
// create2 and createContainer all carry a CreateRequest).
struct MultiOp {
  using Body = std::variant<CreateRequest, CreateTtlRequest, DeleteRequest, SetDataRequest,
                            CheckVersionRequest, GetDataRequest, GetChildrenRequest>;
  OpCode type = OpCode::Check;
  Body op;
  friend bool operator==(const MultiOp&, const MultiOp&) = default;

  // The record type that goes with an opcode allowed in multi or multiRead.
  static bool body_matches(OpCode type, const Body& op);
};

struct MultiRequest {
  std::vector<MultiOp> ops;
  friend bool operator==(const MultiRequest&, const MultiRequest&) = default;
};

// One result of a multi. Which fields are meaningful depends on `type`:
//   Create (1): path            Create2 (15): path, stat
//   Delete (2), Check (13): -   SetData (5): stat
//   GetChildren (8): children   GetData (4): data, stat
//   Error (-1): err (0 for an op before the failing one, -2 after it)
struct MultiResult {
  OpCode type = OpCode::Error;
  ErrorCode err = ErrorCode::Ok;
  std::string path;
  Stat stat;
  Data data;
  std::vector<std::string> children;
  friend bool operator==(const MultiResult&, const MultiResult&) = default;
};

struct MultiResponse {
  std::vector<MultiResult> results;
  friend bool operator==(const MultiResponse&, const MultiResponse&) = default;
};

// ---------------------------------------------------------------------------
// Responses (docs/PROTOCOL.md §6.2)
// ---------------------------------------------------------------------------

struct CreateResponse {
  std::string path;
  COORD_JUTE_FIELDS(path)
  friend bool operator==(const CreateResponse&, const CreateResponse&) = default;
};

struct Create2Response {
  std::string path;
  Stat stat;
  COORD_JUTE_FIELDS(path, stat)
  friend bool operator==(const Create2Response&, const Create2Response&) = default;
};

struct ExistsResponse {
  Stat stat;
  COORD_JUTE_FIELDS(stat)
  friend bool operator==(const ExistsResponse&, const ExistsResponse&) = default;
};

struct GetDataResponse {
  Data data;
  Stat stat;
  COORD_JUTE_FIELDS(data, stat)
  friend bool operator==(const GetDataResponse&, const GetDataResponse&) = default;
};

struct SetDataResponse {
  Stat stat;
  COORD_JUTE_FIELDS(stat)
  friend bool operator==(const SetDataResponse&, const SetDataResponse&) = default;
};

struct GetAclResponse {
  AclList acl;
  Stat stat;
  COORD_JUTE_FIELDS(acl, stat)
  friend bool operator==(const GetAclResponse&, const GetAclResponse&) = default;
};

struct SetAclResponse {
  Stat stat;
  COORD_JUTE_FIELDS(stat)
  friend bool operator==(const SetAclResponse&, const SetAclResponse&) = default;
};

struct GetChildrenResponse {
  std::vector<std::string> children;
  COORD_JUTE_FIELDS(children)
  friend bool operator==(const GetChildrenResponse&, const GetChildrenResponse&) = default;
};

struct GetChildren2Response {
  std::vector<std::string> children;
  Stat stat;
  COORD_JUTE_FIELDS(children, stat)
  friend bool operator==(const GetChildren2Response&, const GetChildren2Response&) = default;
};

struct SyncResponse {
  std::string path;
  COORD_JUTE_FIELDS(path)
  friend bool operator==(const SyncResponse&, const SyncResponse&) = default;
};

struct GetEphemeralsResponse {
  std::vector<std::string> ephemerals;
  COORD_JUTE_FIELDS(ephemerals)
  friend bool operator==(const GetEphemeralsResponse&, const GetEphemeralsResponse&) = default;
};

struct GetAllChildrenNumberResponse {
  std::int32_t total_number = 0;
  COORD_JUTE_FIELDS(total_number)
  friend bool operator==(const GetAllChildrenNumberResponse&,
                         const GetAllChildrenNumberResponse&) = default;
};

struct ClientInfo {
  std::string auth_scheme;
  std::string user;
  COORD_JUTE_FIELDS(auth_scheme, user)
  friend bool operator==(const ClientInfo&, const ClientInfo&) = default;
};

struct WhoAmIResponse {
  std::vector<ClientInfo> client_info;
  COORD_JUTE_FIELDS(client_info)
  friend bool operator==(const WhoAmIResponse&, const WhoAmIResponse&) = default;
};

// addWatch's reply body (always 0) and a failed op's body inside multi.
struct ErrorResponse {
  ErrorCode err = ErrorCode::Ok;
  COORD_JUTE_FIELDS(err)
  friend bool operator==(const ErrorResponse&, const ErrorResponse&) = default;
};

struct SetSaslResponse {
  Data token;
  COORD_JUTE_FIELDS(token)
  friend bool operator==(const SetSaslResponse&, const SetSaslResponse&) = default;
};

// The body of a watch notification frame (xid -1).
struct WatcherEvent {
  EventType type = EventType::None;
  KeeperState state = KeeperState::SyncConnected;
  std::string path;
  COORD_JUTE_FIELDS(type, state, path)
  friend bool operator==(const WatcherEvent&, const WatcherEvent&) = default;
};

// ---------------------------------------------------------------------------
// Bodies by op. Alternative order = RequestRecord / ResponseRecord order.
// ---------------------------------------------------------------------------

using RequestBody =
    std::variant<Empty, CreateRequest, CreateTtlRequest, DeleteRequest, ExistsRequest,
                 GetDataRequest, SetDataRequest, GetAclRequest, SetAclRequest, GetChildrenRequest,
                 GetChildren2Request, SyncRequest, CheckVersionRequest, MultiRequest,
                 ReconfigRequest, CheckWatchesRequest, RemoveWatchesRequest, AuthPacket, SetWatches,
                 GetSaslRequest, GetEphemeralsRequest, GetAllChildrenNumberRequest, SetWatches2,
                 AddWatchRequest>;
static_assert(std::variant_size_v<RequestBody> ==
              static_cast<std::size_t>(RequestRecord::AddWatch) + 1);

using ResponseBody =
    std::variant<Empty, CreateResponse, Create2Response, ExistsResponse, GetDataResponse,
                 SetDataResponse, GetAclResponse, SetAclResponse, GetChildrenResponse,
                 GetChildren2Response, SyncResponse, MultiResponse, GetEphemeralsResponse,
                 GetAllChildrenNumberResponse, WhoAmIResponse, ErrorResponse, SetSaslResponse>;
static_assert(std::variant_size_v<ResponseBody> ==
              static_cast<std::size_t>(ResponseRecord::SetSasl) + 1);

constexpr RequestRecord record_of(const RequestBody& b) {
  return static_cast<RequestRecord>(b.index());
}
constexpr ResponseRecord record_of(const ResponseBody& b) {
  return static_cast<ResponseRecord>(b.index());
}

// Hand-written codecs (found by argument-dependent lookup from jute::).
void put(JuteWriter& w, const ConnectRequest& r);
void put(JuteWriter& w, const ConnectResponse& r);
void put(JuteWriter& w, const MultiRequest& r);
void put(JuteWriter& w, const MultiResponse& r);
// The handshake records consume the rest of the reader: the optional
// readOnly byte is decided by how many bytes are left.
Status get(JuteReader& r, ConnectRequest& v);
Status get(JuteReader& r, ConnectResponse& v);
Status get(JuteReader& r, MultiRequest& v);
Status get(JuteReader& r, MultiResponse& v);

}  // namespace coord::protocol
