// The members of a coord cluster as ZooKeeper 3.8 names and changes them.
//
// Every replica keeps the membership (ids, addresses, roles and a version)
// as replicated state: each Raft configuration change carries the member's
// server spec as its opaque context (consensus/types.h), so applying the
// committed entries in order gives every server the same membership. The
// membership is shown in the znode /zookeeper/config in ZooKeeper 3.8's
// format and changed by ZooKeeper's reconfig operation (opcode 16) or the
// admin API; this file holds the pure parts of that:
//
//  - a Member and its server spec, parsed and printed as 3.8's
//    QuorumPeer.QuorumServer does: `host:peerport:electionport[:role]`
//    then optionally `;[clientaddr:]clientport`;
//  - the text of /zookeeper/config: one `server.N=spec` line per member,
//    then `version=<hex>`;
//  - plan_reconfig: a ReconfigRequest turned into the ConfChanges to
//    propose, or into the error code 3.8 answers the same request with;
//  - membership_after: the membership once committed changes are applied;
//  - the JSON form of a member for the admin API.
//
// Where coord departs from 3.8 (the order of the lines, host names that
// 3.8 would resolve, ids that are not positive, requests that change
// nothing) the comments below and docs/COMPATIBILITY.md say so.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/consensus/types.h"
#include "coord/protocol/records.h"

namespace coord::core {

// A participant votes (a Raft voter); an observer only receives the log (a
// Raft learner).
enum class MemberRole : std::uint8_t { Participant, Observer };
std::string_view to_string(MemberRole role);

struct HostPort {
  // As 3.8 prints it: a name or IPv4 address as given, an IPv6 literal in
  // Java's uncompressed form ("0:0:0:0:0:0:0:1"), never in brackets.
  std::string host;
  std::uint16_t port = 0;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};
// "host:port", the host in brackets when it holds a ':'.
std::string to_string(const HostPort& address);

struct Member {
  NodeId id;
  HostPort peer;  // where the other servers reach this one
  // Accepted and printed for ZooKeeper's sake, never used: coord elects
  // over the peer link. 0 for members added through the admin API.
  std::uint16_t election_port = 0;
  MemberRole role = MemberRole::Participant;
  // Where clients connect; absent when the spec has no `;client` part.
  std::optional<HostPort> client;

  // The right-hand side of `server.N=` as 3.8 prints it: the role always,
  // "0.0.0.0" for a client address given as a port alone.
  std::string spec() const;
  // "server.N=" + spec().
  std::string line() const;

  friend bool operator==(const Member&, const Member&) = default;
};

// The right-hand side of a server line, as 3.8's QuorumServer(id, spec)
// takes it. Refused with BadArguments where 3.8 throws ConfigException
// (wrong number of parts, a port that is not a number, equal peer and
// election ports, an unknown role, several addresses joined with '|', a
// '[' without ']'), with MarshallingError where it throws something else
// (a port outside 0..65535).
Result<Member> parse_server_spec(NodeId id, std::string_view spec);

// One joiner of an incremental reconfig, `server.N=spec`, as 3.8 reads it:
// both sides trimmed, empty pieces between '=' ignored, N taken after the
// last '.' of the left side. A left side that is no number is
// MarshallingError (3.8's NumberFormatException); an id that is not
// positive is BadArguments (coord's ids are positive; 3.8 takes any long).
Result<Member> parse_server_line(std::string_view line);

struct Membership {
  std::vector<Member> members;  // ascending ids, each once
  // The zxid of the entry that set this membership (for coord, the log
  // index of its conf change entry), shown in hex as `version=`.
  std::int64_t version = 0;

  const Member* find(NodeId id) const;
  // Participants as voters, observers as learners.
  consensus::ConfState conf_state() const;

  // The data of /zookeeper/config: `server.N=spec` lines, then
  // `version=<hex>` with no newline after it. 3.8 prints the lines in the
  // order of its hash map (id order while the ids are small, "server.17"
  // between 1 and 2 past that); coord prints them in id order.
  std::string config_text() const;
  // The inverse of config_text (any line order; each id once, at most
  // limits::cluster_members_max; `version=` once, not negative, last or
  // not). BadArguments for anything else.
  static Result<Membership> parse_config(std::string_view text);

  friend bool operator==(const Membership&, const Membership&) = default;
};

// What a reconfig asks for: the entries to propose, one after the other,
// and the membership they lead to.
struct ReconfigPlan {
  // Each step is the changes of one conf change entry (JointConfChange, or
  // a lone ConfChange when it holds one change), proposed once the step
  // before has committed and left its joint phase. One step, or two when a
  // participant becomes an observer: a Raft voter cannot turn learner in
  // one entry (consensus/types.h), so it is removed in the first and added
  // back as a learner in the second. No step at all when the request
  // changes nothing (3.8 still writes a new version of the same members;
  // coord answers with the membership as it is).
  std::vector<std::vector<consensus::ConfChange>> steps;
  // The membership after the last step, with the version of `current`
  // (the new version is the index of the last step's entry).
  Membership target;
};

// The plan for a reconfig, given the membership in force and the voters
// the leader knows to be connected and caught up (itself included).
// Checked in 3.8's order, with 3.8's codes:
//  - BadVersion when cur_config_id is neither -1 nor current.version;
//  - non-empty new_members: the whole new membership as `key=value` pieces
//    separated by ',' or newlines (java.util.Properties syntax without
//    escapes; '#' and '!' start comments); keys are `server.N` and
//    `version` (checked, then ignored); joining and leaving are ignored;
//  - otherwise incremental: leaving is a ',' list of ids (removed first;
//    an id that is not a member changes nothing), joining a ',' list of
//    server lines that must name a client port and must not reuse another
//    member's address (loopback and wildcard addresses excepted, as in
//    3.8; coord compares host strings where 3.8 compares resolved
//    addresses); a joiner whose id is a member replaces it;
//  - BadArguments when no participant would be left, or as soon as more
//    than limits::cluster_members_max members are named (3.8 has no
//    bound; no Raft group of coord could hold them);
//  - NewConfigNoQuorum when the participants of the new membership that
//    are in `synced` are no majority of them.
// Within a step: observers that leave (RemoveVoter) first, then members
// added (AddVoter for a participant, AddLearner for an observer) and
// observers promoted (PromoteLearner), then members whose address changes
// (RemoveVoter, then the add again), then participants that leave. Every
// change but a removal carries the member's line() as its context. A plan
// the Raft rules refuse (moving the only voter, a line longer than
// limits::conf_change_context_bytes_max) is BadArguments.
Result<ReconfigPlan> plan_reconfig(const Membership& current,
                                   const protocol::ReconfigRequest& request,
                                   const std::vector<NodeId>& synced);

// The entries a founding member's log starts with, as
// consensus::bootstrap_entries writes them (voters, then learners, in id
// order), with each member's line() as context.
std::vector<consensus::ConfChange> founding_changes(const Membership& founding);

// `before` with `changes` applied, its version set to `version`: what every
// replica computes when a conf change entry commits (conf_entry_changes of
// its data, the entry's index). An add carries the member's line(); its
// role follows the change (AddVoter: participant, AddLearner: observer). A
// promotion turns an observer into a participant, with the line it
// carries, if any. An add without a context (founding entries written
// without them) records the member with an empty peer address, which
// config_text cannot show as a valid spec: founding entries should carry
// founding_changes' contexts.
// DataInconsistency when a change does not fit `before` or its context is
// no server line for its node. A leave entry (no changes) keeps the
// members and the version.
Result<Membership> membership_after(const Membership& before,
                                    const std::vector<consensus::ConfChange>& changes,
                                    std::int64_t version);

// A member as the admin API shows it:
// {"id":4,"peer_address":"10.0.0.4:2888","client_address":"10.0.0.4:2181","role":"participant"}
// (client_address "" when there is none).
std::string member_json(const Member& member);
// The same object read back, for an admin request that adds a member:
// "id" (positive) and "peer_address" required, "client_address" ("" or
// absent: none) and "role" (default "participant") optional, "voter"
// (true or false, the request's earlier form) taken for the role; the
// election port is 0. BadArguments, with the reason, for anything else.
Result<Member> member_from_json(std::string_view text);

}  // namespace coord::core
