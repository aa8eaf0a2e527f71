#include "session_table.h"

#include <algorithm>
#include <limits>

#include "coord/base/bytes.h"

namespace coord::core {

Session* SessionTable::find(SessionId id) {
  if (id.value() == 0) return nullptr;
  if (auto s = global_.find(id); s != global_.end()) return &s->second;
  if (auto s = local_.find(id); s != local_.end()) return &s->second;
  return nullptr;
}

void SessionTable::due_by(const Session& s) {
  check_from_ = std::min(check_from_, TimeMs(s.last_heard.value() + s.effective_timeout_ms));
}

void SessionTable::touch(SessionId id, TimeMs now, NodeId via) {
  if (Session* s = find(id)) {
    s->last_heard = now;
    s->heard_via = via;
    // The timeout may have just been negotiated down (a resume).
    due_by(*s);
  }
}

void SessionTable::touch_all(TimeMs now) {
  for (auto& [id, s] : global_)
    s.last_heard = now;
  check_from_ = TimeMs(0);
}

void SessionTable::detach(SessionId id, ConnId conn) {
  if (Session* s = find(id); s != nullptr && s->conn == conn) s->conn = 0;
}

Session& SessionTable::create(SessionId id, std::int32_t timeout_ms, std::string password,
                              TimeMs now) {
  Session s;
  s.id = id;
  s.timeout_ms = timeout_ms;
  s.effective_timeout_ms = timeout_ms;
  s.password = std::move(password);
  s.last_heard = now;
  due_by(s);
  return global_[id] = std::move(s);
}

std::vector<SessionId> SessionTable::expired(TimeMs now) {
  std::vector<SessionId> out;
  if (now < check_from_) return out;
  // Past every deadline at first; lowered to the earliest one still ahead.
  TimeMs next(std::numeric_limits<std::int64_t>::max());
  for (const auto& [id, s] : global_) {
    if (s.closing) continue;
    if (now - s.last_heard <= s.effective_timeout_ms) {
      next = std::min(next, TimeMs(s.last_heard.value() + s.effective_timeout_ms));
      continue;
    }
    out.push_back(id);
  }
  // The sessions returned are marked closing or looked at again next time.
  check_from_ = out.empty() ? next : now;
  return out;
}

void SessionTable::mark_closing(SessionId id) {
  if (auto s = global_.find(id); s != global_.end()) s->second.closing = true;
}

void SessionTable::clear_closing() {
  for (auto& [id, s] : global_)
    s.closing = false;
  // Their expiries may be proposed again, at once.
  check_from_ = TimeMs(0);
}

SessionId SessionTable::next_local_id() {
  const std::uint64_t v = (std::uint64_t{1} << 62) | ((self_.value() & 0xff) << 48) |
                          (++local_created_ & ((std::uint64_t{1} << 48) - 1));
  return SessionId(static_cast<std::int64_t>(v));
}

Session& SessionTable::open_local(std::int32_t timeout_ms, std::string password, TimeMs now) {
  Session s;
  s.id = next_local_id();
  s.timeout_ms = s.effective_timeout_ms = timeout_ms;
  s.password = std::move(password);
  s.last_heard = now;
  const SessionId id = s.id;
  return local_.emplace(id, std::move(s)).first->second;
}

std::vector<ConnId> SessionTable::expire_local(TimeMs now) {
  std::vector<ConnId> conns;
  for (auto it = local_.begin(); it != local_.end();) {
    const Session& s = it->second;
    if (now - s.last_heard <= s.effective_timeout_ms) {
      ++it;
      continue;
    }
    conns.push_back(s.conn);
    it = local_.erase(it);
  }
  return conns;
}

std::vector<ConnId> SessionTable::clear_local() {
  std::vector<ConnId> conns;
  for (const auto& [id, s] : local_)
    conns.push_back(s.conn);
  local_.clear();
  return conns;
}

void SessionTable::write_snapshot(std::string& out) const {
  put_be64(out, global_.size());
  for (const auto& [id, s] : global_) {
    put_be64(out, static_cast<std::uint64_t>(id.value()));
    put_be32(out, static_cast<std::uint32_t>(s.timeout_ms));
    put_be32(out, static_cast<std::uint32_t>(s.password.size()));
    out += s.password;
  }
}

std::optional<SessionTable::Map> SessionTable::read_snapshot(std::string_view& bytes,
                                                             std::uint64_t count, TimeMs now) {
  Map restored;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t id = 0;
    std::uint32_t timeout = 0;
    std::uint32_t len = 0;
    if (!take_be64(bytes, id) || !take_be32(bytes, timeout) || !take_be32(bytes, len) ||
        bytes.size() < len) {
      return std::nullopt;
    }
    Session s;
    s.id = SessionId(static_cast<std::int64_t>(id));
    s.timeout_ms = static_cast<std::int32_t>(timeout);
    s.effective_timeout_ms = s.timeout_ms;
    s.password = std::string(bytes.substr(0, len));
    s.last_heard = now;
    bytes.remove_prefix(len);
    restored[s.id] = std::move(s);
  }
  return restored;
}

}  // namespace coord::core
