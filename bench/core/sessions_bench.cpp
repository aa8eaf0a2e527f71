// The replica holding many idle sessions, driven as coordd's host drives
// it but with no sockets: each session pings once a third of its 30 s
// timeout, as ZooKeeper's clients do, and the ticks come every 50 ms. One
// iteration is one second of that simulated; its CPU time is the share of
// a core the replica spends on the sessions: their table, its expiry, the
// connections it tracks, each ping answered. (The host's own sweep over
// its connections for their deadlines, every 625 ms, is not in it.) A real
// server holds as many connections as its descriptor limit allows, so
// this is how counts past that limit are measured; bench/hold_sessions.py
// measures the whole server, sockets and all, on the counts it allows.
//
//   cmake --preset release && cmake --build --preset release --target core-bench
//   ./build/release/bench/core/core-bench --benchmark_min_time=3

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coord/base/assert.h"
#include "coord/core/replica.h"
#include "coord/core/storage.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "coord/protocol/op_table.h"

namespace coord::core {
namespace {

namespace pr = coord::protocol;

constexpr std::int32_t session_timeout_ms = 30'000;
// ZooKeeper's clients ping once a third of the negotiated timeout.
constexpr std::int64_t ping_interval_ms = session_timeout_ms / 3;
constexpr std::int64_t simulated_ms_per_iteration = 1'000;
// Handshakes delivered between two looks at the output while opening, as
// a host reads a batch of connections' bytes before it writes replies.
constexpr std::size_t handshakes_per_batch = 256;
// Ticks for the single voter to elect itself, and for the last
// handshakes to commit.
constexpr int settle_ticks_max = 100;

class IdleSessions {
 public:
  explicit IdleSessions(std::size_t sessions)
      : storage_(consensus::ConfState{{NodeId(1)}, {}}), sessions_(sessions) {
    auto r = Replica::create(config_, storage_, std::nullopt, Random(7), [this] {
      std::string p(16, '\0');
      for (char& ch : p)
        ch = static_cast<char>(rng_.below(256));
      return p;
    });
    COORD_ASSERT(r.ok(), r.status().to_string());
    replica_ = std::move(r).value();
    for (int i = 0; i < settle_ticks_max && !replica_->ready(); ++i)
      tick();
    COORD_ASSERT(replica_->ready(), "the single voter did not elect itself");
    pr::append_request_frame(ping_, pr::RequestHeader{pr::xid_ping, pr::OpCode::Ping}, pr::Empty{});
  }

  // Opens every session: a connection and a handshake each.
  void open() {
    pr::ConnectRequest req;
    req.timeout_ms = session_timeout_ms;
    pr::Bytes handshake;
    pr::append_connect_request_frame(handshake, req);
    for (std::size_t i = 0; i < sessions_; ++i) {
      const ConnId conn = static_cast<ConnId>(i + 1);
      replica_->connection_opened(conn, "127.0.0.1", steady_, wall_, static_cast<std::uint16_t>(i));
      replica_->bytes_received(conn, pr::ByteSpan(handshake), steady_, wall_);
      if ((i + 1) % handshakes_per_batch == 0) drain();
    }
    drain();
    // The last batch's sessions commit and answer within a few ticks.
    for (int i = 0; i < settle_ticks_max && replies_ < sessions_; ++i)
      tick();
  }

  // One simulated second: each tick, the sessions whose ping is due ping.
  void run_one_second() {
    const std::int64_t ticks = simulated_ms_per_iteration / config_.tick_ms;
    const std::size_t per_interval_ticks =
        static_cast<std::size_t>(ping_interval_ms / config_.tick_ms);
    for (std::int64_t t = 0; t < ticks; ++t) {
      // Spread evenly: every session once per interval, in turn.
      const std::size_t slot = tick_count_ % per_interval_ticks;
      const std::size_t due =
          sessions_ * (slot + 1) / per_interval_ticks - sessions_ * slot / per_interval_ticks;
      for (std::size_t k = 0; k < due; ++k) {
        const ConnId conn = static_cast<ConnId>(next_ping_ + 1);
        next_ping_ = (next_ping_ + 1) % sessions_;
        replica_->bytes_received(conn, pr::ByteSpan(ping_), steady_, wall_);
        ++pings_sent_;
      }
      drain();
      tick();
    }
  }

  std::uint64_t replies() const { return replies_; }
  std::uint64_t pings_sent() const { return pings_sent_; }
  std::uint64_t closed() const { return closed_; }
  std::size_t session_count() const { return replica_->session_count(); }

 private:
  void tick() {
    steady_ += config_.tick_ms;
    wall_ += config_.tick_ms;
    ++tick_count_;
    replica_->tick(steady_, wall_);
    drain();
  }

  // Counts the frames written back and the connections closed.
  void drain() {
    ReplicaOutput out = replica_->take_output();
    for (const ConnectionOutput& o : out.connections) {
      pr::ByteSpan rest(o.bytes);
      for (;;) {
        const pr::FrameCut cut = pr::cut_frame(rest);
        if (cut.state != pr::FrameState::Frame) break;
        ++replies_;
        rest = rest.subspan(cut.consumed);
      }
      if (o.close) {
        ++closed_;
        replica_->connection_closed(o.conn);
      }
    }
  }

  ReplicaConfig config_;
  MemoryReplicaStorage storage_;
  std::unique_ptr<Replica> replica_;
  std::size_t sessions_;
  Random rng_{99};
  TimeMs steady_{1'000};
  TimeMs wall_{1'700'000'000'000};
  std::uint64_t tick_count_ = 0;
  std::size_t next_ping_ = 0;
  pr::Bytes ping_;
  std::uint64_t replies_ = 0;
  std::uint64_t pings_sent_ = 0;
  std::uint64_t closed_ = 0;
};

// Counters: per_ping, the replica's CPU per ping answered (each second's
// ticks included); open_us, the wall time per session opened. The CPU
// time per iteration, over the 1 s it simulates, is the share of a core
// the sessions take. A session closed or expired, or a ping not answered,
// is an error.
void BM_IdleSessions(benchmark::State& state) {
  const auto sessions = static_cast<std::size_t>(state.range(0));
  IdleSessions s(sessions);
  const auto open_start = std::chrono::steady_clock::now();
  s.open();
  const double open_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - open_start)
          .count();
  if (s.session_count() != sessions || s.replies() != sessions) {
    state.SkipWithError("not every session opened");
    return;
  }
  const std::uint64_t replies_before = s.replies();
  for (auto _ : state)
    s.run_one_second();
  const std::uint64_t pings_answered = s.replies() - replies_before;
  const std::size_t lost = sessions - s.session_count();
  if (s.closed() != 0 || lost != 0 || pings_answered != s.pings_sent()) {
    state.SkipWithError("sessions were lost or pings went unanswered");
    return;
  }
  state.counters["sessions"] = static_cast<double>(sessions);
  state.counters["pings_per_s"] = static_cast<double>(sessions) * 1'000 / ping_interval_ms;
  state.counters["per_ping"] =
      benchmark::Counter(static_cast<double>(pings_answered),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["open_us"] = open_us / static_cast<double>(sessions);
}

BENCHMARK(BM_IdleSessions)
    ->Arg(18'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coord::core

BENCHMARK_MAIN();
