#include "coord/core/command.h"

#include <type_traits>

#include "coord/protocol/jute.h"

namespace coord::core {
namespace {

using protocol::Bytes;
using protocol::ByteSpan;
using protocol::JuteReader;
using protocol::JuteWriter;

constexpr std::uint8_t kVersion = 1;

// Wire tags; never reorder, only append.
enum class BodyTag : std::uint8_t { CreateSession = 1, CloseSession = 2, Txn = 3, MoveSession = 4 };
enum class TxnTag : std::uint8_t {
  Create = 1,
  Delete = 2,
  SetData = 3,
  SetAcl = 4,
  Check = 5,
  Multi = 6,
  CloseSession = 7,
  Reap = 8,
};

void put_acl(JuteWriter& w, const AclList& acl) {
  w.write_vector_count(acl.size());
  for (const Acl& a : acl)
    protocol::jute::put(w, a);
}

Status get_acl(JuteReader& r, AclList& acl) {
  std::size_t n = 0;
  COORD_RETURN_IF_ERROR(r.read_vector_count(n, 12));
  acl.resize(n);
  for (Acl& a : acl)
    COORD_RETURN_IF_ERROR(protocol::jute::get(r, a));
  return Status();
}

void put_op(JuteWriter& w, const znode::CreateOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::Create));
  w.write_string(op.path);
  w.write_buffer(op.data);
  put_acl(w, op.acl);
  w.write_int(static_cast<std::int32_t>(op.mode));
  w.write_long(op.ttl_ms);
}
void put_op(JuteWriter& w, const znode::DeleteOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::Delete));
  w.write_string(op.path);
  w.write_int(op.version);
}
void put_op(JuteWriter& w, const znode::SetDataOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::SetData));
  w.write_string(op.path);
  w.write_buffer(op.data);
  w.write_int(op.version);
}
void put_op(JuteWriter& w, const znode::SetAclOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::SetAcl));
  w.write_string(op.path);
  put_acl(w, op.acl);
  w.write_int(op.version);
}
void put_op(JuteWriter& w, const znode::CheckOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::Check));
  w.write_string(op.path);
  w.write_int(op.version);
}
void put_op(JuteWriter& w, const znode::MultiOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::Multi));
  w.write_vector_count(op.ops.size());
  for (const auto& sub : op.ops)
    std::visit([&](const auto& o) { put_op(w, o); }, sub);
}
void put_op(JuteWriter& w, const znode::CloseSessionOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::CloseSession));
  w.write_long(op.session.value());
}
void put_op(JuteWriter& w, const znode::ReapOp& op) {
  w.write_byte(static_cast<std::uint8_t>(TxnTag::Reap));
  w.write_string(op.path);
}

// About the bytes put_op writes for `op`, so that a command is encoded
// into one allocation: its paths and data, and a little for the fields
// around them (ACLs, versions, tags).
template <typename Op>
std::size_t op_bytes_hint(const Op& op) {
  std::size_t n = 32;
  if constexpr (requires { op.path; }) n += op.path.size();
  if constexpr (requires { op.data; }) n += op.data ? op.data->size() : 0;
  if constexpr (requires { op.ops; }) {
    for (const auto& sub : op.ops)
      n += std::visit([](const auto& o) { return op_bytes_hint(o); }, sub);
  }
  return n;
}

Status bad(std::string_view what) {
  return Status(ErrorCode::MarshallingError, "command: " + std::string(what));
}

Status get_txn(JuteReader& r, znode::Txn& out, bool nested);

Status get_create(JuteReader& r, znode::CreateOp& op) {
  COORD_RETURN_IF_ERROR(r.read_string(op.path));
  COORD_RETURN_IF_ERROR(r.read_buffer(op.data));
  COORD_RETURN_IF_ERROR(get_acl(r, op.acl));
  std::int32_t mode = 0;
  COORD_RETURN_IF_ERROR(r.read_int(mode));
  auto m = create_mode_from_int(mode);
  if (!m) return bad("unknown create mode");
  op.mode = *m;
  return r.read_long(op.ttl_ms);
}

// Reads the fields of the op whose tag was just read.
Status get_tagged(JuteReader& r, TxnTag tag, znode::Txn& out, bool nested) {
  switch (tag) {
    case TxnTag::Create: {
      znode::CreateOp op;
      COORD_RETURN_IF_ERROR(get_create(r, op));
      out = std::move(op);
      return Status();
    }
    case TxnTag::Delete: {
      znode::DeleteOp op;
      COORD_RETURN_IF_ERROR(r.read_string(op.path));
      COORD_RETURN_IF_ERROR(r.read_int(op.version));
      out = std::move(op);
      return Status();
    }
    case TxnTag::SetData: {
      znode::SetDataOp op;
      COORD_RETURN_IF_ERROR(r.read_string(op.path));
      COORD_RETURN_IF_ERROR(r.read_buffer(op.data));
      COORD_RETURN_IF_ERROR(r.read_int(op.version));
      out = std::move(op);
      return Status();
    }
    case TxnTag::Check: {
      znode::CheckOp op;
      COORD_RETURN_IF_ERROR(r.read_string(op.path));
      COORD_RETURN_IF_ERROR(r.read_int(op.version));
      out = std::move(op);
      return Status();
    }
    default:
      break;
  }
  if (nested) return bad("op not allowed inside multi");
  switch (tag) {
    case TxnTag::SetAcl: {
      znode::SetAclOp op;
      COORD_RETURN_IF_ERROR(r.read_string(op.path));
      COORD_RETURN_IF_ERROR(get_acl(r, op.acl));
      COORD_RETURN_IF_ERROR(r.read_int(op.version));
      out = std::move(op);
      return Status();
    }
    case TxnTag::Multi: {
      znode::MultiOp op;
      std::size_t n = 0;
      COORD_RETURN_IF_ERROR(r.read_vector_count(n, 1));
      op.ops.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        znode::Txn sub;
        COORD_RETURN_IF_ERROR(get_txn(r, sub, true));
        std::visit(
            [&](auto&& o) {
              using T = std::decay_t<decltype(o)>;
              if constexpr (std::is_constructible_v<znode::MultiSubOp, T>) {
                op.ops.emplace_back(std::move(o));
              }
            },
            std::move(sub));
      }
      out = std::move(op);
      return Status();
    }
    case TxnTag::CloseSession: {
      std::int64_t s = 0;
      COORD_RETURN_IF_ERROR(r.read_long(s));
      out = znode::CloseSessionOp{SessionId(s)};
      return Status();
    }
    case TxnTag::Reap: {
      znode::ReapOp op;
      COORD_RETURN_IF_ERROR(r.read_string(op.path));
      out = std::move(op);
      return Status();
    }
    default:
      return bad("unknown txn tag " + std::to_string(static_cast<int>(tag)));
  }
}

Status get_txn(JuteReader& r, znode::Txn& out, bool nested) {
  std::uint8_t tag = 0;
  COORD_RETURN_IF_ERROR(r.read_byte(tag));
  return get_tagged(r, static_cast<TxnTag>(tag), out, nested);
}

}  // namespace

std::string encode_command(const Command& c) {
  Bytes scratch;
  return encode_command(c, scratch);
}

std::string encode_command(const Command& c, Bytes& out) {
  constexpr std::size_t header_bytes = 64;  // version, origin, time, tag, session, identities
  std::size_t hint = header_bytes;
  if (const auto* txn = std::get_if<TxnCmd>(&c.body)) {
    hint += 64 * txn->identities.size() +
            std::visit([](const auto& op) { return op_bytes_hint(op); }, txn->txn);
  }
  out.clear();
  out.reserve(hint);
  JuteWriter w(out);
  w.write_byte(kVersion);
  w.write_long(static_cast<std::int64_t>(c.origin.node.value()));
  w.write_long(static_cast<std::int64_t>(c.origin.connection));
  w.write_long(static_cast<std::int64_t>(c.origin.request));
  w.write_long(c.time.value());
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, CreateSessionCmd>) {
          w.write_byte(static_cast<std::uint8_t>(BodyTag::CreateSession));
          w.write_int(body.timeout_ms);
          w.write_string(body.password);
        } else if constexpr (std::is_same_v<T, CloseSessionCmd>) {
          w.write_byte(static_cast<std::uint8_t>(BodyTag::CloseSession));
          w.write_long(body.session.value());
          w.write_bool(body.expired);
        } else if constexpr (std::is_same_v<T, MoveSessionCmd>) {
          w.write_byte(static_cast<std::uint8_t>(BodyTag::MoveSession));
          w.write_long(body.session.value());
        } else {
          w.write_byte(static_cast<std::uint8_t>(BodyTag::Txn));
          w.write_long(body.session.value());
          w.write_vector_count(body.identities.size());
          for (const Id& id : body.identities)
            protocol::jute::put(w, id);
          std::visit([&](const auto& op) { put_op(w, op); }, body.txn);
        }
      },
      c.body);
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

Result<Command> decode_command(std::string_view bytes) {
  JuteReader r(ByteSpan(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  std::uint8_t version = 0;
  COORD_RETURN_IF_ERROR(r.read_byte(version));
  if (version != kVersion) return bad("unknown version " + std::to_string(version));
  Command c;
  std::int64_t node = 0;
  std::int64_t conn = 0;
  std::int64_t req = 0;
  std::int64_t time = 0;
  COORD_RETURN_IF_ERROR(r.read_long(node));
  COORD_RETURN_IF_ERROR(r.read_long(conn));
  COORD_RETURN_IF_ERROR(r.read_long(req));
  COORD_RETURN_IF_ERROR(r.read_long(time));
  c.origin = Origin{NodeId(static_cast<std::uint64_t>(node)), static_cast<std::uint64_t>(conn),
                    static_cast<std::uint64_t>(req)};
  c.time = TimeMs(time);
  std::uint8_t tag = 0;
  COORD_RETURN_IF_ERROR(r.read_byte(tag));
  switch (static_cast<BodyTag>(tag)) {
    case BodyTag::CreateSession: {
      CreateSessionCmd b;
      COORD_RETURN_IF_ERROR(r.read_int(b.timeout_ms));
      COORD_RETURN_IF_ERROR(r.read_string(b.password));
      c.body = std::move(b);
      break;
    }
    case BodyTag::CloseSession: {
      CloseSessionCmd b;
      std::int64_t s = 0;
      COORD_RETURN_IF_ERROR(r.read_long(s));
      COORD_RETURN_IF_ERROR(r.read_bool(b.expired));
      b.session = SessionId(s);
      c.body = b;
      break;
    }
    case BodyTag::MoveSession: {
      std::int64_t s = 0;
      COORD_RETURN_IF_ERROR(r.read_long(s));
      c.body = MoveSessionCmd{SessionId(s)};
      break;
    }
    case BodyTag::Txn: {
      TxnCmd b;
      std::int64_t s = 0;
      COORD_RETURN_IF_ERROR(r.read_long(s));
      b.session = SessionId(s);
      std::size_t n = 0;
      COORD_RETURN_IF_ERROR(r.read_vector_count(n, 8));
      b.identities.resize(n);
      for (Id& id : b.identities)
        COORD_RETURN_IF_ERROR(protocol::jute::get(r, id));
      COORD_RETURN_IF_ERROR(get_txn(r, b.txn, false));
      c.body = std::move(b);
      break;
    }
    default:
      return bad("unknown body tag " + std::to_string(tag));
  }
  COORD_RETURN_IF_ERROR(r.expect_end("command"));
  return c;
}

}  // namespace coord::core
