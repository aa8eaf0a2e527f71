// The four-letter words (ruok, srvr, stat, mntr, cons, ...): the
// whitelist that decides which are answered, the counters `srst` resets,
// and the text of every word, as ZooKeeper 3.8 writes it. Lists stop at
// four_letter_word_bytes_max, so an answer costs bounded time and memory.
//
// Thread safety: none; owned by the replica's thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "connection.h"
#include "coord/base/histogram.h"
#include "coord/base/status.h"
#include "coord/core/replica.h"
#include "coord/znode/tree.h"
#include "session_table.h"

namespace coord::core {

// What a word reports on, lent by the replica for one answer.
struct FourLetterInputs {
  const ReplicaConfig& config;
  const ReplicaStats& stats;
  // Not const: `crst` resets the connections' counters.
  std::unordered_map<ConnId, Conn>& conns;
  const znode::DataTree& tree;
  const SessionTable& sessions;
  std::string_view mode;  // ZooKeeper's server state: standalone, leader, ...
  Zxid zxid;              // the last applied
  std::int64_t uptime_ms = 0;
  bool read_only = false;
  // On a leader: the members that follow it (voters and learners), those
  // of them replicating now, and how many syncs wait for a quorum.
  bool leader = false;
  std::size_t learners = 0;
  std::size_t synced_followers = 0;
  std::size_t synced_observers = 0;
  std::size_t pending_syncs = 0;
};

class FourLetterWords {
 public:
  // ZooKeeper's parsing: comma-separated, blanks around a word ignored; "*"
  // allows every word. BadArguments for a word ZooKeeper does not know.
  Status parse_whitelist(std::string_view list);

  // srvr is always allowed, as in ZooKeeper 3.8 (its own scripts and
  // status checks rely on it).
  bool allowed(std::string_view word) const {
    return word == "srvr" || all_ || words_.contains(word);
  }

  // A reply's latency, for the figures `srst` resets.
  void record_latency_us(std::uint64_t us) { latency_us_.record(us); }

  // The answer to `word`; empty for a word that is not one.
  std::string answer(std::string_view word, const FourLetterInputs& r);

 private:
  // The whitelist, parsed.
  bool all_ = false;
  std::set<std::string, std::less<>> words_;
  // What the words report, reset by `srst` (the Prometheus counters in
  // ReplicaStats never go back).
  std::uint64_t received_base_ = 0;
  std::uint64_t sent_base_ = 0;
  Histogram latency_us_;
};

}  // namespace coord::core
