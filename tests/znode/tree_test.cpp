// Focused tests of the data tree where a golden script is awkward: path
// bytes (NUL, UTF-8), snapshot corruption, digest properties, ip ACLs,
// large and deep trees.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coord/base/assert.h"
#include "coord/base/checksum.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

Caller anyone(std::int64_t session = 1) {
  return Caller{SessionId(session), {Id{"ip", "127.0.0.1"}}};
}

class TreeTest : public ::testing::Test {
 protected:
  ApplyResult apply(const Txn& txn, const Caller& c = anyone()) {
    return tree.apply(txn, c, tree.last_zxid().next(), TimeMs(now++));
  }
  ErrorCode create(const std::string& path, Data data = std::string(),
                   CreateMode mode = CreateMode::Persistent, AclList acl = open_acl_unsafe()) {
    return apply(CreateOp{path, std::move(data), std::move(acl), mode, 0}).err;
  }
  DataTree tree;
  std::int64_t now = 1000;
};

// x509 ids (a TLS client certificate's subject) are taken in ACLs and
// match only a caller holding that exact identity.
TEST_F(TreeTest, X509AclGrantsTheSubjectOnly) {
  const std::string alice = "CN=alice,O=coord,C=US";
  AclList acl{Acl{perm::all, Id{"x509", alice}}, Acl{perm::read, Id{"world", "anyone"}}};
  EXPECT_EQ(create("/bad", std::string(), CreateMode::Persistent,
                   AclList{Acl{perm::all, Id{"x509", ""}}}),
            ErrorCode::InvalidAcl);
  ASSERT_EQ(create("/x", std::string("v"), CreateMode::Persistent, acl), ErrorCode::Ok);
  Caller holder{SessionId(2), {Id{"ip", "127.0.0.1"}, Id{"x509", alice}}};
  Caller other{SessionId(3), {Id{"ip", "127.0.0.1"}, Id{"x509", "CN=alice"}}};
  EXPECT_EQ(apply(SetDataOp{"/x", std::string("w"), -1}, other).err, ErrorCode::NoAuth);
  EXPECT_EQ(apply(SetDataOp{"/x", std::string("w"), -1}, anyone()).err, ErrorCode::NoAuth);
  EXPECT_EQ(apply(SetDataOp{"/x", std::string("w"), -1}, holder).err, ErrorCode::Ok);
}

TEST(PathTest, ValidPathsPass) {
  for (std::string p :
       {"/", "/a", "/a/b", "/a.b/..c", "/...", "/a b", "/\xc3\xa9", "/\xe4\xb8\xad"}) {
    EXPECT_TRUE(validate_path(p).ok()) << p;
  }
}

TEST(PathTest, InvalidPathsAreBadArguments) {
  const std::string nul("/a\0b", 4);
  for (std::string p :
       {std::string(),
        std::string("a"),
        std::string("/a/"),
        std::string("//"),
        std::string("/a//b"),
        std::string("/."),
        std::string("/.."),
        std::string("/a/./b"),
        std::string("/a/../b"),
        nul,
        std::string("/\x01"),
        std::string("/\x1f"),
        std::string("/\x7f"),
        std::string("/\xc2\x9f"),          // U+009F, a C1 control
        std::string("/\xef\xbf\xb0"),      // U+FFF0
        std::string("/\xee\x80\x80"),      // U+E000, private use
        std::string("/\xf0\x9f\x98\x80"),  // outside the BMP: a surrogate pair in Java
        std::string("/\xc3"),              // truncated sequence
        std::string("/\xc0\xaf"),          // overlong '/'
        std::string("/\xff")}) {
    Status s = validate_path(p);
    EXPECT_EQ(s.code(), ErrorCode::BadArguments) << "path of " << p.size() << " bytes";
  }
}

TEST(PathTest, LengthLimit) {
  std::string p = "/" + std::string(limits::znode_path_bytes_max - 1, 'x');
  EXPECT_TRUE(validate_path(p).ok());
  EXPECT_EQ(validate_path(p + "x").code(), ErrorCode::BadArguments);
}

TEST(PathTest, ParentPath) {
  EXPECT_EQ(parent_path("/a/b"), "/a");
  EXPECT_EQ(parent_path("/a"), "/");
  EXPECT_EQ(parent_path("/"), "");
}

TEST_F(TreeTest, NulInCreatePathIsBadArguments) {
  EXPECT_EQ(create(std::string("/a\0b", 4)), ErrorCode::BadArguments);
  EXPECT_EQ(apply(DeleteOp{std::string("/a\0b", 4), -1}).err, ErrorCode::BadArguments);
  EXPECT_EQ(apply(SetDataOp{std::string("/a\0b", 4), std::string(), -1}).err,
            ErrorCode::BadArguments);
}

// setData, check and setACL validate the path only when the lookup misses
// (a stored path was valid when created); the error order must not change.
TEST_F(TreeTest, WritePathRuleStillComesFirstOnAMiss) {
  ASSERT_EQ(create("/a", std::string("x")), ErrorCode::Ok);
  const std::string huge(limits::znode_data_bytes_max + 1, 'h');
  for (const std::string p : {"/a/", "/a/.", "/a/../a", "a", "", "/a//b"}) {
    EXPECT_EQ(apply(SetDataOp{p, std::string("y"), -1}).err, ErrorCode::BadArguments) << p;
    EXPECT_EQ(apply(SetDataOp{p, huge, 5}).err, ErrorCode::BadArguments) << p;
    EXPECT_EQ(apply(CheckOp{p, 5}).err, ErrorCode::BadArguments) << p;
    EXPECT_EQ(apply(SetAclOp{p, {}, 5}).err, ErrorCode::BadArguments) << p;
  }
  EXPECT_EQ(apply(SetDataOp{"/b", huge, -1}).err, ErrorCode::BadArguments);
  EXPECT_EQ(apply(SetDataOp{"/b", std::string("y"), -1}).err, ErrorCode::NoNode);
  EXPECT_EQ(apply(CheckOp{"/b", -1}).err, ErrorCode::NoNode);
  EXPECT_EQ(apply(SetAclOp{"/b", {}, -1}).err, ErrorCode::InvalidAcl);
  EXPECT_EQ(apply(SetAclOp{"/b", open_acl_unsafe(), -1}).err, ErrorCode::NoNode);
  EXPECT_EQ(apply(SetDataOp{"/a", huge, -1}).err, ErrorCode::BadArguments);
  EXPECT_EQ(apply(SetDataOp{"/a", std::string("y"), 7}).err, ErrorCode::BadVersion);
  EXPECT_EQ(apply(SetDataOp{"/zookeeper/quota", std::string("q"), -1}).err, ErrorCode::Ok);
}

// setData updates the digest from the request's bytes and the lookup's
// path hash; a snapshot load recomputes every node from its stored fields.
// Both must agree, for every data size the arena and the hash handle.
TEST_F(TreeTest, SetDataDigestMatchesARebuiltTree) {
  Random rnd(7);
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(create("/n" + std::to_string(i), std::string(static_cast<std::size_t>(i), 'c')),
              ErrorCode::Ok);
  }
  for (int round = 0; round < 300; ++round) {
    const std::string path = "/n" + std::to_string(rnd.below(64));
    const auto len = static_cast<std::size_t>(rnd.below(700));
    Data d;
    if (rnd.below(8) != 0) {
      d = std::string(len, '\0');
      for (auto& ch : *d)
        ch = static_cast<char>(rnd.below(256));
    }
    ASSERT_EQ(apply(SetDataOp{path, d, -1}).err, ErrorCode::Ok);
  }
  auto back = DataTree::read_snapshot(tree.write_snapshot());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->digest(), tree.digest());
  // And the digest still tells a one-byte change apart.
  const auto before = tree.digest();
  auto now_data = tree.get_data("/n3", anyone());
  ASSERT_TRUE(now_data.ok());
  std::string changed(now_data->data.value_or(""));
  changed += 'z';
  ASSERT_EQ(apply(SetDataOp{"/n3", changed, -1}).err, ErrorCode::Ok);
  EXPECT_NE(tree.digest(), before);
}

TEST_F(TreeTest, FailedTxnConsumesItsZxidOnly) {
  const auto before = tree.digest();
  EXPECT_EQ(create("/missing/x"), ErrorCode::NoNode);
  EXPECT_EQ(tree.last_zxid(), Zxid(1));
  EXPECT_EQ(tree.digest(), before);
  EXPECT_EQ(tree.node_count(), 4u);
}

TEST_F(TreeTest, IpAclMatchesByCidr) {
  ASSERT_EQ(create("/n", std::string("d"), CreateMode::Persistent,
                   {Acl{perm::read, Id{"ip", "10.20.0.0/14"}}}),
            ErrorCode::Ok);
  auto caller_at = [](const std::string& ip) { return Caller{SessionId(1), {Id{"ip", ip}}}; };
  EXPECT_TRUE(tree.get_data("/n", caller_at("10.20.0.1")).ok());
  EXPECT_TRUE(tree.get_data("/n", caller_at("10.23.255.255")).ok());
  EXPECT_EQ(tree.get_data("/n", caller_at("10.24.0.0")).code(), ErrorCode::NoAuth);
  EXPECT_EQ(tree.get_data("/n", caller_at("10.19.255.255")).code(), ErrorCode::NoAuth);
  EXPECT_EQ(tree.get_data("/n", caller_at("not-an-ip")).code(), ErrorCode::NoAuth);
  // /0 matches every IPv4 address.
  ASSERT_EQ(create("/all", std::string(), CreateMode::Persistent,
                   {Acl{perm::read, Id{"ip", "1.2.3.4/0"}}}),
            ErrorCode::Ok);
  EXPECT_TRUE(tree.get_data("/all", caller_at("200.1.1.1")).ok());
}

TEST_F(TreeTest, SuperIdentityBypassesAcls) {
  ASSERT_EQ(create("/x", std::string("d"), CreateMode::Persistent,
                   {Acl{perm::read, Id{"digest", "a:b"}}}),
            ErrorCode::Ok);
  Caller su{SessionId(2), {Id{"super", ""}}};
  EXPECT_TRUE(su.is_super());
  EXPECT_FALSE(anyone().is_super());
  EXPECT_EQ(tree.get_data("/x", anyone()).code(), ErrorCode::NoAuth);
  EXPECT_TRUE(tree.get_data("/x", su).ok());
  EXPECT_EQ(apply(SetDataOp{"/x", std::string("new"), -1}, su).err, ErrorCode::Ok);
}

TEST_F(TreeTest, DataViewsPointIntoTheTree) {
  ASSERT_EQ(create("/v", std::string("hello")), ErrorCode::Ok);
  auto d = tree.get_data("/v", anyone());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->data.has_value());
  EXPECT_EQ(*d->data, "hello");
  EXPECT_EQ(d->stat.data_length, 5);
}

TEST_F(TreeTest, SetDataReusesAndGrowsBuffers) {
  ASSERT_EQ(create("/v", std::string(100, 'a')), ErrorCode::Ok);
  for (int i = 0; i < 50; ++i) {
    std::string data(static_cast<std::size_t>((i * 37) % 300), static_cast<char>('a' + i % 26));
    auto r = apply(SetDataOp{"/v", data, i});
    ASSERT_EQ(r.err, ErrorCode::Ok);
    EXPECT_EQ(r.stat->version, i + 1);
    EXPECT_EQ(*tree.get_data("/v", anyone())->data, data);
  }
  EXPECT_EQ(tree.approximate_data_bytes(),
            std::string("/v").size() + (49 * 37) % 300 + 44 /* built-in names */);
}

TEST_F(TreeTest, SameOpsGiveSameDigest) {
  DataTree other;
  auto both = [&](const Txn& t) {
    const Zxid z = tree.last_zxid().next();
    tree.apply(t, anyone(), z, TimeMs(now));
    other.apply(t, anyone(), z, TimeMs(now));
    ++now;
  };
  both(CreateOp{"/a", std::string("x"), open_acl_unsafe(), CreateMode::Persistent, 0});
  both(CreateOp{"/a/", std::nullopt, read_acl_unsafe(), CreateMode::PersistentSequential, 0});
  both(SetDataOp{"/a", std::string("y"), -1});
  EXPECT_EQ(tree.digest(), other.digest());
  // Null and empty data differ.
  both(CreateOp{"/n", std::nullopt, open_acl_unsafe(), CreateMode::Persistent, 0});
  const Zxid z = tree.last_zxid().next();
  tree.apply(CreateOp{"/e", std::nullopt, open_acl_unsafe(), CreateMode::Persistent, 0}, anyone(),
             z, TimeMs(now));
  other.apply(CreateOp{"/e", std::string(), open_acl_unsafe(), CreateMode::Persistent, 0}, anyone(),
              z, TimeMs(now));
  EXPECT_NE(tree.digest(), other.digest());
}

TEST_F(TreeTest, DigestDependsOnAclAndOwner) {
  DataTree a, b, c;
  a.apply(CreateOp{"/x", std::string(), open_acl_unsafe(), CreateMode::Persistent, 0}, anyone(),
          Zxid(1), TimeMs(1));
  b.apply(CreateOp{"/x", std::string(), read_acl_unsafe(), CreateMode::Persistent, 0}, anyone(),
          Zxid(1), TimeMs(1));
  c.apply(CreateOp{"/x", std::string(), open_acl_unsafe(), CreateMode::Ephemeral, 0}, anyone(),
          Zxid(1), TimeMs(1));
  EXPECT_NE(a.digest(), b.digest());
  EXPECT_NE(a.digest(), c.digest());
  EXPECT_EQ(DataTree().digest(), DataTree().digest());
}

// A random tree of a few thousand nodes: every kind, data, ACLs, deletes,
// setACL, multis that fail half-way (and are rolled back), closed sessions,
// reaped containers and TTL nodes.
void grow_random_tree(DataTree& t, std::uint64_t seed, int ops) {
  Random rnd(seed);
  std::vector<std::string> paths{"/"};
  std::int64_t now = 1;
  const AclList acls[] = {
      open_acl_unsafe(),
      read_acl_unsafe(),
      {Acl{perm::all, Id{"digest", "u:h"}}, Acl{perm::read, Id{"world", "anyone"}}}};
  auto random_path = [&] { return paths[rnd.below(paths.size())]; };
  auto random_create = [&] {
    const std::string parent = random_path();
    CreateOp op;
    op.path = (parent == "/" ? "" : parent) + "/n" + std::to_string(rnd.below(50));
    op.mode = static_cast<CreateMode>(rnd.below(7));
    op.ttl_ms = 1 + static_cast<std::int64_t>(rnd.below(50));
    if (rnd.chance(1, 5)) {
      op.data = std::nullopt;
    } else {
      op.data = std::string(rnd.below(40), static_cast<char>(rnd.below(256)));
    }
    op.acl = acls[rnd.below(3)];
    return op;
  };
  for (int i = 0; i < ops; ++i) {
    Caller su{SessionId(1 + static_cast<std::int64_t>(rnd.below(4))), {Id{"super", ""}}};
    const Zxid z = t.last_zxid().next();
    const TimeMs time(now++);
    switch (rnd.below(9)) {
      case 0:
      case 1:
      case 2: {
        auto r = t.apply(random_create(), su, z, time);
        if (r.err == ErrorCode::Ok) paths.push_back(r.create->path);
        break;
      }
      case 3:
        (void)t.apply(SetDataOp{random_path(), std::string(rnd.below(20), 'z'), -1}, su, z, time);
        break;
      case 4:
        (void)t.apply(DeleteOp{random_path(), -1}, su, z, time);
        break;
      case 5:
        (void)t.apply(SetAclOp{random_path(), acls[rnd.below(3)], -1}, su, z, time);
        break;
      case 6: {
        MultiOp m;
        const auto n = rnd.below(6);
        for (std::uint64_t k = 0; k < n; ++k) {
          switch (rnd.below(4)) {
            case 0:
              m.ops.emplace_back(random_create());
              break;
            case 1:
              m.ops.emplace_back(DeleteOp{random_path(), -1});
              break;
            case 2:
              m.ops.emplace_back(SetDataOp{random_path(), std::string(rnd.below(9), 'm'), -1});
              break;
            default:
              m.ops.emplace_back(
                  CheckOp{random_path(), static_cast<std::int32_t>(rnd.below(3)) - 1});
              break;
          }
        }
        auto r = t.apply(m, su, z, time);
        for (const auto& op : r.multi->results) {
          if (r.multi->ok() && op.create) paths.push_back(op.create->path);
        }
        break;
      }
      case 7:
        if (rnd.chance(1, 4)) (void)t.apply(CloseSessionOp{su.session}, su, z, time);
        break;
      default: {
        auto due = t.reap_candidates(time);
        if (!due.empty()) {
          auto r = t.apply(ReapOp{due[rnd.below(due.size())]}, su, z, time);
          COORD_ASSERT(r.err == ErrorCode::Ok, "reported candidate not reapable");
        }
        break;
      }
    }
  }
}

// Walks the tree through the public API and checks that numChildren, the
// node count and the ephemeral count agree with what is reachable.
void check_structure(const DataTree& t) {
  Caller su{SessionId(0), {Id{"super", ""}}};
  std::size_t nodes = 0;
  std::size_t ephemerals = 0;
  std::vector<std::string> stack{"/"};
  while (!stack.empty()) {
    const std::string p = stack.back();
    stack.pop_back();
    ++nodes;
    auto kids = t.get_children(p, su);
    ASSERT_TRUE(kids.ok()) << p;
    ASSERT_EQ(static_cast<std::size_t>(kids->stat.num_children), kids->children.size()) << p;
    if (kids->stat.ephemeral_owner != 0) ++ephemerals;
    for (auto c : kids->children)
      stack.push_back((p == "/" ? "" : p) + "/" + std::string(c));
  }
  EXPECT_EQ(nodes, t.node_count());
  EXPECT_EQ(ephemerals, t.ephemeral_count());
}

TEST(SnapshotTest, RandomTreesRoundTrip) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    DataTree t;
    grow_random_tree(t, seed, 3000);
    check_structure(t);
    const std::string bytes = t.write_snapshot();
    auto back = DataTree::read_snapshot(bytes);
    ASSERT_TRUE(back.ok()) << "seed " << seed << ": " << back.status().to_string();
    EXPECT_EQ(back->digest(), t.digest()) << "seed " << seed;
    check_structure(*back);
    EXPECT_EQ(back->node_count(), t.node_count());
    EXPECT_EQ(back->ephemeral_count(), t.ephemeral_count());
    EXPECT_EQ(back->last_zxid(), t.last_zxid());
    EXPECT_EQ(back->approximate_data_bytes(), t.approximate_data_bytes());
    EXPECT_EQ(back->sessions_with_ephemerals(), t.sessions_with_ephemerals());
    EXPECT_EQ(back->reap_candidates(TimeMs(1'000'000)), t.reap_candidates(TimeMs(1'000'000)));
    // Written again, the same bytes: nothing was lost or reordered.
    EXPECT_EQ(back->write_snapshot(), bytes) << "seed " << seed;
  }
}

TEST(SnapshotTest, CorruptionIsDetected) {
  DataTree t;
  grow_random_tree(t, 42, 500);
  const std::string bytes = t.write_snapshot();
  Random rnd(9);
  for (int i = 0; i < 200; ++i) {
    std::string bad = bytes;
    const std::size_t at = rnd.below(bad.size());
    bad[at] = static_cast<char>(bad[at] ^ (1 + rnd.below(255)));
    auto r = DataTree::read_snapshot(bad);
    ASSERT_FALSE(r.ok()) << "flipped byte " << at << " went unnoticed";
    EXPECT_EQ(r.code(), ErrorCode::DataInconsistency);
  }
}

TEST(SnapshotTest, TruncationIsDetected) {
  DataTree t;
  grow_random_tree(t, 43, 300);
  const std::string bytes = t.write_snapshot();
  for (std::size_t len :
       {std::size_t{0}, std::size_t{5}, std::size_t{23}, bytes.size() / 2, bytes.size() - 1}) {
    auto r = DataTree::read_snapshot(std::string_view(bytes).substr(0, len));
    ASSERT_FALSE(r.ok()) << "truncated to " << len;
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().to_string();
  }
  auto longer = DataTree::read_snapshot(bytes + "x");
  EXPECT_FALSE(longer.ok());
}

TEST(SnapshotTest, ClearMessages) {
  DataTree t;
  std::string bytes = t.write_snapshot();
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_NE(DataTree::read_snapshot(bad_magic).status().message().find("magic"), std::string::npos);
  std::string bad_crc = bytes;
  bad_crc[30] ^= 1;
  EXPECT_NE(DataTree::read_snapshot(bad_crc).status().message().find("checksum"),
            std::string::npos);
  // A future format version, with a valid checksum.
  std::string future = bytes;
  future[8] = 3;
  const std::uint32_t crc = crc32c(future.data(), future.size() - 4);
  for (int i = 0; i < 4; ++i)
    future[future.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  EXPECT_NE(DataTree::read_snapshot(future).status().message().find("version 3"), std::string::npos)
      << DataTree::read_snapshot(future).status().to_string();
}

TEST(SnapshotTest, DeepTree) {
  // Deep paths must not recurse on the stack anywhere.
  DataTree t;
  std::string path;
  for (int i = 0; i < 2000; ++i) {
    path += "/d";
    ASSERT_EQ(t.apply(CreateOp{path, std::string(), open_acl_unsafe(), CreateMode::Persistent, 0},
                      anyone(), t.last_zxid().next(), TimeMs(1))
                  .err,
              ErrorCode::Ok);
  }
  EXPECT_EQ(*t.get_all_children_number("/d", anyone()), 1999);
  auto back = DataTree::read_snapshot(t.write_snapshot());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->digest(), t.digest());
}

TEST_F(TreeTest, ManyChildrenAndDeletes) {
  ASSERT_EQ(create("/p"), ErrorCode::Ok);
  for (int i = 0; i < 5000; ++i) {
    auto r = apply(
        CreateOp{"/p/c-", std::string(), open_acl_unsafe(), CreateMode::EphemeralSequential, 0},
        anyone(1 + i % 7));
    ASSERT_EQ(r.err, ErrorCode::Ok);
  }
  EXPECT_EQ(tree.get_children("/p", anyone())->children.size(), 5000u);
  EXPECT_EQ(tree.get_ephemerals(SessionId(3), "/p").size(), 714u);
  for (int s = 1; s <= 7; ++s)
    EXPECT_EQ(apply(CloseSessionOp{SessionId(s)}).err, ErrorCode::Ok);
  auto kids = tree.get_children("/p", anyone());
  EXPECT_TRUE(kids->children.empty());
  EXPECT_EQ(kids->stat.cversion, 10000);
  EXPECT_EQ(tree.ephemeral_count(), 0u);
  EXPECT_EQ(tree.node_count(), 5u);
  EXPECT_EQ(apply(CreateOp{"/p/c-", std::string(), open_acl_unsafe(),
                           CreateMode::PersistentSequential, 0})
                .create->path,
            "/p/c-0000005000");
}

TEST_F(TreeTest, EventsCarryTheirZxid) {
  ASSERT_EQ(create("/w"), ErrorCode::Ok);
  ASSERT_TRUE(tree.add_watch(5, "/w", WatchKind::Data).ok());
  auto r = tree.apply(SetDataOp{"/w", std::string("x"), -1}, anyone(), Zxid(77), TimeMs(1));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0], (WatchEvent{5, EventType::NodeDataChanged, "/w", Zxid(77), std::nullopt}));
}

// A server shows an event only to connections that may READ the node it is
// about, so each event carries that node's ACL, a deleted node's included.
TEST_F(TreeTest, EventsCarryTheAclOfTheNodeTheyTellAbout) {
  const AclList no_read{Acl{perm::all & ~perm::read, Id{"world", "anyone"}}};
  const AclList reader{Acl{perm::read, Id{"digest", "bob:h"}}};
  ASSERT_EQ(create("/p"), ErrorCode::Ok);
  ASSERT_EQ(create("/p/secret", std::string(), CreateMode::Persistent, no_read), ErrorCode::Ok);
  ASSERT_TRUE(tree.add_watch(5, "/p/secret", WatchKind::Data).ok());
  ASSERT_TRUE(tree.add_watch(6, "/p", WatchKind::Child).ok());
  auto r = apply(DeleteOp{"/p/secret", -1});
  ASSERT_EQ(r.err, ErrorCode::Ok);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].type, EventType::NodeDeleted);
  ASSERT_TRUE(r.events[0].acl.has_value());
  EXPECT_EQ(*r.events[0].acl, no_read);
  EXPECT_FALSE(acl_allows(*r.events[0].acl, anyone(), perm::read));
  EXPECT_TRUE(acl_allows(*r.events[0].acl, anyone(), perm::write));
  EXPECT_TRUE(acl_allows(*r.events[0].acl, Caller{SessionId(1), {Id{"super", ""}}}, perm::read));
  EXPECT_EQ(r.events[1].type, EventType::NodeChildrenChanged);
  EXPECT_EQ(*r.events[1].acl, open_acl_unsafe());

  // Created: the new node's ACL for its own watchers, the parent's for
  // child watchers; data changes: the node's current ACL.
  ASSERT_TRUE(tree.add_watch(5, "/p/r", WatchKind::Exist).ok());
  ASSERT_TRUE(tree.add_watch(6, "/p", WatchKind::Child).ok());
  r = apply(CreateOp{"/p/r", std::string(), reader, CreateMode::Persistent, 0});
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(*r.events[0].acl, reader);
  EXPECT_TRUE(
      acl_allows(*r.events[0].acl, Caller{SessionId(2), {Id{"digest", "bob:h"}}}, perm::read));
  EXPECT_FALSE(acl_allows(*r.events[0].acl, anyone(), perm::read));
  EXPECT_EQ(*r.events[1].acl, open_acl_unsafe());

  // A setWatches catch-up about a vanished node has nothing to protect.
  SetWatchesRequest req;
  req.relative_zxid = Zxid(0);
  req.data = {"/p/gone", "/p/r"};
  auto caught = tree.set_watches(7, req);
  ASSERT_EQ(caught.size(), 2u);
  EXPECT_FALSE(caught[0].acl.has_value());
  EXPECT_EQ(*caught[1].acl, reader);
}

// The per-connection limit refuses one watch more (setWatches skips it,
// reports it and goes on with catch-up events); the four-letter-word
// visitors see each (path, connection) once and stop when told.
TEST_F(TreeTest, WatchLimitAndVisitors) {
  tree.set_watches_per_connection_max(2);
  ASSERT_EQ(create("/a"), ErrorCode::Ok);
  ASSERT_TRUE(tree.add_watch(5, "/a", WatchKind::Data).ok());
  ASSERT_TRUE(tree.add_watch(5, "/a", WatchKind::Child).ok());
  EXPECT_TRUE(tree.add_watch(5, "/a", WatchKind::Data).ok());  // held already
  EXPECT_EQ(tree.add_watch(5, "/b", WatchKind::Exist).code(), ErrorCode::Throttled);
  EXPECT_TRUE(tree.add_watch(6, "/b", WatchKind::Exist).ok());
  SetWatchesRequest req;
  req.relative_zxid = Zxid(0);
  req.data = {"/gone"};
  req.exist = {"/c"};
  Status refused;
  auto events = tree.set_watches(5, req, &refused);
  EXPECT_EQ(refused.code(), ErrorCode::Throttled);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::NodeDeleted);
  EXPECT_EQ(tree.watch_count(), 3u);
  EXPECT_EQ(tree.watched_path_count(), 2u);
  EXPECT_EQ(tree.watching_connection_count(), 2u);
  std::vector<std::pair<std::string, WatcherId>> by_path;
  tree.visit_watches_by_path([&](std::string_view p, WatcherId w) {
    by_path.emplace_back(p, w);
    return true;
  });
  std::sort(by_path.begin(), by_path.end());
  EXPECT_EQ(by_path, (std::vector<std::pair<std::string, WatcherId>>{{"/a", 5}, {"/b", 6}}));
  int visited = 0;
  tree.visit_watches_by_watcher([&](WatcherId, std::string_view) { return ++visited < 1; });
  EXPECT_EQ(visited, 1);
}

TEST_F(TreeTest, VisitEphemeralsStopsWhenTold) {
  for (const char* p : {"/e1", "/e2", "/e3", "/f1"})
    ASSERT_EQ(create(p, std::string(), CreateMode::Ephemeral), ErrorCode::Ok);
  std::vector<std::string> seen;
  tree.visit_ephemerals(SessionId(1), "/e", [&](std::string_view p) {
    seen.emplace_back(p);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"/e1", "/e2"}));
  EXPECT_EQ(tree.get_ephemerals(SessionId(1), "/e").size(), 3u);
}

TEST_F(TreeTest, MovedTreeKeepsWorking) {
  ASSERT_EQ(create("/m", std::string("d")), ErrorCode::Ok);
  DataTree moved = std::move(tree);
  EXPECT_EQ(*moved.get_data("/m", anyone())->data, "d");
  tree = std::move(moved);
  EXPECT_EQ(create("/m2"), ErrorCode::Ok);
}

// The prefetch hint changes nothing, whatever it is given: present and
// absent paths, malformed ones, batches longer than it works on at once.
TEST_F(TreeTest, PrefetchChangesNothing) {
  Random rnd(7);
  std::vector<std::string> paths;
  std::ptrdiff_t absent = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string p = "/p" + std::to_string(i % 17) + (i < 17 ? "" : "/c" + std::to_string(i));
    if (i < 17 || rnd.below(2) == 0) {
      ASSERT_EQ(create(p, "d" + std::to_string(i)), ErrorCode::Ok);
    } else {
      ++absent;
    }
    paths.push_back(p);
  }
  paths.insert(paths.end(),
               {"", "/", "no-slash", "//", "/missing/deep/path", std::string(5000, '/')});
  auto read_all = [&] {
    std::vector<std::string> out;
    for (const std::string& p : paths) {
      auto d = tree.get_data(p, anyone());
      out.push_back(d.ok() ? std::string(d->data.value_or("(null)")) + "@" +
                                 std::to_string(d->stat.mzxid)
                           : "error " + std::to_string(static_cast<int>(d.code())));
    }
    return out;
  };
  const std::vector<std::string> before = read_all();
  ASSERT_GT(absent, 50);
  ASSERT_EQ(std::count(before.begin(), before.end(), "error -101"), absent + 5);
  const std::string snapshot = tree.write_snapshot();
  const std::uint64_t digest = tree.digest();
  std::vector<std::string_view> views(paths.begin(), paths.end());
  static_assert(limits::znode_prefetch_paths_max < 300);
  tree.prefetch(views);
  tree.prefetch(std::span<const std::string_view>(views).subspan(0, 1));
  tree.prefetch({});
  EXPECT_EQ(tree.digest(), digest);
  EXPECT_EQ(tree.write_snapshot(), snapshot);
  EXPECT_EQ(read_all(), before);
}

TEST(TxnFirstPathTest, NamesTheNodeEachTxnLooksUpFirst) {
  EXPECT_EQ(txn_first_path(CreateOp{"/a/b/c", {}, open_acl_unsafe(), CreateMode::Persistent, 0}),
            "/a/b");
  EXPECT_EQ(txn_first_path(CreateOp{"/a", {}, open_acl_unsafe(), CreateMode::Persistent, 0}), "/");
  EXPECT_EQ(txn_first_path(DeleteOp{"/x/y", -1}), "/x/y");
  EXPECT_EQ(txn_first_path(SetDataOp{"/s", std::string("v"), -1}), "/s");
  EXPECT_EQ(txn_first_path(SetAclOp{"/acl", open_acl_unsafe(), -1}), "/acl");
  EXPECT_EQ(txn_first_path(CheckOp{"/chk", 3}), "/chk");
  EXPECT_EQ(txn_first_path(ReapOp{"/ttl"}), "/ttl");
  EXPECT_EQ(txn_first_path(CloseSessionOp{SessionId(5)}), "");
  EXPECT_EQ(txn_first_path(MultiOp{}), "");
  EXPECT_EQ(txn_first_path(MultiOp{{CheckOp{"/m1", -1}, DeleteOp{"/m2", -1}}}), "/m1");
}

TEST_F(TreeTest, ZxidMustIncrease) {
  ASSERT_EQ(create("/a"), ErrorCode::Ok);
  EXPECT_DEATH(tree.apply(DeleteOp{"/a", -1}, anyone(), Zxid(1), TimeMs(1)), "zxid");
}

}  // namespace
}  // namespace coord::znode
