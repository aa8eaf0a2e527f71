#include "coord/protocol/codec.h"

#include <string>
#include <utility>

#include "coord/base/bytes.h"
#include "coord/base/limits.h"

namespace coord::protocol {

namespace {

template <std::size_t I, typename Variant>
Status decode_into(JuteReader& r, Variant& out) {
  using jute::get;
  return get(r, out.template emplace<I>());
}

// Decodes alternative `index` of Variant, chosen at run time from the op table.
template <typename Variant, std::size_t... I>
Status decode_alternative(std::size_t index, JuteReader& r, Variant& out,
                          std::index_sequence<I...>) {
  Status s(ErrorCode::MarshallingError, "no such record");
  (void)((index == I ? (s = decode_into<I>(r, out), true) : false) || ...);
  return s;
}

template <typename Variant>
Status decode_variant(std::size_t index, JuteReader& r, Variant& out) {
  return decode_alternative(index, r, out,
                            std::make_index_sequence<std::variant_size_v<Variant>>());
}

template <typename Variant>
void put_variant(JuteWriter& w, const Variant& v) {
  std::visit(
      [&w](const auto& rec) {
        using jute::put;
        put(w, rec);
      },
      v);
}

}  // namespace

void append_connect_request_frame(Bytes& out, const ConnectRequest& req) {
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  put(w, req);
  w.end_frame(at);
}

void append_connect_response_frame(Bytes& out, const ConnectResponse& resp) {
  COORD_ASSERT(resp.password.size() == limits::session_password_bytes,
               "a ConnectResponse password must be 16 bytes, not ", resp.password.size());
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  put(w, resp);
  w.end_frame(at);
}

Result<ConnectRequest> decode_connect_request(ByteSpan payload) {
  return decode_record<ConnectRequest>(payload);
}

Result<ConnectResponse> decode_connect_response(ByteSpan payload) {
  return decode_record<ConnectResponse>(payload);
}

ConnectResponse invalid_session_response(bool has_read_only) {
  ConnectResponse r;
  r.timeout_ms = 0;
  r.session_id = SessionId(0);
  r.password.assign(limits::session_password_bytes, '\0');
  r.read_only = false;
  r.has_read_only = has_read_only;
  return r;
}

void append_request_frame(Bytes& out, const RequestHeader& header, const RequestBody& body) {
  const OpInfo* op = find_op(header.type);
  COORD_ASSERT(op == nullptr || op->request == record_of(body), "request body ",
               request_record_name(record_of(body)), " does not fit opcode ", to_int(header.type));
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  jute::put(w, header);
  put_variant(w, body);
  w.end_frame(at);
}

Result<RequestHeader> decode_request_header(JuteReader& r) {
  RequestHeader h;
  COORD_RETURN_IF_ERROR(jute::get(r, h));
  return h;
}

namespace {

// Whether ZooKeeper 3.8 answers a request holding a null string with
// MarshallingError, as probed on a real server: it does for a null path in
// the ops that dereference it before validating (a NullPointerException);
// setData, setACL, check and removeWatches validate first (BadArguments,
// NoWatcher), and sync, getEphemerals and addWatch accept it as "". A null
// ACL scheme or id is InvalidAcl, a null auth scheme AuthFailed: both as
// for "".
bool null_string_refused(OpCode type, ByteSpan rest) {
  const bool null_path = rest.size() >= 4 && get_be32(rest.data()) == 0xffffffffu;
  switch (type) {
    case OpCode::Create:
    case OpCode::Create2:
    case OpCode::CreateContainer:
    case OpCode::CreateTtl:
    case OpCode::Delete:
    case OpCode::Exists:
    case OpCode::GetData:
    case OpCode::GetAcl:
    case OpCode::GetChildren:
    case OpCode::GetChildren2:
    case OpCode::CheckWatches:
    case OpCode::GetAllChildrenNumber:
      return null_path;
    case OpCode::SetWatches:
    case OpCode::SetWatches2:
    case OpCode::Multi:
    case OpCode::MultiRead:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<RequestBody> decode_request_body(OpCode type, ByteSpan rest) {
  const OpInfo* op = find_op(type);
  if (op == nullptr || op->kind == OpKind::Internal) {
    return Status(ErrorCode::Unimplemented,
                  "opcode " + std::to_string(to_int(type)) + " is not a client request");
  }
  JuteReader r(rest);
  RequestBody body;
  COORD_RETURN_IF_ERROR(decode_variant(static_cast<std::size_t>(op->request), r, body));
  COORD_RETURN_IF_ERROR(r.expect_end(op->name));
  if (r.saw_null_string() && null_string_refused(type, rest)) {
    return Status(ErrorCode::MarshallingError, std::string(op->name) + " holds a null path");
  }
  if (const auto* multi = std::get_if<MultiRequest>(&body)) {
    const bool read = type == OpCode::MultiRead;
    for (const MultiOp& m : multi->ops) {
      const OpInfo* inner = find_op(m.type);
      const bool allowed = inner != nullptr && (read ? inner->in_multi_read : inner->in_multi);
      if (!allowed) {
        return Status(ErrorCode::MarshallingError,
                      std::string(op->name) + " cannot hold op " + std::to_string(to_int(m.type)));
      }
    }
  }
  return body;
}

Result<Request> decode_request(ByteSpan payload) {
  JuteReader r(payload);
  auto header = decode_request_header(r);
  if (!header.ok()) return header.status();
  auto body = decode_request_body(header->type, r.rest());
  if (!body.ok()) return body.status();
  return Request{*header, std::move(*body)};
}

void append_reply_frame(Bytes& out, const ReplyHeader& header, const ResponseBody& body) {
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  jute::put(w, header);
  if (header.err == ErrorCode::Ok) put_variant(w, body);
  w.end_frame(at);
}

void append_watch_event_frame(Bytes& out, Zxid zxid, const WatcherEvent& event) {
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  jute::put(w, ReplyHeader{xid_watch_event, zxid, ErrorCode::Ok});
  jute::put(w, event);
  w.end_frame(at);
}

Result<ReplyHeader> decode_reply_header(JuteReader& r) {
  ReplyHeader h;
  COORD_RETURN_IF_ERROR(jute::get(r, h));
  return h;
}

Result<ResponseBody> decode_response_body(OpCode type, ByteSpan rest) {
  const OpInfo* op = find_op(type);
  if (op == nullptr) {
    return Status(ErrorCode::Unimplemented,
                  "opcode " + std::to_string(to_int(type)) + " has no reply record");
  }
  JuteReader r(rest);
  ResponseBody body;
  COORD_RETURN_IF_ERROR(decode_variant(static_cast<std::size_t>(op->response), r, body));
  COORD_RETURN_IF_ERROR(r.expect_end(op->name));
  return body;
}

Result<WatcherEvent> decode_watcher_event(ByteSpan rest) {
  return decode_record<WatcherEvent>(rest);
}

}  // namespace coord::protocol
