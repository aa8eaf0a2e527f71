// One client connection of the replica: its handshake phase, its identities,
// the counters `cons` and `stat` report, and its request queue with the
// rules that keep a session FIFO. Requests enter in arrival order; a read
// is executed only when it reaches the front (every earlier request of the
// connection answered), writes behind the front are proposed at once
// (pipelined), and replies leave strictly in queue order.
//
// The queue does not execute or propose anything itself: the replica hands
// it what to do with a read, a write and a decided reply, and the queue
// decides when. A callback may close the connection, which empties the
// queue; every loop here checks the phase after a callback for that reason.
//
// Thread safety: none; owned by the replica's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coord/base/assert.h"
#include "coord/base/ids.h"
#include "coord/core/replica.h"
#include "coord/protocol/frame.h"
#include "wire.h"

namespace coord::core {

enum class ItemState : std::uint8_t { Queued, Proposed, WaitingRead, Done };

// One request of a connection, from arrival to its reply.
struct Item {
  std::uint64_t seq = 0;
  std::int32_t xid = 0;
  OpCode op = OpCode::Ping;
  pr::RequestBody body;
  ItemState state = ItemState::Queued;
  std::int64_t received_us = 0;
  pr::Bytes reply;  // the whole frame, once Done
  bool close_after = false;
  std::uint64_t read_context = 0;
  LogIndex read_index{0};
  // Of the proposed entry; 0 when unknown (forwarded to the leader).
  LogIndex log_index{0};
  TimeMs proposed_at{0};  // steady clock
  // The replica's count of proposals when this one was made.
  std::uint64_t proposal_no = 0;
};

// A connection's requests in arrival order: a ring of Items that holds no
// memory until the first request and gives its memory back on release().
// std::deque keeps a block even while empty, which every idle session
// would pay for. A push that grows the ring moves the Items: no reference
// into the queue may be held across push_back (requests are queued only
// as they arrive, never from inside a callback on the queue).
class ItemQueue {
 public:
  template <class Q, class T>
  class Iter {
   public:
    Iter(Q* q, std::size_t i) : q_(q), i_(i) {}
    T& operator*() const { return q_->at(i_); }
    T* operator->() const { return &q_->at(i_); }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iter& o) const { return i_ == o.i_; }

   private:
    Q* q_;
    std::size_t i_;
  };
  using iterator = Iter<ItemQueue, Item>;
  using const_iterator = Iter<const ItemQueue, const Item>;

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  Item& front() { return at(0); }
  Item& back() { return at(size_ - 1); }
  const Item& front() const { return at(0); }
  Item& at(std::size_t i) { return slots_[slot(i)]; }
  const Item& at(std::size_t i) const { return slots_[slot(i)]; }
  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  void push_back(Item item);
  // The front Item's slot is reset, so its buffers go with it.
  void pop_front();
  void clear();
  // Frees the ring when empty (kept otherwise): for a connection that went
  // quiet, so that a burst's capacity is not held while it idles.
  void release_if_empty();
  std::size_t capacity() const { return capacity_; }

 private:
  // head_ < capacity_ and i < size_ <= capacity_: one wrap at most, so no
  // division on this path, which every walk of the queue takes.
  std::size_t slot(std::size_t i) const {
    COORD_ASSERT(i < size_);
    const std::size_t s = head_ + i;
    return s < capacity_ ? s : s - capacity_;
  }

  std::unique_ptr<Item[]> slots_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

enum class Phase : std::uint8_t { AwaitConnect, Connecting, Open, Closing };

struct Conn {
  ConnId id = 0;
  std::string ip;
  pr::FrameBuffer frames;
  Phase phase = Phase::AwaitConnect;
  bool has_read_only = true;
  bool can_be_read_only = false;  // the handshake's readOnly byte
  SessionId session{0};
  std::int32_t timeout_ms = 0;
  std::uint64_t handshake_seq = 0;
  // Of the proposed CreateSession entry; 0 when unknown (forwarded).
  LogIndex handshake_index{0};
  TimeMs handshake_at{0};          // steady clock, when it was proposed
  std::uint64_t handshake_no = 0;  // the replica's count of proposals then
  // Opened while this server was read-only: the client believes so.
  bool opened_read_only = false;
  std::vector<Id> identities;
  ItemQueue queue;
  std::uint64_t next_seq = 1;
  // No more frames are read: a request ZooKeeper answers by closing the
  // connection (an unknown opcode) was the last one taken.
  bool input_done = false;
  std::uint16_t port = 0;
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  // The highest zxid in a reply header sent so far (see keep_zxid_order).
  std::int64_t reply_zxid_max = 0;
  TimeMs established{0};  // wall clock, as `cons` shows it
  std::string last_op = "NA";
  // For `cons`: the last reply's xid and zxid, when it was sent (wall ms)
  // and the latencies of this connection's replies, in ms.
  std::int64_t last_cxid = -1;
  std::int64_t last_zxid = -1;
  TimeMs last_response{0};
  std::uint64_t last_latency_ms = 0;
  std::uint64_t latency_ms_min = 0;
  std::uint64_t latency_ms_max = 0;
  std::uint64_t latency_ms_sum = 0;
  std::uint64_t replies = 0;

  // ZooKeeper's client address form: ip:port.
  std::string address() const { return ip + ":" + std::to_string(port); }
  void reset_counters();

  znode::Caller caller() const { return znode::Caller{session, identities}; }

  // The queued request with sequence number `seq`, if still queued.
  Item* find(std::uint64_t seq);

  // Whether a write was proposed and has not applied yet (of those made
  // before proposal number `before`).
  bool has_proposed(std::uint64_t before = ~std::uint64_t{0}) const {
    for (const Item& item : queue)
      if (item.state == ItemState::Proposed && item.proposal_no < before) return true;
    return false;
  }

  // The oldest write proposed, or held back for want of a leader, and not
  // yet applied, if any.
  const Item* oldest_in_flight() const {
    for (const Item& item : queue) {
      if (item.state == ItemState::Proposed) return &item;
      if (item.state == ItemState::Queued && item.proposed_at.value() != 0) return &item;
    }
    return nullptr;
  }

  // Counts a reply that leaves, at wall time `now` after `latency_ms`;
  // returns the reply's error code.
  std::int32_t note_reply(const Item& item, TimeMs now, std::uint64_t latency_ms);

  // Hands `send` the replies already decided at the front of the queue,
  // without executing anything.
  template <class Send>
  void emit_done(Send&& send) {
    // Each item leaves the queue before it is sent: a send past the
    // outbound limit closes the connection and empties the queue.
    bool ping = false;
    while (!queue.empty() && phase == Phase::Open && queue.front().state == ItemState::Done) {
      Item item = std::move(queue.front());
      queue.pop_front();
      ping = item.op == OpCode::Ping;
      send(item);
    }
    // Clients ping only when they have had nothing else to send for a
    // while: the connection is idle, and need not hold the queue's ring.
    if (ping) queue.release_if_empty();
  }

  // Runs the queue as far as it can go: `execute` a read at the front,
  // `emit` the decided replies there, `propose` a write.
  template <class Execute, class Emit, class Propose>
  void pump(Execute&& execute, Emit&& emit, Propose&& propose) {
    // Each round answers from the front, then proposes the writes behind
    // it; a write refused at once becomes answerable, hence the rounds.
    while (phase == Phase::Open && !queue.empty()) {
      answer_front(execute, emit);
      if (phase != Phase::Open || !propose_writes(propose)) return;
    }
  }

  // Sends the replies at the front of the queue, in order, executing reads
  // when they reach the front.
  template <class Execute, class Emit>
  void answer_front(Execute&& execute, Emit&& emit) {
    while (!queue.empty() && phase == Phase::Open) {
      Item& front = queue.front();
      if (front.state == ItemState::Queued && !is_write(front.op)) {
        execute(front);
        // Executing may close the connection, which empties its queue.
        if (phase != Phase::Open) return;
      }
      if (front.state != ItemState::Done) return;
      emit();
    }
  }

  // Proposes the writes that follow the front, up to the first unanswered
  // read: a read must not see a write sent after it. True when the front
  // became answerable meanwhile.
  template <class Propose>
  bool propose_writes(Propose&& propose) {
    for (Item& item : queue) {
      if (item.state == ItemState::Done) continue;
      if (!is_write(item.op)) break;
      if (item.state == ItemState::Queued) propose(item);
      if (phase != Phase::Open) return false;
      // Held back (no leader to take it yet): nothing after it may go first.
      if (item.state == ItemState::Queued) break;
      // A reconfig completes at the index where its last step applied,
      // later than writes proposed meanwhile would: those wait for it, so
      // that the session's writes take effect, and are answered, in order.
      if (item.op == OpCode::Reconfig && item.state != ItemState::Done) break;
    }
    return !queue.empty() && queue.front().state == ItemState::Done;
  }

  // The reads that pump() executes next, before any write: the ones it
  // may run without waiting for a write to apply.
  template <class Visit>
  void visit_next_reads(Visit&& visit) const {
    for (const Item& item : queue) {
      if (item.state != ItemState::Queued) continue;
      if (is_write(item.op)) break;
      visit(item);
    }
  }
};

}  // namespace coord::core
