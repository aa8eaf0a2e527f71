// Whole messages of the client protocol: records to bytes and back.
//
// Encoders append complete frames (4-byte big-endian length + payload) to a
// caller-owned buffer, so a connection can batch many replies into one write
// without a copy per message. Decoders take one frame's payload (the length
// already stripped, see frame.h) and either return the decoded message or a
// Status: MarshallingError for bytes that do not form the record (short,
// lying or negative lengths, trailing bytes), Unimplemented for an opcode a
// client may not send. They never read outside the span and never allocate
// more than the span's size justifies.
//
// Who uses what: the server decodes ConnectRequest and requests and encodes
// ConnectResponse, replies and watch events; the SDK does the opposite.
// Thread safety: stateless functions.
#pragma once

#include <cstdint>

#include "coord/base/status.h"
#include "coord/protocol/jute.h"
#include "coord/protocol/records.h"

namespace coord::protocol {

// A decoded client request: header plus the record its opcode calls for.
struct Request {
  RequestHeader header;
  RequestBody body;
  friend bool operator==(const Request&, const Request&) = default;
};

// A decoded server message. Watch events come with xid -1 and a
// WatcherEvent instead of a reply body.
struct Reply {
  ReplyHeader header;
  ResponseBody body;
  friend bool operator==(const Reply&, const Reply&) = default;
};

// One record alone (no frame), e.g. for tests and nested use.
template <typename T>
Bytes encode_record(const T& rec) {
  Bytes out;
  JuteWriter w(out);
  using jute::put;
  put(w, rec);
  return out;
}

// Decodes exactly one T from `payload`; trailing bytes are an error.
template <typename T>
Result<T> decode_record(ByteSpan payload) {
  JuteReader r(payload);
  T rec{};
  using jute::get;
  COORD_RETURN_IF_ERROR(get(r, rec));
  COORD_RETURN_IF_ERROR(r.expect_end("record"));
  return rec;
}

// ---- handshake --------------------------------------------------------------

void append_connect_request_frame(Bytes& out, const ConnectRequest& req);
// The reply must carry a 16-byte password (asserted): fixed-offset parsers
// such as the C client depend on the 37-byte (36 without readOnly) body.
void append_connect_response_frame(Bytes& out, const ConnectResponse& resp);
// ConnectRequest: the readOnly byte is optional; more than one byte after
// the password is an error. ConnectResponse: the same rule.
Result<ConnectRequest> decode_connect_request(ByteSpan payload);
Result<ConnectResponse> decode_connect_response(ByteSpan payload);

// The reply a server sends for a wrong password or an unknown or expired
// session (docs/PROTOCOL.md §4.3): timeout 0, session 0, 16 zero bytes.
ConnectResponse invalid_session_response(bool has_read_only);

// ---- requests (client -> server) ---------------------------------------------

// The body must be the record the op table names for header.type (asserted).
void append_request_frame(Bytes& out, const RequestHeader& header, const RequestBody& body);

Result<RequestHeader> decode_request_header(JuteReader& r);
// Decodes the body for opcode `type` from `rest` (everything after the
// header). Unimplemented for an opcode outside the table or one a client
// never sends; MarshallingError for a body that does not decode, including
// a multi holding an op its kind does not allow.
Result<RequestBody> decode_request_body(OpCode type, ByteSpan rest);
// Header and body. A server that must answer Unimplemented with the
// request's xid decodes the header first (decode_request_header), then the
// body.
Result<Request> decode_request(ByteSpan payload);

// ---- replies (server -> client) ----------------------------------------------

// Writes the header, then the body only when header.err is Ok: ZooKeeper
// sends no body with an error (docs/PROTOCOL.md §5).
void append_reply_frame(Bytes& out, const ReplyHeader& header, const ResponseBody& body);
// ReplyHeader(-1, zxid, Ok) + WatcherEvent.
void append_watch_event_frame(Bytes& out, Zxid zxid, const WatcherEvent& event);

Result<ReplyHeader> decode_reply_header(JuteReader& r);
// The success body of opcode `type` (call only when the header's err is Ok;
// an error reply has no body).
Result<ResponseBody> decode_response_body(OpCode type, ByteSpan rest);
Result<WatcherEvent> decode_watcher_event(ByteSpan rest);

}  // namespace coord::protocol
