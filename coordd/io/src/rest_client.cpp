#include "coord/io/rest_client.h"

#include "coord/protocol/frame.h"

namespace coord::io {
namespace {

namespace pr = coord::protocol;
// Long enough that pings every few seconds keep it; short enough that a
// session left behind by a crash does not linger.
constexpr std::int32_t rest_session_timeout_ms = 30'000;
constexpr std::int64_t rest_ping_interval_ms = 5'000;

}  // namespace

void RestClient::start() {
  if (opened_ && !closed_) return;
  if (opened_) replica_.connection_closed(id_);
  opened_ = true;
  closed_ = false;
  session_ = SessionId(0);
  inbox_.clear();
  replica_.connection_opened(id_, ip_, clock_.steady_ms(), clock_.wall_ms());
  pr::ConnectRequest req;
  req.timeout_ms = rest_session_timeout_ms;
  // REST reads go on while the server is read-only (writes are refused).
  req.read_only = true;
  pr::Bytes frame;
  pr::append_connect_request_frame(frame, req);
  replica_.bytes_received(id_, pr::ByteSpan(frame), clock_.steady_ms(), clock_.wall_ms());
  last_sent_ms_ = clock_.steady_ms().value();
}

void RestClient::call(pr::OpCode op, const pr::RequestBody& body, Done done) {
  if (!connected()) {
    done(ErrorCode::ConnectionLoss, pr::Empty{});
    return;
  }
  const std::int32_t xid = next_xid_++;
  if (next_xid_ <= 0) next_xid_ = 1;
  pending_.emplace(xid, std::make_pair(op, std::move(done)));
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
      if (resp.ok() && resp->session_id.value() != 0) session_ = resp->session_id;
      continue;
    }
    pr::JuteReader r(cut.payload);
    auto header = pr::decode_reply_header(r);
    if (!header.ok() || header->xid < 0) continue;  // watch events, pings
    auto it = pending_.find(header->xid);
    if (it == pending_.end()) continue;
    auto [op, done] = std::move(it->second);
    pending_.erase(it);
    if (header->err != ErrorCode::Ok) {
      done(header->err, pr::Empty{});
      continue;
    }
    auto body = pr::decode_response_body(op, r.rest());
    if (body.ok()) {
      done(ErrorCode::Ok, *body);
    } else {
      done(ErrorCode::MarshallingError, pr::Empty{});
    }
  }
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(pos));
  if (out.close) {
    closed_ = true;
    fail_all();
  }
}

void RestClient::tick() {
  if (!opened_ || closed_) {
    if (replica_.ready()) start();
    return;
  }
  if (!connected()) return;
  if (clock_.steady_ms().value() - last_sent_ms_ >= rest_ping_interval_ms) {
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{pr::xid_ping, pr::OpCode::Ping}, pr::Empty{});
    replica_.bytes_received(id_, pr::ByteSpan(frame), clock_.steady_ms(), clock_.wall_ms());
    last_sent_ms_ = clock_.steady_ms().value();
  }
}

void RestClient::fail_all() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [xid, entry] : pending)
    entry.second(ErrorCode::ConnectionLoss, pr::Empty{});
}

}  // namespace coord::io
