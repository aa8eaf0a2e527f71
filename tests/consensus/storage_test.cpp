// MemoryStorage: the contract the core reads through (LogStorage) and the
// writes the application makes from a Ready.

#include <gtest/gtest.h>

#include "coord/consensus/storage.h"

namespace coord::consensus {
namespace {

Entry e(std::uint64_t term, std::uint64_t index, std::string data = "x") {
  return Entry{Term(term), LogIndex(index), EntryType::Normal, std::move(data)};
}

std::vector<Entry> read(const MemoryStorage& s, std::uint64_t lo, std::uint64_t hi,
                        std::size_t max_bytes = SIZE_MAX) {
  std::vector<Entry> out;
  s.entries(LogIndex(lo), LogIndex(hi), max_bytes, out);
  return out;
}

TEST(MemoryStorage, FoundingMemberStartsWithTheBootstrapEntries) {
  ConfState conf{{NodeId(1), NodeId(2)}, {NodeId(3)}};
  MemoryStorage s(conf);
  EXPECT_EQ(s.first_index(), LogIndex(1));
  EXPECT_EQ(s.last_index(), LogIndex(3));
  EXPECT_EQ(s.hard_state(), (HardState{Term(1), NodeId(0), LogIndex(3)}));
  auto es = read(s, 1, 4);
  ASSERT_EQ(es.size(), 3u);
  EXPECT_EQ(ConfChange::decode(es[2].data).value(),
            (ConfChange{ConfChangeType::AddLearner, NodeId(3)}));
}

TEST(MemoryStorage, NewMemberStartsEmpty) {
  MemoryStorage s;
  EXPECT_EQ(s.first_index(), LogIndex(1));
  EXPECT_EQ(s.last_index(), LogIndex(0));
  EXPECT_EQ(s.term(LogIndex(0)), Term(0));
}

TEST(MemoryStorage, AppendReplacesTheStoredSuffix) {
  MemoryStorage s;
  s.append({e(1, 1), e(1, 2), e(1, 3)});
  s.append({e(2, 2, "y")});
  EXPECT_EQ(s.last_index(), LogIndex(2));
  EXPECT_EQ(s.term(LogIndex(2)), Term(2));
  EXPECT_EQ(read(s, 2, 3).at(0).data, "y");
}

TEST(MemoryStorage, EntriesStopAtTheByteLimitButReturnAtLeastOne) {
  MemoryStorage s;
  s.append({e(1, 1, "aaaa"), e(1, 2, "bbbb"), e(1, 3, "cccc")});
  EXPECT_EQ(read(s, 1, 4, 8).size(), 2u);
  EXPECT_EQ(read(s, 1, 4, 1).size(), 1u);
}

TEST(MemoryStorage, SnapshotThenCompactKeepsTheTermOfTheCompactionPoint) {
  MemoryStorage s;
  s.append({e(1, 1), e(2, 2), e(2, 3), e(3, 4)});
  ASSERT_TRUE(s.create_snapshot(LogIndex(3), ConfState{{NodeId(1)}, {}}, "state").ok());
  EXPECT_FALSE(s.compact(LogIndex(4)).ok()) << "compacted past the snapshot";
  ASSERT_TRUE(s.compact(LogIndex(2)).ok());
  EXPECT_EQ(s.first_index(), LogIndex(3));
  EXPECT_EQ(s.term(LogIndex(2)), Term(2));
  EXPECT_EQ(s.snapshot().meta.term, Term(2));
  EXPECT_EQ(s.snapshot().data, "state");
  EXPECT_FALSE(s.create_snapshot(LogIndex(3), {}, "again").ok()) << "not newer";
}

TEST(MemoryStorage, ApplySnapshotDropsTheLog) {
  MemoryStorage s;
  s.append({e(1, 1), e(1, 2)});
  Snapshot snap{SnapshotMeta{LogIndex(10), Term(4), ConfState{{NodeId(1)}, {}}}, "s"};
  ASSERT_TRUE(s.apply_snapshot(snap).ok());
  EXPECT_EQ(s.first_index(), LogIndex(11));
  EXPECT_EQ(s.last_index(), LogIndex(10));
  EXPECT_EQ(s.term(LogIndex(10)), Term(4));
  EXPECT_EQ(s.hard_state().commit, LogIndex(10));
  Snapshot older{SnapshotMeta{LogIndex(5), Term(3), {}}, "old"};
  EXPECT_FALSE(s.apply_snapshot(older).ok());
}

TEST(ConfChange, AppliesOneServerAtATime) {
  ConfState c{{NodeId(1)}, {}};
  c = ConfChange{ConfChangeType::AddLearner, NodeId(2)}.apply_to(c).value();
  EXPECT_TRUE(c.is_learner(NodeId(2)));
  EXPECT_FALSE((ConfChange{ConfChangeType::AddVoter, NodeId(2)}.apply_to(c).ok()));
  c = ConfChange{ConfChangeType::PromoteLearner, NodeId(2)}.apply_to(c).value();
  EXPECT_TRUE(c.is_voter(NodeId(2)));
  c = ConfChange{ConfChangeType::RemoveVoter, NodeId(1)}.apply_to(c).value();
  EXPECT_EQ(c.voters, std::vector<NodeId>{NodeId(2)});
  EXPECT_FALSE((ConfChange{ConfChangeType::RemoveVoter, NodeId(2)}.apply_to(c).ok()))
      << "removed the last voter";
  EXPECT_FALSE(ConfChange::decode("short").ok());
}

}  // namespace
}  // namespace coord::consensus
