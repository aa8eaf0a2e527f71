// Quotas kept by the tree: the text form of quota nodes, usage against an
// independent recount under random traffic (multi and session close
// included), snapshots of both versions, and the hard limit.
// The golden script testdata/quota.txt shows the behaviour case by case.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coord/base/checksum.h"
#include "coord/base/random.h"
#include "coord/znode/tree.h"
#include "tree_impl.h"

namespace coord::znode {
namespace {

using detail::QuotaText;

// ---- the text ----------------------------------------------------------

TEST(QuotaText, ReadsWhatZkCliWrites) {
  auto t = QuotaText::parse("count=2,bytes=-1=;byteHardLimit=10;countHardLimit=-1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->get("count"), 2);
  EXPECT_EQ(t->get("bytes"), -1);
  EXPECT_EQ(t->get("byteHardLimit"), 10);
  EXPECT_EQ(t->get("countHardLimit"), -1);
  EXPECT_EQ(t->get("missing"), -1);
  EXPECT_FALSE(t->has("missing"));
  EXPECT_EQ(t->format(), "count=2,bytes=-1=;byteHardLimit=10;countHardLimit=-1");
}

TEST(QuotaText, FormatsAsStatsTrack) {
  QuotaText t;
  EXPECT_EQ(t.format(), "count=-1,bytes=-1");
  t.set("bytes", 8);
  t.set("count", 3);
  EXPECT_EQ(t.format(), "count=3,bytes=8");
  t.set("zeta", 1);
  t.set("alpha", -2);
  EXPECT_EQ(t.format(), "count=3,bytes=8=;alpha=-2;zeta=1");
}

TEST(QuotaText, JavaSplitRules) {
  // Runs of separators, trailing ones, a later key replacing an earlier one.
  auto t = QuotaText::parse("count=1,,;bytes=2;;count=5,");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->get("count"), 5);
  EXPECT_EQ(t->get("bytes"), 2);
  // An empty value reads as -1; extra '=' parts are ignored.
  t = QuotaText::parse("count==7,bytes=3=4");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->get("count"), -1);
  EXPECT_EQ(t->get("bytes"), 3);
  EXPECT_TRUE(QuotaText::parse(""));
  EXPECT_TRUE(QuotaText::parse("count=+4"));
  EXPECT_EQ(QuotaText::parse("count=+4")->get("count"), 4);
  for (const char* bad : {",count=1", "count", "count=", "count=x", "count=1x", "count=+-1",
                          "count=99999999999999999999", "=", "count=1,bytes"}) {
    EXPECT_FALSE(QuotaText::parse(bad)) << bad;
  }
}

// ---- a tree with quotas ---------------------------------------------------

class Harness {
 public:
  explicit Harness(TreeConfig config = {}) : tree(config) {}

  ApplyResult apply(const Txn& txn, SessionId session = SessionId(1)) {
    Caller c{session, {Id{"ip", "127.0.0.1"}}};
    return tree.apply(txn, c, tree.last_zxid().next(), TimeMs(1000 + tree.last_zxid().value()));
  }
  void create(const std::string& path, std::string data = "") {
    ASSERT_EQ(apply(CreateOp{path, std::move(data), open_acl_unsafe()}).err, ErrorCode::Ok) << path;
  }
  // What zkCli's setquota sends for `root`.
  void set_quota(const std::string& root, const std::string& limits) {
    std::string q = "/zookeeper/quota";
    std::size_t start = 1;
    while (start <= root.size()) {
      std::size_t end = root.find('/', start);
      if (end == std::string::npos) end = root.size();
      q += "/" + root.substr(start, end - start);
      (void)apply(CreateOp{q, std::nullopt, open_acl_unsafe()});
      start = end + 1;
    }
    create(q + "/zookeeper_limits", limits);
    create(q + "/zookeeper_stats", "count=0,bytes=0");
  }
  std::string stats(const std::string& root) const {
    auto d = tree.get_data("/zookeeper/quota" + root + "/zookeeper_stats", Caller{});
    if (!d.ok() || !d->data) return "(none)";
    return std::string(*d->data);
  }
  // The usage of the subtree at `root`, counted through the read API.
  std::string recount(const std::string& root) const {
    std::int64_t count = 0;
    std::int64_t bytes = 0;
    std::vector<std::string> stack{root};
    while (!stack.empty()) {
      std::string p = stack.back();
      stack.pop_back();
      auto d = tree.get_data(p, Caller{});
      if (!d.ok()) continue;
      ++count;
      bytes += d->stat.data_length;
      auto kids = tree.get_children(p, Caller{});
      for (auto k : kids->children)
        stack.push_back(p + "/" + std::string(k));
    }
    return "count=" + std::to_string(count) + ",bytes=" + std::to_string(bytes);
  }

  DataTree tree;
};

TEST(Quota, UsageMatchesARecountUnderRandomTraffic) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    Harness h;
    h.create("/app", "root");
    h.create("/app/x");
    h.create("/other");
    h.set_quota("/app", "count=50,bytes=-1");
    h.set_quota("/app/x", "count=-1,bytes=100");  // nested: both count
    Random rnd(seed);
    std::vector<std::string> paths = {"/app", "/app/x", "/other"};
    auto pick = [&] { return paths[rnd.below(paths.size())]; };
    auto data = [&] { return std::string(rnd.below(12), 'd'); };
    for (int step = 0; step < 600; ++step) {
      const std::uint64_t r = rnd.below(100);
      if (r < 35) {
        const std::string p = pick() + "/n" + std::to_string(step);
        const bool eph = rnd.below(4) == 0;
        CreateOp op{p, data(), open_acl_unsafe(),
                    eph ? CreateMode::Ephemeral : CreateMode::Persistent};
        if (h.apply(op, SessionId(eph ? 7 : 1)).err == ErrorCode::Ok) paths.push_back(p);
      } else if (r < 55) {
        (void)h.apply(SetDataOp{pick(), data(), -1});
      } else if (r < 70) {
        const std::string p = pick();
        if (p != "/app" && p != "/app/x" && p != "/other" &&
            h.apply(DeleteOp{p, -1}).err == ErrorCode::Ok) {
          std::erase(paths, p);
        }
      } else if (r < 90) {
        // A multi that may fail half-way: usage must come back exactly.
        MultiOp m;
        const std::uint64_t before = h.tree.digest();
        for (int k = 0; k < 4; ++k) {
          if (rnd.below(2) == 0) {
            m.ops.emplace_back(
                CreateOp{pick() + "/m" + std::to_string(step) + "_" + std::to_string(k), data(),
                         open_acl_unsafe()});
          } else {
            m.ops.emplace_back(SetDataOp{pick(), data(), rnd.below(3) == 0 ? 5 : -1});
          }
        }
        ApplyResult res = h.apply(m);
        if (!res.multi->ok()) {
          EXPECT_EQ(h.tree.digest(), before) << "seed " << seed << " step " << step;
          for (const auto& q : res.quota)
            EXPECT_TRUE(q.refused) << describe(q);
        } else {
          for (std::size_t k = 0; k < m.ops.size(); ++k) {
            if (res.multi->results[k].create) paths.push_back(res.multi->results[k].create->path);
          }
        }
      } else if (r < 95) {
        (void)h.apply(CloseSessionOp{SessionId(7)});
        std::erase_if(paths, [&](const std::string& p) { return !h.tree.exists(p).ok(); });
      } else {
        auto back = DataTree::read_snapshot(h.tree.write_snapshot());
        ASSERT_TRUE(back.ok()) << back.status().to_string();
        EXPECT_EQ(back->digest(), h.tree.digest());
        h.tree = std::move(back).value();
      }
      ASSERT_EQ(h.stats("/app"), h.recount("/app")) << "seed " << seed << " step " << step;
      ASSERT_EQ(h.stats("/app/x"), h.recount("/app/x")) << "seed " << seed << " step " << step;
    }
  }
}

TEST(Quota, SoftLimitIsReportedOnlyWhenPassed) {
  Harness h;
  h.create("/s");
  h.set_quota("/s", "count=2,bytes=4");
  EXPECT_TRUE(h.apply(CreateOp{"/s/a", std::string("12"), open_acl_unsafe()}).quota.empty());
  ApplyResult r = h.apply(CreateOp{"/s/b", std::string("123"), open_acl_unsafe()});
  ASSERT_EQ(r.err, ErrorCode::Ok);
  ASSERT_EQ(r.quota.size(), 2u);
  EXPECT_EQ(r.quota[0], (QuotaNotice{"/s", QuotaNotice::Kind::Count, false, false, 3, 2}));
  EXPECT_EQ(r.quota[1], (QuotaNotice{"/s", QuotaNotice::Kind::Bytes, false, false, 5, 4}));
  // Shrinking, deleting and same-size writes report nothing.
  EXPECT_TRUE(h.apply(SetDataOp{"/s/b", std::string("1"), -1}).quota.empty());
  EXPECT_TRUE(h.apply(DeleteOp{"/s/a", -1}).quota.empty());
  EXPECT_EQ(describe(QuotaNotice{"/s", QuotaNotice::Kind::Count, false, false, 3, 2}),
            "quota of /s: 3 nodes, over its soft limit of 2");
}

TEST(Quota, HardLimitOnlyWithEnforcement) {
  for (bool enforce : {false, true}) {
    Harness h(TreeConfig{enforce});
    EXPECT_EQ(h.tree.config().enforce_quota, enforce);
    h.create("/h");
    h.set_quota("/h", "count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=2");
    h.create("/h/a", "12");
    const std::uint64_t digest = h.tree.digest();
    ApplyResult r = h.apply(CreateOp{"/h/b", std::nullopt, open_acl_unsafe()});
    EXPECT_EQ(r.err, enforce ? ErrorCode::QuotaExceeded : ErrorCode::Ok);
    ASSERT_EQ(r.quota.size(), 1u);
    EXPECT_EQ(r.quota[0].hard, true);
    EXPECT_EQ(r.quota[0].refused, enforce);
    if (enforce) {
      EXPECT_EQ(h.tree.digest(), digest) << "a refused create changed the tree";
      EXPECT_FALSE(h.tree.exists("/h/b").ok());
      EXPECT_EQ(h.apply(SetDataOp{"/h/a", std::string("1234567"), -1}).err,
                ErrorCode::QuotaExceeded);
      EXPECT_EQ(h.apply(SetDataOp{"/h/a", std::string("123456"), -1}).err, ErrorCode::Ok);
      // Deletes are never refused.
      EXPECT_EQ(h.apply(DeleteOp{"/h/a", -1}).err, ErrorCode::Ok);
    }
    EXPECT_EQ(h.stats("/h"), h.recount("/h"));
  }
}

// Byte 8 holds the format version; the trailer is a CRC of all before it.
std::string as_version(std::string snap, std::uint8_t version) {
  snap[8] = static_cast<char>(version);
  const std::uint32_t crc = crc32c(std::string_view(snap).substr(0, snap.size() - 4));
  for (int i = 0; i < 4; ++i)
    snap[snap.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  return snap;
}

TEST(Quota, SnapshotKeepsUsageAndVersionOneIsRecounted) {
  Harness h;
  h.create("/v", "abc");
  h.create("/v/a", "de");
  h.set_quota("/v", "count=10,bytes=-1");
  ASSERT_EQ(h.stats("/v"), "count=2,bytes=5");
  // A stats node that does not hold the true usage, as a snapshot written
  // before the tree kept usage has them.
  ASSERT_EQ(
      h.apply(SetDataOp{"/zookeeper/quota/v/zookeeper_stats", std::string("count=0,bytes=0"), -1})
          .err,
      ErrorCode::Ok);
  const std::string snap = h.tree.write_snapshot();
  EXPECT_EQ(static_cast<int>(snap[8]), 2);

  auto same = DataTree::read_snapshot(snap);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->digest(), h.tree.digest());
  EXPECT_EQ(std::string(*same->get_data("/zookeeper/quota/v/zookeeper_stats", Caller{})->data),
            "count=0,bytes=0");
  // The loaded tree keeps counting from what it holds.
  Harness next;
  next.tree = std::move(same).value();
  next.create("/v/b");
  EXPECT_EQ(next.stats("/v"), "count=1,bytes=0");

  auto old = DataTree::read_snapshot(as_version(snap, 1));
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  EXPECT_EQ(std::string(*old->get_data("/zookeeper/quota/v/zookeeper_stats", Caller{})->data),
            "count=2,bytes=5");
  EXPECT_NE(old->digest(), h.tree.digest());
  // Once written again it is a version 2 snapshot that loads as it is.
  auto again = DataTree::read_snapshot(old->write_snapshot());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest(), old->digest());
}

TEST(Quota, TreesWithoutQuotasAreUntouched) {
  // The quota machinery must not move the digest of a tree that has none,
  // nor of one whose quota nodes name no subtree.
  Harness a;
  Harness b;
  for (Harness* h : {&a, &b}) {
    h->create("/x", "1");
    h->create("/x/y", "22");
  }
  b.create("/zookeeper/quota/zookeeper_limits", "count=1,bytes=1");
  b.create("/zookeeper/quota/zookeeper_stats", "count=0,bytes=0");
  EXPECT_EQ(b.stats(""), "count=0,bytes=0");
  ASSERT_EQ(b.apply(DeleteOp{"/zookeeper/quota/zookeeper_limits", -1}).err, ErrorCode::Ok);
  ASSERT_EQ(b.apply(DeleteOp{"/zookeeper/quota/zookeeper_stats", -1}).err, ErrorCode::Ok);
  for (Harness* h : {&a, &b}) {
    h->create("/x/z", "333");
    EXPECT_TRUE(h->apply(DeleteOp{"/x/z", -1}).quota.empty());
  }
  Harness c;
  c.tree = DataTree::read_snapshot(a.tree.write_snapshot()).value();
  EXPECT_EQ(c.tree.digest(), a.tree.digest());
}

}  // namespace
}  // namespace coord::znode
