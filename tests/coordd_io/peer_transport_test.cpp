// The peer transport on real sockets on 127.0.0.1: a mesh forms and carries
// codec frames, links come back after a restart, a peer that does not read
// costs bounded memory, and strangers, other clusters, wrong secrets, bad
// frames and silent connections are refused while good peers keep talking.
// Every wait is bounded; nothing sleeps.

#include "coord/io/peer_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "coord/base/checksum.h"
#include "coord/consensus/codec.h"
#include "coord/io/peer_handshake.h"

namespace coord::io {
namespace {

namespace hs = peer_handshake;
namespace codec = consensus::codec;
using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

const std::string kSecret = "a-cluster-secret-of-enough-bytes";
const std::string kCluster = "test-cluster";

// Callbacks from every transport bump one generation, so that a waiting
// test wakes as soon as something may have changed.
struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t generation = 0;

  void bump() {
    {
      std::lock_guard lock(mu);
      ++generation;
    }
    cv.notify_all();
  }

  // True once pred() holds; false after `timeout`. Waits on the signal in
  // short slices, for conditions that no callback announces (counters).
  bool wait_until(const std::function<bool()>& pred, Ms timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu);
    while (true) {
      lock.unlock();
      const bool ok = pred();
      lock.lock();
      if (ok) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      cv.wait_for(lock, 10ms);
    }
  }
};

std::string frame_for(NodeId from, NodeId to, std::uint64_t seq, std::size_t payload = 16) {
  consensus::Message m;
  m.type = consensus::MessageType::Append;
  m.from = from;
  m.to = to;
  m.term = Term(seq);
  consensus::Entry e;
  e.term = Term(seq);
  e.index = LogIndex(seq);
  e.data = std::string(payload, static_cast<char>('a' + seq % 26));
  m.entries.push_back(std::move(e));
  auto bytes = codec::encode(m);
  EXPECT_TRUE(bytes.ok());
  return std::move(bytes).value();
}

// One server's transport on its own network thread.
class Node {
 public:
  Node(NodeId id, Signal& signal, std::function<void(PeerTransportOptions&)> tune = {},
       std::uint16_t port = 0)
      : signal_(signal) {
    PeerTransportOptions o;
    o.self = id;
    o.cluster_id = kCluster;
    o.secret = kSecret;
    o.port = port;
    // Generous against a loaded machine or a sanitizer: a spurious timeout
    // would show as an extra link in the counts the tests check.
    o.handshake_timeout_ms = 3'000;
    o.ping_interval_ms = 50;
    o.idle_timeout_ms = 3'000;
    o.duplicate_probe_ms = 300;
    o.reconnect_backoff_ms_max = 200;
    o.on_incoming = [this] { signal_.bump(); };
    o.on_link = [this](NodeId, bool) { signal_.bump(); };
    if (tune) tune(o);
    auto t = PeerTransport::create(io_, o);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return;
    transport_ = std::move(t).value();
    thread_ = std::thread([this] {
      io_.run();
      {
        std::lock_guard lock(done_mu_);
        done_ = true;
      }
      done_cv_.notify_all();
    });
  }

  ~Node() { shut_down(); }

  // Stops the transport and checks that it leaves no work behind.
  void shut_down() {
    if (!transport_) return;
    transport_->stop();
    std::unique_lock lock(done_mu_);
    if (!done_cv_.wait_for(lock, 5s, [this] { return done_; })) {
      ADD_FAILURE() << "the transport left work on its io_context after stop()";
      io_.stop();
    }
    lock.unlock();
    thread_.join();
    transport_.reset();
  }

  PeerTransport& t() { return *transport_; }
  std::uint16_t port() const { return transport_->port(); }
  PeerAddress address() const { return PeerAddress{"127.0.0.1", port()}; }

  PeerStats peer(NodeId id) const {
    for (const auto& p : transport_->stats().peers)
      if (p.id == id) return p;
    return PeerStats{};
  }
  bool connected_to(NodeId id) const { return peer(id).connected; }

  // Takes what the inbox holds into received().
  void drain() {
    std::vector<IncomingFrame> got;
    while (transport_->receive(got, 1000) > 0) {
    }
    for (auto& f : got)
      received_.push_back(std::move(f));
  }
  std::vector<IncomingFrame>& received() { return received_; }

  // Waits until `n` frames have arrived in all.
  bool wait_received(std::size_t n, Ms timeout = 10s) {
    return signal_.wait_until(
        [&] {
          drain();
          return received_.size() >= n;
        },
        timeout);
  }

 private:
  Signal& signal_;
  boost::asio::io_context io_;
  std::unique_ptr<PeerTransport> transport_;
  std::thread thread_;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::vector<IncomingFrame> received_;
};

void mesh(const std::vector<Node*>& nodes) {
  PeerSet all;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    all[NodeId(i + 1)] = nodes[i]->address();
  for (Node* n : nodes)
    n->t().set_peers(all);
}

bool all_connected(const std::vector<Node*>& nodes) {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t j = 0; j < nodes.size(); ++j) {
      if (i != j && !nodes[i]->connected_to(NodeId(j + 1))) return false;
    }
  }
  return true;
}

// A client speaking raw bytes, with plain blocking sockets and a receive
// timeout, to play a stranger or a misbehaving peer.
class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawPeer() { ::close(fd_); }

  bool connected() const { return connected_; }

  void write(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

  // Exactly n bytes, or nothing when the connection ends or times out.
  std::optional<std::string> read_exact(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) return std::nullopt;
      got += static_cast<std::size_t>(r);
    }
    return out;
  }

  std::optional<hs::Message> read_message() {
    auto header = read_exact(hs::header_bytes);
    if (!header) return std::nullopt;
    const std::size_t body =
        static_cast<std::uint8_t>((*header)[6]) |
        (static_cast<std::size_t>(static_cast<std::uint8_t>((*header)[7])) << 8);
    auto rest = read_exact(body);
    if (!rest) return std::nullopt;
    auto m = hs::decode(*header + *rest);
    if (!m.ok()) return std::nullopt;
    return *m;
  }

  // Reads until the other side closes; true when it does (EOF or reset)
  // within the receive timeout. Bytes read meanwhile go to `seen`.
  bool closed_by_peer(std::string* seen = nullptr) {
    char buf[4096];
    for (int i = 0; i < 100'000; ++i) {
      const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r == 0) return true;
      if (r < 0) return errno == ECONNRESET;
      if (seen) seen->append(buf, static_cast<std::size_t>(r));
    }
    return false;
  }

  std::optional<hs::Refusal> refusal() {
    auto m = read_message();
    if (!m || !std::holds_alternative<hs::Refuse>(*m)) return std::nullopt;
    return std::get<hs::Refuse>(*m).reason;
  }

  // The dialer's side of a handshake up to the challenge.
  std::optional<hs::Challenge> hello(NodeId self, NodeId to, const hs::Nonce& nonce,
                                     const std::string& cluster = kCluster, bool auth = true) {
    hs::Hello h;
    h.authenticated = auth;
    h.dialer = self;
    h.acceptor = to;
    h.nonce = nonce;
    h.cluster_id = cluster;
    write(hs::encode(h));
    auto m = read_message();
    if (!m || !std::holds_alternative<hs::Challenge>(*m)) {
      if (m && std::holds_alternative<hs::Refuse>(*m))
        last_refusal_ = std::get<hs::Refuse>(*m).reason;
      return std::nullopt;
    }
    return std::get<hs::Challenge>(*m);
  }

  // A whole handshake as `self`; true once welcomed.
  bool join(NodeId self, NodeId to, const std::string& secret = kSecret) {
    const hs::Nonce mine = hs::fresh_nonce();
    auto ch = hello(self, to, mine);
    if (!ch) return false;
    const hs::Proof theirs =
        hs::prove(hs::Role::Acceptor, secret, kCluster, self, to, mine, ch->nonce);
    if (!hs::same_proof(theirs, ch->proof)) return false;
    write(hs::encode(hs::ProofMessage{
        hs::prove(hs::Role::Dialer, secret, kCluster, self, to, mine, ch->nonce)}));
    auto m = read_message();
    return m && std::holds_alternative<hs::Welcome>(*m);
  }

  std::optional<hs::Refusal> last_refusal_;

 private:
  int fd_ = -1;
  bool connected_ = false;
};

hs::Nonce nonce_of(std::uint8_t b) {
  hs::Nonce n{};
  n.fill(b);
  return n;
}

// ---- forming the mesh ---------------------------------------------------------

TEST(PeerTransport, ThreeServersFormAMeshAndExchangeFrames) {
  Signal sig;
  Node n1(NodeId(1), sig), n2(NodeId(2), sig), n3(NodeId(3), sig);
  std::vector<Node*> nodes{&n1, &n2, &n3};
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));

  constexpr std::uint64_t per_pair = 50;
  for (std::uint64_t seq = 1; seq <= per_pair; ++seq) {
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        if (i == j) continue;
        ASSERT_EQ(nodes[i]->t().send(NodeId(j + 1), frame_for(NodeId(i + 1), NodeId(j + 1), seq)),
                  SendResult::Queued);
      }
    }
  }
  for (std::size_t j = 0; j < 3; ++j) {
    Node& n = *nodes[j];
    ASSERT_TRUE(n.wait_received(2 * per_pair))
        << "node " << j + 1 << " got " << n.received().size();
    EXPECT_EQ(n.received().size(), 2 * per_pair);
    // Each sender's frames arrive whole, decodable and in order.
    std::map<NodeId, std::uint64_t> last;
    for (const auto& f : n.received()) {
      auto m = codec::decode(f.frame);
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ(m->from, f.from);
      EXPECT_EQ(m->to, NodeId(j + 1));
      EXPECT_EQ(m->term.value(), last[f.from] + 1);
      last[f.from] = m->term.value();
    }
  }
  // Round trips are measured by ping and pong.
  ASSERT_TRUE(sig.wait_until([&] { return n1.peer(NodeId(3)).rtt_us >= 0; }));
  const PeerStats s = n1.peer(NodeId(2));
  EXPECT_EQ(s.messages_sent, per_pair);
  EXPECT_EQ(s.messages_received, per_pair);
  EXPECT_EQ(s.messages_dropped, 0u);
  EXPECT_GT(s.bytes_sent, 0u);
  EXPECT_EQ(s.auth_failures, 0u);
  EXPECT_TRUE(n1.t().stats().authenticated);
}

TEST(PeerTransport, SimultaneousStartEndsInOneConnectionPerPair) {
  Signal sig;
  Node n1(NodeId(1), sig), n2(NodeId(2), sig), n3(NodeId(3), sig), n4(NodeId(4), sig);
  std::vector<Node*> nodes{&n1, &n2, &n3, &n4};
  // Every server learns every address at once and dials at once.
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));
  // A round of frames both ways, so that any second connection would have
  // been made and noticed by now.
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < 4; ++j) {
      if (i != j) {
        ASSERT_EQ(nodes[i]->t().send(NodeId(j + 1), frame_for(NodeId(i + 1), NodeId(j + 1), 1)),
                  SendResult::Queued);
      }
    }
  }
  for (Node* n : nodes)
    ASSERT_TRUE(n->wait_received(3));
  for (Node* n : nodes) {
    const PeerTransportStats st = n->t().stats();
    EXPECT_EQ(st.connections, 3u);
    EXPECT_EQ(st.handshakes_refused, 0u);
    for (const PeerStats& p : st.peers) {
      EXPECT_EQ(p.links_established, 1u) << "to node " << p.id;
      EXPECT_EQ(p.reconnects, 0u);
    }
  }
}

TEST(PeerTransport, ARestartedPeerComesBack) {
  Signal sig;
  Node n1(NodeId(1), sig), n3(NodeId(3), sig);
  auto n2 = std::make_unique<Node>(NodeId(2), sig);
  const std::uint16_t port2 = n2->port();
  std::vector<Node*> nodes{&n1, n2.get(), &n3};
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));

  n2.reset();
  ASSERT_TRUE(
      sig.wait_until([&] { return !n1.connected_to(NodeId(2)) && !n3.connected_to(NodeId(2)); }));
  // Frames for a peer that is down are dropped and counted.
  EXPECT_EQ(n1.t().send(NodeId(2), frame_for(NodeId(1), NodeId(2), 1)), SendResult::NotConnected);
  EXPECT_GE(n1.peer(NodeId(2)).messages_dropped, 1u);

  // Node 2 comes back on its port: node 1 dials it again, it dials node 3.
  n2 = std::make_unique<Node>(NodeId(2), sig, nullptr, port2);
  nodes[1] = n2.get();
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));
  EXPECT_EQ(n1.peer(NodeId(2)).reconnects, 1u);
  EXPECT_EQ(n3.peer(NodeId(2)).reconnects, 1u);
  ASSERT_EQ(n1.t().send(NodeId(2), frame_for(NodeId(1), NodeId(2), 2)), SendResult::Queued);
  ASSERT_EQ(n3.t().send(NodeId(2), frame_for(NodeId(3), NodeId(2), 3)), SendResult::Queued);
  ASSERT_EQ(n2->t().send(NodeId(1), frame_for(NodeId(2), NodeId(1), 4)), SendResult::Queued);
  EXPECT_TRUE(n2->wait_received(2));
  EXPECT_TRUE(n1.wait_received(1));
}

TEST(PeerTransport, APeerThatDoesNotReadCostsBoundedMemory) {
  Signal sig;
  constexpr std::size_t queue_messages = 32;
  constexpr std::size_t queue_bytes = 512 * 1024;
  constexpr std::size_t inbox_messages = 16;
  Node n1(NodeId(1), sig, [](PeerTransportOptions& o) {
    o.send_queue_messages_max = queue_messages;
    o.send_queue_bytes_max = queue_bytes;
  });
  Node n2(NodeId(2), sig, [](PeerTransportOptions& o) { o.inbox_messages_max = inbox_messages; });
  n1.t().set_peers({{NodeId(1), n1.address()}, {NodeId(2), n2.address()}});
  n2.t().set_peers({{NodeId(1), n1.address()}, {NodeId(2), n2.address()}});
  ASSERT_TRUE(
      sig.wait_until([&] { return n1.connected_to(NodeId(2)) && n2.connected_to(NodeId(1)); }));

  // Node 2's core takes nothing. Node 1 keeps sending 32 KiB frames: its
  // queue fills once TCP and node 2's inbox are full, and the rest drop.
  std::uint64_t queued = 0;
  std::uint64_t dropped = 0;
  std::size_t max_queued_bytes = 0;
  for (std::uint64_t seq = 1; seq <= 3000 && dropped < 500; ++seq) {
    const SendResult r = n1.t().send(NodeId(2), frame_for(NodeId(1), NodeId(2), seq, 32 * 1024));
    if (r == SendResult::Queued) {
      ++queued;
    } else {
      ASSERT_EQ(r, SendResult::QueueFull);
      ++dropped;
    }
    const PeerStats s = n1.peer(NodeId(2));
    max_queued_bytes = std::max(max_queued_bytes, s.queued_bytes);
    ASSERT_LE(s.queued_messages, queue_messages);
  }
  EXPECT_GE(dropped, 500u);
  EXPECT_LE(max_queued_bytes, queue_bytes);
  EXPECT_EQ(n1.peer(NodeId(2)).messages_dropped, dropped);
  EXPECT_LE(n2.t().stats().inbox_messages, inbox_messages);
  EXPECT_TRUE(n1.connected_to(NodeId(2)));

  // Once node 2 reads again, every queued frame arrives, in order.
  ASSERT_TRUE(n2.wait_received(queued, 20s)) << n2.received().size() << " of " << queued;
  std::uint64_t last = 0;
  for (const auto& f : n2.received()) {
    auto m = codec::decode(f.frame);
    ASSERT_TRUE(m.ok());
    EXPECT_GT(m->term.value(), last);
    last = m->term.value();
  }
  EXPECT_EQ(n2.received().size(), queued);
  ASSERT_TRUE(sig.wait_until([&] { return n1.peer(NodeId(2)).messages_sent == queued; }));
  EXPECT_EQ(n1.peer(NodeId(2)).queued_bytes, 0u);
}

// ---- refusals -------------------------------------------------------------------

class PeerTransportRefusals : public ::testing::Test {
 protected:
  PeerTransportRefusals()
      : n1_(NodeId(1), sig_, tune()), n2_(NodeId(2), sig_, tune()), n3_(NodeId(3), sig_, tune()) {
    mesh(nodes_);
    EXPECT_TRUE(sig_.wait_until([&] { return all_connected(nodes_); }));
  }

  static std::function<void(PeerTransportOptions&)> tune() {
    return [](PeerTransportOptions& o) {
      o.handshake_timeout_ms = 1'000;
      o.unlisted_links_max = 2;
    };
  }

  std::uint64_t refused(Node& n) { return n.t().stats().handshakes_refused; }

  // The good peers still talk, over the links they had from the start.
  void expect_mesh_intact() {
    static std::uint64_t seq = 1000;
    ++seq;
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        if (i == j) continue;
        EXPECT_EQ(nodes_[i]->t().send(NodeId(j + 1), frame_for(NodeId(i + 1), NodeId(j + 1), seq)),
                  SendResult::Queued);
      }
    }
    for (Node* n : nodes_) {
      const std::size_t before = n->received().size();
      EXPECT_TRUE(n->wait_received(before + 2));
      for (const PeerStats& p : n->t().stats().peers)
        EXPECT_EQ(p.links_established, 1u);
    }
  }

  Signal sig_;
  Node n1_, n2_, n3_;
  std::vector<Node*> nodes_{&n1_, &n2_, &n3_};
};

TEST_F(PeerTransportRefusals, GarbageBytesAreRefused) {
  const auto before = refused(n3_);
  RawPeer raw(n3_.port());
  ASSERT_TRUE(raw.connected());
  raw.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  EXPECT_TRUE(raw.closed_by_peer(&seen));
  EXPECT_EQ(seen, "");  // a stranger gets no answer
  EXPECT_EQ(refused(n3_), before + 1);
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, ASilentConnectionIsClosedAtTheDeadline) {
  const auto before = refused(n3_);
  RawPeer raw(n3_.port());
  ASSERT_TRUE(raw.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.closed_by_peer());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(refused(n3_), before + 1);
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, UnlistedNodesPastTheirBoundAreRefused) {
  // The fixture's nodes take two unlisted links each.
  std::vector<std::unique_ptr<RawPeer>> linked;
  for (std::uint64_t id : {7, 8}) {
    linked.push_back(std::make_unique<RawPeer>(n3_.port()));
    ASSERT_TRUE(linked.back()->join(NodeId(id), NodeId(3)));
  }
  RawPeer raw(n3_.port());
  EXPECT_FALSE(raw.hello(NodeId(9), NodeId(3), nonce_of(1)));
  EXPECT_EQ(raw.last_refusal_, hs::Refusal::UnknownNode);
  EXPECT_TRUE(raw.closed_by_peer());
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, AMemberOfAnotherClusterIsRefused) {
  RawPeer raw(n3_.port());
  EXPECT_FALSE(raw.hello(NodeId(1), NodeId(3), nonce_of(1), "another-cluster"));
  EXPECT_EQ(raw.last_refusal_, hs::Refusal::ClusterMismatch);
  EXPECT_TRUE(raw.closed_by_peer());
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, WrongAndDuplicateNodeIdsAreRefused) {
  {
    RawPeer raw(n3_.port());  // expects node 2 at node 3's address
    EXPECT_FALSE(raw.hello(NodeId(1), NodeId(2), nonce_of(1)));
    EXPECT_EQ(raw.last_refusal_, hs::Refusal::WrongNode);
  }
  {
    RawPeer raw(n3_.port());  // claims node 3's own id
    EXPECT_FALSE(raw.hello(NodeId(3), NodeId(3), nonce_of(1)));
    EXPECT_EQ(raw.last_refusal_, hs::Refusal::DuplicateNode);
  }
  {
    RawPeer raw(n2_.port());  // node 3 dialing node 2: the lower id dials
    EXPECT_FALSE(raw.hello(NodeId(3), NodeId(2), nonce_of(1)));
    EXPECT_EQ(raw.last_refusal_, hs::Refusal::WrongDirection);
  }
  {
    // Node 1 with the right secret while the real node 1 is connected and
    // answers pings: a second server with the same id.
    RawPeer raw(n3_.port());
    EXPECT_FALSE(raw.join(NodeId(1), NodeId(3)));
  }
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, AWrongSecretIsRefused) {
  const auto failures = n3_.peer(NodeId(1)).auth_failures;
  RawPeer raw(n3_.port());
  const hs::Nonce mine = hs::fresh_nonce();
  auto ch = raw.hello(NodeId(1), NodeId(3), mine);
  ASSERT_TRUE(ch);
  // The acceptor proved that it knows the secret...
  EXPECT_TRUE(hs::same_proof(ch->proof, hs::prove(hs::Role::Acceptor, kSecret, kCluster, NodeId(1),
                                                  NodeId(3), mine, ch->nonce)));
  // ...and this dialer cannot.
  raw.write(
      hs::encode(hs::ProofMessage{hs::prove(hs::Role::Dialer, "not-the-cluster-secret!", kCluster,
                                            NodeId(1), NodeId(3), mine, ch->nonce)}));
  EXPECT_EQ(raw.refusal(), hs::Refusal::BadProof);
  EXPECT_TRUE(raw.closed_by_peer());
  EXPECT_EQ(n3_.peer(NodeId(1)).auth_failures, failures + 1);
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, AReplayedProofIsRefused) {
  const hs::Nonce mine = nonce_of(42);
  hs::Proof recorded{};
  hs::Nonce first_nonce{};
  {
    // A genuine exchange someone recorded.
    RawPeer raw(n3_.port());
    auto ch = raw.hello(NodeId(1), NodeId(3), mine);
    ASSERT_TRUE(ch);
    first_nonce = ch->nonce;
    recorded =
        hs::prove(hs::Role::Dialer, kSecret, kCluster, NodeId(1), NodeId(3), mine, ch->nonce);
  }
  RawPeer raw(n3_.port());
  auto ch = raw.hello(NodeId(1), NodeId(3), mine);
  ASSERT_TRUE(ch);
  EXPECT_NE(ch->nonce, first_nonce);
  raw.write(hs::encode(hs::ProofMessage{recorded}));
  EXPECT_EQ(raw.refusal(), hs::Refusal::BadProof);
  expect_mesh_intact();
}

TEST_F(PeerTransportRefusals, AServerWithoutTheSecretIsRefused) {
  RawPeer raw(n3_.port());
  EXPECT_FALSE(raw.hello(NodeId(1), NodeId(3), nonce_of(1), kCluster, /*auth=*/false));
  EXPECT_EQ(raw.last_refusal_, hs::Refusal::AuthMismatch);
  expect_mesh_intact();
}

// Real transports that do not belong: the member dials them and refuses.
TEST_F(PeerTransportRefusals, StrangerTransportsNeverLink) {
  struct Case {
    const char* what;
    std::function<void(PeerTransportOptions&)> tune;
  };
  const std::vector<Case> cases = {
      {"wrong secret", [](PeerTransportOptions& o) { o.secret = "another-secret-entirely!"; }},
      {"other cluster", [](PeerTransportOptions& o) { o.cluster_id = "another-cluster"; }},
      {"no secret", [](PeerTransportOptions& o) { o.secret.clear(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Node stranger(NodeId(4), sig_, c.tune);
    stranger.t().set_peers({{NodeId(1), n1_.address()}});
    const auto refused_before = refused(n1_);
    PeerSet with_stranger{
        {NodeId(2), n2_.address()}, {NodeId(3), n3_.address()}, {NodeId(4), stranger.address()}};
    n1_.t().set_peers(with_stranger);
    // Node 1 dials node 4 over and over (with backoff); each attempt fails.
    ASSERT_TRUE(sig_.wait_until([&] { return refused(n1_) >= refused_before + 2; }));
    EXPECT_FALSE(n1_.connected_to(NodeId(4)));
    EXPECT_FALSE(stranger.connected_to(NodeId(1)));
    EXPECT_EQ(n1_.peer(NodeId(4)).links_established, 0u);
    EXPECT_GE(n1_.peer(NodeId(4)).auth_failures, 1u);
    n1_.t().set_peers({{NodeId(2), n2_.address()}, {NodeId(3), n3_.address()}});
    EXPECT_EQ(n1_.t().send(NodeId(4), frame_for(NodeId(1), NodeId(4), 1)), SendResult::UnknownPeer);
  }
  expect_mesh_intact();
}

// ---- bad frames and dead links ------------------------------------------------

// Nodes 2 and 3 run; node 1 is a raw client that completes a genuine
// handshake with node 3 and then misbehaves.
class PeerTransportFrames : public ::testing::Test {
 protected:
  PeerTransportFrames() : n2_(NodeId(2), sig_, tune()), n3_(NodeId(3), sig_, tune()) {
    PeerSet all{{NodeId(1), PeerAddress{"127.0.0.1", 1}},
                {NodeId(2), n2_.address()},
                {NodeId(3), n3_.address()}};
    n2_.t().set_peers(all);
    n3_.t().set_peers(all);
    EXPECT_TRUE(sig_.wait_until([&] { return n2_.connected_to(NodeId(3)); }));
  }

  static std::function<void(PeerTransportOptions&)> tune() {
    return [](PeerTransportOptions& o) {
      o.ping_interval_ms = 50;
      o.idle_timeout_ms = 1'000;
      o.duplicate_probe_ms = 200;
    };
  }

  std::uint64_t bad_frames() { return n3_.t().stats().bad_frames; }

  void expect_good_link() {
    ASSERT_EQ(n2_.t().send(NodeId(3), frame_for(NodeId(2), NodeId(3), 99)), SendResult::Queued);
    const std::size_t before = n3_.received().size();
    EXPECT_TRUE(n3_.wait_received(before + 1));
    EXPECT_EQ(n3_.peer(NodeId(2)).links_established, 1u);
  }

  Signal sig_;
  Node n2_, n3_;
};

TEST_F(PeerTransportFrames, AGoodFrameFromAHandshakenPeerIsDelivered) {
  RawPeer raw(n3_.port());
  ASSERT_TRUE(raw.join(NodeId(1), NodeId(3)));
  ASSERT_TRUE(sig_.wait_until([&] { return n3_.connected_to(NodeId(1)); }));
  raw.write(frame_for(NodeId(1), NodeId(3), 7));
  ASSERT_TRUE(n3_.wait_received(1));
  EXPECT_EQ(n3_.received()[0].from, NodeId(1));
  EXPECT_EQ(bad_frames(), 0u);
}

TEST_F(PeerTransportFrames, BadFramesCloseThatLinkOnly) {
  struct Case {
    const char* what;
    std::string bytes;
  };
  std::string flipped = frame_for(NodeId(1), NodeId(3), 1);
  flipped.back() ^= 0x01;  // the checksum no longer matches
  std::string version = frame_for(NodeId(1), NodeId(3), 1);
  version[4] = 9;
  const std::string oversized("\xff\xff\xff\x7f\x01\x00\x00\x00\x00\x00\x00\x00", 12);
  const std::vector<Case> cases = {
      {"checksum", flipped},
      {"version", version},
      {"oversized", oversized},
      {"spoofed sender", frame_for(NodeId(2), NodeId(3), 1)},
      {"other recipient", frame_for(NodeId(1), NodeId(2), 1)},
  };
  std::uint64_t expected_bad = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RawPeer raw(n3_.port());
    ASSERT_TRUE(raw.join(NodeId(1), NodeId(3)));
    raw.write(c.bytes);
    EXPECT_TRUE(raw.closed_by_peer());
    ++expected_bad;
    EXPECT_EQ(bad_frames(), expected_bad);
    ASSERT_TRUE(sig_.wait_until([&] { return !n3_.connected_to(NodeId(1)); }));
  }
  n3_.drain();
  EXPECT_TRUE(n3_.received().empty());
  expect_good_link();
}

TEST_F(PeerTransportFrames, ASilentLinkIsClosedAndARestartReplacesIt) {
  RawPeer first(n3_.port());
  ASSERT_TRUE(first.join(NodeId(1), NodeId(3)));
  ASSERT_TRUE(sig_.wait_until([&] { return n3_.connected_to(NodeId(1)); }));
  // The first connection never answers a ping: a second one claiming node 1
  // (the peer restarted) replaces it after the probe.
  RawPeer second(n3_.port());
  ASSERT_TRUE(second.join(NodeId(1), NodeId(3)));
  EXPECT_TRUE(first.closed_by_peer());
  EXPECT_TRUE(n3_.connected_to(NodeId(1)));
  EXPECT_EQ(n3_.peer(NodeId(1)).links_established, 2u);
  // The second stays silent too: it is closed after the idle timeout.
  std::string pings;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(second.closed_by_peer(&pings));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 800ms);
  EXPECT_FALSE(pings.empty());  // it was pinged meanwhile
  ASSERT_TRUE(sig_.wait_until([&] { return !n3_.connected_to(NodeId(1)); }));
  expect_good_link();
}

TEST(PeerTransport, ReconnectDelayDoublesUpToItsCapWithJitter) {
  const std::int64_t lo = limits::peer_reconnect_backoff_ms_min;
  const std::int64_t hi = limits::peer_reconnect_backoff_ms_max;
  for (std::uint64_t r : {0ull, 1ull, 7ull, 123456789ull, ~0ull}) {
    for (int failures = 0; failures <= 30; ++failures) {
      std::int64_t base = lo;
      for (int i = 1; i < failures; ++i)
        base = std::min(base * 2, hi);
      const std::int64_t d = reconnect_delay_ms(failures, lo, hi, r);
      EXPECT_GE(d, base / 2) << failures;
      EXPECT_LE(d, base) << failures;
    }
  }
  EXPECT_EQ(reconnect_delay_ms(1, 100, 1000, 0), 50);
  EXPECT_EQ(reconnect_delay_ms(2, 100, 1000, 100), 200);
  EXPECT_EQ(reconnect_delay_ms(30, 100, 1000, 0), 500);
  // The jitter spreads the picks over the upper half.
  std::set<std::int64_t> picks;
  for (std::uint64_t r = 0; r < 1000; ++r)
    picks.insert(reconnect_delay_ms(30, 100, 1000, r * 7919));
  EXPECT_GT(picks.size(), 400u);
}

// ---- options and membership -------------------------------------------------------

TEST(PeerTransport, CreateRefusesBadOptions) {
  boost::asio::io_context io;
  PeerTransportOptions o;
  o.self = NodeId(1);
  o.cluster_id = kCluster;
  o.secret = "short";
  EXPECT_EQ(PeerTransport::create(io, o).status().code(), ErrorCode::BadArguments);
  o.secret = kSecret;
  o.cluster_id = "";
  EXPECT_EQ(PeerTransport::create(io, o).status().code(), ErrorCode::BadArguments);
  o.cluster_id = kCluster;
  o.self = NodeId(0);
  EXPECT_EQ(PeerTransport::create(io, o).status().code(), ErrorCode::BadArguments);
  o.self = NodeId(1);
  auto first = PeerTransport::create(io, o);
  ASSERT_TRUE(first.ok());
  o.port = (*first)->port();
  EXPECT_FALSE(PeerTransport::create(io, o).ok());  // the port is taken
}

TEST(PeerTransport, WithoutASecretPeersStillCheckIdsAndLink) {
  Signal sig;
  auto no_secret = [](PeerTransportOptions& o) { o.secret.clear(); };
  Node n1(NodeId(1), sig, no_secret), n2(NodeId(2), sig, no_secret);
  std::vector<Node*> nodes{&n1, &n2};
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));
  EXPECT_FALSE(n1.t().stats().authenticated);
  RawPeer raw(n2.port());
  EXPECT_FALSE(raw.hello(NodeId(1), NodeId(2), nonce_of(1), "another-cluster", false));
  EXPECT_EQ(raw.last_refusal_, hs::Refusal::ClusterMismatch);
}

TEST(PeerTransport, RemovingAPeerClosesItsLinkAndAddingItBackReopensIt) {
  Signal sig;
  Node n1(NodeId(1), sig), n2(NodeId(2), sig);
  std::vector<Node*> nodes{&n1, &n2};
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return all_connected(nodes); }));
  n2.t().set_peers({});
  EXPECT_EQ(n2.t().send(NodeId(1), frame_for(NodeId(2), NodeId(1), 1)), SendResult::UnknownPeer);
  // The link closes; node 1, which still lists node 2, dials it again and
  // is linked unlisted: node 2 may be the one that is behind.
  ASSERT_TRUE(sig.wait_until([&] { return n1.peer(NodeId(2)).links_established == 2; }));
  ASSERT_TRUE(sig.wait_until([&] { return n2.connected_to(NodeId(1)); }));
  EXPECT_FALSE(n2.peer(NodeId(1)).listed);
  EXPECT_EQ(n2.peer(NodeId(1)).address, PeerAddress{});
  // Named again, the unlisted link becomes an ordinary one, without a new
  // connection.
  mesh(nodes);
  ASSERT_TRUE(sig.wait_until([&] { return n2.peer(NodeId(1)).listed; }));
  EXPECT_EQ(n2.peer(NodeId(1)).address, n1.address());
  EXPECT_TRUE(all_connected(nodes));
  EXPECT_EQ(n1.peer(NodeId(2)).links_established, 2u);
  EXPECT_EQ(n2.t().send(NodeId(1), frame_for(NodeId(2), NodeId(1), 2)), SendResult::Queued);
  EXPECT_TRUE(n1.wait_received(1));
}

// Node `lower` < `higher`; each side's peer set names the other or not.
struct StalePair {
  static std::function<void(PeerTransportOptions&)> tune() {
    return [](PeerTransportOptions& o) {
      o.reverse_dial_ms = 100;
      o.unlisted_links_max = 4;
    };
  }
  Signal sig;
  Node lower{NodeId(1), sig, tune()};
  Node higher{NodeId(2), sig, tune()};

  // Each side establishes on its own step of the handshake.
  bool linked() {
    return sig.wait_until(
        [&] { return lower.connected_to(NodeId(2)) && higher.connected_to(NodeId(1)); });
  }

  // Frames both ways over the link, in order.
  void exchange(std::uint64_t seq) {
    ASSERT_EQ(lower.t().send(NodeId(2), frame_for(NodeId(1), NodeId(2), seq)), SendResult::Queued);
    ASSERT_EQ(higher.t().send(NodeId(1), frame_for(NodeId(2), NodeId(1), seq + 1)),
              SendResult::Queued);
    const std::size_t l = lower.received().size();
    const std::size_t h = higher.received().size();
    ASSERT_TRUE(higher.wait_received(h + 1));
    ASSERT_TRUE(lower.wait_received(l + 1));
    EXPECT_EQ(higher.received().back().from, NodeId(1));
    EXPECT_EQ(lower.received().back().from, NodeId(2));
  }
};

// A server restarted on an old configuration does not know a member that
// was added while it was down, and that member may lead: the two still
// link, whichever id is the lower. Only `knowing` lists the other at
// first; once `stale` learns the membership, the link it has becomes an
// ordinary one, without a new connection.
void link_with_a_stale_server(StalePair& p, Node& knowing, Node& stale) {
  const NodeId stale_id(&stale == &p.lower ? 1 : 2);
  const NodeId knowing_id(&knowing == &p.lower ? 1 : 2);
  knowing.t().set_peers({{stale_id, stale.address()}});
  ASSERT_TRUE(p.linked());
  EXPECT_FALSE(stale.peer(knowing_id).listed);
  EXPECT_EQ(stale.t().stats().handshakes_refused, 0u);
  p.exchange(1);
  stale.t().set_peers({{knowing_id, knowing.address()}});
  ASSERT_TRUE(p.sig.wait_until([&] { return stale.peer(knowing_id).listed; }));
  EXPECT_EQ(knowing.peer(stale_id).links_established, 1u);
  p.exchange(3);
}

TEST(PeerTransport, AServerLinksWithALowerIdItDoesNotKnow) {
  StalePair p;
  // The lower id dials as usual; the stale server accepts it unlisted.
  link_with_a_stale_server(p, p.lower, p.higher);
}

TEST(PeerTransport, AServerLinksWithAHigherIdItDoesNotKnow) {
  StalePair p;
  // After reverse_dial_ms without a link the higher id dials the lower.
  link_with_a_stale_server(p, p.higher, p.lower);
}

TEST(PeerTransport, AReverseDialToAServerThatKnowsTheDialerIsRefused) {
  StalePair p;
  // The lower id knows the higher at a wrong address, so its dials fail;
  // the higher's reverse dials are refused: the lower dials, and its
  // peer set says where.
  p.lower.t().set_peers({{NodeId(2), PeerAddress{"127.0.0.1", 1}}});
  p.higher.t().set_peers({{NodeId(1), p.lower.address()}});
  ASSERT_TRUE(p.sig.wait_until([&] { return p.lower.t().stats().handshakes_refused >= 2; }));
  EXPECT_FALSE(p.lower.connected_to(NodeId(2)));
  EXPECT_EQ(p.higher.peer(NodeId(1)).links_established, 0u);
  // With the right address the pair links, the lower id dialing.
  p.lower.t().set_peers({{NodeId(2), p.higher.address()}});
  ASSERT_TRUE(p.linked());
  EXPECT_TRUE(p.lower.peer(NodeId(2)).listed);
  p.exchange(1);
}

}  // namespace
}  // namespace coord::io
