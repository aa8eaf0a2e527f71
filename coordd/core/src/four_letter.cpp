#include "four_letter.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <sstream>

#include "coord/protocol/op_table.h"

namespace coord::core {

namespace {

std::string hex(std::int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<std::uint64_t>(v));
  return buf;
}

}  // namespace

Status FourLetterWords::parse_whitelist(std::string_view list) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view word = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!word.empty() && (word.front() == ' ' || word.front() == '\t'))
      word.remove_prefix(1);
    while (!word.empty() && (word.back() == ' ' || word.back() == '\t'))
      word.remove_suffix(1);
    if (word.empty()) continue;
    if (word == "*") {
      all_ = true;
      continue;
    }
    const auto known = pr::four_letter_words();
    if (std::find(known.begin(), known.end(), word) == known.end()) {
      return Status(ErrorCode::BadArguments,
                    "unknown four-letter word '" + std::string(word) + "' in the whitelist");
    }
    words_.emplace(word);
  }
  return Status();
}

std::string FourLetterWords::answer(std::string_view word, const FourLetterInputs& r) {
  const auto known = pr::four_letter_words();
  if (std::find(known.begin(), known.end(), word) == known.end()) return "";
  if (!allowed(word)) {
    // ZooKeeper 3.8's answer, word for word.
    return std::string(word) + " is not executed because it is not in the whitelist.\n";
  }
  if (word == "srst") {
    received_base_ = r.stats.packets_received;
    sent_base_ = r.stats.packets_sent;
    latency_us_.reset();
    return "Server stats reset.\n";
  }
  if (word == "crst") {
    for (auto& [id, c] : r.conns)
      c.reset_counters();
    return "Connection stats reset.\n";
  }
  const std::uint64_t received = r.stats.packets_received - received_base_;
  const std::uint64_t sent = r.stats.packets_sent - sent_base_;
  const Histogram& latency_us = latency_us_;
  const std::string_view mode = r.mode;
  std::size_t outstanding = 0;
  for (const auto& [id, c] : r.conns)
    outstanding += c.queue.size();
  const double avg = latency_us.mean() / 1000.0;
  const std::uint64_t min_ms = latency_us.min() / 1000;
  const std::uint64_t max_ms = latency_us.max() / 1000;
  std::ostringstream os;
  // Lists stop at four_letter_word_bytes_max with one line that says so:
  // an answer never costs the core thread or memory in proportion to the
  // number of connections, watches or sessions.
  const std::size_t cap = r.config.four_letter_word_bytes_max;
  bool truncated = false;
  auto room = [&] {
    if (truncated) return false;
    if (static_cast<std::size_t>(os.tellp()) < cap) return true;
    truncated = true;
    os << "... truncated: this answer is limited to " << cap << " bytes\n";
    return false;
  };
  auto counters = [&] {
    char lat[96];
    std::snprintf(lat, sizeof lat, "Latency min/avg/max: %" PRIu64 "/%.4f/%" PRIu64 "\n", min_ms,
                  avg, max_ms);
    os << lat << "Received: " << received << "\nSent: " << sent
       << "\nConnections: " << r.conns.size() << "\nOutstanding: " << outstanding
       << "\nZxid: " << hex(r.zxid.value()) << "\nMode: " << mode
       << "\nNode count: " << r.tree.node_count() << "\n";
  };
  if (word == "ruok") return "imok";
  if (word == "gtmk") return "0";  // coord has no trace mask
  if (word == "isro") return r.read_only ? "ro" : "rw";
  if (word == "srvr") {
    os << "Zookeeper version: " << r.config.version << ", built on coord\n";
    counters();
  } else if (word == "stat") {
    os << "Zookeeper version: " << r.config.version << ", built on coord\nClients:\n";
    for (const auto& [id, c] : r.conns) {
      if (!room()) break;
      os << " /" << c.address() << "[1](queued=" << c.queue.size() << ",recved=" << c.received
         << ",sent=" << c.sent << ")\n";
    }
    os << "\n";
    counters();
  } else if (word == "cons") {
    for (const auto& [id, c] : r.conns) {
      if (!room()) break;
      os << " /" << c.address() << "[1](queued=" << c.queue.size() << ",recved=" << c.received
         << ",sent=" << c.sent;
      // As ZooKeeper: the session fields once there is a session.
      if (c.session.value() != 0) {
        const double avg =
            c.replies == 0 ? 0.0
                           : static_cast<double>(c.latency_ms_sum) / static_cast<double>(c.replies);
        os << ",sid=" << hex(c.session.value()) << ",lop=" << c.last_op
           << ",est=" << c.established.value() << ",to=" << c.timeout_ms
           << ",lcxid=" << hex(c.last_cxid) << ",lzxid=" << hex(c.last_zxid)
           << ",lresp=" << c.last_response.value() << ",llat=" << c.last_latency_ms
           << ",minlat=" << c.latency_ms_min << ",avglat=" << avg << ",maxlat=" << c.latency_ms_max;
      }
      os << ")\n";
    }
    os << "\n";
  } else if (word == "envi") {
    // The host's lines (names, OS, user, memory) are the server's to add.
    os << "Environment:\nzookeeper.version=" << r.config.version << ", built on coord\n"
       << "java.version=none (coord is C++)\n";
  } else if (word == "conf") {
    os << "tickTime=" << r.config.tick_ms
       << "\nminSessionTimeout=" << r.config.session_timeout_ms_min
       << "\nmaxSessionTimeout=" << r.config.session_timeout_ms_max
       << "\nserverId=" << r.config.id.value() << "\n";
  } else if (word == "mntr") {
    os << "zk_version\t" << r.config.version << "\nzk_server_state\t" << mode
       << "\nzk_avg_latency\t" << avg << "\nzk_max_latency\t" << max_ms << "\nzk_min_latency\t"
       << min_ms << "\nzk_packets_received\t" << received << "\nzk_packets_sent\t" << sent
       << "\nzk_num_alive_connections\t" << r.conns.size() << "\nzk_outstanding_requests\t"
       << outstanding << "\nzk_znode_count\t" << r.tree.node_count() << "\nzk_watch_count\t"
       << r.tree.watch_count() << "\nzk_ephemerals_count\t" << r.tree.ephemeral_count()
       << "\nzk_approximate_data_size\t" << r.tree.approximate_data_bytes() << "\nzk_uptime\t"
       << r.uptime_ms << "\nzk_global_sessions\t" << r.sessions.global_count() << "\n";
    if (r.leader) {
      // ZooKeeper's leader-only keys; zk_followers is the name its older
      // monitoring scripts read, zk_learners the one 3.8 writes.
      os << "zk_followers\t" << r.learners << "\nzk_learners\t" << r.learners
         << "\nzk_synced_followers\t" << r.synced_followers
         << "\nzk_synced_non_voting_followers\t0\nzk_synced_observers\t" << r.synced_observers
         << "\nzk_pending_syncs\t" << r.pending_syncs << "\n";
    }
  } else if (word == "wchs" || word == "wchc" || word == "wchp") {
    // Read straight from the watch index, grouped as it is kept, in no
    // particular order (as ZooKeeper's): nothing is collected or sorted.
    auto session_of = [&](ConnId id) {
      auto it = r.conns.find(id);
      return it == r.conns.end() ? std::int64_t{0} : it->second.session.value();
    };
    if (word == "wchs") {
      os << r.tree.watching_connection_count() << " connections watching "
         << r.tree.watched_path_count() << " paths\nTotal watches:" << r.tree.watch_count() << "\n";
    } else if (word == "wchc") {
      std::optional<znode::WatcherId> last;
      r.tree.visit_watches_by_watcher([&](znode::WatcherId w, std::string_view path) {
        if (!room()) return false;
        if (last != w) os << hex(session_of(w)) << "\n";
        last = w;
        os << "\t" << path << "\n";
        return true;
      });
      os << "\n";
    } else {
      std::optional<std::string_view> last;
      r.tree.visit_watches_by_path([&](std::string_view path, znode::WatcherId w) {
        if (!room()) return false;
        if (last != path) os << path << "\n";
        last = path;
        os << "\t" << hex(session_of(w)) << "\n";
        return true;
      });
      os << "\n";
    }
  } else if (word == "dump") {
    os << "SessionTracker dump:\nGlobal Sessions(" << r.sessions.global_count() << "):\n";
    for (const auto& [id, sess] : r.sessions.global()) {
      if (!room()) break;
      os << hex(id.value()) << "\t" << sess.timeout_ms << "ms\n";
    }
    const std::vector<SessionId> owners = r.tree.sessions_with_ephemerals();
    if (room())
      os << "ephemeral nodes dump:\nSessions with Ephemerals (" << owners.size() << "):\n";
    for (SessionId id : owners) {
      if (!room()) break;
      os << hex(id.value()) << ":\n";
      r.tree.visit_ephemerals(id, "", [&](std::string_view p) {
        if (!room()) return false;
        os << "\t" << p << "\n";
        return true;
      });
    }
  } else {
    return "";
  }
  return os.str();
}

}  // namespace coord::core
