// ACL processing of the data tree (docs/PROTOCOL.md §3.1): fix-up of an
// ACL list given in create/setACL, the permission check against a caller's
// identities, digest masking for getACL, and the interning table that lets
// a million nodes share one stored copy of the same list.
// Thread safety: none; owned by one DataTree.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "coord/base/error.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"
#include "coord/znode/ops.h"

namespace coord::znode::detail {

// ZooKeeper 3.8's fixupACL: duplicates of the request list removed (exact
// entry equality, first kept), `auth` entries replaced by one entry per
// authenticated identity of the caller (digest, sasl, x509; never ip),
// world only as world:anyone, digest ids `user:hash`, ip ids IPv4 with an
// optional /bits, x509 ids any non-empty subject. InvalidAcl for anything else, an empty list, or
// more than acl_entries_max entries.
Result<AclList> fixup_acl(const AclList& requested, const Caller& caller);

// True when `ip_acl` ("a.b.c.d" or "a.b.c.d/bits") covers `address`.
bool ip_matches(std::string_view address, std::string_view ip_acl);

// Whether an entry granting `perm` names one of the caller's identities
// (world:anyone entries are not special here: callers of this check them).
bool identity_granted(const AclList& acl, const Caller& caller, std::int32_t perm);

// Replaces the hash part of digest ids with `x` (`user:x`).
AclList mask_digests(AclList acl);

using AclRef = std::uint32_t;

// Interned ACL lists with reference counts. A reference is a small index
// into the table; the entry lives while some node holds it.
class AclTable {
 public:
  struct Entry {
    AclList acl;
    std::uint64_t refs = 0;
    std::uint64_t hash = 0;        // of the contents, for the digest
    std::int32_t world_perms = 0;  // OR of the world:anyone entries' perms
    bool live = false;
  };

  // Returns a reference to `acl` (adding one to its count).
  AclRef intern(const AclList& acl);
  void ref(AclRef r);
  void unref(AclRef r);
  const Entry& get(AclRef r) const { return entries_[r]; }
  std::size_t live_count() const { return index_.size(); }

  // True when the caller holds `perm` on a node with this ACL: super
  // bypasses; an empty list is open to all; otherwise any entry carrying
  // the bit whose id matches one of the caller's identities.
  bool allows(AclRef r, const Caller& caller, bool caller_is_super, std::int32_t perm) const;
  // The common case, inline: a world:anyone entry grants `perm` to all.
  bool world_allows(AclRef r, std::int32_t perm) const {
    return (entries_[r].world_perms & perm) != 0;
  }

  // Live entries by reference, for the snapshot.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [acl, r] : index_)
      fn(r, entries_[r]);
  }
  // Snapshot load: restore() places `acl` at reference `r` with a zero
  // count, restore_ref() counts a node holding it, finish_restore() drops
  // entries no node holds and rebuilds the free list.
  Status restore(AclRef r, AclList acl);
  Status restore_ref(AclRef r);
  void finish_restore();
  void clear();

 private:
  std::vector<Entry> entries_;
  std::vector<AclRef> free_;
  std::map<AclList, AclRef> index_;
};

std::uint64_t hash_acl(const AclList& acl);
bool caller_is_super(const Caller& caller);

}  // namespace coord::znode::detail
