// Hand-written codecs: the handshake (optional trailing readOnly byte) and
// multi (op-dependent bodies between MultiHeaders).
#include "coord/protocol/records.h"

#include <string>

namespace coord::protocol {

namespace {

Status marshalling(std::string message) {
  return Status(ErrorCode::MarshallingError, std::move(message));
}

// The optional readOnly byte that ends both handshake records.
Status get_trailing_read_only(JuteReader& r, bool& has, bool& value, std::string_view what) {
  if (r.at_end()) {
    has = false;
    value = false;
    return Status();
  }
  if (r.remaining() > 1) {
    return marshalling(std::to_string(r.remaining()) + " bytes after the " + std::string(what) +
                       " password; at most the readOnly byte may follow");
  }
  has = true;
  return r.read_bool(value);
}

}  // namespace

bool MultiOp::body_matches(OpCode type, const Body& op) {
  switch (type) {
    case OpCode::Create:
    case OpCode::Create2:
    case OpCode::CreateContainer:
      return std::holds_alternative<CreateRequest>(op);
    case OpCode::CreateTtl:
      return std::holds_alternative<CreateTtlRequest>(op);
    case OpCode::Delete:
      return std::holds_alternative<DeleteRequest>(op);
    case OpCode::SetData:
      return std::holds_alternative<SetDataRequest>(op);
    case OpCode::Check:
      return std::holds_alternative<CheckVersionRequest>(op);
    case OpCode::GetData:
      return std::holds_alternative<GetDataRequest>(op);
    case OpCode::GetChildren:
      return std::holds_alternative<GetChildrenRequest>(op);
    default:
      return false;
  }
}

void put(JuteWriter& w, const ConnectRequest& r) {
  w.write_int(r.protocol_version);
  w.write_long(r.last_zxid_seen.value());
  w.write_int(r.timeout_ms);
  w.write_long(r.session_id.value());
  w.write_string(r.password);
  if (r.has_read_only) w.write_bool(r.read_only);
}

void put(JuteWriter& w, const ConnectResponse& r) {
  w.write_int(r.protocol_version);
  w.write_int(r.timeout_ms);
  w.write_long(r.session_id.value());
  w.write_string(r.password);
  if (r.has_read_only) w.write_bool(r.read_only);
}

Status get(JuteReader& r, ConnectRequest& v) {
  std::int64_t zxid = 0;
  std::int64_t session = 0;
  COORD_RETURN_IF_ERROR(r.read_int(v.protocol_version));
  COORD_RETURN_IF_ERROR(r.read_long(zxid));
  COORD_RETURN_IF_ERROR(r.read_int(v.timeout_ms));
  COORD_RETURN_IF_ERROR(r.read_long(session));
  COORD_RETURN_IF_ERROR(r.read_string(v.password));
  v.last_zxid_seen = Zxid(zxid);
  v.session_id = SessionId(session);
  return get_trailing_read_only(r, v.has_read_only, v.read_only, "ConnectRequest");
}

Status get(JuteReader& r, ConnectResponse& v) {
  std::int64_t session = 0;
  COORD_RETURN_IF_ERROR(r.read_int(v.protocol_version));
  COORD_RETURN_IF_ERROR(r.read_int(v.timeout_ms));
  COORD_RETURN_IF_ERROR(r.read_long(session));
  COORD_RETURN_IF_ERROR(r.read_string(v.password));
  v.session_id = SessionId(session);
  return get_trailing_read_only(r, v.has_read_only, v.read_only, "ConnectResponse");
}

void put(JuteWriter& w, const MultiRequest& r) {
  using jute::put;
  for (const MultiOp& op : r.ops) {
    COORD_ASSERT(MultiOp::body_matches(op.type, op.op), "multi op ", to_int(op.type),
                 " carries the wrong record");
    put(w, MultiHeader{op.type, false, static_cast<ErrorCode>(-1)});
    std::visit([&w](const auto& body) { put(w, body); }, op.op);
  }
  put(w, MultiHeader{});
}

Status get(JuteReader& r, MultiRequest& v) {
  using jute::get;
  v.ops.clear();
  while (true) {
    MultiHeader h;
    COORD_RETURN_IF_ERROR(get(r, h));
    if (h.done) return Status();
    if (v.ops.size() >= limits::multi_ops_max) {
      return marshalling("multi holds more than " + std::to_string(limits::multi_ops_max) + " ops");
    }
    MultiOp op;
    op.type = h.type;
    Status s;
    switch (h.type) {
      case OpCode::Create:
      case OpCode::Create2:
      case OpCode::CreateContainer:
        s = get(r, op.op.emplace<CreateRequest>());
        break;
      case OpCode::CreateTtl:
        s = get(r, op.op.emplace<CreateTtlRequest>());
        break;
      case OpCode::Delete:
        s = get(r, op.op.emplace<DeleteRequest>());
        break;
      case OpCode::SetData:
        s = get(r, op.op.emplace<SetDataRequest>());
        break;
      case OpCode::Check:
        s = get(r, op.op.emplace<CheckVersionRequest>());
        break;
      case OpCode::GetData:
        s = get(r, op.op.emplace<GetDataRequest>());
        break;
      case OpCode::GetChildren:
        s = get(r, op.op.emplace<GetChildrenRequest>());
        break;
      default:
        return marshalling("op type " + std::to_string(to_int(h.type)) +
                           " cannot appear in a multi");
    }
    COORD_RETURN_IF_ERROR(s);
    v.ops.push_back(std::move(op));
  }
}

void put(JuteWriter& w, const MultiResponse& r) {
  using jute::put;
  for (const MultiResult& res : r.results) {
    // A success result's err is 0 unless a caller set otherwise; written
    // as held so that decode and encode are inverses.
    put(w, MultiHeader{res.type, false, res.err});
    switch (res.type) {
      case OpCode::Create:
        put(w, res.path);
        break;
      case OpCode::Create2:
        put(w, res.path);
        put(w, res.stat);
        break;
      case OpCode::Delete:
      case OpCode::Check:
        break;
      case OpCode::SetData:
        put(w, res.stat);
        break;
      case OpCode::GetChildren:
        put(w, res.children);
        break;
      case OpCode::GetData:
        put(w, res.data);
        put(w, res.stat);
        break;
      case OpCode::Error:
        put(w, res.err);
        break;
      default:
        COORD_UNREACHABLE("multi result of type ", to_int(res.type));
    }
  }
  put(w, MultiHeader{});
}

Status get(JuteReader& r, MultiResponse& v) {
  using jute::get;
  v.results.clear();
  while (true) {
    MultiHeader h;
    COORD_RETURN_IF_ERROR(get(r, h));
    if (h.done) return Status();
    if (v.results.size() >= limits::multi_ops_max) {
      return marshalling("multi reply holds more than " + std::to_string(limits::multi_ops_max) +
                         " results");
    }
    MultiResult res;
    res.type = h.type;
    res.err = h.err;
    switch (h.type) {
      case OpCode::Create:
        COORD_RETURN_IF_ERROR(get(r, res.path));
        break;
      case OpCode::Create2:
        COORD_RETURN_IF_ERROR(get(r, res.path));
        COORD_RETURN_IF_ERROR(get(r, res.stat));
        break;
      case OpCode::Delete:
      case OpCode::Check:
        break;
      case OpCode::SetData:
        COORD_RETURN_IF_ERROR(get(r, res.stat));
        break;
      case OpCode::GetChildren:
        COORD_RETURN_IF_ERROR(get(r, res.children));
        break;
      case OpCode::GetData:
        COORD_RETURN_IF_ERROR(get(r, res.data));
        COORD_RETURN_IF_ERROR(get(r, res.stat));
        break;
      case OpCode::Error:
        COORD_RETURN_IF_ERROR(get(r, res.err));
        break;
      default:
        return marshalling("result type " + std::to_string(to_int(h.type)) +
                           " cannot appear in a multi reply");
    }
    v.results.push_back(std::move(res));
  }
}

}  // namespace coord::protocol
