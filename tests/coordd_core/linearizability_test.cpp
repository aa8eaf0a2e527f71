// The linearizability checker on hand-made histories: ones that are
// linearizable (sequential, overlapping, explained only by an op whose
// outcome is unknown) and ones that are not (a stale read, a lost write, a
// version that skips, two creates that both succeed), plus a search that
// passes its bound and must say Unknown rather than pass.

#include "linearizability.h"

#include <gtest/gtest.h>

namespace coord::testing::lin {
namespace {

Op create(std::string data, std::uint64_t call, std::uint64_t ret, Outcome o = Outcome::Ok) {
  Op op;
  op.key = "/k";
  op.kind = Kind::Create;
  op.data = std::move(data);
  op.outcome = o;
  op.call = call;
  op.ret = o == Outcome::Unknown ? never : ret;
  return op;
}

Op set(std::string data, std::int32_t new_version, std::uint64_t call, std::uint64_t ret,
       Outcome o = Outcome::Ok, std::int32_t expected = -1) {
  Op op;
  op.key = "/k";
  op.kind = Kind::Set;
  op.data = std::move(data);
  op.version = new_version;
  op.expected_version = expected;
  op.outcome = o;
  op.call = call;
  op.ret = o == Outcome::Unknown ? never : ret;
  return op;
}

Op del(std::uint64_t call, std::uint64_t ret, Outcome o = Outcome::Ok, std::int32_t expected = -1) {
  Op op;
  op.key = "/k";
  op.kind = Kind::Delete;
  op.expected_version = expected;
  op.outcome = o;
  op.call = call;
  op.ret = o == Outcome::Unknown ? never : ret;
  return op;
}

Op read(std::string data, std::int32_t version, std::uint64_t call, std::uint64_t ret) {
  Op op;
  op.key = "/k";
  op.kind = Kind::Read;
  op.data = std::move(data);
  op.version = version;
  op.call = call;
  op.ret = ret;
  return op;
}

Op read_none(std::uint64_t call, std::uint64_t ret) {
  Op op = read("", 0, call, ret);
  op.outcome = Outcome::NoNode;
  return op;
}

Verdict verdict(const std::vector<Op>& h, const Limits& limits = {}) {
  return check(h, limits).verdict;
}

TEST(Linearizability, EmptyAndSequentialHistoriesPass) {
  EXPECT_EQ(verdict({}), Verdict::Linearizable);
  EXPECT_EQ(verdict({read_none(1, 2), create("a", 3, 4), read("a", 0, 5, 6), set("b", 1, 7, 8),
                     read("b", 1, 9, 10), set("c", 2, 11, 12, Outcome::Ok, 1),
                     set("d", 0, 13, 14, Outcome::BadVersion, 1), del(15, 16, Outcome::Ok, 2),
                     read_none(17, 18), del(19, 20, Outcome::NoNode),
                     set("e", 0, 21, 22, Outcome::NoNode), create("f", 23, 24),
                     create("g", 25, 26, Outcome::NodeExists), read("f", 0, 27, 28)}),
            Verdict::Linearizable);
}

TEST(Linearizability, OverlappingOpsMayTakeEitherOrder) {
  // The read overlaps the set: it may see the value before or after it.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 1, 3, 10), read("a", 0, 4, 5)}),
            Verdict::Linearizable);
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 1, 3, 10), read("b", 1, 4, 5)}),
            Verdict::Linearizable);
  // Two overlapping creates: exactly one wins, whichever.
  EXPECT_EQ(
      verdict({create("a", 1, 10), create("b", 2, 9, Outcome::NodeExists), read("a", 0, 11, 12)}),
      Verdict::Linearizable);
  EXPECT_EQ(
      verdict({create("a", 1, 10, Outcome::NodeExists), create("b", 2, 9), read("b", 0, 11, 12)}),
      Verdict::Linearizable);
}

TEST(Linearizability, StaleReadAfterAcknowledgedWriteFails) {
  const Result r = check({create("a", 1, 2), set("b", 1, 3, 4), read("a", 0, 5, 6)});
  EXPECT_EQ(r.verdict, Verdict::NotLinearizable);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_NE(r.keys[0].explanation.find("read /k"), std::string::npos) << r.keys[0].explanation;
}

TEST(Linearizability, LostWriteFails) {
  // Acknowledged before the read began, yet the node is not there.
  EXPECT_EQ(verdict({create("a", 1, 2), read_none(3, 4)}), Verdict::NotLinearizable);
  // A read that sees a value nobody wrote.
  EXPECT_EQ(verdict({create("a", 1, 2), read("zz", 0, 3, 4)}), Verdict::NotLinearizable);
}

TEST(Linearizability, VersionsMustFollowEachOther) {
  // A set answered with a version that skips one.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 2, 3, 4)}), Verdict::NotLinearizable);
  // A conditional set that succeeded against a version the node never had.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 1, 3, 4, Outcome::Ok, 5)}),
            Verdict::NotLinearizable);
  // BadVersion although the expected version was the node's.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 1, 3, 4, Outcome::BadVersion, 0)}),
            Verdict::NotLinearizable);
  // Recreated after a delete: versions start over.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 1, 3, 4), del(5, 6), create("c", 7, 8),
                     read("c", 0, 9, 10)}),
            Verdict::Linearizable);
}

TEST(Linearizability, TwoCreatesCannotBothSucceed) {
  EXPECT_EQ(verdict({create("a", 1, 10), create("b", 2, 9)}), Verdict::NotLinearizable);
}

TEST(Linearizability, UnknownOutcomeMayHaveHappenedOrNot) {
  // The only explanation of "b" is the set whose connection was lost.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 0, 3, 0, Outcome::Unknown), read("b", 1, 5, 6)}),
            Verdict::Linearizable);
  // ... and it may as well never have happened.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 0, 3, 0, Outcome::Unknown), read("a", 0, 5, 6)}),
            Verdict::Linearizable);
  // It may take effect long after its call, between two later reads.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 0, 3, 0, Outcome::Unknown), read("a", 0, 5, 6),
                     read("b", 1, 7, 8)}),
            Verdict::Linearizable);
  // But once seen it cannot be undone.
  EXPECT_EQ(verdict({create("a", 1, 2), set("b", 0, 3, 0, Outcome::Unknown), read("b", 1, 5, 6),
                     read("a", 0, 7, 8)}),
            Verdict::NotLinearizable);
  // Nor can it happen before it was sent.
  EXPECT_EQ(verdict({create("a", 1, 2), read("b", 1, 3, 4), set("b", 0, 5, 0, Outcome::Unknown)}),
            Verdict::NotLinearizable);
  // An unknown delete explains a missing node.
  EXPECT_EQ(verdict({create("a", 1, 2), del(3, 0, Outcome::Unknown), read_none(5, 6)}),
            Verdict::Linearizable);
}

TEST(Linearizability, KeysAreCheckedApart) {
  std::vector<Op> h{create("a", 1, 2), read("a", 0, 3, 4)};
  Op other = read_none(5, 6);
  other.key = "/other";
  h.push_back(other);
  const Result r = check(h);
  EXPECT_EQ(r.verdict, Verdict::Linearizable);
  EXPECT_EQ(r.keys.size(), 2u);
  // A violation on one key is reported against that key.
  Op bad = read("zz", 0, 7, 8);
  bad.key = "/other";
  h.push_back(bad);
  const Result r2 = check(h);
  EXPECT_EQ(r2.verdict, Verdict::NotLinearizable);
  for (const auto& k : r2.keys) {
    EXPECT_EQ(k.verdict, k.key == "/other" ? Verdict::NotLinearizable : Verdict::Linearizable);
  }
}

TEST(Linearizability, SearchPastItsBoundIsUnknownNotPass) {
  // Many overlapping unknown sets and a final read no order explains: the
  // search must explore many orders, and a tiny bound stops it first.
  std::vector<Op> h{create("a", 1, 2)};
  for (int i = 0; i < 12; ++i) {
    h.push_back(
        set("w" + std::to_string(i), 0, 3 + static_cast<std::uint64_t>(i), 0, Outcome::Unknown));
  }
  h.push_back(read("nobody", 3, 100, 101));
  Limits tiny;
  tiny.steps_max = 50;
  const Result r = check(h, tiny);
  EXPECT_EQ(r.verdict, Verdict::Unknown);
  EXPECT_EQ(r.unknown_keys, 1u);
  // With room to search, the same history is found not linearizable.
  EXPECT_EQ(verdict(h), Verdict::NotLinearizable);
}

TEST(Linearizability, ConcurrentHistoryWithManyOverlapsIsDecided) {
  // Eight clients each create-or-fail and read, all overlapping: the
  // memoization keeps this to a small search.
  std::vector<Op> h;
  for (int i = 0; i < 8; ++i) {
    const auto t = static_cast<std::uint64_t>(i);
    h.push_back(create("c" + std::to_string(i), 1 + t, 100 + t,
                       i == 5 ? Outcome::Ok : Outcome::NodeExists));
    h.push_back(read("c5", 0, 50 + t, 200 + t));
  }
  const Result r = check(h);
  EXPECT_EQ(r.verdict, Verdict::Linearizable);
  EXPECT_LT(r.keys[0].steps, 10'000u);
}

}  // namespace
}  // namespace coord::testing::lin
