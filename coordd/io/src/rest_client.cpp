#include "coord/io/rest_client.h"

#include "coord/base/log.h"
#include "coord/protocol/frame.h"

namespace coord::io {
namespace {

namespace pr = coord::protocol;

}  // namespace

std::string RestCaller::key() const {
  if (digest_auth.empty()) return ip;
  return ip + " " + core::digest_of(digest_auth);
}

void RestClient::start() {
  COORD_ASSERT(!opened_, "a REST client opens once");
  opened_ = true;
  opened_ms_ = last_used_ms_ = clock_.steady_ms().value();
  replica_.connection_opened(id_, caller_.ip, clock_.steady_ms(), clock_.wall_ms());
  if (super_user_) replica_.grant_super(id_);
  pr::ConnectRequest req;
  req.timeout_ms = limits::rest_session_timeout_ms;
  // REST reads go on while the server is read-only (writes are refused).
  req.read_only = true;
  pr::Bytes frame;
  pr::append_connect_request_frame(frame, req);
  replica_.bytes_received(id_, pr::ByteSpan(frame), clock_.steady_ms(), clock_.wall_ms());
  last_sent_ms_ = clock_.steady_ms().value();
}

void RestClient::call(pr::OpCode op, const pr::RequestBody& body, Done done) {
  last_used_ms_ = clock_.steady_ms().value();
  if (closed_ || closing_) {
    done(ErrorCode::ConnectionLoss, pr::Empty{});
    return;
  }
  if (!connected()) {
    waiting_.push_back(Waiting{op, body, std::move(done), last_used_ms_});
    return;
  }
  send(op, body, std::move(done));
}

void RestClient::send(pr::OpCode op, const pr::RequestBody& body, Done done) {
  const std::int32_t xid = next_xid_++;
  if (next_xid_ <= 0) next_xid_ = 1;
  pending_.emplace(xid, Pending{op, std::move(done), clock_.steady_ms().value()});
  pr::Bytes frame;
  pr::append_request_frame(frame, pr::RequestHeader{xid, op}, body);
  replica_.bytes_received(id_, pr::ByteSpan(frame), clock_.steady_ms(), clock_.wall_ms());
  last_sent_ms_ = clock_.steady_ms().value();
}

void RestClient::on_output(const core::ConnectionOutput& out) {
  inbox_.insert(inbox_.end(), out.bytes.begin(), out.bytes.end());
  std::size_t pos = 0;
  for (;;) {
    auto cut = pr::cut_frame(pr::ByteSpan(inbox_).subspan(pos));
    if (cut.state != pr::FrameState::Frame) break;
    pos += cut.consumed;
    if (session_.value() == 0) {
      auto resp = pr::decode_connect_response(cut.payload);
      if (resp.ok() && resp->session_id.value() != 0) {
        session_ = resp->session_id;
        if (!caller_.digest_auth.empty()) {
          // Before any request, as a client's addauth right after it
          // connects: the replica handles a connection's packets in order.
          pr::Bytes auth;
          pr::append_request_frame(auth, pr::RequestHeader{pr::xid_auth, pr::OpCode::Auth},
                                   pr::AuthPacket{0, "digest", caller_.digest_auth});
          replica_.bytes_received(id_, pr::ByteSpan(auth), clock_.steady_ms(), clock_.wall_ms());
        }
        // Requests that came while the session was being opened go out in
        // their order.
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& w : waiting)
          send(w.op, w.body, std::move(w.done));
      }
      continue;
    }
    pr::JuteReader r(cut.payload);
    auto header = pr::decode_reply_header(r);
    if (!header.ok() || header->xid < 0) continue;  // watch events, pings
    auto it = pending_.find(header->xid);
    if (it == pending_.end()) continue;  // given up on (rest_request_ms_max)
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (header->err != ErrorCode::Ok) {
      p.done(header->err, pr::Empty{});
      continue;
    }
    auto body = pr::decode_response_body(p.op, r.rest());
    if (body.ok()) {
      p.done(ErrorCode::Ok, *body);
    } else {
      p.done(ErrorCode::MarshallingError, pr::Empty{});
    }
  }
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(pos));
  if (out.close) {
    closed_ = true;
    fail_all();
  }
}

void RestClient::tick() {
  if (closed_) return;
  const std::int64_t now = clock_.steady_ms().value();
  // A request that waits too long (no leader, storage refusing writes) is
  // answered ConnectionLoss: the caller cannot tell whether it applied, as
  // a ZooKeeper client cannot after a lost connection.
  while (!waiting_.empty() && now - waiting_.front().since_ms > limits::rest_request_ms_max) {
    Done done = std::move(waiting_.front().done);
    waiting_.pop_front();
    done(ErrorCode::ConnectionLoss, pr::Empty{});
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.since_ms > limits::rest_request_ms_max) {
      Done done = std::move(it->second.done);
      it = pending_.erase(it);
      done(ErrorCode::ConnectionLoss, pr::Empty{});
    } else {
      ++it;
    }
  }
  if (closing_ && pending_.empty()) {
    // closeSession went unanswered in time: let the connection go; the
    // session expires by itself.
    closed_ = true;
    return;
  }
  if (!connected() && now - opened_ms_ > limits::rest_request_ms_max) {
    // The session was never granted: give the connection up.
    closed_ = true;
    fail_all();
    return;
  }
  if (connected() && now - last_sent_ms_ >= limits::rest_ping_interval_ms) {
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{pr::xid_ping, pr::OpCode::Ping}, pr::Empty{});
    replica_.bytes_received(id_, pr::ByteSpan(frame), clock_.steady_ms(), clock_.wall_ms());
    last_sent_ms_ = now;
  }
}

void RestClient::close() {
  if (closed_ || closing_) return;
  closing_ = true;
  if (!connected()) {
    closed_ = true;
    fail_all();
    return;
  }
  // The replica answers closeSession and then closes the connection.
  send(pr::OpCode::CloseSession, pr::Empty{}, [](ErrorCode, const pr::ResponseBody&) {});
}

void RestClient::fail_all() {
  auto waiting = std::move(waiting_);
  waiting_.clear();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& w : waiting)
    w.done(ErrorCode::ConnectionLoss, pr::Empty{});
  for (auto& [xid, p] : pending)
    p.done(ErrorCode::ConnectionLoss, pr::Empty{});
}

Status RestClients::call(const RestCaller& caller, pr::OpCode op, const pr::RequestBody& body,
                         Done done) {
  {
    // The whole request must fit in one frame, as a ZooKeeper client's:
    // a larger one would make the replica close the connection.
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{1, op}, body);
    if (frame.size() - pr::frame_length_prefix_bytes > limits::frame_bytes_max) {
      return Status(ErrorCode::BadArguments, "the request is " + std::to_string(frame.size()) +
                                                 " bytes, over the frame limit of " +
                                                 std::to_string(limits::frame_bytes_max));
    }
  }
  const std::string key = caller.key();
  auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second->finished()) {
    if (it != by_key_.end()) by_key_.erase(it);
    if (by_conn_.size() >= limits::rest_sessions_max) {
      // Make room: the caller unused longest gives its session up.
      RestClient* oldest = nullptr;
      for (auto& [id, c] : by_conn_) {
        if (!c->idle() || c->finished()) continue;
        if (oldest == nullptr || c->last_used_ms() < oldest->last_used_ms()) oldest = c.get();
      }
      if (oldest == nullptr) {
        return Status(ErrorCode::ConnectionLoss, "every REST session is busy; try again");
      }
      if (auto b = by_key_.find(oldest->key()); b != by_key_.end() && b->second == oldest)
        by_key_.erase(b);
      oldest->close();
      forget_finished();
      // A closing session still counts until the replica lets it go; the
      // new caller may exceed the cap by the ones closing meanwhile.
    }
    auto client = std::make_unique<RestClient>(replica_, next_id_--, caller, clock_, super_user_);
    RestClient* c = client.get();
    by_conn_.emplace(c->id(), std::move(client));
    by_key_[key] = c;
    c->start();
    it = by_key_.find(key);
  }
  it->second->call(op, body, std::move(done));
  return Status();
}

void RestClients::on_output(const core::ConnectionOutput& out) {
  auto it = by_conn_.find(out.conn);
  if (it == by_conn_.end()) return;
  ++depth_;
  it->second->on_output(out);
  --depth_;
  forget_finished();
}

void RestClients::tick() {
  const std::int64_t now = clock_.steady_ms().value();
  // Callbacks run from here may start new clients: walk a copy.
  std::vector<RestClient*> clients;
  clients.reserve(by_conn_.size());
  for (auto& [id, c] : by_conn_)
    clients.push_back(c.get());
  ++depth_;
  for (RestClient* c : clients) {
    c->tick();
    if (c->idle() && !c->finished() && now - c->last_used_ms() > limits::rest_session_idle_ms_max) {
      if (auto b = by_key_.find(c->key()); b != by_key_.end() && b->second == c) by_key_.erase(b);
      c->close();
    }
  }
  --depth_;
  forget_finished();
}

void RestClients::forget_finished() {
  // Not while a client's callbacks run: the client must outlive them.
  if (depth_ > 0) return;
  for (auto it = by_conn_.begin(); it != by_conn_.end();) {
    RestClient* c = it->second.get();
    if (!c->finished()) {
      ++it;
      continue;
    }
    if (auto b = by_key_.find(c->key()); b != by_key_.end() && b->second == c) by_key_.erase(b);
    replica_.connection_closed(c->id());
    it = by_conn_.erase(it);
  }
}

}  // namespace coord::io
