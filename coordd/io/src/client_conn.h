// One ZooKeeper client socket, on the network side of the loop thread.
//
// A connection forwards the raw bytes it reads to the core (CoreHost) and
// writes back what the core gives it; the core refers to it by id. The
// first four bytes decide between a four-letter word and the protocol.
//
// It also bounds what a client can cost: the whole first frame (the
// handshake) must arrive within the handshake limit, and then some
// complete frame at least every silence limit, or the connection is closed
// (the server checks every connection's deadlines on one sweep, so that a
// connection holds no timer of its own);
// its unread output counts against its own limit and the budget over all
// connections (NetState), and the connection holding the most is cut off
// while the total is over budget.
//
// It holds no read buffer of its own: it reads whatever has arrived into
// the loop's shared buffer (NetState), which the core copies from, and
// while the client is quiet it only waits for the socket to be readable.
// So an idle connection costs its socket and this object, not a buffer.
//
// On the secure client port the same bytes travel inside TLS: the TLS
// handshake comes first (within its own limit as well as the handshake
// limit), a verified client certificate gives the connection an x509
// identity, and reads go through a buffer of the connection's own (TLS
// decrypts whole records, which a shared buffer cannot hold across waits).
//
// Thread safety: the loop thread, the one thread that runs the event loop
// (so no strand is needed, nor paid for in every pending operation);
// write_text_and_close, which posts, from any thread. The core calls
// take_output with its replies in its own turn, and take_resume in the
// next (CoreHost::send_to_net).
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coord/core/replica.h"
#include "coord/protocol/frame.h"
#include "network.h"

namespace coord::io {

struct CoreHost;
struct NetState;

class ClientConn : public std::enable_shared_from_this<ClientConn> {
 public:
  // `four_letter_only`: accepted over the connection cap, to answer a
  // four-letter word and nothing else.
  // `ip` and `port`: the client's address, which the acceptor has read.
  ClientConn(core::ConnId id, ClientSocket socket, CoreHost& host, NetState& net, std::string ip,
             std::uint16_t port, bool four_letter_only,
             std::function<void(const std::string&, bool)> on_gone,
             std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  core::ConnId id() const { return id_; }
  const std::string& ip() const { return ip_; }
  std::uint16_t port() const { return port_; }
  void start();

  // From the core's turn: bytes to send, then maybe close.
  void take_output(protocol::Bytes bytes, bool close_after) {
    enqueue(std::move(bytes), close_after);
  }
  // From the core: the session can take more input.
  void take_resume();
  void write_text_and_close(std::string text);
  // Any thread: the loop's executor, which never changes.
  ClientSocket::executor_type executor() { return socket_.get_executor(); }
  // The server stops: read nothing more (what was read is with the core,
  // which answers it and then closes the connection). Network thread only.
  void stop_reading();
  // Cut off for holding too much of the unread-output budget. Network
  // thread only.
  void cut_off();
  // Closes the connection if it is past one of its deadlines at `now`:
  // the handshake's, the allowed silence's, the TLS handshake's, or the
  // drain's after finish(). Network thread only.
  void check_deadlines(std::chrono::steady_clock::time_point now);

 private:
  void tls_handshake();
  void tls_shutdown();
  void read_more();
  void read_ready();
  void read_now();
  void wait_readable();
  void on_read(boost::system::error_code ec, std::size_t n);
  void track_frames(protocol::ByteSpan bytes);
  void enqueue(protocol::Bytes bytes, bool close_after);
  void set_out_bytes(std::size_t n);
  void write_next();
  void pop_written();
  void clear_output();
  // Every reply written: sends FIN after them and reads (and drops) what
  // the client still sends until it closes, so that unread input does not
  // turn the close into a reset that discards replies not yet delivered.
  void finish();
  void discard_input();
  void close();

  core::ConnId id_;
  ClientSocket socket_;
  CoreHost& host_;
  NetState& net_;
  std::string ip_;
  std::uint16_t port_ = 0;
  bool four_letter_only_ = false;
  std::function<void(const std::string&, bool)> on_gone_;
  protocol::Bytes prefix_;  // the first bytes, until they are known not to be a 4lw
  bool decided_ = false;
  bool reading_ = false;
  // Whether read_ready() tries a read before it waits for the socket.
  bool more_likely_ = true;
  // A chunk went to the core; it says take_resume() when the session can
  // take more.
  bool awaiting_core_ = false;
  bool draining_ = false;
  bool lingering_ = false;  // finish() ran: FIN sent, waiting for the client's
  bool closed_ = false;
  bool close_after_flush_ = false;
  bool writing_ = false;
  // Replies to write, from out_head_ on. Not a deque, which allocates
  // its first block even while empty: an idle connection keeps nothing.
  std::vector<protocol::Bytes> out_;
  std::size_t out_head_ = 0;
  std::size_t out_bytes_ = 0;
  // Frame boundaries, to tell a speaking client from a silent one: the
  // bytes of the length prefix seen so far, the payload bytes still due.
  std::uint8_t length_bytes_[4] = {};
  std::size_t length_have_ = 0;
  std::size_t payload_left_ = 0;
  std::uint64_t frames_ = 0;
  std::chrono::steady_clock::time_point accepted_at_;
  std::chrono::steady_clock::time_point last_frame_at_;
  std::chrono::steady_clock::time_point lingering_since_;
  // TLS: the context this connection was accepted with (kept: a reload
  // replaces the server's, not this one), the stream over socket_, the
  // decrypted bytes of one read.
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;
  std::unique_ptr<boost::asio::ssl::stream<ClientSocket&>> tls_;
  std::unique_ptr<std::uint8_t[]> tls_buffer_;
  bool tls_ready_ = false;    // handshake done
  bool tls_closing_ = false;  // close_notify being sent
};

}  // namespace coord::io
