// The connection's request ring (coordd/core/src/connection.h): FIFO order
// through wrap-around and growth, and no memory held once released.
#include <gtest/gtest.h>

#include <vector>

#include "connection.h"

namespace coord::core {
namespace {

Item item(std::uint64_t seq) {
  Item i;
  i.seq = seq;
  i.reply.assign(100, static_cast<std::uint8_t>(seq));
  return i;
}

std::vector<std::uint64_t> seqs(const ItemQueue& q) {
  std::vector<std::uint64_t> out;
  for (const Item& i : q)
    out.push_back(i.seq);
  return out;
}

TEST(ItemQueue, HoldsNothingUntilTheFirstRequest) {
  ItemQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
  EXPECT_EQ(q.begin(), q.end());
  q.release_if_empty();
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(ItemQueue, KeepsArrivalOrderThroughWrapAroundAndGrowth) {
  ItemQueue q;
  std::uint64_t next = 1;
  std::uint64_t expect_front = 1;
  // Interleave pushes and pops so the head wraps several times, then grow
  // while wrapped.
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 3; ++k)
      q.push_back(item(next++));
    for (int k = 0; k < 2; ++k) {
      ASSERT_EQ(q.front().seq, expect_front);
      ASSERT_EQ(q.front().reply.front(), static_cast<std::uint8_t>(expect_front));
      ++expect_front;
      q.pop_front();
    }
  }
  ASSERT_EQ(q.size(), 50u);
  std::vector<std::uint64_t> want;
  for (std::uint64_t s = expect_front; s < next; ++s)
    want.push_back(s);
  EXPECT_EQ(seqs(q), want);
  EXPECT_EQ(q.back().seq, next - 1);
  EXPECT_GE(q.capacity(), 50u);
  // Still full: release keeps it.
  q.release_if_empty();
  EXPECT_EQ(q.size(), 50u);
  EXPECT_EQ(seqs(q), want);
}

TEST(ItemQueue, ReleaseGivesTheRingBackOnceEmpty) {
  ItemQueue q;
  for (std::uint64_t s = 1; s <= 9; ++s)
    q.push_back(item(s));
  EXPECT_EQ(q.capacity(), 16u);
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 16u);  // a busy connection keeps its ring
  q.release_if_empty();
  EXPECT_EQ(q.capacity(), 0u);
  q.push_back(item(10));
  EXPECT_EQ(q.capacity(), 4u);
  EXPECT_EQ(seqs(q), std::vector<std::uint64_t>{10});
}

TEST(ItemQueue, MutableIterationChangesItemsInPlace) {
  ItemQueue q;
  for (std::uint64_t s = 1; s <= 5; ++s)
    q.push_back(item(s));
  q.pop_front();
  for (Item& i : q)
    i.state = ItemState::Done;
  for (const Item& i : q)
    EXPECT_EQ(i.state, ItemState::Done);
  EXPECT_EQ(q.front().seq, 2u);
}

}  // namespace
}  // namespace coord::core
