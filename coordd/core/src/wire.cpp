#include "wire.h"

#include <algorithm>

namespace coord::core {

namespace {

znode::CreateOp create_op(const pr::CreateRequest& r) {
  return znode::CreateOp{r.path, r.data, r.acl, r.mode, 0};
}

}  // namespace

bool valid_watcher_type(WatcherType t) {
  const auto v = static_cast<std::int32_t>(t);
  return v >= static_cast<std::int32_t>(WatcherType::Children) &&
         v <= static_cast<std::int32_t>(WatcherType::PersistentRecursive);
}

bool is_write(OpCode op) {
  const pr::OpInfo* info = pr::find_op(op);
  return info != nullptr && info->kind == OpKind::Write;
}

pr::Bytes reply_frame(std::int32_t xid, Zxid zxid, ErrorCode err, const pr::ResponseBody& body) {
  pr::Bytes out;
  pr::append_reply_frame(out, pr::ReplyHeader{xid, zxid, err}, body);
  return out;
}

pr::Bytes too_large_reply(OpCode op, const pr::RequestBody& body, std::int32_t xid, Zxid zxid) {
  pr::Bytes reply;
  if (op == OpCode::Multi || op == OpCode::MultiRead) {
    const auto& req = std::get<pr::MultiRequest>(body);
    pr::JuteWriter w(reply);
    const std::size_t at = w.begin_frame();
    pr::jute::put(w, pr::ReplyHeader{xid, zxid, ErrorCode::Ok});
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      pr::jute::put(w, pr::MultiHeader{OpCode::Error, false, kReplyTooLarge});
      pr::jute::put(w, kReplyTooLarge);
    }
    pr::jute::put(w, pr::MultiHeader{});
    w.end_frame(at);
  } else {
    reply = reply_frame(xid, zxid, kReplyTooLarge);
  }
  return reply;
}

pr::MultiResult multi_result(OpCode op, const znode::MultiOpResult& r, bool applied_all) {
  pr::MultiResult m;
  if (!applied_all) {
    m.type = OpCode::Error;
    m.err = r.err;
    return m;
  }
  switch (op) {
    case OpCode::Create:
    case OpCode::Create2:
      // ZooKeeper 3.8 answers every plain create inside multi with the
      // path-only result (docs/PROTOCOL.md §7).
      m.type = OpCode::Create;
      if (r.create) m.path = r.create->path;
      break;
    case OpCode::CreateContainer:
    case OpCode::CreateTtl:
      m.type = OpCode::Create2;
      if (r.create) {
        m.path = r.create->path;
        m.stat = r.create->stat;
      }
      break;
    case OpCode::SetData:
      m.type = OpCode::SetData;
      if (r.stat) m.stat = *r.stat;
      break;
    default:
      m.type = op;
      break;
  }
  return m;
}

pr::Bytes write_reply(OpCode op, const pr::RequestBody& body, std::int32_t xid, Zxid zxid,
                      const znode::ApplyResult& res) {
  if (res.err != ErrorCode::Ok) return reply_frame(xid, zxid, res.err);
  switch (op) {
    case OpCode::Create:
      return reply_frame(xid, zxid, res.err, pr::CreateResponse{res.create->path});
    case OpCode::Create2:
    case OpCode::CreateContainer:
    case OpCode::CreateTtl:
      return reply_frame(xid, zxid, res.err,
                         pr::Create2Response{res.create->path, res.create->stat});
    case OpCode::SetData:
      return reply_frame(xid, zxid, res.err, pr::SetDataResponse{*res.stat});
    case OpCode::SetAcl:
      return reply_frame(xid, zxid, res.err, pr::SetAclResponse{*res.stat});
    case OpCode::Multi: {
      const auto& req = std::get<pr::MultiRequest>(body);
      pr::MultiResponse resp;
      const bool all = res.multi->ok();
      for (std::size_t i = 0; i < req.ops.size(); ++i) {
        resp.results.push_back(multi_result(req.ops[i].type, res.multi->results[i], all));
      }
      // The header says Ok even when an op failed (docs/PROTOCOL.md §7, observed on 3.8).
      return reply_frame(xid, zxid, ErrorCode::Ok, resp);
    }
    default:
      return reply_frame(xid, zxid, res.err);
  }
}

std::size_t multi_reply_bytes_bound(const pr::MultiRequest& req) {
  std::size_t bytes = kReplyHeaderBytes + kMultiHeaderBytes;
  for (const auto& op : req.ops) {
    std::size_t result = kLengthBytes;  // an error result
    auto created = [&](const std::string& path, CreateMode mode, bool with_stat) {
      std::size_t n = kLengthBytes + path.size() + (with_stat ? kStatBytes : 0);
      if (is_sequential(mode)) n += kSequenceDigitsMax;
      return n;
    };
    if (const auto* c = std::get_if<pr::CreateRequest>(&op.op)) {
      result = created(c->path, c->mode, op.type == OpCode::CreateContainer);
    } else if (const auto* t = std::get_if<pr::CreateTtlRequest>(&op.op)) {
      result = created(t->path, t->mode, true);
    } else if (op.type == OpCode::SetData) {
      result = kStatBytes;
    }
    bytes += kMultiHeaderBytes + std::max(result, kLengthBytes);
  }
  return bytes;
}

Result<znode::Txn> txn_of(OpCode op, const pr::RequestBody& body) {
  auto mode_ok = [](OpCode code, CreateMode m) {
    if (!create_mode_from_int(static_cast<std::int32_t>(m))) return false;
    switch (code) {
      case OpCode::CreateContainer:
        return m == CreateMode::Container;
      case OpCode::CreateTtl:
        return is_ttl(m);
      default:
        return !is_ttl(m);
    }
  };
  switch (op) {
    case OpCode::Create:
    case OpCode::Create2:
    case OpCode::CreateContainer: {
      const auto& r = std::get<pr::CreateRequest>(body);
      if (!mode_ok(op, r.mode)) return ErrorCode::BadArguments;
      return znode::Txn(create_op(r));
    }
    case OpCode::CreateTtl: {
      const auto& r = std::get<pr::CreateTtlRequest>(body);
      if (!mode_ok(op, r.mode)) return ErrorCode::BadArguments;
      return znode::Txn(znode::CreateOp{r.path, r.data, r.acl, r.mode, r.ttl_ms});
    }
    case OpCode::Delete: {
      const auto& r = std::get<pr::DeleteRequest>(body);
      return znode::Txn(znode::DeleteOp{r.path, r.version});
    }
    case OpCode::SetData: {
      const auto& r = std::get<pr::SetDataRequest>(body);
      return znode::Txn(znode::SetDataOp{r.path, r.data, r.version});
    }
    case OpCode::SetAcl: {
      const auto& r = std::get<pr::SetAclRequest>(body);
      return znode::Txn(znode::SetAclOp{r.path, r.acl, r.version});
    }
    case OpCode::Multi: {
      const auto& r = std::get<pr::MultiRequest>(body);
      znode::MultiOp m;
      m.ops.reserve(r.ops.size());
      for (const auto& sub : r.ops) {
        if (const auto* c = std::get_if<pr::CreateRequest>(&sub.op)) {
          if (!mode_ok(sub.type, c->mode)) return ErrorCode::BadArguments;
          m.ops.emplace_back(create_op(*c));
        } else if (const auto* t = std::get_if<pr::CreateTtlRequest>(&sub.op)) {
          if (!mode_ok(sub.type, t->mode)) return ErrorCode::BadArguments;
          m.ops.emplace_back(znode::CreateOp{t->path, t->data, t->acl, t->mode, t->ttl_ms});
        } else if (const auto* d = std::get_if<pr::DeleteRequest>(&sub.op)) {
          m.ops.emplace_back(znode::DeleteOp{d->path, d->version});
        } else if (const auto* s = std::get_if<pr::SetDataRequest>(&sub.op)) {
          m.ops.emplace_back(znode::SetDataOp{s->path, s->data, s->version});
        } else if (const auto* k = std::get_if<pr::CheckVersionRequest>(&sub.op)) {
          m.ops.emplace_back(znode::CheckOp{k->path, k->version});
        } else {
          return ErrorCode::BadArguments;
        }
      }
      return znode::Txn(std::move(m));
    }
    default:
      return ErrorCode::Unimplemented;
  }
}

}  // namespace coord::core
