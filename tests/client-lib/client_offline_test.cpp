// Client behaviour that needs no server: option checks, bounded queues,
// request timeouts, close before any connection, blocking calls from
// callbacks. The connect string points at a closed port, so every
// connection attempt is refused at once, or at a listener that never
// answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coord/client-lib/client.h"

namespace coord {
namespace {

using namespace std::chrono_literals;

ClientOptions unreachable() {
  ClientOptions o;
  o.servers = "127.0.0.1:1";
  o.seed = 7;
  return o;
}

ClientOptions unreachable_on(std::shared_ptr<ClientRuntime> runtime) {
  ClientOptions o = unreachable();
  o.runtime = std::move(runtime);
  return o;
}

TEST(ClientOffline, BadOptionsAreRejected) {
  ClientOptions o = unreachable();
  o.servers = "";
  EXPECT_EQ(Client::start(o).code(), ErrorCode::BadArguments);
  o = unreachable();
  o.session_timeout = 0ms;
  EXPECT_EQ(Client::start(o).code(), ErrorCode::BadArguments);
}

TEST(ClientOffline, StartsConnectingAndReportsNoConnection) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->state(), SessionState::Connecting);
  EXPECT_EQ((*c)->wait_connected(100ms).code(), ErrorCode::ConnectionLoss);
  EXPECT_EQ((*c)->connected_server(), "");
}

// The reason of a failed connection attempt is kept, not thrown away: it
// names the server and what the socket said.
TEST(ClientOffline, RefusedConnectionSaysWhy) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok()) << c.status();
  const Status waited = (*c)->wait_connected(300ms);
  EXPECT_EQ(waited.code(), ErrorCode::ConnectionLoss);
  EXPECT_NE(waited.message().find("127.0.0.1:1: connect: "), std::string::npos) << waited;
  const Status last = (*c)->last_error();
  EXPECT_EQ(last.code(), ErrorCode::ConnectionLoss);
  EXPECT_TRUE(last.message().starts_with("127.0.0.1:1: connect: ")) << last;
  EXPECT_NE(last.message().find("refused"), std::string::npos) << last;
}

// A server that takes the connection and never answers the handshake: the
// kernel completes the TCP handshake for a listening socket nobody accepts
// on, as for a server process that is starting or stuck.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() {
    for (int fd : accepted_)
      ::close(fd);
    if (fd_ >= 0) ::close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  std::uint16_t port() const { return port_; }
  // Connections made so far (accepted now, and kept open unanswered).
  std::size_t connections() {
    for (;;) {
      const int fd = ::accept(fd_, nullptr, nullptr);
      if (fd < 0) break;
      accepted_.push_back(fd);
    }
    return accepted_.size();
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> accepted_;
};

// With one server the default attempt is a third of the session timeout,
// not all of it: an unanswered handshake is given up and tried again while
// the session may still be resumed.
TEST(ClientOffline, UnansweredHandshakeIsTriedAgainWithinTheSessionTimeout) {
  SilentListener server;
  ASSERT_NE(server.port(), 0);
  ClientOptions o;
  o.servers = "127.0.0.1:" + std::to_string(server.port());
  o.session_timeout = 3000ms;
  auto c = Client::start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  const Status waited = (*c)->wait_connected(2500ms);
  EXPECT_EQ(waited.code(), ErrorCode::ConnectionLoss) << waited;
  const Status last = (*c)->last_error();
  EXPECT_NE(
      last.message().find("no connection and handshake within the connect timeout of 1000 ms"),
      std::string::npos)
      << last;
  EXPECT_GE(server.connections(), 2u);
}

TEST(ClientOffline, CloseGivesTheStateCallbackItsReason) {
  ClientOptions o = unreachable();
  std::mutex mu;
  std::vector<std::string> seen;
  std::promise<void> closed;
  o.on_state_change = [&](SessionState s, const Status& why) {
    std::lock_guard lock(mu);
    seen.push_back(std::string(session_state_name(s)) + " " + why.to_string());
    if (s == SessionState::Closed) closed.set_value();
  };
  auto c = Client::start(o);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->close(1s).ok());
  ASSERT_EQ(closed.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "Closed Closing: client is closed: closed while not connected");
  EXPECT_EQ((*c)->get_data("/").status().to_string(),
            "Closing: client is closed: closed while not connected")
      << "calls after the final state carry the same reason";
}

TEST(ClientOffline, QueuedRequestTimesOut) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = (*c)->run(ops::GetData{"/a"}, 150ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code(), ErrorCode::OperationTimeout);
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 5s);
}

TEST(ClientOffline, InvalidPathFailsBeforeSending) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->get_data("relative").code(), ErrorCode::BadArguments);
  EXPECT_EQ((*c)->create("/a/", std::nullopt).code(), ErrorCode::BadArguments);
  EXPECT_EQ((*c)->run(ops::AddWatch{"/a"}).code(), ErrorCode::BadArguments)
      << "addWatch without a watcher";
}

TEST(ClientOffline, OutstandingRequestsAreBounded) {
  ClientOptions o = unreachable();
  o.pending_requests_max = 10;
  auto c = Client::start(o);
  ASSERT_TRUE(c.ok());
  std::vector<std::future<Result<DataResult>>> fs;
  for (int i = 0; i < 15; ++i)
    fs.push_back((*c)->submit(ops::GetData{"/a"}, 60s));
  int throttled = 0;
  for (int i = 10; i < 15; ++i) {
    ASSERT_EQ(fs[i].wait_for(5s), std::future_status::ready);
    throttled += fs[i].get().code() == ErrorCode::Throttled;
  }
  EXPECT_EQ(throttled, 5);
  EXPECT_EQ(fs[0].wait_for(0ms), std::future_status::timeout) << "the first ten wait";
  // Closing fails the waiting ones at once.
  EXPECT_TRUE((*c)->close().ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(fs[i].wait_for(5s), std::future_status::ready);
    EXPECT_EQ(fs[i].get().code(), ErrorCode::Closing);
  }
  EXPECT_EQ((*c)->state(), SessionState::Closed);
  EXPECT_EQ((*c)->get_data("/a").code(), ErrorCode::Closing);
}

TEST(ClientOffline, BlockingCallFromACallbackIsRefused) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok());
  Client* client = c->get();
  std::promise<ErrorCode> inner;
  client->submit(
      ops::GetData{"/a"},
      [client, &inner](Result<DataResult>) { inner.set_value(client->get_data("/b").code()); },
      50ms);
  auto f = inner.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), ErrorCode::ApiError);
}

TEST(ClientOffline, CallbacksRunInSubmissionOrderOnOneThread) {
  auto c = Client::start(unreachable());
  ASSERT_TRUE(c.ok());
  std::vector<int> order;
  std::set<std::thread::id> threads;
  std::promise<void> done;
  for (int i = 0; i < 50; ++i) {
    (*c)->submit(
        ops::Exists{"/x"},
        [&, i](Result<std::optional<Stat>>) {
          order.push_back(i);
          threads.insert(std::this_thread::get_id());
          if (i == 49) done.set_value();
        },
        100ms);
  }
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  std::vector<int> expect(50);
  for (int i = 0; i < 50; ++i)
    expect[i] = i;
  EXPECT_EQ(order, expect);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "never on the caller's thread";
}

// The threads of this process, from /proc.
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// Clients on one runtime add its two threads and no more; it stays while a
// Client holds it, after its creator let go, and its threads end with the
// last Client.
TEST(ClientOffline, ClientsOfOneRuntimeShareItsTwoThreads) {
  // The thread sanitizer starts a thread of its own with the process's
  // second: that one is not the runtime's.
  std::thread([] {}).join();
  const std::size_t before = thread_count();
  auto runtime = ClientRuntime::start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    auto c = Client::start(unreachable_on(runtime));
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(std::move(*c));
  }
  runtime.reset();
  // Asio's resolver may keep one thread of its own while it resolves.
  EXPECT_LE(thread_count(), before + 3);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<std::vector<int>> order(clients.size());
  std::atomic<int> left{static_cast<int>(clients.size()) * 20};
  std::promise<void> done;
  for (int k = 0; k < 20; ++k) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      clients[i]->submit(
          ops::Exists{"/x"},
          [&, i, k](Result<std::optional<Stat>> r) {
            EXPECT_EQ(r.code(), ErrorCode::OperationTimeout);
            std::lock_guard lock(mu);
            threads.insert(std::this_thread::get_id());
            order[i].push_back(k);
            if (--left == 0) done.set_value();
          },
          50ms);
    }
  }
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(threads.size(), 1u) << "every Client's callbacks on the one event thread";
  std::vector<int> expect(20);
  for (int k = 0; k < 20; ++k)
    expect[k] = k;
  for (const auto& o : order)
    EXPECT_EQ(o, expect);
  clients.clear();
  EXPECT_EQ(thread_count(), before);
}

// A callback of one Client of a runtime cannot block on another Client of
// it: that Client's answer would come on the same event thread.
TEST(ClientOffline, BlockingCallOnAnotherClientOfTheRuntimeIsRefused) {
  auto runtime = ClientRuntime::start();
  auto a = Client::start(unreachable_on(runtime));
  auto b = Client::start(unreachable_on(runtime));
  ASSERT_TRUE(a.ok() && b.ok());
  Client* other = b->get();
  std::promise<std::pair<ErrorCode, ErrorCode>> inner;
  (*a)->submit(
      ops::GetData{"/a"},
      [&](Result<DataResult>) {
        EXPECT_TRUE(runtime->on_event_thread());
        inner.set_value({other->get_data("/b").code(), other->close().code()});
      },
      50ms);
  auto f = inner.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const auto [blocking, close] = f.get();
  EXPECT_EQ(blocking, ErrorCode::ApiError);
  EXPECT_EQ(close, ErrorCode::ApiError);
  EXPECT_FALSE(runtime->on_event_thread());
}

// A Client whose callbacks submit again as fast as they run can be
// destroyed meanwhile: its callbacks stop with it, the ones after it fail
// and have run when the destructor returns, and the runtime goes on for
// the others.
TEST(ClientOffline, ClientDestroyedWhileItsCallbacksSubmitAgain) {
  auto runtime = ClientRuntime::start();
  auto doomed = Client::start(unreachable_on(runtime));
  auto other = Client::start(unreachable_on(runtime));
  ASSERT_TRUE(doomed.ok() && other.ok());
  std::atomic<int> runs{0};
  std::atomic<bool> final_seen{false};
  std::function<void(Result<std::optional<Stat>>)> again;
  Client* c = doomed->get();
  again = [&](Result<std::optional<Stat>> r) {
    ++runs;
    if (r.code() == ErrorCode::Closing) {
      final_seen = true;
      return;
    }
    c->submit(ops::Exists{"/x"}, again, 1ms);
  };
  for (int i = 0; i < 16; ++i)
    c->submit(ops::Exists{"/x"}, again, 1ms);
  for (int i = 0; i < 200 && runs.load() < 100; ++i)
    std::this_thread::sleep_for(5ms);
  EXPECT_GE(runs.load(), 100);
  doomed->reset();
  EXPECT_TRUE(final_seen.load());
  const int after = runs.load();
  // The other Client's answer comes through the same event queue, behind
  // anything the destroyed one could still have queued: no waiting needed.
  EXPECT_EQ((*other)->run(ops::Exists{"/x"}, 50ms).code(), ErrorCode::OperationTimeout);
  EXPECT_EQ(runs.load(), after) << "a callback ran after the destructor returned";
}

}  // namespace
}  // namespace coord
