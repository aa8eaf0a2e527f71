// Byte-exact vectors for every message shape of the client protocol, built by
// hand from docs/PROTOCOL.md, plus round trips of every record and the
// malformed-input classes a server must survive.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "hex.h"

namespace coord::protocol {
namespace {

using testhex::ascii;
using testhex::hex;
using testhex::to_hex;

// Stat{1, 2, ..., 11} and its 68 bytes.
Stat sample_stat() {
  return Stat{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
}
const std::string kStatHex =
    "0000000000000001 0000000000000002 0000000000000003 0000000000000004"
    "00000005 00000006 00000007 0000000000000008 00000009 0000000a 000000000000000b";
// OPEN_ACL_UNSAFE: one entry (31, world:anyone).
const std::string kOpenAclHex =
    "00000001 0000001f 00000005" + ascii("world") + "00000006" + ascii("anyone");

Bytes request_frame(std::int32_t xid, OpCode op, const RequestBody& body) {
  Bytes out;
  append_request_frame(out, RequestHeader{xid, op}, body);
  return out;
}

Bytes reply_frame(std::int32_t xid, std::int64_t zxid, ErrorCode err, const ResponseBody& body) {
  Bytes out;
  append_reply_frame(out, ReplyHeader{xid, Zxid(zxid), err}, body);
  return out;
}

// The payload of a single frame (length checked).
ByteSpan payload_of(const Bytes& frame) {
  const FrameCut cut = cut_frame(frame);
  EXPECT_EQ(cut.state, FrameState::Frame);
  EXPECT_EQ(cut.consumed, frame.size()) << "the buffer holds more than one frame";
  return cut.payload;
}

// ---- handshake ---------------------------------------------------------------

TEST(Handshake, RequestIs45BytesWithReadOnly) {
  ConnectRequest req;
  req.timeout_ms = 30000;
  Bytes out;
  append_connect_request_frame(out, req);
  EXPECT_EQ(to_hex(out), to_hex(hex("0000002d"          // length 45
                                    "00000000"          // protocolVersion
                                    "0000000000000000"  // lastZxidSeen
                                    "00007530"          // timeOut 30000
                                    "0000000000000000"  // sessionId
                                    "00000010"          // passwd length 16
                                    "00000000000000000000000000000000"
                                    "00")));  // readOnly
  auto back = decode_connect_request(payload_of(out));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, req);
  EXPECT_TRUE(back->has_read_only);
}

TEST(Handshake, RequestWithoutReadOnlyByteIsRemembered) {
  const Bytes body =
      hex("00000000 0000000000000123 00001388 0102030405060708 00000010"
          "000102030405060708090a0b0c0d0e0f");
  ASSERT_EQ(body.size(), 44u);
  auto req = decode_connect_request(body);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_FALSE(req->has_read_only);
  EXPECT_EQ(req->last_zxid_seen, Zxid(0x123));
  EXPECT_EQ(req->timeout_ms, 5000);
  EXPECT_EQ(req->session_id, SessionId(0x0102030405060708));
  EXPECT_EQ(req->password.size(), 16u);
  EXPECT_EQ(req->password[15], '\x0f');
  // And it re-encodes without the byte.
  Bytes out;
  append_connect_request_frame(out, *req);
  EXPECT_EQ(to_hex(payload_of(out)), to_hex(body));
}

TEST(Handshake, RequestReadOnlyByteNonZeroIsTrue) {
  Bytes body =
      hex("00000000 0000000000000000 00007530 0000000000000000 00000010"
          "00000000000000000000000000000000 07");
  auto req = decode_connect_request(body);
  ASSERT_TRUE(req.ok());
  EXPECT_TRUE(req->read_only);
}

TEST(Handshake, RequestWithMoreThanOneTrailingByteIsRejected) {
  Bytes body =
      hex("00000000 0000000000000000 00007530 0000000000000000 00000010"
          "00000000000000000000000000000000 00 00");
  auto req = decode_connect_request(body);
  EXPECT_EQ(req.code(), ErrorCode::MarshallingError);
}

TEST(Handshake, RequestTruncatedAnywhereIsRejected) {
  Bytes out;
  append_connect_request_frame(out, ConnectRequest{});
  const ByteSpan body = payload_of(out);
  // Every cut strictly inside the mandatory 44 bytes must fail cleanly.
  for (std::size_t n = 0; n < 44; ++n) {
    EXPECT_EQ(decode_connect_request(body.first(n)).code(), ErrorCode::MarshallingError)
        << "cut at " << n;
  }
}

TEST(Handshake, ResponseIs37BytesWithReadOnlyAnd36Without) {
  ConnectResponse resp;
  resp.timeout_ms = 10000;
  resp.session_id = SessionId(0x0100000000000002);
  resp.password = std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10");
  Bytes out;
  append_connect_response_frame(out, resp);
  EXPECT_EQ(to_hex(out), to_hex(hex("00000025 00000000 00002710 0100000000000002 00000010"
                                    "0102030405060708090a0b0c0d0e0f10 00")));
  EXPECT_EQ(payload_of(out).size(), 37u);
  auto back = decode_connect_response(payload_of(out));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, resp);

  resp.has_read_only = false;
  Bytes old;
  append_connect_response_frame(old, resp);
  EXPECT_EQ(payload_of(old).size(), 36u);
  EXPECT_EQ(to_hex(old).substr(0, 8), "00000024");
  auto back_old = decode_connect_response(payload_of(old));
  ASSERT_TRUE(back_old.ok());
  EXPECT_FALSE(back_old->has_read_only);
}

TEST(Handshake, InvalidSessionReplyIsAllZero) {
  Bytes out;
  append_connect_response_frame(out, invalid_session_response(true));
  EXPECT_EQ(to_hex(out), to_hex(hex("00000025 00000000 00000000 0000000000000000 00000010"
                                    "00000000000000000000000000000000 00")));
}

TEST(HandshakeDeathTest, ResponsePasswordMustBe16Bytes) {
  ConnectResponse resp;
  resp.password = "short";
  Bytes out;
  EXPECT_DEATH(append_connect_response_frame(out, resp), "16 bytes");
}

// ---- requests ------------------------------------------------------------------

TEST(Request, PingIsHeaderOnly) {
  EXPECT_EQ(to_hex(request_frame(xid_ping, OpCode::Ping, Empty{})),
            to_hex(hex("00000008 fffffffe 0000000b")));
}

TEST(Request, GetDataWithWatch) {
  const Bytes frame = request_frame(1, OpCode::GetData, GetDataRequest{"/a", true});
  EXPECT_EQ(to_hex(frame), to_hex(hex("0000000f 00000001 00000004 00000002" + ascii("/a") + "01")));
  auto req = decode_request(payload_of(frame));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->header, (RequestHeader{1, OpCode::GetData}));
  EXPECT_EQ(std::get<GetDataRequest>(req->body), (GetDataRequest{"/a", true}));
}

TEST(Request, CreateEphemeralWithOpenAcl) {
  CreateRequest c{"/a", std::string("hi"), open_acl_unsafe(), CreateMode::Ephemeral};
  const Bytes frame = request_frame(2, OpCode::Create, c);
  const std::string body = "00000002 00000001 00000002" + ascii("/a") + "00000002" + ascii("hi") +
                           kOpenAclHex + "00000001";
  const Bytes expect_body = hex(body);
  EXPECT_EQ(to_hex(payload_of(frame)), to_hex(expect_body));
  auto req = decode_request(payload_of(frame));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(std::get<CreateRequest>(req->body), c);
}

TEST(Request, NullDataIsDistinctFromEmpty) {
  const Bytes null_data = request_frame(3, OpCode::SetData, SetDataRequest{"/a", std::nullopt, -1});
  const Bytes empty_data = request_frame(3, OpCode::SetData, SetDataRequest{"/a", "", -1});
  EXPECT_EQ(to_hex(payload_of(null_data)),
            to_hex(hex("00000003 00000005 00000002" + ascii("/a") + "ffffffff ffffffff")));
  EXPECT_EQ(to_hex(payload_of(empty_data)),
            to_hex(hex("00000003 00000005 00000002" + ascii("/a") + "00000000 ffffffff")));
  auto a = decode_request(payload_of(null_data));
  auto b = decode_request(payload_of(empty_data));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(std::get<SetDataRequest>(a->body).data.has_value());
  EXPECT_EQ(std::get<SetDataRequest>(b->body).data, std::optional<std::string>(""));
}

TEST(Request, CreateTtl) {
  CreateTtlRequest c{"/t", std::nullopt, open_acl_unsafe(), CreateMode::PersistentWithTtl, 5000};
  const Bytes frame = request_frame(4, OpCode::CreateTtl, c);
  EXPECT_EQ(to_hex(payload_of(frame)),
            to_hex(hex("00000004 00000015 00000002" + ascii("/t") + "ffffffff" + kOpenAclHex +
                       "00000005 0000000000001388")));
}

TEST(Request, AuthDigest) {
  const Bytes frame = request_frame(xid_auth, OpCode::Auth, AuthPacket{0, "digest", "u:p"});
  EXPECT_EQ(to_hex(payload_of(frame)), to_hex(hex("fffffffc 00000064 00000000 00000006" +
                                                  ascii("digest") + "00000003" + ascii("u:p"))));
}

TEST(Request, SetWatches2) {
  SetWatches2 sw{Zxid(0x10), {"/d"}, {}, {"/c1", "/c2"}, {}, {"/r"}};
  const Bytes frame = request_frame(xid_set_watches, OpCode::SetWatches2, sw);
  EXPECT_EQ(to_hex(payload_of(frame)), to_hex(hex("fffffff8 00000069 0000000000000010"
                                                  "00000001 00000002" +
                                                  ascii("/d") +
                                                  "00000000"
                                                  "00000002 00000003" +
                                                  ascii("/c1") + "00000003" + ascii("/c2") +
                                                  "00000000"
                                                  "00000001 00000002" +
                                                  ascii("/r"))));
}

TEST(Request, NullVectorReadsAsEmpty) {
  const Bytes body = hex("0000000000000010 ffffffff ffffffff ffffffff");
  auto sw = decode_request_body(OpCode::SetWatches, body);
  ASSERT_TRUE(sw.ok()) << sw.status();
  EXPECT_TRUE(std::get<SetWatches>(*sw).data_watches.empty());
}

// ZooKeeper 3.8 answers a null path with MarshallingError, not as "".
TEST(Request, NullPathIsAMarshallingError) {
  EXPECT_EQ(decode_request_body(OpCode::GetData, hex("ffffffff 00")).code(),
            ErrorCode::MarshallingError);
  EXPECT_EQ(decode_request_body(OpCode::Delete, hex("ffffffff ffffffff")).code(),
            ErrorCode::MarshallingError);
  EXPECT_TRUE(decode_request_body(OpCode::Delete, hex("00000000 ffffffff")).ok());
}

TEST(Request, WhoAmIAndCloseSessionHaveNoBody) {
  EXPECT_EQ(to_hex(request_frame(9, OpCode::WhoAmI, Empty{})),
            to_hex(hex("00000008 00000009 0000006b")));
  EXPECT_EQ(to_hex(request_frame(10, OpCode::CloseSession, Empty{})),
            to_hex(hex("00000008 0000000a fffffff5")));
}

// create /m (null data), setData /m "v", check /m version 0: docs/PROTOCOL.md §7's layout.
const std::string kMultiHex =
    "00000003 0000000e"
    "00000001 00 ffffffff"
    "00000002" +
    ascii("/m") + "ffffffff" + kOpenAclHex +
    "00000000"
    "00000005 00 ffffffff"
    "00000002" +
    ascii("/m") + "00000001" + ascii("v") +
    "ffffffff"
    "0000000d 00 ffffffff"
    "00000002" +
    ascii("/m") +
    "00000000"
    "ffffffff 01 ffffffff";

MultiRequest sample_multi() {
  MultiRequest m;
  m.ops.push_back({OpCode::Create,
                   CreateRequest{"/m", std::nullopt, open_acl_unsafe(), CreateMode::Persistent}});
  m.ops.push_back({OpCode::SetData, SetDataRequest{"/m", "v", -1}});
  m.ops.push_back({OpCode::Check, CheckVersionRequest{"/m", 0}});
  return m;
}

TEST(Multi, RequestLayout) {
  const Bytes frame = request_frame(3, OpCode::Multi, sample_multi());
  EXPECT_EQ(to_hex(frame), "0000006e" + to_hex(hex(kMultiHex)));
  auto req = decode_request(payload_of(frame));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(std::get<MultiRequest>(req->body), sample_multi());
}

TEST(Multi, EmptyMultiIsLegal) {
  const Bytes frame = request_frame(3, OpCode::Multi, MultiRequest{});
  EXPECT_EQ(to_hex(payload_of(frame)), to_hex(hex("00000003 0000000e ffffffff 01 ffffffff")));
  auto req = decode_request(payload_of(frame));
  ASSERT_TRUE(req.ok());
  EXPECT_TRUE(std::get<MultiRequest>(req->body).ops.empty());
}

TEST(Multi, ReadOpInWriteMultiIsRejected) {
  const Bytes body = hex("00000004 00 ffffffff 00000002" + ascii("/m") + "00 ffffffff 01 ffffffff");
  EXPECT_EQ(decode_request_body(OpCode::Multi, body).code(), ErrorCode::MarshallingError);
  auto ok = decode_request_body(OpCode::MultiRead, body);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(std::get<MultiRequest>(*ok).ops.at(0).type, OpCode::GetData);
}

TEST(Multi, WriteOpInMultiReadIsRejected) {
  const Bytes body =
      hex("00000002 00 ffffffff 00000002" + ascii("/m") + "ffffffff ffffffff 01 ffffffff");
  EXPECT_TRUE(decode_request_body(OpCode::Multi, body).ok());
  EXPECT_EQ(decode_request_body(OpCode::MultiRead, body).code(), ErrorCode::MarshallingError);
}

TEST(Multi, UnknownOpTypeOrMissingEndIsRejected) {
  EXPECT_EQ(decode_request_body(OpCode::Multi, hex("00000007 00 ffffffff")).code(),
            ErrorCode::MarshallingError);
  // A create with no terminating header.
  EXPECT_EQ(decode_request_body(OpCode::Multi,
                                hex("00000002 00 ffffffff 00000002" + ascii("/m") + "ffffffff"))
                .code(),
            ErrorCode::MarshallingError);
}

TEST(Multi, FailedResponseShapeOf38) {
  // Op 1 was fine (rolled back: err 0), op 2 failed with NoNode, op 3 never ran (-2).
  MultiResponse resp;
  resp.results.push_back({OpCode::Error, ErrorCode::Ok, "", {}, {}, {}});
  resp.results.push_back({OpCode::Error, ErrorCode::NoNode, "", {}, {}, {}});
  resp.results.push_back({OpCode::Error, ErrorCode::RuntimeInconsistency, "", {}, {}, {}});
  const Bytes frame = reply_frame(3, 7, ErrorCode::Ok, resp);
  EXPECT_EQ(to_hex(frame), to_hex(hex("00000040 00000003 0000000000000007 00000000"
                                      "ffffffff 00 00000000 00000000"
                                      "ffffffff 00 ffffff9b ffffff9b"
                                      "ffffffff 00 fffffffe fffffffe"
                                      "ffffffff 01 ffffffff")));
  JuteReader r(payload_of(frame));
  auto header = decode_reply_header(r);
  ASSERT_TRUE(header.ok());
  auto body = decode_response_body(OpCode::Multi, r.rest());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(std::get<MultiResponse>(*body), resp);
}

TEST(Multi, SuccessfulResponseShapes) {
  MultiResponse resp;
  resp.results.push_back({OpCode::Create, ErrorCode::Ok, "/m", {}, {}, {}});
  resp.results.push_back({OpCode::Create2, ErrorCode::Ok, "/c", sample_stat(), {}, {}});
  resp.results.push_back({OpCode::SetData, ErrorCode::Ok, "", sample_stat(), {}, {}});
  resp.results.push_back({OpCode::Delete, ErrorCode::Ok, "", {}, {}, {}});
  resp.results.push_back({OpCode::Check, ErrorCode::Ok, "", {}, {}, {}});
  const Bytes frame = reply_frame(3, 7, ErrorCode::Ok, resp);
  EXPECT_EQ(to_hex(payload_of(frame)),
            to_hex(hex("00000003 0000000000000007 00000000"
                       "00000001 00 00000000 00000002" +
                       ascii("/m") + "0000000f 00 00000000 00000002" + ascii("/c") + kStatHex +
                       "00000005 00 00000000" + kStatHex +
                       "00000002 00 00000000"
                       "0000000d 00 00000000"
                       "ffffffff 01 ffffffff")));
  JuteReader r(payload_of(frame));
  ASSERT_TRUE(decode_reply_header(r).ok());
  auto body = decode_response_body(OpCode::Multi, r.rest());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(std::get<MultiResponse>(*body), resp);
}

TEST(Multi, MultiReadResultsMixDataAndErrors) {
  MultiResponse resp;
  resp.results.push_back({OpCode::GetData, ErrorCode::Ok, "", sample_stat(), "x", {}});
  resp.results.push_back({OpCode::Error, ErrorCode::NoNode, "", {}, {}, {}});
  resp.results.push_back({OpCode::GetChildren, ErrorCode::Ok, "", {}, {}, {"a", "b"}});
  const Bytes frame = reply_frame(4, 7, ErrorCode::Ok, resp);
  EXPECT_EQ(to_hex(payload_of(frame)),
            to_hex(hex("00000004 0000000000000007 00000000"
                       "00000004 00 00000000 00000001" +
                       ascii("x") + kStatHex +
                       "ffffffff 00 ffffff9b ffffff9b"
                       "00000008 00 00000000 00000002 00000001" +
                       ascii("a") + "00000001" + ascii("b") + "ffffffff 01 ffffffff")));
  JuteReader r(payload_of(frame));
  ASSERT_TRUE(decode_reply_header(r).ok());
  auto body = decode_response_body(OpCode::MultiRead, r.rest());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(std::get<MultiResponse>(*body), resp);
}

TEST(Multi, ResultHeaderErrRoundTripsAsHeld) {
  // Found by libFuzzer: a success-typed result whose header carries a
  // non-zero err must re-encode to the same value.
  const Bytes body = hex("00000002 00 ffffff9b ffffffff 01 ffffffff");
  auto first = decode_response_body(OpCode::Multi, body);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(std::get<MultiResponse>(*first).results.at(0).err, ErrorCode::NoNode);
  const Bytes frame = reply_frame(1, 1, ErrorCode::Ok, *first);
  JuteReader r(payload_of(frame));
  ASSERT_TRUE(decode_reply_header(r).ok());
  auto again = decode_response_body(OpCode::Multi, r.rest());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again == *first);
}

// ---- replies ---------------------------------------------------------------------

TEST(Reply, ErrorReplyOmitsTheBody) {
  const Bytes frame = reply_frame(1, 5, ErrorCode::NoNode, GetDataResponse{"x", sample_stat()});
  EXPECT_EQ(to_hex(frame), to_hex(hex("00000010 00000001 0000000000000005 ffffff9b")));
}

TEST(Reply, GetData) {
  const Bytes frame = reply_frame(1, 0x10, ErrorCode::Ok, GetDataResponse{"x", sample_stat()});
  EXPECT_EQ(to_hex(frame), to_hex(hex("00000059 00000001 0000000000000010 00000000"
                                      "00000001" +
                                      ascii("x") + kStatHex)));
}

TEST(Reply, PingReply) {
  EXPECT_EQ(to_hex(reply_frame(xid_ping, 0x20, ErrorCode::Ok, Empty{})),
            to_hex(hex("00000010 fffffffe 0000000000000020 00000000")));
}

TEST(Reply, AddWatchBodyIsIntZero) {
  EXPECT_EQ(to_hex(reply_frame(5, 9, ErrorCode::Ok, ErrorResponse{ErrorCode::Ok})),
            to_hex(hex("00000014 00000005 0000000000000009 00000000 00000000")));
}

TEST(Reply, WhoAmI) {
  WhoAmIResponse who{{{"ip", "127.0.0.1"}, {"digest", "user"}}};
  const Bytes frame = reply_frame(6, 9, ErrorCode::Ok, who);
  EXPECT_EQ(to_hex(payload_of(frame)),
            to_hex(hex("00000006 0000000000000009 00000000 00000002"
                       "00000002" +
                       ascii("ip") + "00000009" + ascii("127.0.0.1") + "00000006" +
                       ascii("digest") + "00000004" + ascii("user"))));
}

TEST(WatchEvent, FrameLayout) {
  Bytes frame;
  append_watch_event_frame(
      frame, Zxid(-1), WatcherEvent{EventType::NodeDataChanged, KeeperState::SyncConnected, "/a"});
  EXPECT_EQ(to_hex(frame), to_hex(hex("0000001e ffffffff ffffffffffffffff 00000000"
                                      "00000003 00000003 00000002" +
                                      ascii("/a"))));
  JuteReader r(payload_of(frame));
  auto header = decode_reply_header(r);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->xid, xid_watch_event);
  auto ev = decode_watcher_event(r.rest());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, EventType::NodeDataChanged);
  EXPECT_EQ(ev->path, "/a");
}

// ---- round trips of every record -----------------------------------------------

struct RequestSample {
  OpCode op;
  RequestBody body;
};

std::vector<RequestSample> request_samples() {
  return {
      {OpCode::Create,
       CreateRequest{"/a", "d", open_acl_unsafe(), CreateMode::EphemeralSequential}},
      {OpCode::Create2,
       CreateRequest{"/a", std::nullopt, creator_all_acl(), CreateMode::Persistent}},
      {OpCode::CreateContainer, CreateRequest{"/c", "", read_acl_unsafe(), CreateMode::Container}},
      {OpCode::CreateTtl, CreateTtlRequest{"/t", "x", open_acl_unsafe(),
                                           CreateMode::PersistentSequentialWithTtl, 1234}},
      {OpCode::Delete, DeleteRequest{"/a", 3}},
      {OpCode::Exists, ExistsRequest{"/a", true}},
      {OpCode::GetData, GetDataRequest{"/a", false}},
      {OpCode::SetData, SetDataRequest{"/a", std::string(1000, 'z'), 7}},
      {OpCode::GetAcl, GetAclRequest{"/a"}},
      {OpCode::SetAcl, SetAclRequest{"/a", {{perm::read, {"digest", "u:hash"}}}, 2}},
      {OpCode::GetChildren, GetChildrenRequest{"/", true}},
      {OpCode::GetChildren2, GetChildren2Request{"/", false}},
      {OpCode::Sync, SyncRequest{"/"}},
      {OpCode::Check, CheckVersionRequest{"/a", 1}},
      {OpCode::Multi, sample_multi()},
      {OpCode::MultiRead, MultiRequest{{{OpCode::GetData, GetDataRequest{"/a", false}},
                                        {OpCode::GetChildren, GetChildrenRequest{"/", false}}}}},
      {OpCode::Reconfig, ReconfigRequest{"a", "b", "", -1}},
      {OpCode::CheckWatches, CheckWatchesRequest{"/a", WatcherType::Data}},
      {OpCode::RemoveWatches, RemoveWatchesRequest{"/a", WatcherType::Any}},
      {OpCode::Auth, AuthPacket{0, "digest", "u:p"}},
      {OpCode::SetWatches, SetWatches{Zxid(99), {"/a"}, {"/b"}, {"/c"}}},
      {OpCode::Sasl, GetSaslRequest{std::nullopt}},
      {OpCode::GetEphemerals, GetEphemeralsRequest{"/"}},
      {OpCode::GetAllChildrenNumber, GetAllChildrenNumberRequest{"/"}},
      {OpCode::SetWatches2, SetWatches2{Zxid(1), {}, {}, {}, {"/p"}, {"/r"}}},
      {OpCode::AddWatch, AddWatchRequest{"/r", AddWatchMode::PersistentRecursive}},
      {OpCode::WhoAmI, Empty{}},
      {OpCode::Ping, Empty{}},
      {OpCode::CloseSession, Empty{}},
  };
}

TEST(RoundTrip, EveryRequestRecord) {
  std::set<std::size_t> covered;
  for (const RequestSample& s : request_samples()) {
    const Bytes frame = request_frame(42, s.op, s.body);
    auto req = decode_request(payload_of(frame));
    ASSERT_TRUE(req.ok()) << op_name(s.op) << ": " << req.status();
    EXPECT_EQ(req->header.type, s.op);
    EXPECT_TRUE(req->body == s.body) << op_name(s.op);
    covered.insert(s.body.index());
  }
  EXPECT_EQ(covered.size(), std::variant_size_v<RequestBody>) << "a request record has no sample";
}

TEST(RoundTrip, EveryResponseRecord) {
  const std::vector<std::pair<OpCode, ResponseBody>> samples = {
      {OpCode::Create, CreateResponse{"/a0000000001"}},
      {OpCode::Create2, Create2Response{"/a", sample_stat()}},
      {OpCode::Exists, ExistsResponse{sample_stat()}},
      {OpCode::GetData, GetDataResponse{std::nullopt, sample_stat()}},
      {OpCode::SetData, SetDataResponse{sample_stat()}},
      {OpCode::GetAcl, GetAclResponse{open_acl_unsafe(), sample_stat()}},
      {OpCode::SetAcl, SetAclResponse{sample_stat()}},
      {OpCode::GetChildren, GetChildrenResponse{{"a", "b", "c"}}},
      {OpCode::GetChildren2, GetChildren2Response{{}, sample_stat()}},
      {OpCode::Sync, SyncResponse{"/"}},
      {OpCode::Multi, MultiResponse{}},
      {OpCode::GetEphemerals, GetEphemeralsResponse{{"/e1", "/x/e2"}}},
      {OpCode::GetAllChildrenNumber, GetAllChildrenNumberResponse{12345}},
      {OpCode::WhoAmI, WhoAmIResponse{{{"ip", "127.0.0.1"}}}},
      {OpCode::AddWatch, ErrorResponse{ErrorCode::Ok}},
      {OpCode::Sasl, SetSaslResponse{std::string("tok")}},
      {OpCode::Delete, Empty{}},
  };
  std::set<std::size_t> covered;
  for (const auto& [op, body] : samples) {
    const Bytes frame = reply_frame(42, 9, ErrorCode::Ok, body);
    JuteReader r(payload_of(frame));
    auto header = decode_reply_header(r);
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(*header, (ReplyHeader{42, Zxid(9), ErrorCode::Ok}));
    auto back = decode_response_body(op, r.rest());
    ASSERT_TRUE(back.ok()) << op_name(op) << ": " << back.status();
    EXPECT_TRUE(*back == body) << op_name(op);
    covered.insert(body.index());
  }
  EXPECT_EQ(covered.size(), std::variant_size_v<ResponseBody>) << "a reply record has no sample";
}

// ---- malformed input ---------------------------------------------------------------

TEST(Malformed, EveryTruncationOfEveryRequestFailsCleanly) {
  for (const RequestSample& s : request_samples()) {
    const Bytes frame = request_frame(42, s.op, s.body);
    const ByteSpan payload = payload_of(frame);
    for (std::size_t n = 0; n < payload.size(); ++n) {
      auto req = decode_request(payload.first(n));
      // A body-less op is complete after its 8-byte header; nothing shorter is.
      EXPECT_FALSE(req.ok()) << op_name(s.op) << " cut at " << n << " of " << payload.size();
      if (!req.ok()) {
        EXPECT_EQ(req.code(), ErrorCode::MarshallingError);
      }
    }
  }
}

TEST(Malformed, TrailingBytesAfterARequestAreRejected) {
  for (const RequestSample& s : request_samples()) {
    Bytes frame = request_frame(42, s.op, s.body);
    const ByteSpan payload = payload_of(frame);
    Bytes longer(payload.begin(), payload.end());
    longer.push_back(0);
    EXPECT_EQ(decode_request(longer).code(), ErrorCode::MarshallingError) << op_name(s.op);
  }
}

TEST(Malformed, LyingStringLength) {
  // getData whose path claims 100 bytes but carries 2.
  const Bytes body = hex("00000064" + ascii("/a") + "00");
  auto r = decode_request_body(OpCode::GetData, body);
  EXPECT_EQ(r.code(), ErrorCode::MarshallingError);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
}

TEST(Malformed, NegativeLengthsOtherThanMinusOne) {
  EXPECT_EQ(decode_request_body(OpCode::GetData, hex("fffffffe 00")).code(),
            ErrorCode::MarshallingError);
  EXPECT_EQ(decode_request_body(OpCode::SetData, hex("00000001 2f 80000000 ffffffff")).code(),
            ErrorCode::MarshallingError);
  EXPECT_EQ(
      decode_request_body(OpCode::SetWatches, hex("0000000000000000 fffffff0 00000000 00000000"))
          .code(),
      ErrorCode::MarshallingError);
}

TEST(Malformed, VectorCountBeyondWhatTheBytesCanHold) {
  // 1,000 ACL entries announced, 12 bytes available: refused before allocation.
  const Bytes body = hex("00000001 2f 000003e8 000000000000000000000000 ffffffff");
  auto r = decode_request_body(OpCode::SetAcl, body);
  EXPECT_EQ(r.code(), ErrorCode::MarshallingError);
  EXPECT_NE(r.status().message().find("cannot fit"), std::string::npos) << r.status();
  // More elements than jute_vector_elements_max.
  const Bytes huge = hex("0000000000000000 7fffffff");
  auto h = decode_request_body(OpCode::SetWatches, huge);
  EXPECT_EQ(h.code(), ErrorCode::MarshallingError);
  EXPECT_NE(h.status().message().find("limit"), std::string::npos) << h.status();
}

TEST(Malformed, StringLongerThanTheJuteLimit) {
  Bytes body;
  JuteWriter w(body);
  const std::size_t n = limits::jute_string_bytes_max + 1;
  w.write_int(static_cast<std::int32_t>(n));
  body.resize(body.size() + n, 'a');
  w.write_bool(false);
  auto r = decode_request_body(OpCode::GetData, body);
  EXPECT_EQ(r.code(), ErrorCode::MarshallingError);
  EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status();
}

TEST(Malformed, UnknownAndInternalOpcodesAreUnimplemented) {
  EXPECT_EQ(decode_request_body(static_cast<OpCode>(99), {}).code(), ErrorCode::Unimplemented);
  EXPECT_EQ(decode_request_body(OpCode::CreateSession, {}).code(), ErrorCode::Unimplemented);
  EXPECT_EQ(decode_request_body(OpCode::Notification, {}).code(), ErrorCode::Unimplemented);
  EXPECT_EQ(decode_request_body(OpCode::DeleteContainer, {}).code(), ErrorCode::Unimplemented);
  // The header alone still decodes, so a server can answer with the xid.
  const Bytes payload = hex("00000007 00000063");
  JuteReader r(payload);
  auto header = decode_request_header(r);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->xid, 7);
}

TEST(Malformed, ReplyBodyErrors) {
  // A Stat cut short.
  EXPECT_EQ(decode_response_body(OpCode::Exists, hex("00000000")).code(),
            ErrorCode::MarshallingError);
  // Trailing byte after a sync reply.
  EXPECT_EQ(decode_response_body(OpCode::Sync, hex("00000001 2f 00")).code(),
            ErrorCode::MarshallingError);
  // A multi reply with a result type that has no shape.
  EXPECT_EQ(decode_response_body(OpCode::Multi, hex("00000003 00 00000000")).code(),
            ErrorCode::MarshallingError);
  // Watcher event with a negative path length.
  EXPECT_EQ(decode_watcher_event(hex("00000001 00000003 fffffff0")).code(),
            ErrorCode::MarshallingError);
}

}  // namespace
}  // namespace coord::protocol
