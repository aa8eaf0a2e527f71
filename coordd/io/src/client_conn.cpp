#include "client_conn.h"

#include "coord/base/log.h"
#include "core_host.h"

namespace coord::io {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using protocol::Bytes;
using error_code = boost::system::error_code;

namespace {

constexpr std::size_t read_chunk_bytes = 64 * 1024;

}  // namespace

ClientConn::ClientConn(core::ConnId id, tcp::socket socket, CoreHost& host, std::string ip,
                       std::function<void(const std::string&)> on_gone)
    : id_(id),
      socket_(std::move(socket)),
      strand_(socket_.get_executor()),
      host_(host),
      ip_(std::move(ip)),
      on_gone_(std::move(on_gone)),
      buf_(read_chunk_bytes) {
  error_code ec;
  port_ = socket_.remote_endpoint(ec).port();
}

void ClientConn::resume() {
  asio::post(strand_, [self = shared_from_this()] { self->read_more(); });
}

void ClientConn::write_text_and_close(std::string text) {
  asio::post(strand_, [self = shared_from_this(), text = std::move(text)] {
    Bytes b(text.begin(), text.end());
    self->enqueue(std::move(b), true);
  });
}

void ClientConn::shutdown() {
  asio::post(strand_, [self = shared_from_this()] { self->close(); });
}

void ClientConn::read_more() {
  if (closed_ || reading_) return;
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(buf_),
      asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_read(ec, n);
      }));
}

void ClientConn::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (ec) return close();
  Bytes chunk(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
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
    chunk = std::move(prefix_);
  }
  // The core answers with resume() when it can take more.
  asio::post(host_.core, [self = shared_from_this(), b = std::move(chunk)] {
    self->host_.bytes(self->id_, b);
  });
}

void ClientConn::deliver(Bytes bytes, bool close_after) {
  asio::post(strand_, [self = shared_from_this(), b = std::move(bytes), close_after]() mutable {
    self->enqueue(std::move(b), close_after);
  });
}

void ClientConn::enqueue(Bytes bytes, bool close_after) {
  if (closed_) return;
  if (close_after) close_after_flush_ = true;
  if (!bytes.empty()) {
    out_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
  }
  if (out_bytes_ > limits::connection_outbound_bytes_max) {
    // A client that does not read is cut off, not buffered without end.
    COORD_LOG_WARN("coordd", "closing ", ip_, ": ", out_bytes_, " bytes unread");
    return close();
  }
  if (!writing_) write_next();
}

void ClientConn::write_next() {
  if (out_.empty()) {
    writing_ = false;
    if (close_after_flush_) close();
    return;
  }
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(out_.front()),
      asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t) {
        if (self->closed_) {
          // Closed while this write was in flight: its buffer was kept
          // alive until now, and nothing more is written.
          self->writing_ = false;
          self->out_.clear();
          return;
        }
        if (ec) return self->close();
        self->out_bytes_ -= self->out_.front().size();
        self->out_.pop_front();
        self->write_next();
      }));
}

void ClientConn::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // A write in flight still reads out_.front(); its completion clears.
  if (!writing_) out_.clear();
  on_gone_(ip_);
  asio::post(host_.core, [self = shared_from_this()] { self->host_.closed(self->id_); });
}

}  // namespace coord::io
