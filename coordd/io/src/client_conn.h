// One ZooKeeper client socket on the network thread.
//
// A connection forwards the raw bytes it reads to the core (CoreHost) and
// writes back what the core gives it; the core refers to it by id. The
// first four bytes decide between a four-letter word and the protocol.
// Thread safety: its own members on its strand (the network thread); the
// public calls that post (deliver, resume, write_text_and_close, shutdown)
// from any thread.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coord/core/replica.h"
#include "coord/protocol/frame.h"

namespace coord::io {

struct CoreHost;

class ClientConn : public std::enable_shared_from_this<ClientConn> {
 public:
  ClientConn(core::ConnId id, boost::asio::ip::tcp::socket socket, CoreHost& host, std::string ip,
             std::function<void(const std::string&)> on_gone);

  core::ConnId id() const { return id_; }
  const std::string& ip() const { return ip_; }
  std::uint16_t port() const { return port_; }
  void start() { read_more(); }

  // From the core: bytes to send, then maybe close.
  void deliver(protocol::Bytes bytes, bool close_after);
  // From the core: the session can take more input.
  void resume();
  void write_text_and_close(std::string text);
  void shutdown();

 private:
  void read_more();
  void on_read(boost::system::error_code ec, std::size_t n);
  void enqueue(protocol::Bytes bytes, bool close_after);
  void write_next();
  void close();

  core::ConnId id_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::strand<boost::asio::ip::tcp::socket::executor_type> strand_;
  CoreHost& host_;
  std::string ip_;
  std::uint16_t port_ = 0;
  std::function<void(const std::string&)> on_gone_;
  std::vector<std::uint8_t> buf_;
  protocol::Bytes prefix_;  // the first bytes, until they are known not to be a 4lw
  bool decided_ = false;
  bool reading_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  bool writing_ = false;
  std::deque<protocol::Bytes> out_;
  std::size_t out_bytes_ = 0;
};

}  // namespace coord::io
