#include "event_stream.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "coord/base/assert.h"
#include "coord/znode/tree.h"

namespace coord::io {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

std::string_view type_name(EventType t) {
  switch (t) {
    case EventType::NodeCreated:
      return "created";
    case EventType::NodeDeleted:
      return "deleted";
    case EventType::NodeDataChanged:
      return "changed";
    case EventType::NodeChildrenChanged:
      return "children";
    default:
      return {};
  }
}

std::string event_message(std::string_view type, Zxid zxid, const std::string& path,
                          const std::optional<Stat>& stat) {
  std::string m = "{\"type\":\"";
  m += type;
  m += "\",\"zxid\":";
  m += std::to_string(zxid.value());
  m += ",\"path\":";
  m += json(path).dump();
  m += ",\"stat\":";
  m += stat ? stat_json_text(*stat) : std::string("null");
  m += '}';
  return m;
}

std::string sync_message(std::string_view type, Zxid zxid) {
  return "{\"type\":\"" + std::string(type) + "\",\"zxid\":" + std::to_string(zxid.value()) + "}";
}

// Whether `path` is `root` or below it.
bool within(std::string_view path, std::string_view root) {
  if (root == "/") return true;
  return path == root ||
         (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/');
}

std::optional<Stat> stat_of(const core::Replica& replica, std::string_view path) {
  auto st = replica.tree().exists(path);
  if (!st.ok()) return std::nullopt;
  return *st;
}

}  // namespace

Result<EventStreamParams> parse_event_stream_query(std::string_view query) {
  EventStreamParams p;
  std::string value;
  for (std::size_t start = 0; start < query.size();) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    const std::string_view key = part.substr(0, eq);
    if (eq == std::string_view::npos || !url_decode(part.substr(eq + 1), value, /*query=*/true)) {
      return Status(ErrorCode::BadArguments,
                    "malformed query parameter '" + std::string(key) + "' (want key=value)");
    }
    if (key == "path") {
      if (value != "/") COORD_RETURN_IF_ERROR(znode::validate_path(value));
      if (value.empty() || value.front() != '/') {
        return Status(ErrorCode::BadArguments, "path must be absolute");
      }
      p.path = value;
    } else if (key == "recursive") {
      if (value != "0" && value != "1") {
        return Status(ErrorCode::BadArguments, "recursive must be 0 or 1");
      }
      p.recursive = value == "1";
    } else if (key == "from_zxid") {
      std::int64_t z = -1;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), z);
      if (ec != std::errc() || ptr != value.data() + value.size() || z < 0) {
        return Status(ErrorCode::BadArguments, "from_zxid must be an integer >= 0");
      }
      p.from_zxid = z;
    } else if (key == "token") {
      p.token = value;
    } else {
      return Status(ErrorCode::BadArguments, "unknown parameter '" + std::string(key) +
                                                 "' (path, recursive, from_zxid, token)");
    }
  }
  return p;
}

// ---- EventOutbox -------------------------------------------------------------

void EventOutbox::deliver(std::string message) {
  ++queued_messages_;
  queued_bytes_ += message.size();
  asio::post(net_, [self = shared_from_this(), m = std::move(message)]() mutable {
    self->messages_.push_back(std::move(m));
    if (self->ready_) self->ready_();
  });
}

void EventOutbox::finish(std::uint16_t code, std::string reason, bool drop) {
  asio::post(net_, [self = shared_from_this(), code, r = std::move(reason), drop]() mutable {
    if (drop) {
      for (const std::string& m : self->messages_)
        self->written(m.size());
      self->messages_.clear();
    }
    if (!self->finish_) self->finish_ = Finish{code, std::move(r)};
    if (self->ready_) self->ready_();
  });
}

std::optional<std::string> EventOutbox::take() {
  if (messages_.empty()) return std::nullopt;
  std::string m = std::move(messages_.front());
  messages_.pop_front();
  return m;
}

void EventOutbox::written(std::size_t bytes) {
  --queued_messages_;
  queued_bytes_ -= bytes;
}

// ---- EventHub -----------------------------------------------------------------

std::size_t EventHub::Change::bytes() const {
  std::size_t n = sizeof(Change) + path.size();
  if (acl) {
    for (const Acl& a : *acl)
      n += sizeof(Acl) + a.id.scheme.size() + a.id.id.size();
  }
  return n;
}

EventHub::EventHub(core::Replica& replica, HttpMetrics& metrics, core::ConnId first_id)
    : replica_(replica), metrics_(metrics), next_id_(first_id - 1), history_id_(first_id) {
  replica_.set_host_watch_sink(core::HostWatchSink{
      [this](const znode::WatchEvent& ev) { on_event(ev); }, [this] { on_reset(); }});
}

void EventHub::history_on() {
  if (history_on_) return;
  // Every change from now on is held; none from before.
  history_floor_ = replica_.applied_zxid();
  const Status st =
      replica_.add_host_watch(history_id_, "/", znode::WatchKind::PersistentRecursive);
  COORD_ASSERT(st.ok(), "the event history's watch: ", st);
  history_on_ = true;
}

void EventHub::history_off() {
  if (!history_on_) return;
  replica_.remove_host_watcher(history_id_);
  history_on_ = false;
  history_.clear();
  history_bytes_ = 0;
}

void EventHub::tick(TimeMs now) {
  if (!streams_.empty() || !history_on_) {
    last_busy_ = now;
    return;
  }
  if (now.value() - last_busy_.value() >= limits::event_history_keep_ms) history_off();
}

EventHub::~EventHub() {
  replica_.set_host_watch_sink({});
}

std::optional<HttpReply> EventHub::open(const EventStreamParams& params, znode::Caller caller,
                                        std::shared_ptr<EventOutbox> outbox, core::ConnId& id) {
  auto refusal = [&](int status, ErrorCode code, std::string message) {
    ++metrics_.errors;
    return error_reply(status, code, std::move(message));
  };
  if (streams_.size() >= limits::event_streams_max) {
    return refusal(
        503, ErrorCode::Throttled,
        "too many event streams open (" + std::to_string(limits::event_streams_max) + ")");
  }
  history_on();
  id = next_id_--;
  Stream s{std::move(outbox), std::move(caller), params.path, params.recursive, Zxid(0)};
  const Status st = replica_.add_host_watch(
      id, s.path,
      s.recursive ? znode::WatchKind::PersistentRecursive : znode::WatchKind::Persistent);
  if (!st.ok()) return refusal(503, st.code(), std::string(st.message()));
  Zxid now = replica_.applied_zxid();
  std::optional<std::vector<std::string>> replayed;
  if (params.from_zxid) {
    replayed = replay(s, Zxid(std::min(*params.from_zxid, now.value())));
  }
  if (params.from_zxid && !replayed) {
    s.outbox->deliver(sync_message("resync", now));
  } else {
    if (replayed) {
      for (std::string& m : *replayed) {
        ++metrics_.events_sent;
        s.outbox->deliver(std::move(m));
      }
    }
    // A client that saw further on another server (this one lags): what
    // it saw comes here too as this server catches up, and is not sent
    // twice.
    if (params.from_zxid && *params.from_zxid > now.value()) {
      now = Zxid(*params.from_zxid);
      s.seen_through = now;
    }
    s.outbox->deliver(sync_message("sync", now));
  }
  s.last_zxid = now;
  streams_.emplace(id, std::move(s));
  metrics_.event_streams = streams_.size();
  return std::nullopt;
}

void EventHub::closed(core::ConnId id) {
  if (!streams_.contains(id)) return;
  replica_.remove_host_watcher(id);
  streams_.erase(id);
  metrics_.event_streams = streams_.size();
}

void EventHub::drop(core::ConnId id) {
  closed(id);
}

void EventHub::stop() {
  for (auto& [id, s] : streams_) {
    replica_.remove_host_watcher(id);
    s.outbox->finish(1001, "the server is stopping", /*drop=*/false);
  }
  streams_.clear();
  metrics_.event_streams = 0;
}

void EventHub::on_reset() {
  // The tree was replaced wholesale: what changed in between fired no
  // event, so no stream can go on as if it saw everything, and the
  // history no longer reaches back.
  for (auto& [id, s] : streams_)
    s.outbox->finish(1012, "the server's state was replaced; reconnect", /*drop=*/false);
  streams_.clear();
  metrics_.event_streams = 0;
  // The replica dropped every host watch, the history's too.
  history_on_ = false;
  history_.clear();
  history_bytes_ = 0;
}

void EventHub::on_event(const znode::WatchEvent& ev) {
  if (type_name(ev.type).empty()) return;
  if (ev.watcher == history_id_) return record(ev);
  auto it = streams_.find(ev.watcher);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (ev.zxid <= s.seen_through) return;
  // As a client connection's events: only about what it may READ (the
  // node's ACL as the change left it, the parent's for a child change).
  if (ev.acl && !znode::acl_allows(*ev.acl, s.caller, perm::read)) return;
  std::optional<Stat> stat;
  if (ev.type != EventType::NodeDeleted) stat = stat_of(replica_, ev.path);
  push(it->first, s, ev.zxid, event_message(type_name(ev.type), ev.zxid, ev.path, stat));
}

bool EventHub::push(core::ConnId id, Stream& s, Zxid zxid, std::string message) {
  if (s.outbox->queued_messages() >= limits::event_stream_queued_messages_max ||
      s.outbox->queued_bytes() + message.size() > limits::event_stream_queued_bytes_max) {
    ++metrics_.event_streams_cut_slow;
    // Within a close frame's 123 bytes.
    s.outbox->finish(1008,
                     "consumer too slow: events unread past the limit; resume with from_zxid=" +
                         std::to_string(s.last_zxid.value()),
                     /*drop=*/true);
    drop(id);
    return false;
  }
  ++metrics_.events_sent;
  s.last_zxid = zxid;
  s.outbox->deliver(std::move(message));
  return true;
}

void EventHub::record(const znode::WatchEvent& ev) {
  Change c;
  c.zxid = ev.zxid;
  c.type = ev.type;
  c.path = ev.path;
  if (ev.type != EventType::NodeDeleted) c.stat = stat_of(replica_, ev.path);
  if (ev.type == EventType::NodeCreated || ev.type == EventType::NodeDeleted) {
    c.parent_stat = stat_of(replica_, znode::parent_path(ev.path));
  }
  c.acl = ev.acl;
  history_bytes_ += c.bytes();
  history_.push_back(std::move(c));
  while (history_.size() > limits::event_history_entries_max ||
         history_bytes_ > limits::event_history_bytes_max) {
    const Change& old = history_.front();
    history_floor_ = std::max(history_floor_, old.zxid);
    history_bytes_ -= old.bytes();
    history_.pop_front();
  }
}

std::optional<std::vector<std::string>> EventHub::replay(const Stream& s, Zxid from) const {
  if (from < history_floor_) return std::nullopt;
  std::vector<std::string> out;
  std::size_t bytes = 0;
  auto it = std::upper_bound(history_.begin(), history_.end(), from,
                             [](Zxid z, const Change& c) { return z < c.zxid; });
  auto add = [&](std::string m) {
    bytes += m.size();
    out.push_back(std::move(m));
    return out.size() <= limits::event_replay_events_max && bytes <= limits::event_replay_bytes_max;
  };
  for (; it != history_.end(); ++it) {
    const Change& c = *it;
    if (s.recursive ? within(c.path, s.path) : c.path == s.path) {
      if (c.acl && !znode::acl_allows(*c.acl, s.caller, perm::read)) continue;
      if (!add(event_message(type_name(c.type), c.zxid, c.path, c.stat))) return std::nullopt;
      continue;
    }
    // A persistent watch on the parent hears of a child coming or going.
    if (!s.recursive && c.parent_stat && c.path != "/" && znode::parent_path(c.path) == s.path) {
      if (!replica_.tree().allows(s.path, s.caller, perm::read)) continue;
      if (!add(event_message("children", c.zxid, s.path, c.parent_stat))) return std::nullopt;
    }
  }
  return out;
}

}  // namespace coord::io
