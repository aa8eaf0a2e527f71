// coord-bench: a load generator on libcoord. Because it speaks ZooKeeper's
// client protocol it measures coordd and Apache ZooKeeper with the same
// client; bench/compare.sh runs it against both.
//
//   coord-bench -s 127.0.0.1:2181 --op get --sessions 1 --outstanding 64 --duration-s 5
//   coord-bench -s ... --mode watch-latency --ops 2000
//   coord-bench -s ... --mode latency --op get --duration-s 4
//   coord-bench -s ... --mode session-churn --sessions 4 --duration-s 5
//   coord-bench -s ... --mode session-open --sessions 64 --duration-s 5
//   coord-bench -s a:1,b:2,c:3 --mode failover --duration-s 60   (kill servers meanwhile)
//
// Output: one JSON line on stdout (for scripts), then a human-readable
// summary on stderr. Latencies come from coord::Histogram in microseconds.
//
// Modes:
//   ops            C sessions keep W requests each outstanding for D seconds
//                  (or N operations in all). --op create makes new nodes,
//                  delete removes the prepared keys (at most K operations),
//                  mix reads (getData) --read-pct percent of the time and
//                  writes (setData) otherwise. Each session is a Client
//                  with its own two threads, as separate applications
//                  would hold them; --runtimes R shares R libcoord
//                  runtimes among them instead, as one program holding
//                  many sessions would run them.
//   watch-latency  one session writes a node, another holds a watch on it;
//                  the latency is from submitting the write to the event.
//   ops-raw        the ops mode's load (--op get, set or exists; C sessions,
//                  W requests in flight each) from raw sessions on one
//                  thread: what the server sustains when the load
//                  generator costs little, for a machine whose cores the
//                  two share.
//   latency        the server's own latency: one session on a blocking raw
//                  socket in this thread, one --op get, set or exists at a
//                  time, from writing the request to reading its reply.
//                  libcoord's hand-offs between its threads are not in it,
//                  only a system call each way.
//   watch-latency-raw  watch-latency with two such sessions on one thread:
//                  from writing the setData to reading the event.
//   session-churn  C threads open a session, wait for Connected and close
//                  it, again and again; the latency is open + close.
//   session-open   the server's rate of session opens, with a client that
//                  costs next to nothing: one thread keeps C handshakes in
//                  flight on raw sockets (connect, ConnectRequest, the
//                  reply, closeSession, close), spread over the servers;
//                  an op is one session opened, its latency connect to
//                  ConnectResponse.
//   idle-sessions  C sessions held idle on raw sockets in one thread: W
//                  handshakes in flight until all are open, then each
//                  pings once a third of its timeout, as ZooKeeper's
//                  clients do, for D seconds, then all close their
//                  sessions at once. An op is a ping answered, its latency
//                  the round trip; the figures add the opening and closing
//                  times, pings late (unanswered a whole interval on) and
//                  sessions lost (closed by the server). A line on stderr
//                  says when all are open. --source-addresses spreads the
//                  connections over loopback addresses, for more sessions
//                  than one address has ephemeral ports.
//   failover       one session writes continuously (W outstanding); the
//                  figure is the longest gap between acknowledged writes,
//                  with the errors seen, while servers are killed outside.
// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coord/agent/http_client.h"
#include "coord/base/histogram.h"
#include "coord/base/limits.h"
#include "coord/base/malloc_tuning.h"
#include "coord/base/random.h"
#include "coord/client-lib/client.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Flags {
  std::string servers = "127.0.0.1:2181";
  std::string mode = "ops";
  std::string op = "get";
  int read_pct = 90;
  int sessions = 1;
  int outstanding = 1;
  std::size_t payload_bytes = 100;
  int keys = 1000;
  double duration_s = 5;
  std::int64_t ops = 0;  // 0 = run for duration_s
  std::string root = "/coord-bench";
  bool clean = false;
  std::string label;
  int session_timeout_ms = 10'000;
  int runtimes = 0;          // ops mode: libcoord runtimes the sessions share; 0 = one each
  int source_addresses = 1;  // idle-sessions: loopback source addresses to spread over
};

std::uint64_t micros_since(Clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

std::unique_ptr<coord::Client> connect(const Flags& f,
                                       std::shared_ptr<coord::ClientRuntime> runtime = nullptr) {
  coord::ClientOptions o;
  o.runtime = std::move(runtime);
  o.servers = f.servers;
  o.session_timeout = std::chrono::milliseconds(f.session_timeout_ms);
  o.request_timeout = std::chrono::milliseconds(coord::limits::bench_request_ms_max);
  auto c = coord::Client::start(o);
  if (!c.ok()) {
    std::fprintf(stderr, "coord-bench: %s\n", c.status().to_string().c_str());
    return nullptr;
  }
  if (auto s = (*c)->wait_connected(std::chrono::milliseconds(coord::limits::bench_connect_ms_max));
      !s.ok()) {
    std::fprintf(stderr, "coord-bench: cannot connect to %s: %s\n", f.servers.c_str(),
                 s.to_string().c_str());
    return nullptr;
  }
  return std::move(*c);
}

std::string key_path(const Flags& f, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/k%08d", i);
  return f.root + buf;
}

// Waits until a counter of completions reaches a target.
class Latch {
 public:
  void add(std::int64_t n = 1) {
    std::lock_guard lock(mu_);
    done_ += n;
    cv_.notify_all();
  }
  void wait_for_count(std::int64_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t done_ = 0;
};

// Creates the root and K keys holding the payload (pipelined).
bool prepare(coord::Client& c, const Flags& f, const std::string& payload) {
  auto root = c.create(f.root, std::nullopt);
  if (!root.ok() && root.code() != coord::ErrorCode::NodeExists) {
    std::fprintf(stderr, "coord-bench: create %s: %s\n", f.root.c_str(),
                 root.status().to_string().c_str());
    return false;
  }
  Latch latch;
  std::atomic<int> errors{0};
  // Written by the callbacks (one at a time, on the client's event thread)
  // and read after the latch, which orders it.
  std::string first_error;
  auto failed = [&](coord::ErrorCode code, int i) {
    if (errors++ == 0) first_error = key_path(f, i) + ": " + std::string(coord::error_name(code));
  };
  for (int i = 0; i < f.keys; ++i) {
    c.submit(coord::ops::Create{key_path(f, i), payload},
             [&, i](coord::Result<coord::CreateResult> r) {
               if (r.code() == coord::ErrorCode::NodeExists) {
                 // Left by an earlier run: give it this run's payload.
                 c.submit(coord::ops::SetData{key_path(f, i), payload},
                          [&, i](coord::Result<coord::Stat> s) {
                            if (!s.ok()) failed(s.code(), i);
                            latch.add();
                          });
                 return;
               }
               if (!r.ok()) failed(r.code(), i);
               latch.add();
             });
  }
  latch.wait_for_count(f.keys);
  if (errors > 0) {
    std::fprintf(stderr, "coord-bench: %d keys could not be prepared (the first: %s)\n",
                 errors.load(), first_error.c_str());
    return false;
  }
  return true;
}

// Deletes everything below the root, then the root.
void clean(coord::Client& c, const Flags& f) {
  auto kids = c.get_children(f.root);
  if (!kids.ok()) return;
  Latch latch;
  for (const auto& k : *kids) {
    c.submit(coord::ops::Delete{f.root + "/" + k},
             [&](coord::Result<std::monostate>) { latch.add(); });
  }
  latch.wait_for_count(static_cast<std::int64_t>(kids->size()));
  (void)c.remove(f.root);
}

struct Figures {
  std::int64_t ops = 0;
  std::int64_t errors = 0;
  double seconds = 0;
  coord::Histogram latency_us;
  std::map<std::string, std::int64_t> error_codes;
  std::string extra_json;  // mode-specific fields, starting with a comma
  std::string extra_text;
};

void print(const Flags& f, const Figures& r) {
  const double rate = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  const auto& h = r.latency_us;
  std::string errors = "{";
  for (const auto& [code, n] : r.error_codes) {
    if (errors.size() > 1) errors += ",";
    errors += "\"" + code + "\":" + std::to_string(n);
  }
  errors += "}";
  std::printf(
      "{\"label\":\"%s\",\"mode\":\"%s\",\"op\":\"%s\",\"read_pct\":%d,\"sessions\":%d,"
      "\"outstanding\":%d,\"payload_bytes\":%zu,\"keys\":%d,\"ops\":%lld,\"errors\":%lld,"
      "\"error_codes\":%s,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"latency_us\":{\"p50\":%llu,"
      "\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu,\"mean\":%.1f}%s}\n",
      f.label.c_str(), f.mode.c_str(), f.op.c_str(), f.read_pct, f.sessions, f.outstanding,
      f.payload_bytes, f.keys, static_cast<long long>(r.ops), static_cast<long long>(r.errors),
      errors.c_str(), r.seconds, rate, static_cast<unsigned long long>(h.percentile(50)),
      static_cast<unsigned long long>(h.percentile(90)),
      static_cast<unsigned long long>(h.percentile(99)),
      static_cast<unsigned long long>(h.percentile(99.9)), static_cast<unsigned long long>(h.max()),
      h.mean(), r.extra_json.c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "%s%s%s: %lld ops in %.2f s = %.0f ops/s, %lld errors\n"
               "  latency us: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n%s",
               f.label.empty() ? "" : f.label.c_str(), f.label.empty() ? "" : " ",
               (f.mode == "ops" ? f.op : f.mode).c_str(), static_cast<long long>(r.ops), r.seconds,
               rate, static_cast<long long>(r.errors),
               static_cast<unsigned long long>(h.percentile(50)),
               static_cast<unsigned long long>(h.percentile(90)),
               static_cast<unsigned long long>(h.percentile(99)),
               static_cast<unsigned long long>(h.percentile(99.9)),
               static_cast<unsigned long long>(h.max()), r.extra_text.c_str());
}

// One session of the ops mode. Its callbacks run on its runtime's event
// thread one at a time, so its histogram needs no lock.
struct Worker {
  std::unique_ptr<coord::Client> client;
  coord::Histogram latency_us;
  std::map<std::string, std::int64_t> error_codes;
  std::int64_t ops = 0;
  std::int64_t errors = 0;
  std::int64_t created = 0;
  coord::Random rng{1};
  int index = 0;
  // The first requests are issued from the main thread while completions
  // already issue more on the event thread: rng and created need a lock.
  std::mutex mu;
};

class OpsRun {
 public:
  OpsRun(const Flags& f, std::string payload) : f_(f), payload_(std::move(payload)) {}

  bool run(Figures& out) {
    std::vector<std::shared_ptr<coord::ClientRuntime>> runtimes;
    for (int i = 0; i < f_.runtimes; ++i)
      runtimes.push_back(coord::ClientRuntime::start());
    for (int i = 0; i < f_.sessions; ++i) {
      workers_.push_back(std::make_unique<Worker>());
      auto& w = *workers_.back();
      w.client = connect(
          f_, runtimes.empty() ? nullptr : runtimes[static_cast<std::size_t>(i) % runtimes.size()]);
      if (!w.client) return false;
      w.rng = coord::Random(static_cast<std::uint64_t>(i) + 1);
      w.index = i;
    }
    limit_ = f_.ops > 0 ? f_.ops : std::numeric_limits<std::int64_t>::max();
    if (f_.op == "delete") limit_ = std::min<std::int64_t>(limit_, f_.keys);
    // Formatted once: the load generator's cost per request counts against
    // the server it measures.
    for (int i = 0; i < f_.keys; ++i)
      paths_.push_back(key_path(f_, i));
    start_ = Clock::now();
    deadline_ =
        f_.ops > 0
            ? Clock::time_point::max()
            : start_ + std::chrono::microseconds(static_cast<std::int64_t>(f_.duration_s * 1e6));
    for (auto& w : workers_) {
      for (int k = 0; k < f_.outstanding; ++k)
        issue(*w);
    }
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return in_flight_.load() == 0; });
    }
    out.seconds = static_cast<double>(micros_since(start_)) / 1e6;
    for (auto& w : workers_) {
      out.ops += w->ops;
      out.errors += w->errors;
      out.latency_us.merge(w->latency_us);
      for (const auto& [code, n] : w->error_codes)
        out.error_codes[code] += n;
    }
    return true;
  }

  void close_all() {
    for (auto& w : workers_)
      if (w->client) (void)w->client->close();
  }

 private:
  // Sends the worker's next request unless the run is over.
  void issue(Worker& w) {
    if (Clock::now() >= deadline_) return;
    const std::int64_t n = issued_.fetch_add(1);
    if (n >= limit_) return;
    // Counted without the lock: 32 event threads would queue for it. A
    // completion issues the next request before it stops counting itself,
    // so the count reaches 0 only when the run is over.
    in_flight_.fetch_add(1);
    const auto t0 = Clock::now();
    auto done = [this, &w, t0](coord::ErrorCode code) {
      w.latency_us.record(micros_since(t0));
      ++w.ops;
      if (code != coord::ErrorCode::Ok) {
        ++w.errors;
        ++w.error_codes[std::string(coord::error_name(code))];
      }
      issue(w);
      if (in_flight_.fetch_sub(1) == 1) {
        std::lock_guard lock(mu_);
        cv_.notify_all();
      }
    };
    std::unique_lock wlock(w.mu);
    std::string op = f_.op;
    if (op == "mix")
      op = w.rng.below(100) < static_cast<std::uint64_t>(f_.read_pct) ? "get" : "set";
    const std::uint64_t key = w.rng.below(static_cast<std::uint64_t>(f_.keys));
    const std::int64_t serial = w.created++;
    wlock.unlock();
    if (op == "create") {
      const std::string path =
          f_.root + "/c-" + std::to_string(w.index) + "-" + std::to_string(serial);
      w.client->submit(coord::ops::Create{path, payload_},
                       [done](coord::Result<coord::CreateResult> r) { done(r.code()); });
    } else if (op == "delete") {
      w.client->submit(coord::ops::Delete{paths_[static_cast<std::size_t>(n)]},
                       [done](coord::Result<std::monostate> r) { done(r.code()); });
    } else {
      const std::string& path = paths_[key];
      if (op == "get") {
        w.client->submit(coord::ops::GetData{path},
                         [done](coord::Result<coord::DataResult> r) { done(r.code()); });
      } else if (op == "exists") {
        w.client->submit(coord::ops::Exists{path},
                         [done](coord::Result<std::optional<coord::Stat>> r) { done(r.code()); });
      } else {
        w.client->submit(coord::ops::SetData{path, payload_},
                         [done](coord::Result<coord::Stat> r) { done(r.code()); });
      }
    }
  }

  const Flags& f_;
  const std::string payload_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::int64_t> issued_{0};
  std::int64_t limit_ = 0;
  Clock::time_point start_;
  Clock::time_point deadline_;
  std::vector<std::string> paths_;  // of the keys, by number
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<std::int64_t> in_flight_{0};
};

bool keep_going(const Flags& f, Clock::time_point start, std::int64_t done) {
  if (f.ops > 0) return done < f.ops;
  return Clock::now() - start <
         std::chrono::microseconds(static_cast<std::int64_t>(f.duration_s * 1e6));
}

// A write on one session, the watch event on another.
bool watch_latency(const Flags& f, const std::string& payload, Figures& out) {
  auto writer = connect(f);
  auto watcher = connect(f);
  if (!writer || !watcher) return false;
  const std::string path = f.root + "/watched";
  auto made = writer->create(path, payload);
  if (!made.ok() && made.code() != coord::ErrorCode::NodeExists) return false;
  std::mutex mu;
  std::condition_variable cv;
  Clock::time_point fired{};
  bool has_fired = false;
  const auto start = Clock::now();
  while (keep_going(f, start, out.ops)) {
    {
      std::lock_guard lock(mu);
      has_fired = false;
    }
    auto armed = watcher->get_data(path, [&](const coord::WatchEvent&) {
      std::lock_guard lock(mu);
      fired = Clock::now();
      has_fired = true;
      cv.notify_all();
    });
    if (!armed.ok()) {
      ++out.errors;
      ++out.error_codes[std::string(coord::error_name(armed.code()))];
      continue;
    }
    const auto t0 = Clock::now();
    auto wrote = writer->set_data(path, payload);
    if (!wrote.ok()) {
      ++out.errors;
      ++out.error_codes[std::string(coord::error_name(wrote.code()))];
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::milliseconds(coord::limits::bench_watch_event_ms_max),
                     [&] { return has_fired; })) {
      ++out.errors;
      ++out.error_codes["NoEvent"];
      continue;
    }
    out.latency_us.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(fired - t0).count()));
    ++out.ops;
  }
  out.seconds = static_cast<double>(micros_since(start)) / 1e6;
  (void)writer->remove(path);
  return true;
}

// Open, wait for Connected, close; C threads at once.
bool session_churn(const Flags& f, Figures& out) {
  std::mutex mu;
  std::atomic<std::int64_t> started{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < f.sessions; ++t) {
    threads.emplace_back([&] {
      coord::Histogram h;
      std::int64_t ops = 0;
      std::map<std::string, std::int64_t> codes;
      while (true) {
        const std::int64_t n = started.fetch_add(1);
        if (f.ops > 0 ? n >= f.ops : !keep_going(f, start, 0)) break;
        const auto t0 = Clock::now();
        coord::ClientOptions o;
        o.servers = f.servers;
        o.session_timeout = std::chrono::milliseconds(f.session_timeout_ms);
        auto c = coord::Client::start(o);
        coord::Status s = c.ok() ? (*c)->wait_connected(std::chrono::milliseconds(
                                       coord::limits::bench_connect_ms_max))
                                 : c.status();
        if (s.ok()) s = (*c)->close();
        if (!s.ok()) ++codes[std::string(coord::error_name(s.code()))];
        h.record(micros_since(t0));
        ++ops;
      }
      std::lock_guard lock(mu);
      out.latency_us.merge(h);
      out.ops += ops;
      for (const auto& [code, k] : codes) {
        out.error_codes[code] += k;
        out.errors += k;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  out.seconds = static_cast<double>(micros_since(start)) / 1e6;
  return true;
}

// A numeric host:port of -s, for the modes on raw sockets.
std::optional<boost::asio::ip::tcp::endpoint> parse_server(std::string_view host_port) {
  auto hp = coord::agent::split_host_port(host_port);
  boost::system::error_code ec;
  auto address =
      hp.ok() ? boost::asio::ip::make_address(hp->first, ec) : boost::asio::ip::address();
  if (!hp.ok() || ec) {
    std::fprintf(stderr, "coord-bench: the raw modes take numeric host:port addresses: %s\n",
                 std::string(host_port).c_str());
    return std::nullopt;
  }
  return boost::asio::ip::tcp::endpoint(address, hp->second);
}

std::optional<boost::asio::ip::tcp::endpoint> first_server(const Flags& f) {
  return parse_server(std::string_view(f.servers).substr(0, f.servers.find(',')));
}

// Appends the request of a raw mode's --op (get, exists, set) on `path`.
void append_key_request(coord::protocol::Bytes& out, std::int32_t xid, const std::string& op,
                        const std::string& path, const std::string& payload) {
  using coord::protocol::OpCode;
  if (op == "get") {
    coord::protocol::append_request_frame(out, {xid, OpCode::GetData},
                                          coord::protocol::GetDataRequest{path, false});
  } else if (op == "exists") {
    coord::protocol::append_request_frame(out, {xid, OpCode::Exists},
                                          coord::protocol::ExistsRequest{path, false});
  } else {
    coord::protocol::append_request_frame(out, {xid, OpCode::SetData},
                                          coord::protocol::SetDataRequest{path, payload, -1});
  }
}

// A session on one blocking socket, driven by the calling thread: a
// request costs the client one write and one read, nothing else.
class RawSession {
 public:
  ~RawSession() {
    if (fd_ >= 0) ::close(fd_);
  }

  static std::unique_ptr<RawSession> open(const boost::asio::ip::tcp::endpoint& ep,
                                          int timeout_ms) {
    auto s = std::unique_ptr<RawSession>(new RawSession);
    s->fd_ = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    // A server that stops answering fails the run instead of hanging it.
    const timeval wait{coord::limits::bench_request_ms_max / 1000, 0};
    if (s->fd_ < 0 || ::setsockopt(s->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        ::setsockopt(s->fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) != 0 ||
        ::setsockopt(s->fd_, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait) != 0 ||
        ::connect(s->fd_, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
      std::fprintf(stderr, "coord-bench: raw connect to %s:%u: %s\n",
                   ep.address().to_string().c_str(), ep.port(), std::strerror(errno));
      return nullptr;
    }
    coord::protocol::ConnectRequest req;
    req.timeout_ms = timeout_ms;
    s->out_.clear();
    coord::protocol::append_connect_request_frame(s->out_, req);
    if (!s->write_out() || !s->read_frame()) return nullptr;
    auto resp = coord::protocol::decode_connect_response(coord::protocol::ByteSpan(s->in_));
    if (!resp.ok() || resp->session_id.value() == 0) {
      std::fprintf(stderr, "coord-bench: raw session refused\n");
      return nullptr;
    }
    return s;
  }

  // Writes one request; false when the connection failed.
  bool send(coord::protocol::OpCode op, const coord::protocol::RequestBody& body) {
    out_.clear();
    coord::protocol::append_request_frame(out_, coord::protocol::RequestHeader{++xid_, op}, body);
    return write_out();
  }
  bool send_key_request(const std::string& op, const std::string& path,
                        const std::string& payload) {
    out_.clear();
    append_key_request(out_, ++xid_, op, path, payload);
    return write_out();
  }

  // Reads frames until the reply to the last request (want_event: until a
  // watch event); its error code, or nullopt when the connection failed.
  std::optional<coord::ErrorCode> receive(bool want_event = false) {
    while (read_frame()) {
      coord::protocol::JuteReader r{coord::protocol::ByteSpan(in_)};
      auto h = coord::protocol::decode_reply_header(r);
      if (!h.ok()) return std::nullopt;
      if (want_event ? h->xid == -1 : h->xid == xid_) return h->err;
    }
    return std::nullopt;
  }

 private:
  RawSession() = default;

  bool write_out() {
    std::size_t done = 0;
    while (done < out_.size()) {
      const ssize_t n = ::send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool read_exactly(std::uint8_t* at, std::size_t n) {
    while (n > 0) {
      const ssize_t got = ::recv(fd_, at, n, 0);
      if (got <= 0) return false;
      at += got;
      n -= static_cast<std::size_t>(got);
    }
    return true;
  }

  bool read_frame() {
    std::array<std::uint8_t, 4> head{};
    if (!read_exactly(head.data(), head.size())) return false;
    const std::uint32_t n = std::uint32_t{head[0]} << 24 | std::uint32_t{head[1]} << 16 |
                            std::uint32_t{head[2]} << 8 | head[3];
    if (n > coord::limits::frame_bytes_max) return false;
    in_.resize(n);
    return read_exactly(in_.data(), n);
  }

  int fd_ = -1;
  std::int32_t xid_ = 0;
  coord::protocol::Bytes out_;
  std::vector<std::uint8_t> in_;
};

void count_error(Figures& out, const std::string& code) {
  ++out.errors;
  ++out.error_codes[code];
}

// One request at a time on a raw session.
bool raw_latency(const Flags& f, const std::string& payload, Figures& out) {
  const auto ep = first_server(f);
  if (!ep) return false;
  auto s = RawSession::open(*ep, f.session_timeout_ms);
  if (!s) return false;
  coord::Random rng(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  const auto start = Clock::now();
  while (keep_going(f, start, out.ops)) {
    const std::string path = key_path(f, static_cast<int>(rng.below(f.keys)));
    const auto t0 = Clock::now();
    const auto err = s->send_key_request(f.op, path, payload) ? s->receive() : std::nullopt;
    if (!err) {
      count_error(out, "ConnectionLoss");
      break;
    }
    out.latency_us.record(micros_since(t0));
    ++out.ops;
    if (*err != coord::ErrorCode::Ok) count_error(out, std::string(coord::error_name(*err)));
  }
  out.seconds = static_cast<double>(micros_since(start)) / 1e6;
  return true;
}

// watch-latency on two raw sessions: arm, write, block on the watcher.
bool raw_watch_latency(const Flags& f, Figures& out) {
  const auto ep = first_server(f);
  if (!ep) return false;
  auto writer = RawSession::open(*ep, f.session_timeout_ms);
  auto watcher = RawSession::open(*ep, f.session_timeout_ms);
  if (!writer || !watcher) return false;
  const std::string path = f.root + "/watched";
  const std::string payload(f.payload_bytes, 'x');
  if (!writer->send(coord::protocol::OpCode::Create,
                    coord::protocol::CreateRequest{path, payload, coord::open_acl_unsafe(),
                                                   coord::CreateMode::Persistent}) ||
      !writer->receive()) {
    return false;
  }
  const auto start = Clock::now();
  while (keep_going(f, start, out.ops)) {
    // A lost connection counts as ConnectionLoss.
    const coord::ErrorCode armed =
        watcher->send(coord::protocol::OpCode::GetData, coord::protocol::GetDataRequest{path, true})
            ? watcher->receive().value_or(coord::ErrorCode::ConnectionLoss)
            : coord::ErrorCode::ConnectionLoss;
    if (armed != coord::ErrorCode::Ok) {
      count_error(out, std::string(coord::error_name(armed)));
      break;
    }
    const auto t0 = Clock::now();
    const bool wrote = writer->send(coord::protocol::OpCode::SetData,
                                    coord::protocol::SetDataRequest{path, payload, -1});
    // The event is read first, whichever the server sent first.
    const auto fired = wrote ? watcher->receive(true) : std::nullopt;
    const std::uint64_t us = micros_since(t0);
    const auto reply = wrote ? writer->receive() : std::nullopt;
    if (!fired || !reply) {
      count_error(out, "ConnectionLoss");
      break;
    }
    out.latency_us.record(us);
    ++out.ops;
  }
  out.seconds = static_cast<double>(micros_since(start)) / 1e6;
  return writer->send(coord::protocol::OpCode::Delete, coord::protocol::DeleteRequest{path, -1}) &&
         writer->receive();
}

// ops-raw: C raw sessions on one thread, each keeping W requests in
// flight, pipelined: the load libcoord's ops mode makes, at a fraction of
// its CPU (no threads per session, no hand-offs).
class RawPipeline : public std::enable_shared_from_this<RawPipeline> {
 public:
  struct Shared {
    const Flags& flags;
    const std::string& payload;
    boost::asio::ip::tcp::endpoint server;
    Figures& out;
    coord::Random rng;
    Clock::time_point start{};
    std::int64_t issued = 0;
    int open = 0;  // sessions not finished
    std::function<void()> all_done;
  };

  RawPipeline(boost::asio::io_context& io, Shared& shared) : socket_(io), shared_(shared) {}

  void start() {
    ++shared_.open;
    socket_.async_connect(shared_.server,
                          [self = shared_from_this()](boost::system::error_code ec) {
                            if (ec) return self->fail();
                            boost::system::error_code ignored;
                            self->socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
                            coord::protocol::ConnectRequest req;
                            req.timeout_ms = self->shared_.flags.session_timeout_ms;
                            coord::protocol::append_connect_request_frame(self->out_, req);
                            self->flush();
                            self->read();
                          });
  }

  // The run is over: what is still in flight is lost.
  void abandon() {
    if (finished_) return;
    shared_.out.errors += static_cast<std::int64_t>(sent_at_.size());
    if (!sent_at_.empty()) shared_.out.error_codes["OperationTimeout"] += sent_at_.size();
    sent_at_.clear();
    finish();
  }

 private:
  void issue() {
    const Flags& f = shared_.flags;
    if (!keep_going(f, shared_.start, shared_.issued)) {
      if (sent_at_.empty()) finish();
      return;
    }
    ++shared_.issued;
    const std::string path = key_path(f, static_cast<int>(shared_.rng.below(f.keys)));
    append_key_request(out_, ++xid_, f.op, path, shared_.payload);
    sent_at_.push_back(Clock::now());
  }

  void flush() {
    if (writing_ || out_.empty() || finished_) return;
    writing_ = true;
    std::swap(out_, writing_buf_);
    out_.clear();
    boost::asio::async_write(
        socket_, boost::asio::buffer(writing_buf_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          self->writing_ = false;
          if (ec) return self->fail();
          self->flush();
        });
  }

  void read() {
    if (in_.size() - have_ < coord::limits::connection_read_chunk_bytes) {
      in_.resize(have_ + coord::limits::connection_read_chunk_bytes);
    }
    socket_.async_read_some(
        boost::asio::buffer(in_.data() + have_, in_.size() - have_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (self->finished_) return;
          if (ec) return self->fail();
          self->have_ += n;
          if (!self->take_frames()) return self->fail();
          if (self->finished_) return;
          self->flush();
          self->read();
        });
  }

  // Handles every whole frame read; false on a frame that does not decode.
  bool take_frames() {
    std::size_t at = 0;
    while (have_ - at >= 4) {
      const std::uint8_t* p = in_.data() + at;
      const std::uint32_t n =
          std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
      if (n > coord::limits::frame_bytes_max) return false;
      if (have_ - at - 4 < n) break;
      if (!on_frame(coord::protocol::ByteSpan(p + 4, n))) return false;
      at += 4 + n;
      if (finished_) return true;
    }
    std::memmove(in_.data(), in_.data() + at, have_ - at);
    have_ -= at;
    return true;
  }

  bool on_frame(coord::protocol::ByteSpan frame) {
    if (!connected_) {
      auto resp = coord::protocol::decode_connect_response(frame);
      if (!resp.ok() || resp->session_id.value() == 0) return false;
      connected_ = true;
      for (int k = 0; k < shared_.flags.outstanding; ++k)
        issue();
      return true;
    }
    coord::protocol::JuteReader r{frame};
    auto h = coord::protocol::decode_reply_header(r);
    if (!h.ok()) return false;
    if (h->xid < 0) return true;  // a watch event or a ping's reply
    if (sent_at_.empty()) return false;
    Figures& out = shared_.out;
    out.latency_us.record(micros_since(sent_at_.front()));
    sent_at_.pop_front();
    ++out.ops;
    if (h->err != coord::ErrorCode::Ok) {
      ++out.errors;
      ++out.error_codes[std::string(coord::error_name(h->err))];
    }
    issue();
    return true;
  }

  void fail() {
    if (finished_) return;
    ++shared_.out.errors;
    ++shared_.out.error_codes["ConnectionLoss"];
    sent_at_.clear();
    finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (--shared_.open == 0 && shared_.all_done) shared_.all_done();
  }

  boost::asio::ip::tcp::socket socket_;
  Shared& shared_;
  bool connected_ = false;
  bool writing_ = false;
  bool finished_ = false;
  std::int32_t xid_ = 0;
  std::deque<Clock::time_point> sent_at_;  // replies come in order
  coord::protocol::Bytes out_;
  coord::protocol::Bytes writing_buf_;
  std::vector<std::uint8_t> in_;
  std::size_t have_ = 0;
};

bool raw_ops(const Flags& f, const std::string& payload, Figures& out) {
  const auto ep = first_server(f);
  if (!ep) return false;
  boost::asio::io_context io;
  RawPipeline::Shared shared{
      .flags = f,
      .payload = payload,
      .server = *ep,
      .out = out,
      .rng = coord::Random(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count())),
      .start = Clock::now(),
      .issued = 0,
      .open = 0,
      .all_done = nullptr};
  std::vector<std::shared_ptr<RawPipeline>> sessions;
  for (int i = 0; i < f.sessions; ++i)
    sessions.push_back(std::make_shared<RawPipeline>(io, shared));
  // A server that stops answering ends the run after the longest wait
  // for a reply, its requests in flight counted as errors.
  boost::asio::steady_timer guard(io);
  shared.all_done = [&guard] { guard.cancel(); };
  shared.start = Clock::now();
  for (auto& s : sessions)
    s->start();
  guard.expires_after(std::chrono::microseconds(static_cast<std::int64_t>(f.duration_s * 1e6)) +
                      std::chrono::milliseconds(coord::limits::bench_request_ms_max));
  guard.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    for (auto& s : sessions)
      s->abandon();
  });
  io.run();
  out.seconds = static_cast<double>(micros_since(shared.start)) / 1e6;
  return true;
}

// One slot of session_open: a session opened and closed on a raw socket,
// again and again, each step an asynchronous operation on one io_context.
class SessionOpener : public std::enable_shared_from_this<SessionOpener> {
 public:
  struct Shared {
    const Flags& flags;
    std::vector<boost::asio::ip::tcp::endpoint> servers;
    Clock::time_point start;
    std::size_t next_server = 0;
    Figures& out;
  };

  SessionOpener(boost::asio::io_context& io, Shared& shared) : socket_(io), shared_(shared) {}

  void next() {
    if (!keep_going(shared_.flags, shared_.start, shared_.out.ops + shared_.out.errors)) return;
    const auto& ep = shared_.servers[shared_.next_server++ % shared_.servers.size()];
    t0_ = Clock::now();
    socket_ = boost::asio::ip::tcp::socket(socket_.get_executor());
    socket_.async_connect(ep, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->failed("connect");
      self->send_connect();
    });
  }

 private:
  void send_connect() {
    coord::protocol::ConnectRequest req;
    req.timeout_ms = shared_.flags.session_timeout_ms;
    out_.clear();
    coord::protocol::append_connect_request_frame(out_, req);
    boost::asio::async_write(
        socket_, boost::asio::buffer(out_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (ec) return self->failed("write");
          self->read_frame([self] { self->connected(); });
        });
  }

  void connected() {
    auto resp = coord::protocol::decode_connect_response(frame_);
    if (!resp.ok() || resp->session_id.value() == 0) return failed("refused");
    shared_.out.latency_us.record(micros_since(t0_));
    ++shared_.out.ops;
    out_.clear();
    coord::protocol::append_request_frame(
        out_, coord::protocol::RequestHeader{1, coord::protocol::OpCode::CloseSession},
        coord::protocol::Empty{});
    boost::asio::async_write(
        socket_, boost::asio::buffer(out_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (ec) return self->failed("write");
          // The close is answered once it applied.
          self->read_frame([self] {
            self->socket_.close();
            self->next();
          });
        });
  }

  // Reads one whole frame into frame_, in as few reads as it arrives in
  // (one, usually): a read for its length and another for its body would
  // cost the load generator a system call more per frame.
  template <typename Then>
  void read_frame(Then then) {
    in_.clear();
    read_more(std::move(then));
  }

  template <typename Then>
  void read_more(Then then) {
    if (in_.size() >= coord::protocol::frame_length_prefix_bytes) {
      const std::uint32_t n = std::uint32_t{in_[0]} << 24 | std::uint32_t{in_[1]} << 16 |
                              std::uint32_t{in_[2]} << 8 | in_[3];
      if (n > coord::limits::frame_bytes_max) return failed("frame");
      if (in_.size() - coord::protocol::frame_length_prefix_bytes >= n) {
        frame_ =
            coord::protocol::ByteSpan(in_).subspan(coord::protocol::frame_length_prefix_bytes, n);
        return then();
      }
    }
    socket_.async_read_some(
        boost::asio::buffer(chunk_),
        [self = shared_from_this(), then](boost::system::error_code ec, std::size_t n) {
          if (ec) return self->failed("read");
          self->in_.insert(self->in_.end(), self->chunk_.begin(),
                           self->chunk_.begin() + static_cast<std::ptrdiff_t>(n));
          self->read_more(then);
        });
  }

  void failed(const char* what) {
    ++shared_.out.errors;
    ++shared_.out.error_codes[what];
    boost::system::error_code ignored;
    socket_.close(ignored);
    next();
  }

  boost::asio::ip::tcp::socket socket_;
  Shared& shared_;
  Clock::time_point t0_;
  coord::protocol::Bytes out_;
  std::array<std::uint8_t, 512> chunk_{};
  std::vector<std::uint8_t> in_;
  coord::protocol::ByteSpan frame_;
};

// Every server of --servers; nullopt (said on stderr) for one that does not
// parse.
std::optional<std::vector<boost::asio::ip::tcp::endpoint>> parse_servers(std::string_view list) {
  std::vector<boost::asio::ip::tcp::endpoint> servers;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    auto server = parse_server(list.substr(0, comma));
    if (!server) return std::nullopt;
    servers.push_back(*server);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return servers;
}

bool session_open(const Flags& f, Figures& out) {
  boost::asio::io_context io;
  SessionOpener::Shared shared{f, {}, Clock::now(), 0, out};
  auto servers = parse_servers(f.servers);
  if (!servers) return false;
  shared.servers = std::move(*servers);
  for (int i = 0; i < f.sessions; ++i)
    std::make_shared<SessionOpener>(io, shared)->next();
  io.run();
  out.seconds = static_cast<double>(micros_since(shared.start)) / 1e6;
  return true;
}

// idle-sessions: many sessions held open on one thread, each a raw socket
// that does the handshake and then only pings, once a third of its timeout
// as ZooKeeper's clients do, until the hold ends and each closes its
// session. Lost sessions (the server closed or expired them) and pings not
// answered within a whole interval are counted.
class IdleSessions {
 public:
  IdleSessions(const Flags& f, std::vector<boost::asio::ip::tcp::endpoint> servers, Figures& out)
      : f_(f), servers_(std::move(servers)), out_(out), ticker_(io_), deadline_(io_) {
    coord::protocol::ConnectRequest req;
    req.timeout_ms = f.session_timeout_ms;
    coord::protocol::append_connect_request_frame(connect_frame_, req);
    coord::protocol::append_request_frame(
        ping_frame_, coord::protocol::RequestHeader{ping_xid, coord::protocol::OpCode::Ping},
        coord::protocol::Empty{});
    coord::protocol::append_request_frame(
        close_frame_,
        coord::protocol::RequestHeader{close_xid, coord::protocol::OpCode::CloseSession},
        coord::protocol::Empty{});
  }

  bool run() {
    sessions_.reserve(static_cast<std::size_t>(f_.sessions));
    start_ = Clock::now();
    for (int i = 0; i < f_.outstanding && i < f_.sessions; ++i)
      open_next();
    io_.run();
    if (opened_ == 0) {
      std::fprintf(stderr, "coord-bench: idle-sessions opened no session\n");
      return false;
    }
    const auto count = [](std::int64_t n) { return std::to_string(n); };
    out_.ops = pings_answered_;
    out_.seconds = hold_s_;
    out_.errors = failed_opens_ + lost_ + close_timeouts_;
    if (lost_ > 0) out_.error_codes["lost"] = lost_;
    if (close_timeouts_ > 0) out_.error_codes["close-timeout"] = close_timeouts_;
    out_.extra_json = ",\"opened\":" + count(opened_) + ",\"open_s\":" + seconds(open_s_) +
                      ",\"opens_per_s\":" + seconds(static_cast<double>(opened_) / open_s_) +
                      ",\"pings_sent\":" + count(pings_sent_) +
                      ",\"pings_late\":" + count(pings_late_) + ",\"lost\":" + count(lost_) +
                      ",\"closed\":" + count(closed_) + ",\"close_s\":" + seconds(close_s_);
    out_.extra_text = "  " + count(opened_) + " sessions opened in " + seconds(open_s_) +
                      " s; held " + seconds(hold_s_) + " s: " + count(pings_sent_) + " pings, " +
                      count(pings_late_) + " late, " + count(lost_) + " sessions lost; " +
                      count(closed_) + " closed in " + seconds(close_s_) + " s\n";
    return true;
  }

 private:
  static constexpr std::int32_t ping_xid = -2;
  static constexpr std::int32_t close_xid = 1;
  static constexpr auto tick = std::chrono::milliseconds(10);
  // A session's read buffer: a handshake reply (41 bytes with its length)
  // is the longest frame it receives.
  static constexpr std::size_t read_bytes = 64;

  enum class Phase : std::uint8_t { Opening, Holding, Closing, Done };

  struct Session {
    explicit Session(boost::asio::io_context& io) : socket(io) {}
    boost::asio::ip::tcp::socket socket;
    std::array<std::uint8_t, read_bytes> in{};
    std::size_t have = 0;
    Clock::time_point ping_at{};
    bool open = false;
    bool ping_out = false;
    bool writing = false;        // a write is under way: the next waits for it
    bool close_waiting = false;  // the closeSession, after that write
    bool done = false;
  };

  static std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
  }

  double since(Clock::time_point t) const {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  void open_next() {
    if (next_ >= static_cast<std::size_t>(f_.sessions)) return;
    const std::size_t i = next_++;
    sessions_.push_back(std::make_unique<Session>(io_));
    Session& s = *sessions_.back();
    const auto& ep = servers_[i % servers_.size()];
    boost::system::error_code ec;
    s.socket.open(ep.protocol(), ec);
    if (!ec && f_.source_addresses > 1) {
      // One source address has some 28,000 ephemeral ports toward one
      // server: more sessions need more (loopback) addresses.
      const auto host = static_cast<std::uint32_t>(0x7f000001 + i % f_.source_addresses);
      s.socket.bind({boost::asio::ip::address_v4(host), 0}, ec);
    }
    if (ec) return open_failed(s, "socket");
    s.socket.async_connect(ep, [this, &s](boost::system::error_code ec) {
      if (ec) return open_failed(s, "connect");
      boost::asio::async_write(s.socket, boost::asio::buffer(connect_frame_),
                               [this, &s](boost::system::error_code ec, std::size_t) {
                                 if (ec) return open_failed(s, "write");
                                 read(s);
                               });
    });
  }

  void open_failed(Session& s, const char* what) {
    ++failed_opens_;
    ++out_.error_codes[what];
    finish(s);
    open_next();
    opening_settled();
  }

  void read(Session& s) {
    s.socket.async_read_some(boost::asio::buffer(s.in.data() + s.have, s.in.size() - s.have),
                             [this, &s](boost::system::error_code ec, std::size_t n) {
                               if (s.done) return;
                               if (ec) return broken(s);
                               s.have += n;
                               if (!frames(s)) return broken(s);
                               if (!s.done) read(s);
                             });
  }

  // False when a frame does not fit or does not decode.
  bool frames(Session& s) {
    constexpr std::size_t prefix = coord::protocol::frame_length_prefix_bytes;
    while (s.have >= prefix) {
      const std::uint32_t n = std::uint32_t{s.in[0]} << 24 | std::uint32_t{s.in[1]} << 16 |
                              std::uint32_t{s.in[2]} << 8 | s.in[3];
      if (n > s.in.size() - prefix) return false;
      if (s.have < prefix + n) break;
      if (!frame(s, coord::protocol::ByteSpan(s.in.data() + prefix, n))) return false;
      if (s.done) return true;
      std::memmove(s.in.data(), s.in.data() + prefix + n, s.have - prefix - n);
      s.have -= prefix + n;
    }
    return true;
  }

  bool frame(Session& s, coord::protocol::ByteSpan payload) {
    if (!s.open) {
      auto resp = coord::protocol::decode_connect_response(payload);
      if (!resp.ok() || resp->session_id.value() == 0) {
        open_failed(s, "refused");
        return true;
      }
      s.open = true;
      ++opened_;
      open_next();
      opening_settled();
      return true;
    }
    coord::protocol::JuteReader r(payload);
    auto h = coord::protocol::decode_reply_header(r);
    if (!h.ok()) return false;
    if (h->xid == ping_xid && s.ping_out) {
      s.ping_out = false;
      ++pings_answered_;
      out_.latency_us.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s.ping_at).count()));
    } else if (h->xid == close_xid && phase_ == Phase::Closing) {
      ++closed_;
      finish(s);
      closing_settled();
    }
    return true;
  }

  // The connection ended before this client closed its session.
  void broken(Session& s) {
    if (!s.open) return open_failed(s, "handshake");
    ++lost_;
    finish(s);
    if (phase_ == Phase::Closing) closing_settled();
  }

  void finish(Session& s) {
    s.done = true;
    boost::system::error_code ignored;
    s.socket.close(ignored);
  }

  void opening_settled() {
    if (phase_ != Phase::Opening) return;
    const auto settled = static_cast<std::int64_t>(opened_ + failed_opens_);
    if (settled < f_.sessions) return;
    open_s_ = since(start_);
    if (opened_ == 0) return done();
    phase_ = Phase::Holding;
    hold_start_ = Clock::now();
    std::fprintf(stderr, "idle-sessions: %lld sessions open in %.2f s; holding %.1f s\n",
                 static_cast<long long>(opened_), open_s_, f_.duration_s);
    std::fflush(stderr);
    ping_tick();
  }

  // Every session pings once per interval, spread over the ticks of one.
  void ping_tick() {
    if (phase_ != Phase::Holding) return;
    if (since(hold_start_) >= f_.duration_s) return start_closing();
    const auto interval = std::chrono::milliseconds(f_.session_timeout_ms / 3);
    const std::size_t per_tick = sessions_.size() * static_cast<std::size_t>(tick.count()) /
                                     static_cast<std::size_t>(interval.count()) +
                                 1;
    for (std::size_t k = 0; k < per_tick && k < sessions_.size(); ++k) {
      Session& s = *sessions_[cursor_];
      cursor_ = (cursor_ + 1) % sessions_.size();
      if (s.done || !s.open) continue;
      if (s.ping_out) {
        ++pings_late_;
        continue;
      }
      s.ping_out = true;
      s.ping_at = Clock::now();
      ++pings_sent_;
      write(s, ping_frame_);
    }
    ticker_.expires_after(tick);
    ticker_.async_wait([this](boost::system::error_code) { ping_tick(); });
  }

  // One write at a time on a socket; frames are constant, shared by all.
  void write(Session& s, const coord::protocol::Bytes& frame) {
    s.writing = true;
    boost::asio::async_write(s.socket, boost::asio::buffer(frame),
                             [this, &s](boost::system::error_code ec, std::size_t) {
                               s.writing = false;
                               if (s.done) return;
                               if (ec) return broken(s);
                               if (std::exchange(s.close_waiting, false)) write(s, close_frame_);
                             });
  }

  void start_closing() {
    hold_s_ = since(hold_start_);
    lost_before_close_ = lost_;
    phase_ = Phase::Closing;
    close_start_ = Clock::now();
    for (auto& sp : sessions_) {
      Session& s = *sp;
      if (s.done || !s.open) continue;
      ++closing_;
      if (s.writing) {
        s.close_waiting = true;
      } else {
        write(s, close_frame_);
      }
    }
    deadline_.expires_after(std::chrono::milliseconds(coord::limits::bench_request_ms_max));
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (ec || phase_ == Phase::Done) return;
      for (auto& sp : sessions_) {
        if (sp->done || !sp->open) continue;
        ++close_timeouts_;
        finish(*sp);
      }
      done();
    });
    closing_settled();
  }

  void closing_settled() {
    if (closed_ + lost_after_close() + close_timeouts_ < closing_) return;
    done();
  }

  std::int64_t lost_after_close() const { return lost_ - lost_before_close_; }

  void done() {
    if (phase_ == Phase::Done) return;
    close_s_ = since(close_start_);
    phase_ = Phase::Done;
    ticker_.cancel();
    deadline_.cancel();
  }

  const Flags& f_;
  std::vector<boost::asio::ip::tcp::endpoint> servers_;
  Figures& out_;
  boost::asio::io_context io_;
  boost::asio::steady_timer ticker_;
  boost::asio::steady_timer deadline_;
  coord::protocol::Bytes connect_frame_, ping_frame_, close_frame_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::size_t next_ = 0;
  std::size_t cursor_ = 0;
  Phase phase_ = Phase::Opening;
  Clock::time_point start_, hold_start_, close_start_;
  double open_s_ = 0, hold_s_ = 0, close_s_ = 0;
  std::int64_t opened_ = 0, failed_opens_ = 0, pings_sent_ = 0, pings_answered_ = 0,
               pings_late_ = 0, lost_ = 0, lost_before_close_ = 0, closing_ = 0, closed_ = 0,
               close_timeouts_ = 0;
};

bool idle_sessions(const Flags& f, Figures& out) {
  // A descriptor per session, and a few for the rest.
  const auto needed = static_cast<rlim_t>(f.sessions) + coord::limits::bench_spare_fds;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < needed) {
    rl.rlim_cur = std::min(needed, rl.rlim_max);
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < needed) {
    std::fprintf(stderr,
                 "coord-bench: idle-sessions needs %llu descriptors; the limit is %llu "
                 "(raise it: ulimit -n)\n",
                 static_cast<unsigned long long>(needed),
                 static_cast<unsigned long long>(rl.rlim_cur));
    return false;
  }
  auto servers = parse_servers(f.servers);
  if (!servers) return false;
  IdleSessions run(f, std::move(*servers), out);
  return run.run();
}

// Continuous writes; the longest gap between two acknowledged writes.
bool failover(const Flags& f, const std::string& payload, Figures& out) {
  auto c = connect(f);
  if (!c) return false;
  const std::string path = f.root + "/failover";
  auto made = c->create(path, payload);
  if (!made.ok() && made.code() != coord::ErrorCode::NodeExists) return false;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  Clock::time_point last_ack = Clock::now();
  std::uint64_t gap_max_us = 0;
  std::string state_log;
  const auto start = Clock::now();
  std::function<void()> issue = [&] {
    if (!keep_going(f, start, out.ops)) return;
    ++in_flight;
    const auto t0 = Clock::now();
    c->submit(coord::ops::SetData{path, payload}, [&, t0](coord::Result<coord::Stat> r) {
      std::lock_guard lock(mu);
      --in_flight;
      ++out.ops;
      if (r.ok()) {
        const auto now = Clock::now();
        out.latency_us.record(micros_since(t0));
        gap_max_us = std::max<std::uint64_t>(
            gap_max_us,
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(now - last_ack).count()));
        last_ack = now;
      } else {
        ++out.errors;
        ++out.error_codes[std::string(coord::error_name(r.code()))];
        // Failed writes come back at once while no server answers: pace them.
        if (r.code() != coord::ErrorCode::OperationTimeout) std::this_thread::sleep_for(10ms);
      }
      if (c->state() == coord::SessionState::Expired) {
        cv.notify_all();
        return;
      }
      issue();
      cv.notify_all();
    });
  };
  {
    std::lock_guard lock(mu);
    for (int k = 0; k < f.outstanding; ++k)
      issue();
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  out.seconds = static_cast<double>(micros_since(start)) / 1e6;
  // A run that ends without acknowledged writes (the session expired, or
  // no server came back) ends with a gap that is still open.
  const auto tail_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_ack);
  const std::string state(coord::session_state_name(c->state()));
  out.extra_json = ",\"gap_max_ms\":" + std::to_string(gap_max_us / 1000) +
                   ",\"open_gap_at_end_ms\":" + std::to_string(tail_ms.count()) +
                   ",\"final_state\":\"" + state + "\"";
  out.extra_text =
      "  longest gap between acknowledged writes: " + std::to_string(gap_max_us / 1000) +
      " ms; no write acknowledged in the last " + std::to_string(tail_ms.count()) +
      " ms; final state " + state + "\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // The load generator frees replies and requests in batches too.
  coord::tune_malloc_or_restart(argv);
  Flags f;
  CLI::App app{"coord-bench: load generator for ZooKeeper-protocol servers, on libcoord"};
  app.add_option("-s,--servers", f.servers, "host:port,host:port,...")->capture_default_str();
  app.add_option("--mode", f.mode)
      ->check(CLI::IsMember({"ops", "ops-raw", "watch-latency", "latency", "watch-latency-raw",
                             "session-churn", "session-open", "idle-sessions", "failover"}))
      ->capture_default_str();
  app.add_option("--op", f.op,
                 "ops mode: create, set, get, exists, delete or mix; latency: set, get or exists")
      ->check(CLI::IsMember({"create", "set", "get", "exists", "delete", "mix"}))
      ->capture_default_str();
  app.add_option("--read-pct", f.read_pct, "mix: percent of reads")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--sessions", f.sessions,
                 "Sessions (idle-sessions mode: up to " +
                     std::to_string(coord::limits::bench_idle_sessions_max) + ", others up to " +
                     std::to_string(coord::limits::bench_sessions_max) + ")")
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_idle_sessions_max))
      ->capture_default_str();
  app.add_option("--source-addresses", f.source_addresses,
                 "idle-sessions: spread the connections over 127.0.0.1 to 127.0.0.N (one source "
                 "address has about 28,000 ephemeral ports toward one server)")
      ->check(CLI::Range(1, coord::limits::bench_source_addresses_max))
      ->capture_default_str();
  app.add_option("--runtimes", f.runtimes,
                 "ops mode: the sessions share this many libcoord runtimes (an I/O and an "
                 "event thread each), round robin; 0: each session has its own two threads")
      ->check(CLI::Range(0, coord::limits::bench_runtimes_max))
      ->capture_default_str();
  app.add_option("--outstanding", f.outstanding, "Requests in flight per session")
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_outstanding_per_session_max))
      ->capture_default_str();
  app.add_option("--payload-bytes", f.payload_bytes)
      ->check(CLI::Range(std::size_t{0}, coord::limits::bench_payload_bytes_max))
      ->capture_default_str();
  app.add_option("--keys", f.keys)
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_keys_max))
      ->capture_default_str();
  auto* duration = app.add_option("--duration-s", f.duration_s)
                       ->check(CLI::Range(0.1, coord::limits::bench_duration_s_max))
                       ->capture_default_str();
  app.add_option("--ops", f.ops, "Run this many operations instead of --duration-s")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
      ->excludes(duration);
  app.add_option("--root", f.root, "Znode under which the bench works")->capture_default_str();
  app.add_flag("--clean", f.clean, "Delete the bench root and everything below it at the end");
  app.add_option("--session-timeout-ms", f.session_timeout_ms)
      ->check(CLI::Range(coord::limits::bench_session_timeout_ms_min,
                         coord::limits::bench_session_timeout_ms_max))
      ->capture_default_str();
  app.add_option("--label", f.label, "Name printed with the figures");
  CLI11_PARSE(app, argc, argv);
  const bool raw_op_mode = f.mode == "latency" || f.mode == "ops-raw";
  if (raw_op_mode && f.op != "get" && f.op != "set" && f.op != "exists") {
    std::fprintf(stderr, "coord-bench: %s mode takes --op get, set or exists\n", f.mode.c_str());
    return 2;
  }
  if (f.mode != "ops" && !raw_op_mode) f.op = "-";
  if (f.mode != "idle-sessions" && f.sessions > coord::limits::bench_sessions_max) {
    std::fprintf(stderr, "coord-bench: --sessions is at most %lld in %s mode\n",
                 static_cast<long long>(coord::limits::bench_sessions_max), f.mode.c_str());
    return 2;
  }

  const std::string payload(f.payload_bytes, 'x');
  auto setup = connect(f);
  if (!setup) return 1;
  const bool needs_keys = (f.mode == "ops" && f.op != "create") || raw_op_mode;
  Flags prep = f;
  if (!needs_keys) prep.keys = 0;
  if (!prepare(*setup, prep, payload)) return 1;

  Figures out;
  bool ok = false;
  if (f.mode == "ops") {
    OpsRun run(f, payload);
    ok = run.run(out);
    run.close_all();
  } else if (f.mode == "watch-latency") {
    ok = watch_latency(f, payload, out);
  } else if (f.mode == "latency") {
    ok = raw_latency(f, payload, out);
  } else if (f.mode == "ops-raw") {
    ok = raw_ops(f, payload, out);
  } else if (f.mode == "watch-latency-raw") {
    ok = raw_watch_latency(f, out);
  } else if (f.mode == "session-churn") {
    ok = session_churn(f, out);
  } else if (f.mode == "session-open") {
    ok = session_open(f, out);
  } else if (f.mode == "idle-sessions") {
    ok = idle_sessions(f, out);
  } else {
    ok = failover(f, payload, out);
  }
  if (!ok) return 1;
  print(f, out);
  if (f.clean) clean(*setup, f);
  return 0;
}
