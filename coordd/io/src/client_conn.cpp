#include "client_conn.h"

#include "coord/base/log.h"
#include "coord/io/tls.h"
#include "core_host.h"
#include "network.h"

namespace coord::io {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using protocol::Bytes;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
      .count();
}

}  // namespace

ClientConn::ClientConn(core::ConnId id, ClientSocket socket, CoreHost& host, NetState& net,
                       std::string ip, std::uint16_t port, bool four_letter_only,
                       std::function<void(const std::string&, bool)> on_gone,
                       std::shared_ptr<ssl::context> tls)
    : id_(id),
      socket_(std::move(socket)),
      host_(host),
      net_(net),
      ip_(std::move(ip)),
      port_(port),
      four_letter_only_(four_letter_only),
      on_gone_(std::move(on_gone)),
      accepted_at_(steady::now()),
      last_frame_at_(accepted_at_),
      tls_ctx_(std::move(tls)) {
  if (tls_ctx_) tls_ = std::make_unique<ssl::stream<ClientSocket&>>(socket_, *tls_ctx_);
}

void ClientConn::start() {
  if (tls_) return tls_handshake();
  // read_ready() reads without waiting and waits for readability itself.
  error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) return close();
  read_more();
}

void ClientConn::tls_handshake() {
  tls_->async_handshake(ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
    if (self->closed_) return;
    NetState& net = self->net_;
    if (ec) {
      ++net.counters.tls_handshake_failures;
      if (net.tls_log.due(now_ms())) {
        COORD_LOG_WARN("coordd", "TLS handshake with ", self->ip_, ":", self->port_,
                       " failed: ", ec.message(), " (", net.tls_log.take_held(),
                       " more failed since the last line)");
      }
      return self->close();
    }
    self->tls_ready_ = true;
    ++net.counters.tls_handshakes;
    // Before any byte of the connection: the core knows who it is before
    // it reads the first request.
    if (auto subject = tls_peer_identity(self->tls_->native_handle())) {
      COORD_LOG_DEBUG("coordd", "TLS client ", self->ip_, ":", self->port_, " is x509 ", *subject);
      self->host_.identity(self->id_, "x509", *subject);
    }
    self->tls_buffer_ = std::make_unique<std::uint8_t[]>(limits::tls_read_chunk_bytes);
    self->read_more();
  });
}

// Sends close_notify and waits for the client's (or its close): what it
// sends meanwhile is dropped. The drain time from finish() bounds it.
void ClientConn::tls_shutdown() {
  if (tls_closing_ || closed_) return;
  tls_closing_ = true;
  tls_->async_shutdown([self = shared_from_this()](error_code) { self->close(); });
}

void ClientConn::take_resume() {
  awaiting_core_ = false;
  read_more();
}

void ClientConn::write_text_and_close(std::string text) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), text = std::move(text)] {
    Bytes b(text.begin(), text.end());
    self->enqueue(std::move(b), true);
  });
}

void ClientConn::stop_reading() {
  draining_ = true;
  if (!decided_) close();  // no handshake yet: nothing to answer
}

void ClientConn::cut_off() {
  ++net_.counters.closed_unread;
  close();
}

// Until the first frame is complete the handshake deadline holds, then the
// allowed silence since the last complete frame; a TLS connection must also
// finish its TLS handshake in time, and one that finish() began to close
// gets the drain time to end it.
void ClientConn::check_deadlines(steady::time_point now) {
  if (closed_) return;
  if (lingering_) {
    if (now - lingering_since_ >= std::chrono::milliseconds(limits::shutdown_drain_ms_max)) {
      close();
    }
    return;
  }
  if (tls_ && !tls_ready_ &&
      now - accepted_at_ >= std::chrono::milliseconds(limits::tls_handshake_ms_max)) {
    COORD_LOG_DEBUG("coordd", "closing ", ip_, ":", port_, ": no TLS handshake within ",
                    limits::tls_handshake_ms_max, " ms");
    ++net_.counters.closed_handshake;
    ++net_.counters.tls_handshake_failures;
    return close();
  }
  if (frames_ == 0 || decided_ == false) {
    if (now - accepted_at_ >= std::chrono::milliseconds(net_.limits.handshake_ms_max)) {
      COORD_LOG_DEBUG("coordd", "closing ", ip_, ":", port_, ": no handshake within ",
                      net_.limits.handshake_ms_max, " ms");
      ++net_.counters.closed_handshake;
      return close();
    }
  } else if (now - last_frame_at_ >= std::chrono::milliseconds(net_.limits.silence_ms_max)) {
    COORD_LOG_DEBUG("coordd", "closing ", ip_, ":", port_, ": no request for ",
                    net_.limits.silence_ms_max, " ms");
    ++net_.counters.closed_silent;
    return close();
  }
}

void ClientConn::track_frames(protocol::ByteSpan bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (length_have_ < 4) {
      length_bytes_[length_have_++] = bytes[i++];
      if (length_have_ < 4) continue;
      const std::uint32_t n = (std::uint32_t{length_bytes_[0]} << 24) |
                              (std::uint32_t{length_bytes_[1]} << 16) |
                              (std::uint32_t{length_bytes_[2]} << 8) | length_bytes_[3];
      // A length the core refuses closes the connection there; count
      // nothing more for it here.
      payload_left_ = n > limits::frame_bytes_max ? SIZE_MAX : n;
    } else {
      const std::size_t take = std::min(payload_left_, bytes.size() - i);
      payload_left_ -= take;
      i += take;
    }
    if (length_have_ == 4 && payload_left_ == 0) {
      ++frames_;
      last_frame_at_ = steady::now();
      length_have_ = 0;
    }
  }
}

void ClientConn::read_more() {
  if (closed_ || reading_ || draining_ || awaiting_core_) return;
  read_ready();
}

// Reads what has arrived into the shared buffer, which on_read() copies out
// before anything else runs on the loop; when nothing has, waits
// for the socket to become readable and tries again. A busy connection so
// takes up to a whole chunk of frames per read, and an idle one waits
// without a buffer.
//
// A read is tried before waiting only when more is likely there: the last
// read filled the buffer, or replies went out since, to which the client
// may have answered with more requests. Otherwise (requests waiting for a
// disk write, or a client that waits for its reply) the read would find
// nothing: a quarter of the system calls of a pipelined write load. The
// wait's registration reports at once what came in meanwhile.
void ClientConn::read_ready() {
  if (tls_) {
    reading_ = true;
    tls_->async_read_some(
        asio::buffer(tls_buffer_.get(), limits::tls_read_chunk_bytes),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
    return;
  }
  if (!more_likely_) return wait_readable();
  read_now();
}

void ClientConn::read_now() {
  error_code ec;
  const std::size_t n = socket_.read_some(asio::buffer(net_.read_buffer), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
  more_likely_ = !ec && n == net_.read_buffer.size();
  on_read(ec, n);
}

void ClientConn::wait_readable() {
  reading_ = true;
  socket_.async_wait(ClientSocket::wait_read, [self = shared_from_this()](error_code wait_ec) {
    self->reading_ = false;
    if (wait_ec) return self->on_read(wait_ec, 0);
    if (!self->closed_) self->read_now();
  });
}

void ClientConn::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (ec == asio::error::operation_aborted && tls_ && lingering_ && !closed_) {
    return tls_shutdown();  // the read finish() cancelled
  }
  if (ec) return close();
  if (lingering_) {
    // Through the event loop, not at once: a client that keeps sending would
    // otherwise deepen the stack with every read.
    return asio::post(socket_.get_executor(),
                      [self = shared_from_this()] { self->discard_input(); });
  }
  // What arrives after the server began to stop is neither answered nor
  // applied: the client sees its connection lost.
  if (draining_) return;
  // The core copies what it keeps; the buffer is free again once it returns.
  protocol::ByteSpan chunk(tls_ ? tls_buffer_.get() : net_.read_buffer.data(), n);
  Bytes first;  // the connection's first bytes, gathered in prefix_
  if (!decided_) {
    // The first four bytes may be a four-letter word instead of a length.
    prefix_.insert(prefix_.end(), chunk.begin(), chunk.end());
    if (prefix_.size() < protocol::frame_length_prefix_bytes) return read_more();
    decided_ = true;
    if (auto word = protocol::four_letter_word(protocol::ByteSpan(prefix_).first(4))) {
      asio::post(host_.core, [self = shared_from_this(), w = std::string(*word)] {
        self->host_.four_letter(self, w);
      });
      return;
    }
    if (four_letter_only_) {
      // Over the connection cap, only monitoring is let in.
      ++net_.counters.refused_at_cap;
      if (net_.refuse_log.due(now_ms())) {
        COORD_LOG_WARN("coordd", "refusing client connections: the cap of ", net_.client_cap,
                       " is reached (", net_.refuse_log.take_held(),
                       " more refused since the last line)");
      }
      return close();
    }
    first = std::move(prefix_);
    chunk = protocol::ByteSpan(first);
  }
  track_frames(chunk);
  // The core answers with take_resume() when it can take more. It runs on
  // this thread, so the chunk goes to it at once: a request is read and
  // answered in one turn of the loop.
  awaiting_core_ = true;
  host_.bytes(id_, chunk);
}

void ClientConn::set_out_bytes(std::size_t n) {
  net_.budget.update(this, out_bytes_, n);
  out_bytes_ = n;
  // While connections are being cut off the total is on its way down;
  // /metrics sees it once it is back within the budget.
  if (!net_.cutting) net_.counters.unread_output_bytes.store(net_.budget.total());
}

void ClientConn::enqueue(Bytes bytes, bool close_after) {
  if (closed_) return;
  if (close_after) close_after_flush_ = true;
  if (!bytes.empty()) {
    set_out_bytes(out_bytes_ + bytes.size());
    out_.push_back(std::move(bytes));
    more_likely_ = true;
  }
  if (out_bytes_ > limits::connection_outbound_bytes_max) {
    // A client that does not read is cut off, not buffered without end.
    COORD_LOG_WARN("coordd", "closing ", ip_, ":", port_, ": ", out_bytes_, " bytes unread");
    return close();
  }
  // Over the budget of all connections: the ones holding the most go first,
  // whoever they are, until the total fits.
  auto self = shared_from_this();  // this one may be among them
  net_.cutting = true;
  while (ClientConn* worst = net_.budget.worst_over_budget()) {
    if (net_.unread_log.due(now_ms())) {
      COORD_LOG_WARN("coordd", "unread output of all connections is over ", net_.budget.max_bytes(),
                     " bytes: closing ", worst->ip_, ":", worst->port_, ", which holds ",
                     worst->out_bytes_, " (", net_.unread_log.take_held(),
                     " more cut off since the last line)");
    }
    worst->cut_off();
  }
  net_.cutting = false;
  net_.counters.unread_output_bytes.store(net_.budget.total());
  if (closed_) return;
  if (!writing_) write_next();
}

void ClientConn::write_next() {
  if (out_head_ == out_.size()) {
    writing_ = false;
    if (close_after_flush_) finish();
    return;
  }
  writing_ = true;
  auto done = [self = shared_from_this()](error_code ec, std::size_t) {
    if (self->closed_) {
      // Closed while this write was in flight: its buffer was kept
      // alive until now, and nothing more is written.
      self->writing_ = false;
      self->clear_output();
      return;
    }
    if (ec) return self->close();
    self->set_out_bytes(self->out_bytes_ - self->out_[self->out_head_].size());
    self->pop_written();
    self->write_next();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(out_[out_head_]), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(out_[out_head_]), std::move(done));
  }
}

void ClientConn::pop_written() {
  out_[out_head_++] = Bytes();
  if (out_head_ == out_.size()) {
    clear_output();
  } else if (2 * out_head_ >= out_.size()) {
    // A queue that never runs empty still drops the slots it has written
    // (each slot moved is paid for by one written before it).
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
}

void ClientConn::clear_output() {
  std::vector<Bytes>().swap(out_);
  out_head_ = 0;
}

void ClientConn::finish() {
  if (closed_ || lingering_) return;
  lingering_ = true;
  if (!tls_) {
    error_code ec;
    socket_.shutdown(ClientSocket::shutdown_send, ec);
    if (ec) return close();
  }
  // A client that neither reads nor closes is closed after the drain time
  // anyway (check_deadlines).
  lingering_since_ = steady::now();
  if (tls_ && reading_) {
    // close_notify cannot be sent while a TLS read is in flight, and an
    // idle client may never end it: cancel it (on_read then shuts down).
    error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  if (!reading_) discard_input();
}

void ClientConn::discard_input() {
  if (closed_ || reading_) return;
  if (tls_) return tls_shutdown();
  read_ready();
}

void ClientConn::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  // finish() shut the sending side already: close() alone ends the rest.
  if (!lingering_ || tls_) socket_.shutdown(ClientSocket::shutdown_both, ignored);
  socket_.close(ignored);
  // The budget counts what this connection still holds only while it may
  // be written; a write in flight still reads out_[out_head_] and clears out_
  // when it completes (at once: the socket is closed).
  set_out_bytes(0);
  if (!writing_) clear_output();
  on_gone_(ip_, four_letter_only_);
  asio::post(host_.core, [self = shared_from_this()] { self->host_.closed(self->id_); });
}

}  // namespace coord::io
