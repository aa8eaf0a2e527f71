// coord::LeaderElection: one leader among the candidates on a path.
//
// Each candidate holds an ephemeral-sequential node under the election path
// (`_c_<uuid>-latch-<sequence>`, Apache Curator's LeaderLatch layout, the
// candidate's id as data; the path is made as a container when missing).
// The lowest sequence leads. Every other candidate watches only its
// immediate predecessor, so the loss of one node wakes one candidate. When
// the predecessor goes the candidate lists again: it leads if it is now the
// lowest, otherwise it watches its new predecessor. A predecessor gone
// between the list and the watch is noticed (exists says no node) and the
// candidate lists again.
//
// Leadership and the session:
//   - Session expiry ends leadership at once (Revoked) and the candidate
//     re-enters, at the back, with the next session.
//   - Connection loss makes leadership uncertain: the servers may be
//     expiring the session while this side cannot tell. It is reported as
//     Suspended; with SuspensionPolicy::Revoke it is reported as Revoked too
//     and the candidate goes to the back of the queue once reconnected.
//     With SuspensionPolicy::Keep a reconnect with the same session reports
//     Elected again, with the same token, if the node still leads.
//   - is_leader() is true only while this side has heard from the servers
//     within two thirds of the session timeout (the candidate checks its own
//     node every third), so a process that was paused (SIGSTOP, a long GC,
//     a swapped-out page) sees false on waking, before it acts, even if no
//     callback has run yet.
//
// The fencing token of a leadership is the creation zxid of the leader's
// node: it strictly increases with each new leader (a later leader's node
// was created after every earlier leader's), so a resource that remembers
// the highest token it has seen can refuse a deposed leader.
//
// Threading: the election runs on a thread of its own. Events are delivered
// on that thread, one at a time and in order; a callback may call any member
// except the destructor and await_leadership. All members may be called
// from any thread. The ManagedClient must outlive the election.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"
#include "coord/client-lib/managed_client.h"

namespace coord {

enum class SuspensionPolicy : std::uint8_t {
  Keep,    // Suspended only; leadership resumes if the session survives
  Revoke,  // Suspended then Revoked; rejoin at the back after reconnecting
};

enum class LeadershipEventKind : std::uint8_t {
  Waiting,    // a candidate, watching `predecessor`
  Elected,    // leading, with `token`
  Suspended,  // leadership uncertain (connection lost); stop acting
  Revoked,    // leadership lost (`reason`)
};
std::string_view leadership_event_name(LeadershipEventKind k);

struct LeadershipEvent {
  LeadershipEventKind kind = LeadershipEventKind::Waiting;
  std::int64_t token = 0;   // Elected, Suspended, Revoked: the leadership's token
  std::string node;         // this candidate's node
  std::string predecessor;  // Waiting: the node watched
  std::string reason;       // Revoked: why
};

struct ElectionOptions {
  std::string path;  // e.g. "/election/web"
  std::string id;    // this candidate's id, stored as its node's data
  SuspensionPolicy suspension = SuspensionPolicy::Keep;
  // The node name after the protected prefix; Curator's LeaderLatch uses
  // "latch-", its LeaderSelector (an InterProcessMutex) "lock-".
  std::string node_name = "latch-";
  std::function<void(const LeadershipEvent&)> on_event;
};

struct Participant {
  std::string id;    // the node's data
  std::string node;  // the node's name
  std::int64_t czxid = 0;
  bool leader = false;
};

class LeaderElection {
 public:
  // Starts the candidate's thread; the candidate joins as soon as the
  // session is connected. BadArguments for an invalid path or empty id.
  static Result<std::unique_ptr<LeaderElection>> start(ManagedClient& client,
                                                       ElectionOptions options);
  // Leaves the election: deletes this candidate's node (when the session
  // still lives) and joins the thread. A leader is Revoked first.
  ~LeaderElection();
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  // Leading, not suspended, and heard from the servers recently enough
  // that the session cannot have expired there.
  bool is_leader() const;
  // The current leadership's token, nullopt when not leading.
  std::optional<std::int64_t> token() const;
  // Ok once leading; OperationTimeout when `timeout` passes first.
  Status await_leadership(std::chrono::milliseconds timeout) const;
  // Gives up leadership (or the place in the queue) and rejoins at the back.
  void resign();

  // Read from the servers: the candidates in order, and the first of them.
  Result<std::vector<Participant>> participants() const;
  Result<std::optional<Participant>> leader() const;

  // This candidate's node name and the node it watches ("" when none).
  std::string node() const;
  std::string predecessor() const;
  // Watch events this candidate has received on predecessors (tests).
  std::uint64_t watch_events() const;

 private:
  struct State;
  explicit LeaderElection(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace coord
