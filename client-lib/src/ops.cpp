// The op structs of client.h turned into protocol requests, and protocol
// replies turned back into the op's result type.
#include <utility>

#include "call.h"
#include "coord/client-lib/client.h"
#include "coord/client-lib/connect_string.h"

namespace coord {

using namespace protocol;
using client_detail::Call;
using client_detail::CallPtr;

namespace client_detail {

void CallDeleter::operator()(Call* c) const {
  delete c;
}

namespace {

CallPtr new_call(OpCode op, RequestBody body) {
  CallPtr c(new Call);
  c->op = op;
  c->body = std::move(body);
  return c;
}

// Completion that maps the reply record Resp to the user's T.
template <typename T, typename Resp, typename F>
std::function<void(Result<ResponseBody>)> finish(Callback<T>&& cb, F convert) {
  return [cb = std::move(cb), convert](Result<ResponseBody> r) {
    if (!r.ok()) {
      cb(r.status());
      return;
    }
    Resp* resp = std::get_if<Resp>(&*r);
    if (resp == nullptr) {
      cb(Status(ErrorCode::MarshallingError, "unexpected reply record"));
      return;
    }
    cb(Result<T>(convert(*resp)));
  };
}

std::function<void(Result<ResponseBody>)> finish_empty(Callback<std::monostate>&& cb) {
  return [cb = std::move(cb)](Result<ResponseBody> r) {
    if (!r.ok()) {
      cb(r.status());
      return;
    }
    cb(std::monostate{});
  };
}

void check_path(Call& c, const std::string& path, bool sequential = false) {
  if (c.invalid.ok()) c.invalid = validate_path(path, sequential);
}

void set_watch(Call& c, WatchKind kind, const std::string& path, Watcher&& w) {
  if (!w) return;
  c.watch_kind = kind;
  c.watch_path = path;
  c.watcher = std::move(w);
}

}  // namespace

CallPtr make_call(ops::Create&& op, Callback<CreateResult>&& cb) {
  CallPtr c;
  if (is_ttl(op.mode)) {
    c = new_call(OpCode::CreateTtl, CreateTtlRequest{op.path, std::move(op.data), std::move(op.acl),
                                                     op.mode, op.ttl_ms});
  } else {
    c = new_call(is_container(op.mode) ? OpCode::CreateContainer : OpCode::Create2,
                 CreateRequest{op.path, std::move(op.data), std::move(op.acl), op.mode});
  }
  check_path(*c, op.path, is_sequential(op.mode));
  c->complete = finish<CreateResult, Create2Response>(std::move(cb), [](Create2Response& r) {
    return CreateResult{std::move(r.path), r.stat};
  });
  return c;
}

CallPtr make_call(ops::Delete&& op, Callback<std::monostate>&& cb) {
  CallPtr c = new_call(OpCode::Delete, DeleteRequest{op.path, op.version});
  check_path(*c, op.path);
  c->complete = finish_empty(std::move(cb));
  return c;
}

CallPtr make_call(ops::Exists&& op, Callback<std::optional<Stat>>&& cb) {
  CallPtr c = new_call(OpCode::Exists, ExistsRequest{op.path, static_cast<bool>(op.watcher)});
  check_path(*c, op.path);
  set_watch(*c, WatchKind::Data, op.path, std::move(op.watcher));
  c->complete = [cb = std::move(cb)](Result<ResponseBody> r) {
    if (r.code() == ErrorCode::NoNode) {
      cb(std::optional<Stat>());
      return;
    }
    if (!r.ok()) {
      cb(r.status());
      return;
    }
    cb(std::optional<Stat>(std::get<ExistsResponse>(*r).stat));
  };
  return c;
}

CallPtr make_call(ops::GetData&& op, Callback<DataResult>&& cb) {
  CallPtr c = new_call(OpCode::GetData, GetDataRequest{op.path, static_cast<bool>(op.watcher)});
  check_path(*c, op.path);
  set_watch(*c, WatchKind::Data, op.path, std::move(op.watcher));
  c->complete = finish<DataResult, GetDataResponse>(std::move(cb), [](GetDataResponse& r) {
    return DataResult{std::move(r.data), r.stat};
  });
  return c;
}

CallPtr make_call(ops::SetData&& op, Callback<Stat>&& cb) {
  CallPtr c = new_call(OpCode::SetData, SetDataRequest{op.path, std::move(op.data), op.version});
  check_path(*c, op.path);
  c->complete =
      finish<Stat, SetDataResponse>(std::move(cb), [](SetDataResponse& r) { return r.stat; });
  return c;
}

CallPtr make_call(ops::GetAcl&& op, Callback<AclResult>&& cb) {
  CallPtr c = new_call(OpCode::GetAcl, GetAclRequest{op.path});
  check_path(*c, op.path);
  c->complete = finish<AclResult, GetAclResponse>(std::move(cb), [](GetAclResponse& r) {
    return AclResult{std::move(r.acl), r.stat};
  });
  return c;
}

CallPtr make_call(ops::SetAcl&& op, Callback<Stat>&& cb) {
  CallPtr c = new_call(OpCode::SetAcl, SetAclRequest{op.path, std::move(op.acl), op.version});
  check_path(*c, op.path);
  c->complete =
      finish<Stat, SetAclResponse>(std::move(cb), [](SetAclResponse& r) { return r.stat; });
  return c;
}

CallPtr make_call(ops::GetChildren&& op, Callback<std::vector<std::string>>&& cb) {
  CallPtr c =
      new_call(OpCode::GetChildren, GetChildrenRequest{op.path, static_cast<bool>(op.watcher)});
  check_path(*c, op.path);
  set_watch(*c, WatchKind::Child, op.path, std::move(op.watcher));
  c->complete = finish<std::vector<std::string>, GetChildrenResponse>(
      std::move(cb), [](GetChildrenResponse& r) { return std::move(r.children); });
  return c;
}

CallPtr make_call(ops::GetChildren2&& op, Callback<ChildrenResult>&& cb) {
  CallPtr c =
      new_call(OpCode::GetChildren2, GetChildren2Request{op.path, static_cast<bool>(op.watcher)});
  check_path(*c, op.path);
  set_watch(*c, WatchKind::Child, op.path, std::move(op.watcher));
  c->complete =
      finish<ChildrenResult, GetChildren2Response>(std::move(cb), [](GetChildren2Response& r) {
        return ChildrenResult{std::move(r.children), r.stat};
      });
  return c;
}

CallPtr make_call(ops::Sync&& op, Callback<std::string>&& cb) {
  CallPtr c = new_call(OpCode::Sync, SyncRequest{op.path});
  check_path(*c, op.path);
  c->complete = finish<std::string, SyncResponse>(
      std::move(cb), [](SyncResponse& r) { return std::move(r.path); });
  return c;
}

CallPtr make_call(ops::Multi&& op, Callback<std::vector<OpResult>>&& cb) {
  MultiRequest req{op.ops.ops()};
  CallPtr c = new_call(OpCode::Multi, std::move(req));
  for (const MultiOp& m : std::get<MultiRequest>(c->body).ops) {
    const bool seq = std::visit(
        [](const auto& rec) {
          if constexpr (requires { rec.mode; }) {
            return is_sequential(rec.mode);
          } else {
            return false;
          }
        },
        m.op);
    check_path(*c, std::visit([](const auto& rec) { return rec.path; }, m.op), seq);
  }
  c->complete = [cb = std::move(cb)](Result<ResponseBody> r) {
    if (!r.ok()) {
      cb(r.status());
      return;
    }
    auto& results = std::get<MultiResponse>(*r).results;
    // 3.8 keeps the header at Ok and reports the failure per op: the first
    // non-zero error is the one that failed (later ops carry -2).
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].type == OpCode::Error && results[i].err != ErrorCode::Ok) {
        cb(Status(results[i].err, "multi op #" + std::to_string(i) + " failed"));
        return;
      }
    }
    cb(std::move(results));
  };
  return c;
}

CallPtr make_call(ops::MultiRead&& op, Callback<std::vector<OpResult>>&& cb) {
  MultiRequest req;
  for (auto& p : op.get_data)
    req.ops.push_back({OpCode::GetData, GetDataRequest{p, false}});
  for (auto& p : op.get_children) {
    req.ops.push_back({OpCode::GetChildren, GetChildrenRequest{p, false}});
  }
  CallPtr c = new_call(OpCode::MultiRead, std::move(req));
  for (auto& p : op.get_data)
    check_path(*c, p);
  for (auto& p : op.get_children)
    check_path(*c, p);
  c->complete = finish<std::vector<OpResult>, MultiResponse>(
      std::move(cb), [](MultiResponse& r) { return std::move(r.results); });
  return c;
}

CallPtr make_call(ops::AddAuth&& op, Callback<std::monostate>&& cb) {
  CallPtr c = new_call(OpCode::Auth, AuthPacket{0, std::move(op.scheme), std::move(op.auth)});
  c->complete = finish_empty(std::move(cb));
  return c;
}

CallPtr make_call(ops::WhoAmI&&, Callback<std::vector<ClientInfo>>&& cb) {
  CallPtr c = new_call(OpCode::WhoAmI, Empty{});
  c->complete = finish<std::vector<ClientInfo>, WhoAmIResponse>(
      std::move(cb), [](WhoAmIResponse& r) { return std::move(r.client_info); });
  return c;
}

CallPtr make_call(ops::GetEphemerals&& op, Callback<std::vector<std::string>>&& cb) {
  CallPtr c = new_call(OpCode::GetEphemerals, GetEphemeralsRequest{op.prefix});
  check_path(*c, op.prefix, true);
  c->complete = finish<std::vector<std::string>, GetEphemeralsResponse>(
      std::move(cb), [](GetEphemeralsResponse& r) { return std::move(r.ephemerals); });
  return c;
}

CallPtr make_call(ops::GetAllChildrenNumber&& op, Callback<std::int32_t>&& cb) {
  CallPtr c = new_call(OpCode::GetAllChildrenNumber, GetAllChildrenNumberRequest{op.path});
  check_path(*c, op.path);
  c->complete = finish<std::int32_t, GetAllChildrenNumberResponse>(
      std::move(cb), [](GetAllChildrenNumberResponse& r) { return r.total_number; });
  return c;
}

CallPtr make_call(ops::AddWatch&& op, Callback<std::monostate>&& cb) {
  CallPtr c = new_call(OpCode::AddWatch, AddWatchRequest{op.path, op.mode});
  check_path(*c, op.path);
  if (!op.watcher) c->invalid = Status(ErrorCode::BadArguments, "addWatch needs a watcher");
  set_watch(*c,
            op.mode == AddWatchMode::PersistentRecursive ? WatchKind::PersistentRecursive
                                                         : WatchKind::Persistent,
            op.path, std::move(op.watcher));
  c->complete = finish_empty(std::move(cb));
  return c;
}

CallPtr make_call(ops::RemoveWatches&& op, Callback<std::monostate>&& cb) {
  CallPtr c = new_call(OpCode::RemoveWatches, RemoveWatchesRequest{op.path, op.type});
  check_path(*c, op.path);
  c->removes = op.type;
  c->watch_path = op.path;
  c->complete = finish_empty(std::move(cb));
  return c;
}

CallPtr make_call(ops::CheckWatches&& op, Callback<std::monostate>&& cb) {
  CallPtr c = new_call(OpCode::CheckWatches, CheckWatchesRequest{op.path, op.type});
  check_path(*c, op.path);
  c->complete = finish_empty(std::move(cb));
  return c;
}

}  // namespace client_detail

MultiBuilder& MultiBuilder::create(std::string path, Data data, CreateMode mode, AclList acl) {
  const OpCode op = is_container(mode) ? OpCode::CreateContainer : OpCode::Create;
  ops_.push_back({op, CreateRequest{std::move(path), std::move(data), std::move(acl), mode}});
  return *this;
}

MultiBuilder& MultiBuilder::create_ttl(std::string path, Data data, std::int64_t ttl_ms,
                                       CreateMode mode, AclList acl) {
  ops_.push_back({OpCode::CreateTtl, CreateTtlRequest{std::move(path), std::move(data),
                                                      std::move(acl), mode, ttl_ms}});
  return *this;
}

MultiBuilder& MultiBuilder::remove(std::string path, std::int32_t version) {
  ops_.push_back({OpCode::Delete, DeleteRequest{std::move(path), version}});
  return *this;
}

MultiBuilder& MultiBuilder::set_data(std::string path, Data data, std::int32_t version) {
  ops_.push_back({OpCode::SetData, SetDataRequest{std::move(path), std::move(data), version}});
  return *this;
}

MultiBuilder& MultiBuilder::check(std::string path, std::int32_t version) {
  ops_.push_back({OpCode::Check, CheckVersionRequest{std::move(path), version}});
  return *this;
}

}  // namespace coord
