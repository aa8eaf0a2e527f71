// State the network side shares among its connections and acceptors:
// the limits they enforce, the budget of unread output over all client
// connections, and the counters /metrics shows.
// Thread safety: the loop thread (client connections; its io_context runs
// one thread), except what HTTP sessions use from theirs: the limits,
// which do not change, and the atomics.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <atomic>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "coord/base/limits.h"
#include "coord/io/http_api.h"

namespace coord::io {

class ClientConn;

// A client connection's socket, bound to the loop's io_context
// by type: its executor is one word, where the type-erased default takes
// several, in the socket and again in every operation waiting on it. With
// many idle connections that is memory worth keeping.
using ClientSocket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// The server checks every client connection's deadlines (handshake,
// silence, TLS handshake, drain) on one sweep, this many times per the
// shortest of them, and at least every connection_deadline_sweep_ms_max:
// a connection past its deadline is closed at most one interval late.
inline constexpr std::int64_t connection_deadline_sweeps_per_limit = 8;
inline constexpr std::int64_t connection_deadline_sweep_ms_min = 10;
inline constexpr std::int64_t connection_deadline_sweep_ms_max = 1'000;

struct NetLimits {
  // A connection must have sent its whole first frame by then.
  std::int64_t handshake_ms_max = 0;
  // ... and then some frame at least this often.
  std::int64_t silence_ms_max = 0;
  // Unread output of all client connections together.
  std::size_t unread_bytes_max = 0;
  std::int64_t http_idle_ms_max = 0;
};

// Bytes queued for clients, per connection and in total, with the
// connection holding the most at hand.
class OutputBudget {
 public:
  explicit OutputBudget(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  void update(ClientConn* conn, std::size_t before, std::size_t after) {
    if (before == after) return;
    if (before > 0) by_bytes_.erase({before, conn});
    if (after > 0) by_bytes_.insert({after, conn});
    total_ = total_ - before + after;
  }
  // While the total is over budget, the connection holding the most.
  ClientConn* worst_over_budget() const {
    if (total_ <= max_bytes_ || by_bytes_.empty()) return nullptr;
    return std::prev(by_bytes_.end())->second;
  }
  std::size_t total() const { return total_; }
  std::size_t max_bytes() const { return max_bytes_; }

 private:
  std::size_t max_bytes_;
  std::size_t total_ = 0;
  std::set<std::pair<std::size_t, ClientConn*>> by_bytes_;
};

// True at most once per interval; counts what it held back.
class LogLimiter {
 public:
  explicit LogLimiter(std::int64_t interval_ms) : interval_ms_(interval_ms) {}
  bool due(std::int64_t now_ms) {
    if (logged_ && now_ms - last_ms_ < interval_ms_) {
      ++held_;
      return false;
    }
    logged_ = true;
    last_ms_ = now_ms;
    return true;
  }
  // Occurrences held back since the last line; resets.
  std::uint64_t take_held() { return std::exchange(held_, 0); }

 private:
  std::int64_t interval_ms_;
  std::int64_t last_ms_ = 0;
  bool logged_ = false;
  std::uint64_t held_ = 0;
};

struct NetState {
  explicit NetState(const NetLimits& l) : limits(l), budget(l.unread_bytes_max) {}
  NetLimits limits;
  OutputBudget budget;
  NetCounters counters;
  LogLimiter unread_log{limits::network_log_interval_ms};
  LogLimiter refuse_log{limits::network_log_interval_ms};
  LogLimiter tls_log{limits::tls_log_interval_ms};
  std::size_t client_cap = 0;  // regular client connections at once
  bool cutting = false;        // connections are being cut off for the budget
  // HTTP requests handed to the core and not yet answered on the wire.
  std::atomic<std::size_t> http_in_flight{0};
  // Every client connection reads into this one buffer and copies out what
  // came before the thread runs anything else, so that no connection holds
  // a read buffer while it waits.
  std::vector<std::uint8_t> read_buffer =
      std::vector<std::uint8_t>(limits::connection_read_chunk_bytes);
};

}  // namespace coord::io
