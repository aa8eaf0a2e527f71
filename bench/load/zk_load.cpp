// coord-zk-load: a small ZooKeeper-protocol load generator on raw sockets,
// so that coordd and Apache ZooKeeper are measured by the same client.
//
//   coord-zk-load --server 127.0.0.1:2181 --op get|set|create --sessions 32
//                 --outstanding 8 --payload-bytes 100 --keys 1000 --duration-s 10
//
// Each session keeps `outstanding` requests in flight on one connection, all
// sessions driven by one thread with poll(). Prints one JSON line (ops/s and
// latency percentiles from a histogram) and a summary.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "coord/base/histogram.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"

namespace pr = coord::protocol;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int connect_timeout_ms = 5000;
// Slack past the run's duration before a stuck run gives up.
constexpr int give_up_slack_s = 120;

struct Session {
  int fd = -1;
  pr::FrameBuffer in;
  pr::Bytes out;
  std::size_t out_pos = 0;
  bool handshaken = false;
  std::deque<Clock::time_point> sent;
  std::int32_t next_xid = 1;
  std::uint64_t counter = 0;
};

int dial(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:2181";
  std::string op = "get";
  int sessions_n = 32;
  int outstanding = 8;
  std::size_t payload = 100;
  int keys = 1000;
  double duration_s = 10;
  std::string label;
  CLI::App app{"coord-zk-load: ZooKeeper-protocol load generator"};
  app.add_option("--server", server, "host:port")->capture_default_str();
  app.add_option("--op", op, "get, set or create")
      ->check(CLI::IsMember({"get", "set", "create"}))
      ->capture_default_str();
  app.add_option("--sessions", sessions_n)
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_sessions_max))
      ->capture_default_str();
  app.add_option("--outstanding", outstanding)
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_raw_outstanding_per_session_max))
      ->capture_default_str();
  app.add_option("--payload-bytes", payload)->capture_default_str();
  app.add_option("--keys", keys)
      ->check(CLI::Range(std::int64_t{1}, coord::limits::bench_keys_max))
      ->capture_default_str();
  app.add_option("--duration-s", duration_s)
      ->check(CLI::Range(0.1, coord::limits::bench_raw_duration_s_max))
      ->capture_default_str();
  app.add_option("--label", label, "Name printed with the figures");
  CLI11_PARSE(app, argc, argv);

  const auto colon = server.rfind(':');
  const std::string host = server.substr(0, colon);
  const int port = std::stoi(server.substr(colon + 1));
  const std::string data(payload, 'x');
  coord::Random rng(1);

  std::vector<Session> sessions(static_cast<std::size_t>(sessions_n));
  for (auto& s : sessions) {
    s.fd = dial(host, port);
    if (s.fd < 0) {
      std::fprintf(stderr, "coord-zk-load: cannot connect to %s\n", server.c_str());
      return 1;
    }
    pr::ConnectRequest req;
    req.timeout_ms = static_cast<std::int32_t>(coord::limits::bench_raw_session_timeout_ms);
    pr::append_connect_request_frame(s.out, req);
  }

  auto enqueue = [&](Session& s, std::size_t index) {
    const std::int32_t xid = s.next_xid++;
    const int key = static_cast<int>(rng.below(static_cast<std::uint64_t>(keys)));
    const std::string path = "/load-" + std::to_string(key);
    if (op == "get") {
      pr::append_request_frame(s.out, pr::RequestHeader{xid, pr::OpCode::GetData},
                               pr::GetDataRequest{path, false});
    } else if (op == "set") {
      pr::append_request_frame(s.out, pr::RequestHeader{xid, pr::OpCode::SetData},
                               pr::SetDataRequest{path, data, -1});
    } else {
      const std::string unique =
          "/load-c-" + label + "-" + std::to_string(index) + "-" + std::to_string(s.counter++);
      pr::append_request_frame(
          s.out, pr::RequestHeader{xid, pr::OpCode::Create},
          pr::CreateRequest{unique, data, coord::open_acl_unsafe(), coord::CreateMode::Persistent});
    }
    s.sent.push_back(Clock::now());
  };

  // Seeds the keys (get and set need them), through the first session.
  bool seeding = op != "create";
  int seeded = 0;
  int seed_replies = 0;
  coord::Histogram latency_us;
  std::uint64_t done = 0;
  std::uint64_t errors = 0;
  Clock::time_point start;
  Clock::time_point end;
  bool measuring = false;
  const auto give_up = Clock::now() + std::chrono::seconds(connect_timeout_ms / 1000) +
                       std::chrono::duration<double>(duration_s) +
                       std::chrono::seconds(give_up_slack_s);

  std::vector<pollfd> pfds(sessions.size());
  for (;;) {
    const auto now = Clock::now();
    if (now > give_up) {
      std::fprintf(stderr, "coord-zk-load: gave up (server too slow or gone)\n");
      return 1;
    }
    if (measuring && now >= end) break;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      pfds[i].fd = sessions[i].fd;
      pfds[i].events = POLLIN | (sessions[i].out_pos < sessions[i].out.size() ? POLLOUT : 0);
    }
    if (::poll(pfds.data(), pfds.size(), 100) < 0) return 1;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      Session& s = sessions[i];
      if (pfds[i].revents & (POLLERR | POLLHUP)) {
        std::fprintf(stderr, "coord-zk-load: connection %zu lost\n", i);
        return 1;
      }
      if (pfds[i].revents & POLLOUT) {
        const ssize_t n = ::send(s.fd, s.out.data() + s.out_pos, s.out.size() - s.out_pos, 0);
        if (n > 0) s.out_pos += static_cast<std::size_t>(n);
        if (s.out_pos == s.out.size()) {
          s.out.clear();
          s.out_pos = 0;
        }
      }
      if (!(pfds[i].revents & POLLIN)) continue;
      std::uint8_t buf[65536];
      const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n < 0 && errno == EAGAIN) continue;
        std::fprintf(stderr, "coord-zk-load: connection %zu closed by the server\n", i);
        return 1;
      }
      s.in.append(pr::ByteSpan(buf, static_cast<std::size_t>(n)));
      for (;;) {
        pr::FrameCut cut = s.in.next();
        if (cut.state != pr::FrameState::Frame) break;
        if (!s.handshaken) {
          s.handshaken = true;
          if (seeding && i == 0) {
            for (; seeded < keys && seeded < 1000; ++seeded) {
              pr::append_request_frame(
                  s.out, pr::RequestHeader{s.next_xid++, pr::OpCode::Create},
                  pr::CreateRequest{"/load-" + std::to_string(seeded), data,
                                    coord::open_acl_unsafe(), coord::CreateMode::Persistent});
            }
          }
          continue;
        }
        pr::JuteReader r(cut.payload);
        auto h = pr::decode_reply_header(r);
        if (!h.ok() || h->xid < 0) continue;
        if (seeding) {
          ++seed_replies;
          if (seeded < keys) {
            pr::append_request_frame(
                s.out, pr::RequestHeader{s.next_xid++, pr::OpCode::Create},
                pr::CreateRequest{"/load-" + std::to_string(seeded++), data,
                                  coord::open_acl_unsafe(), coord::CreateMode::Persistent});
          }
          continue;
        }
        const auto sent_at = s.sent.front();
        s.sent.pop_front();
        if (measuring) {
          latency_us.record(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_at)
                  .count()));
          ++done;
          if (h->err != coord::ErrorCode::Ok) ++errors;
        }
        enqueue(s, i);
      }
    }
    const bool all_connected = std::all_of(sessions.begin(), sessions.end(),
                                           [](const Session& s) { return s.handshaken; });
    if (seeding && all_connected && seed_replies >= keys) seeding = false;
    if (!seeding && all_connected && !measuring) {
      measuring = true;
      start = Clock::now();
      end = start +
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
      for (std::size_t i = 0; i < sessions.size(); ++i) {
        for (int k = 0; k < outstanding; ++k)
          enqueue(sessions[i], i);
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double ops = static_cast<double>(done) / secs;
  std::printf(
      "{\"label\":\"%s\",\"op\":\"%s\",\"sessions\":%d,\"outstanding\":%d,\"payload_bytes\":%zu,"
      "\"ops\":%llu,\"errors\":%llu,\"seconds\":%.2f,\"ops_per_s\":%.0f,\"p50_us\":%llu,"
      "\"p90_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu}\n",
      label.c_str(), op.c_str(), sessions_n, outstanding, payload,
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(errors), secs, ops,
      static_cast<unsigned long long>(latency_us.percentile(50)),
      static_cast<unsigned long long>(latency_us.percentile(90)),
      static_cast<unsigned long long>(latency_us.percentile(99)),
      static_cast<unsigned long long>(latency_us.percentile(99.9)),
      static_cast<unsigned long long>(latency_us.max()));
  std::fprintf(stderr, "%s %s: %.0f ops/s, p50 %llu us, p99 %llu us, %llu errors\n", label.c_str(),
               op.c_str(), ops, static_cast<unsigned long long>(latency_us.percentile(50)),
               static_cast<unsigned long long>(latency_us.percentile(99)),
               static_cast<unsigned long long>(errors));
  for (auto& s : sessions)
    ::close(s.fd);
  return errors == 0 ? 0 : 3;
}
