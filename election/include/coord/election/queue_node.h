// The queue under every recipe of election/: ephemeral-sequential nodes in
// one directory, ordered by their sequence number, each waiting for the
// node it must outlive (its predecessor) and never for the whole directory.
//
// Node names follow Apache Curator's protected mode, so that Curator's
// recipes and ours share a directory: `_c_<uuid>-<name><sequence>`, for
// example `_c_5f0c...-lock-0000000007`. The uuid is new for each session of
// a participant; after a lost reply to the create, the participant looks
// for a child carrying its prefix (and owned by its session) before
// creating another, so a lost reply leaves no orphan that would block the
// queue until the session ends.
//
// Ordering is Curator's: by the part after the last occurrence of the
// recipe's name ("lock-", "latch-", "__READ__" / "__WRIT__"), compared as a
// number (Curator compares the 10-digit strings, which gives the same order
// while sequences have 10 digits; coord's 64-bit counters may grow longer).
// Children that carry none of the names are ignored.
//
// Thread safety: free functions; the Client calls are blocking, so never
// call them from a Client callback.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"
#include "coord/client-lib/client.h"

namespace coord::recipe {

// "_c_" + a random UUID (version 4) + "-".
std::string new_protected_prefix();

// The sequence part of `child`: what follows the last occurrence of one of
// `names`, when it is all digits; nullopt otherwise.
std::optional<std::string_view> sequence_of(std::string_view child,
                                            const std::vector<std::string>& names);

// The children carrying one of `names`, ordered by sequence.
std::vector<std::string> order_children(std::vector<std::string> children,
                                        const std::vector<std::string>& names);

// "/a/b" + "c" = "/a/b/c"; "/" + "c" = "/c".
std::string child_path(const std::string& dir, const std::string& child);

// Creates `dir` and its missing ancestors as containers (the server removes
// a container once its last child is gone). Existing nodes are fine.
Status ensure_containers(Client& client, const std::string& dir);

// This participant's node in the queue.
struct OwnNode {
  std::string name;        // the child name, with prefix and sequence
  std::int64_t czxid = 0;  // its creation zxid: the fencing token
};

// Creates `dir/<prefix><name>` ephemeral-sequential with `data` (making
// `dir` first when missing) or, after a lost reply, finds the node an
// earlier attempt of this session created. Gives up with the last error
// after a bounded number of attempts or when the session is gone.
Result<OwnNode> create_queue_node(Client& client, const std::string& dir, const std::string& prefix,
                                  const std::string& name, const Data& data);

// The child of `dir` whose name starts with `prefix` and that belongs to
// this client's session, if any.
Result<std::optional<OwnNode>> find_queue_node(Client& client, const std::string& dir,
                                               const std::string& prefix);

}  // namespace coord::recipe
