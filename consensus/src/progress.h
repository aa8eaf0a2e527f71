// Progress: what a leader knows of one follower's log, and the flow control
// that decides what it may send next (thesis §10.2.1; the state diagram is
// in consensus/README.md).
//
// Internal to the core. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "coord/base/assert.h"
#include "coord/base/ids.h"
#include "coord/consensus/raft.h"

namespace coord::consensus::detail {

// The last index of each append in flight to one follower, oldest first.
class Inflights {
 public:
  explicit Inflights(std::size_t capacity) : capacity_(capacity) {}
  bool full() const { return items_.size() >= capacity_; }
  std::size_t size() const { return items_.size(); }
  void add(LogIndex last) {
    COORD_ASSERT(!full(), "inflight window overflow");
    items_.push_back(last);
  }
  // The follower acknowledged everything up to `index`.
  void free_to(LogIndex index) {
    while (!items_.empty() && items_.front() <= index)
      items_.pop_front();
  }
  void free_first() {
    if (!items_.empty()) items_.pop_front();
  }
  void reset() { items_.clear(); }

 private:
  std::size_t capacity_;
  std::deque<LogIndex> items_;
};

struct Progress {
  explicit Progress(std::size_t inflight_capacity) : inflights(inflight_capacity) {}

  LogIndex match;
  LogIndex next{1};
  ProgressState state = ProgressState::Probe;
  // Probe: an append is out and unanswered; send nothing more until an
  // answer or a heartbeat response shows the follower is there.
  bool probe_sent = false;
  Inflights inflights;
  LogIndex pending_snapshot;  // Snapshot: index of the snapshot being streamed
  int snapshot_ticks = 0;     // Snapshot: ticks since the last chunk was sent
  // Snapshot: bytes the follower acknowledged (where the chunk in flight
  // starts) and where the chunk in flight ends.
  std::uint64_t snapshot_offset = 0;
  std::uint64_t chunk_end = 0;
  bool recent_active = false;  // heard from it this election timeout (§6.2)
  bool learner = false;
  std::uint64_t read_ack = 0;  // highest ReadIndex round it confirmed (§6.4)

  // Proposals it forwarded (Propose.context: incarnation << 32 | sequence):
  // the last sequence number appended per recent stream (incarnation). A
  // stream is taken only gap-free from 1: a duplicate or late copy is
  // dropped, and so is everything after a lost Propose, so that nothing a
  // follower forwarded applies before something it forwarded earlier
  // (its clients' FIFO order). The forwarder starts a new stream for a new
  // leader, after a restart and when told its link broke
  // (Raft::restart_forwarding). The oldest stream is forgotten past a few
  // within one term (only a duplicate delayed across them could slip by).
  bool accept_forward(std::uint64_t context) {
    const auto inc = static_cast<std::uint32_t>(context >> 32);
    const auto seq = static_cast<std::uint32_t>(context & 0xffffffffU);
    for (auto& [i, s] : forwards_seen) {
      if (i != inc) continue;
      if (seq != s + 1) return false;
      s = seq;
      return true;
    }
    if (seq != 1) return false;
    if (forwards_seen.size() >= forward_incarnations_kept) forwards_seen.pop_front();
    forwards_seen.emplace_back(inc, seq);
    return true;
  }
  static constexpr std::size_t forward_incarnations_kept = 8;
  std::deque<std::pair<std::uint32_t, std::uint32_t>> forwards_seen;

  bool paused() const {
    switch (state) {
      case ProgressState::Probe:
        return probe_sent;
      case ProgressState::Replicate:
        return inflights.full();
      case ProgressState::Snapshot:
        return true;
    }
    return true;
  }

  void reset_state(ProgressState s) {
    state = s;
    probe_sent = false;
    pending_snapshot = LogIndex(0);
    snapshot_ticks = 0;
    snapshot_offset = 0;
    chunk_end = 0;
    inflights.reset();
  }
  void become_probe() {
    // After a snapshot, resume right after it (or after what matched).
    const LogIndex from =
        state == ProgressState::Snapshot ? std::max(match, pending_snapshot) : match;
    reset_state(ProgressState::Probe);
    next = from.next();
  }
  void become_replicate() {
    reset_state(ProgressState::Replicate);
    next = match.next();
  }
  void become_snapshot(LogIndex snapshot_index) {
    reset_state(ProgressState::Snapshot);
    pending_snapshot = snapshot_index;
  }

  // A rejection at or below what the follower acknowledged is an answer to
  // an older append, unless its log now ends below that: then it lost
  // entries it had stored (its data was wiped and it came back with the
  // same id). Its match falls back to nothing known, which only delays
  // commits, and probing starts where its log ends. False when stale.
  bool lost_entries(LogIndex hint) {
    if (hint >= match) return false;
    match = LogIndex(0);
    reset_state(ProgressState::Probe);
    next = hint.next();
    return true;
  }

  // An acknowledgement up to n. False when it tells nothing new.
  bool maybe_update(LogIndex n) {
    bool updated = false;
    if (match < n) {
      match = n;
      updated = true;
      probe_sent = false;
    }
    next = std::max(next, n.next());
    return updated;
  }

  // A rejection of the append after `rejected`; `hint` is where the logs may
  // agree. False when the rejection is stale (an answer to an older append).
  bool maybe_decrease_to(LogIndex rejected, LogIndex hint) {
    if (state == ProgressState::Replicate) {
      if (rejected <= match) return lost_entries(hint);
      next = match.next();
      return true;
    }
    if (next.prev() != rejected) return false;
    if (rejected <= match) return lost_entries(hint);
    next = std::max(std::min(rejected, hint.next()), match.next());
    probe_sent = false;
    return true;
  }
};

}  // namespace coord::consensus::detail
