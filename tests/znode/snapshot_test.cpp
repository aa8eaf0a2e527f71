// Snapshot write/read of the data tree: random trees survive a round trip
// with equal digests, equal reads and equal behaviour afterwards (counters,
// TTLs and ephemeral owners included); corrupt and truncated snapshots are
// refused with an error, never a crash or a partial tree.
//
// COORD_ZNODE_SNAPSHOT_TREES=<n> round-trips n random trees (default 12).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "coord/base/checksum.h"
#include "coord/base/random.h"
#include "coord/znode/ops.h"
#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

const Id kAliceId{"digest", "alice:aGFzaC1hbGljZQ=="};
const std::vector<std::int64_t> kSnapshotSessions = {0x200000001, 0x200000002, 0x200000003};
const std::vector<std::string> kNodeNames = {"a", "b", "c", "d", "e"};

Caller caller_for(Random& rnd) {
  Caller c{SessionId(kSnapshotSessions[rnd.below(kSnapshotSessions.size())]),
           {Id{"ip", "127.0.0.1"}}};
  if (rnd.chance(1, 3)) c.identities.push_back(kAliceId);
  return c;
}

// Random write traffic: every create mode, data of every shape, a few ACLs,
// deletes, setData, setACL, multi, session closes and reaps.
class TrafficGen {
 public:
  explicit TrafficGen(std::uint64_t seed) : rnd_(seed) {}
  Random& rnd() { return rnd_; }

  std::string path(const DataTree& t) {
    // Walk down from the root, stopping at a random depth.
    Caller super_caller{SessionId(0), {Id{"super", ""}}};
    std::string p = "/";
    for (int depth = 0; depth < 4; ++depth) {
      if (depth > 0 && rnd_.chance(1, 3)) break;
      auto kids = t.get_children(p, super_caller);
      if (!kids.ok() || kids->children.empty() || rnd_.chance(1, 4)) {
        std::string base = p == "/" ? "" : p;
        return base + "/" + kNodeNames[rnd_.below(kNodeNames.size())];
      }
      std::vector<std::string> names(kids->children.begin(), kids->children.end());
      std::sort(names.begin(), names.end());
      std::string base = p == "/" ? "" : p;
      p = base + "/" + names[rnd_.below(names.size())];
    }
    return p;
  }

  Data data() {
    switch (rnd_.below(5)) {
      case 0:
        return std::nullopt;
      case 1:
        return std::string();
      default: {
        std::string s(rnd_.below(40), '\0');
        for (auto& ch : s)
          ch = static_cast<char>(rnd_.below(256));
        return s;
      }
    }
  }

  AclList acl() {
    switch (rnd_.below(5)) {
      case 0:
        return read_acl_unsafe();
      case 1:
        return {Acl{perm::all, kAliceId}, Acl{perm::read, Id{"world", "anyone"}}};
      case 2:
        return {Acl{perm::read | perm::write, Id{"ip", "10.0.0.0/8"}},
                Acl{perm::all, Id{"ip", "127.0.0.1"}}};
      default:
        return open_acl_unsafe();
    }
  }

  Txn txn(const DataTree& t) {
    std::uint64_t r = rnd_.below(100);
    if (r < 45) {
      CreateOp op{path(t), data(), acl(), static_cast<CreateMode>(rnd_.below(7)), 0};
      if (is_ttl(op.mode)) op.ttl_ms = static_cast<std::int64_t>(rnd_.uniform(1, 5000));
      return op;
    }
    if (r < 60) return SetDataOp{path(t), data(), -1};
    if (r < 67) return SetAclOp{path(t), acl(), -1};
    if (r < 77) return DeleteOp{path(t), -1};
    if (r < 87) {
      MultiOp m;
      for (std::uint64_t i = rnd_.below(4); i > 0; --i) {
        m.ops.push_back(CreateOp{path(t), data(), open_acl_unsafe(),
                                 static_cast<CreateMode>(rnd_.below(5)), 0});
      }
      return m;
    }
    if (r < 92) return CloseSessionOp{SessionId(kSnapshotSessions[rnd_.below(3)])};
    return ReapOp{path(t)};
  }

 private:
  Random rnd_;
};

struct Clock {
  std::int64_t zxid = 0;
  std::int64_t time = 1'700'000'000'000;
  void tick(Random& rnd) {
    zxid += static_cast<std::int64_t>(rnd.uniform(1, 2));
    time += static_cast<std::int64_t>(rnd.below(300));
  }
};

DataTree random_tree(std::uint64_t seed, int writes, Clock& clock) {
  DataTree t;
  TrafficGen gen(seed);
  for (int i = 0; i < writes; ++i) {
    Txn txn = gen.txn(t);
    Caller c = caller_for(gen.rnd());
    clock.tick(gen.rnd());
    (void)t.apply(txn, c, Zxid(clock.zxid), TimeMs(clock.time));
  }
  return t;
}

void collect_paths(const DataTree& t, const std::string& p, std::vector<std::string>& out) {
  Caller super_caller{SessionId(0), {Id{"super", ""}}};
  out.push_back(p);
  auto kids = t.get_children(p, super_caller);
  if (!kids.ok()) return;
  std::vector<std::string> names(kids->children.begin(), kids->children.end());
  std::sort(names.begin(), names.end());
  for (const auto& n : names)
    collect_paths(t, (p == "/" ? "" : p) + "/" + n, out);
}

// Every read the tree offers gives the same answer on both trees.
void expect_same_reads(const DataTree& a, const DataTree& b, std::int64_t now) {
  Caller super_caller{SessionId(0), {Id{"super", ""}}};
  Caller anon{SessionId(0), {Id{"ip", "10.1.1.1"}}};
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_EQ(a.last_zxid(), b.last_zxid());
  EXPECT_EQ(a.node_count(), b.node_count());
  EXPECT_EQ(a.ephemeral_count(), b.ephemeral_count());
  EXPECT_EQ(a.approximate_data_bytes(), b.approximate_data_bytes());
  std::vector<std::string> pa, pb;
  collect_paths(a, "/", pa);
  collect_paths(b, "/", pb);
  ASSERT_EQ(pa, pb);
  EXPECT_EQ(pa.size(), a.node_count());
  for (const auto& p : pa) {
    auto da = a.get_data(p, super_caller);
    auto db = b.get_data(p, super_caller);
    ASSERT_TRUE(da.ok() && db.ok()) << p;
    EXPECT_EQ(da->stat, db->stat) << p;
    EXPECT_EQ(da->data.has_value(), db->data.has_value()) << p << ": null data must stay null";
    if (da->data && db->data) {
      EXPECT_EQ(*da->data, *db->data) << p;
    }
    auto aa = a.get_acl(p, super_caller);
    auto ab = b.get_acl(p, super_caller);
    ASSERT_TRUE(aa.ok() && ab.ok()) << p;
    EXPECT_EQ(aa->acl, ab->acl) << p;
    // An unprivileged caller is refused or served alike too.
    EXPECT_EQ(a.get_data(p, anon).code(), b.get_data(p, anon).code()) << p;
    EXPECT_EQ(a.get_all_children_number(p, super_caller).value(),
              b.get_all_children_number(p, super_caller).value())
        << p;
  }
  auto sa = a.sessions_with_ephemerals();
  auto sb = b.sessions_with_ephemerals();
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  EXPECT_EQ(sa, sb);
  for (auto s : kSnapshotSessions) {
    EXPECT_EQ(a.get_ephemerals(SessionId(s), "/"), b.get_ephemerals(SessionId(s), "/"));
  }
  for (std::int64_t ahead : {0, 1000, 10000, 100000}) {
    EXPECT_EQ(a.reap_candidates(TimeMs(now + ahead)), b.reap_candidates(TimeMs(now + ahead)));
  }
}

Result<DataTree> round_trip(const DataTree& t) {
  return DataTree::read_snapshot(t.write_snapshot());
}

std::uint64_t env_count(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

TEST(ZnodeSnapshot, FreshTreeRoundTrips) {
  DataTree t;
  auto back = round_trip(t);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  expect_same_reads(t, *back, 0);
}

TEST(ZnodeSnapshot, RandomTreesRoundTripAndBehaveAlikeAfterwards) {
  std::uint64_t trees = env_count("COORD_ZNODE_SNAPSHOT_TREES", 12);
  for (std::uint64_t seed = 1; seed <= trees; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (COORD_ZNODE_SNAPSHOT_TREES)");
    Clock clock;
    DataTree original = random_tree(seed, 150 + static_cast<int>(seed) * 40, clock);
    auto restored = round_trip(original);
    ASSERT_TRUE(restored.ok()) << restored.status().to_string();
    expect_same_reads(original, *restored, clock.time);
    // A snapshot of the restored tree restores the same tree again.
    auto twice = round_trip(*restored);
    ASSERT_TRUE(twice.ok()) << twice.status().to_string();
    expect_same_reads(original, *twice, clock.time);

    // The same traffic afterwards yields the same results: sequential
    // counters, TTLs, containers and ephemeral owners came back too.
    TrafficGen more(seed + 1000);
    for (int i = 0; i < 200; ++i) {
      Txn txn = more.txn(original);
      Caller c = caller_for(more.rnd());
      clock.tick(more.rnd());
      if (more.rnd().chance(1, 10)) {
        auto cand = original.reap_candidates(TimeMs(clock.time));
        if (!cand.empty()) txn = ReapOp{cand[more.rnd().below(cand.size())]};
      }
      ApplyResult x = original.apply(txn, c, Zxid(clock.zxid), TimeMs(clock.time));
      ApplyResult y = restored->apply(txn, c, Zxid(clock.zxid), TimeMs(clock.time));
      ASSERT_EQ(x.err, y.err) << "write " << i;
      ASSERT_EQ(x.create, y.create) << "write " << i;
      ASSERT_EQ(x.stat, y.stat) << "write " << i;
      ASSERT_EQ(x.multi, y.multi) << "write " << i;
    }
    expect_same_reads(original, *restored, clock.time);
  }
}

TEST(ZnodeSnapshot, SequentialCounterSurvivesDeletes) {
  // A parent whose children were created and deleted keeps its counter.
  DataTree t;
  Caller c{SessionId(5), {Id{"ip", "127.0.0.1"}}};
  std::int64_t z = 0;
  auto ok = [&](const Txn& txn) {
    ApplyResult r = t.apply(txn, c, Zxid(++z), TimeMs(100));
    ASSERT_EQ(r.err, ErrorCode::Ok);
  };
  ok(CreateOp{"/q", std::string(), open_acl_unsafe(), CreateMode::Persistent, 0});
  for (int i = 0; i < 5; ++i) {
    ok(CreateOp{"/q/x", std::string(), open_acl_unsafe(), CreateMode::Persistent, 0});
    ok(DeleteOp{"/q/x", -1});
  }
  auto back = round_trip(t);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ApplyResult r = back->apply(
      CreateOp{"/q/s-", std::string(), open_acl_unsafe(), CreateMode::PersistentSequential, 0}, c,
      Zxid(++z), TimeMs(100));
  ASSERT_EQ(r.err, ErrorCode::Ok);
  ASSERT_TRUE(r.create.has_value());
  EXPECT_EQ(r.create->path, "/q/s-0000000005");
  EXPECT_EQ(r.create->stat.czxid, z);
}

// A snapshot of a small tree holding every kind of node and state.
std::string small_snapshot() {
  DataTree t;
  Caller c{SessionId(0x300000001), {Id{"ip", "127.0.0.1"}, kAliceId}};
  std::int64_t z = 0;
  auto apply = [&](const Txn& txn) {
    ++z;
    ApplyResult r = t.apply(txn, c, Zxid(z), TimeMs(1'700'000'000'000 + z));
    EXPECT_EQ(r.err, ErrorCode::Ok);
  };
  apply(CreateOp{"/a", std::string("data"), open_acl_unsafe(), CreateMode::Persistent, 0});
  apply(CreateOp{"/a/e", std::nullopt, creator_all_acl(), CreateMode::Ephemeral, 0});
  apply(CreateOp{"/a/s", std::string(), read_acl_unsafe(), CreateMode::PersistentSequential, 0});
  apply(CreateOp{"/c", std::string("\0\1\2", 3), open_acl_unsafe(), CreateMode::Container, 0});
  apply(CreateOp{"/t",
                 std::string("ttl"),
                 {Acl{perm::read, Id{"ip", "10.0.0.0/8"}}},
                 CreateMode::PersistentWithTtl,
                 1234});
  apply(SetDataOp{"/a", std::string("more data"), -1});
  return t.write_snapshot();
}

void expect_refused(std::string_view bytes, const std::string& what) {
  auto r = DataTree::read_snapshot(bytes);
  EXPECT_FALSE(r.ok()) << what << " was accepted";
  if (!r.ok()) {
    EXPECT_FALSE(r.status().message().empty()) << what << ": error without a message";
  }
}

TEST(ZnodeSnapshot, EveryFlippedByteOfASmallSnapshotIsRefused) {
  std::string snap = small_snapshot();
  ASSERT_TRUE(DataTree::read_snapshot(snap).ok());
  for (std::size_t i = 0; i < snap.size(); ++i) {
    for (unsigned mask : {0x01u, 0x80u, 0xFFu}) {
      std::string bad = snap;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      expect_refused(bad, "byte " + std::to_string(i) + " ^ " + std::to_string(mask));
    }
  }
}

TEST(ZnodeSnapshot, EveryTruncationOfASmallSnapshotIsRefused) {
  std::string snap = small_snapshot();
  for (std::size_t n = 0; n < snap.size(); ++n) {
    expect_refused(std::string_view(snap).substr(0, n),
                   "prefix of " + std::to_string(n) + " bytes");
  }
}

TEST(ZnodeSnapshot, TrailingBytesAreRefused) {
  std::string snap = small_snapshot();
  expect_refused(snap + std::string(1, '\0'), "one trailing zero byte");
  expect_refused(snap + snap, "two snapshots back to back");
}

TEST(ZnodeSnapshot, RandomDamageToALargeSnapshotIsRefused) {
  Clock clock;
  DataTree t = random_tree(77, 3000, clock);
  // Bulk up the tree with wide levels so the snapshot is large.
  Caller c{SessionId(9), {Id{"ip", "127.0.0.1"}}};
  (void)t.apply(CreateOp{"/bulk", std::string(), open_acl_unsafe(), CreateMode::Persistent, 0}, c,
                Zxid(++clock.zxid), TimeMs(clock.time));
  for (int i = 0; i < 5000; ++i) {
    (void)t.apply(CreateOp{"/bulk/n" + std::to_string(i), std::string(50, static_cast<char>(i)),
                           open_acl_unsafe(), CreateMode::Persistent, 0},
                  c, Zxid(++clock.zxid), TimeMs(clock.time));
  }
  std::string snap = t.write_snapshot();
  ASSERT_GT(snap.size(), 250'000u);
  auto back = DataTree::read_snapshot(snap);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  expect_same_reads(t, *back, clock.time);

  Random rnd(4242);
  for (int i = 0; i < 200; ++i) {
    std::string bad = snap;
    std::size_t pos = rnd.below(bad.size());
    std::size_t len = rnd.chance(1, 2) ? 1 : rnd.uniform(2, 64);
    for (std::size_t k = pos; k < std::min(bad.size(), pos + len); ++k) {
      bad[k] = static_cast<char>(static_cast<unsigned char>(bad[k]) ^ (1u + rnd.below(255)));
    }
    expect_refused(bad, "damage at " + std::to_string(pos) + " length " + std::to_string(len));
  }
  for (int i = 0; i < 30; ++i) {
    std::size_t n = rnd.below(snap.size());
    expect_refused(std::string_view(snap).substr(0, n),
                   "prefix of " + std::to_string(n) + " bytes");
  }
  expect_refused(std::string(snap.size(), '\0'), "all zero bytes");
}

// The checksum stops random damage before the parser sees it. Here the
// damage is re-sealed with a correct CRC-32C (the trailer's four bytes, as
// the snapshot format documents), so the parser itself meets malformed
// lengths, counts, kinds, ACL references, paths and orphans. It must refuse
// them or, if the damage happens to leave a well-formed tree, yield one that
// is self-consistent; it must never crash or read out of bounds.
void reseal(std::string& snap) {
  std::uint32_t crc = crc32c(std::string_view(snap).substr(0, snap.size() - 4));
  for (int i = 0; i < 4; ++i)
    snap[snap.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
}

void expect_refused_or_consistent(const std::string& bytes, const std::string& what) {
  auto r = DataTree::read_snapshot(bytes);
  if (!r.ok()) {
    EXPECT_FALSE(r.status().message().empty()) << what << ": error without a message";
    return;
  }
  std::vector<std::string> paths;
  collect_paths(*r, "/", paths);
  EXPECT_EQ(paths.size(), r->node_count()) << what << " was accepted with unreachable nodes";
  auto again = DataTree::read_snapshot(r->write_snapshot());
  ASSERT_TRUE(again.ok()) << what << ": accepted, but its own snapshot is refused";
  EXPECT_EQ(again->digest(), r->digest()) << what;
}

TEST(ZnodeSnapshot, ResealedDamageNeverCrashesTheParser) {
  std::string snap = small_snapshot();
  {
    std::string copy = snap;
    reseal(copy);
    ASSERT_EQ(copy, snap) << "the snapshot no longer ends with a CRC-32C of the bytes before it; "
                             "update reseal() to the new layout";
  }
  for (std::size_t i = 0; i + 4 < snap.size(); ++i) {
    for (unsigned mask : {0x01u, 0x80u, 0xFFu}) {
      std::string bad = snap;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      reseal(bad);
      expect_refused_or_consistent(
          bad, "resealed byte " + std::to_string(i) + " ^ " + std::to_string(mask));
    }
  }
  Random rnd(99);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = snap;
    std::size_t pos = rnd.below(bad.size() - 4);
    std::size_t len = rnd.uniform(1, 8);
    for (std::size_t k = pos; k < std::min(bad.size() - 4, pos + len); ++k) {
      bad[k] = static_cast<char>(rnd.below(256));
    }
    reseal(bad);
    expect_refused_or_consistent(bad, "resealed bytes at " + std::to_string(pos));
  }
}

}  // namespace
}  // namespace coord::znode
