// The watch index's containers (znode/src/watch_containers.h) against
// standard containers under long random sequences of operations: RegList
// as a sorted vector of registrations, KeySet as a std::set of pointers,
// through growth, shrinking and the moves between inline and heap forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "coord/base/random.h"
#include "watch_containers.h"

namespace coord::znode::detail {
namespace {

void expect_same(const RegList& list, const std::vector<Reg>& model) {
  ASSERT_EQ(list.size(), model.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    EXPECT_EQ(list.get(i).watcher, model[i].watcher) << i;
    EXPECT_EQ(list.get(i).bits, model[i].bits) << i;
  }
}

TEST(RegList, MatchesASortedVectorThroughInlineAndHeapForms) {
  Random rnd(7);
  RegList list;
  std::vector<Reg> model;
  for (int step = 0; step < 20000; ++step) {
    // Few watchers, so lists often fall back to one or none.
    const WatcherId w = rnd.below(step % 2000 < 1000 ? 3 : 40) + 1;
    auto pos = std::lower_bound(model.begin(), model.end(), w,
                                [](const Reg& r, WatcherId x) { return r.watcher < x; });
    const std::size_t at = static_cast<std::size_t>(pos - model.begin());
    ASSERT_EQ(list.lower_bound(w), at);
    const bool present = pos != model.end() && pos->watcher == w;
    ASSERT_EQ(list.find(w), present ? at : list.size());
    switch (rnd.below(3)) {
      case 0:
        if (!present) {
          const Reg r{w, static_cast<std::uint8_t>(rnd.below(127) + 1)};
          list.insert(at, r);
          model.insert(pos, r);
        }
        break;
      case 1:
        if (present) {
          list.erase(at);
          model.erase(pos);
        }
        break;
      default:
        if (present) {
          const auto bits = static_cast<std::uint8_t>(rnd.below(127) + 1);
          list.set_bits(at, bits);
          pos->bits = bits;
        }
    }
    expect_same(list, model);
  }
}

TEST(RegList, MovesKeepTheRegistrations) {
  RegList a;
  for (WatcherId w = 1; w <= 9; ++w)
    a.insert(a.size(), Reg{w, static_cast<std::uint8_t>(w)});
  RegList b(std::move(a));
  EXPECT_EQ(b.size(), 9u);
  RegList c;
  c.insert(0, Reg{100, 1});
  c = std::move(b);
  ASSERT_EQ(c.size(), 9u);
  EXPECT_EQ(c.get(8).watcher, 9u);
  RegList one;
  one.insert(0, Reg{5, 3});
  RegList d(std::move(one));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.get(0).watcher, 5u);
  EXPECT_EQ(d.get(0).bits, 3u);
}

TEST(KeySet, MatchesAStdSetThroughGrowthAndShrinking) {
  Random rnd(11);
  std::vector<std::string> keys(3000);
  for (std::size_t i = 0; i < keys.size(); ++i)
    keys[i] = "/k" + std::to_string(i);
  KeySet set;
  std::set<const std::string*> model;
  for (int round = 0; round < 6; ++round) {
    // Fill toward a random size, then drain most of it: both directions
    // cross several capacities.
    const std::size_t target = rnd.below(keys.size()) + 1;
    for (int step = 0; step < 6000; ++step) {
      const std::string* k = &keys[rnd.below(keys.size())];
      const bool grow = step < 4000 ? model.size() < target : false;
      if (grow) {
        ASSERT_EQ(set.insert(k), model.insert(k).second);
      } else {
        ASSERT_EQ(set.erase(k), model.erase(k) == 1);
      }
      ASSERT_EQ(set.size(), model.size());
    }
    for (const std::string& k : keys)
      ASSERT_EQ(set.contains(&k), model.count(&k) == 1);
    std::set<const std::string*> seen;
    set.visit([&](const std::string* k) {
      EXPECT_TRUE(seen.insert(k).second);
      return true;
    });
    EXPECT_EQ(seen, model);
  }
  for (const std::string& k : keys)
    set.erase(&k);
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.contains(&keys[0]));
}

TEST(KeySet, VisitStopsWhenAsked) {
  std::vector<std::string> keys{"/a", "/b", "/c"};
  KeySet set;
  for (const auto& k : keys)
    set.insert(&k);
  int calls = 0;
  EXPECT_FALSE(set.visit([&](const std::string*) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace coord::znode::detail
