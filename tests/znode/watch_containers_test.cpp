// The watch index's containers (znode/src/watch_containers.h) against
// standard containers under long random sequences of operations: RegList
// as a sorted vector of registrations, PointerSet as a std::set of
// pointers, PathTable as a std::map of paths, through growth, shrinking
// and the moves between inline and heap forms; and the WatchIndex built
// of them against a map of (path, watcher) pairs, at thousands of paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coord/base/random.h"
#include "watch_containers.h"
#include "watches.h"

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
  PointerSet<const std::string> set;
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
  PointerSet<const std::string> set;
  for (const auto& k : keys)
    set.insert(&k);
  int calls = 0;
  EXPECT_FALSE(set.visit([&](const std::string*) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

TEST(PathTable, MatchesAStdMapThroughGrowthAndShrinking) {
  Random rnd(23);
  // Paths of every length from 1 to 40 bytes (entries shorter and longer
  // than the struct's padding), some prefixes of others.
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < 4000; ++i) {
    std::string p = "/" + std::to_string(i * 7919 % 100003);
    p.resize(1 + i % 40, 'x');
    paths.push_back(p);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  PathTable table;
  std::map<std::string, WatchedPath*> model;
  for (int round = 0; round < 6; ++round) {
    const std::size_t target = rnd.below(paths.size()) + 1;
    for (int step = 0; step < 8000; ++step) {
      const std::string& p = paths[rnd.below(paths.size())];
      const bool grow = step < 5000 ? model.size() < target : false;
      WatchedPath* found = table.find(p);
      auto m = model.find(p);
      ASSERT_EQ(found, m == model.end() ? nullptr : m->second) << p;
      if (grow && found == nullptr) {
        WatchedPath* e = table.insert(p);
        ASSERT_EQ(e->path(), p);
        ASSERT_TRUE(e->regs.empty());
        // What the index keeps in the entry stays where it was put.
        e->regs.insert(0, Reg{static_cast<WatcherId>(p.size()), 1});
        model.emplace(p, e);
      } else if (!grow && found != nullptr) {
        table.erase(found);
        model.erase(m);
      }
      ASSERT_EQ(table.size(), model.size());
    }
    // Room for every member at no more than 7/8 load, and not more than
    // 16 times what they need once most have left.
    EXPECT_GE(table.capacity() * 7, table.size() * 8);
    if (table.size() > 8) {
      EXPECT_LE(table.capacity(), table.size() * 16);
    }
    for (const std::string& p : paths) {
      auto m = model.find(p);
      ASSERT_EQ(table.find(p), m == model.end() ? nullptr : m->second) << p;
    }
    std::map<std::string, WatchedPath*> seen;
    table.visit([&](WatchedPath* e) {
      EXPECT_TRUE(seen.emplace(std::string(e->path()), e).second);
      EXPECT_EQ(e->regs.get(0).watcher, static_cast<WatcherId>(e->len));
      return true;
    });
    EXPECT_EQ(seen, model);
  }
  for (auto& [p, e] : model)
    table.erase(e);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(table.find(paths[0]), nullptr);
}

TEST(PathTable, TheEmptyPathAndPathsOfManyKilobytes) {
  PathTable table;
  const std::string big(70000, 'b');
  WatchedPath* e = table.insert("");
  WatchedPath* b = table.insert("/" + big);
  EXPECT_EQ(table.find(""), e);
  EXPECT_EQ(table.find("/" + big), b);
  EXPECT_EQ(b->path(), "/" + big);
  EXPECT_EQ(table.find("/" + big.substr(1)), nullptr);
  // Entries still held are freed with the table (the sanitizer build
  // reports a leak otherwise).
}

// Many paths, several watchers each, some paths shared: registrations
// come and go by remove, by firing and by whole watchers, and the index
// always holds exactly the model's pairs, every path stored once.
TEST(WatchIndex, ThousandsOfPathsAndWatchersMatchAMap) {
  Random rnd(5);
  WatchIndex index;
  std::map<std::pair<std::string, WatcherId>, std::uint8_t> model;  // data-side one-shots
  std::vector<std::string> paths;
  for (int i = 0; i < 3000; ++i)
    paths.push_back("/cache/n" + std::to_string(1000000 + i));
  auto check = [&] {
    std::set<std::string> model_paths;
    std::map<WatcherId, std::size_t> per_watcher;
    for (const auto& [key, bits] : model) {
      model_paths.insert(key.first);
      ++per_watcher[key.second];
    }
    ASSERT_EQ(index.count(), model.size());
    ASSERT_EQ(index.paths(), model_paths.size());
    ASSERT_EQ(index.watchers(), per_watcher.size());
    std::size_t seen = 0;
    index.for_each([&](WatcherId w, std::string_view p, WatchKind k) {
      EXPECT_EQ(k, WatchKind::Data);
      EXPECT_EQ(model.count({std::string(p), w}), 1u) << p << " " << w;
      ++seen;
    });
    EXPECT_EQ(seen, model.size());
    std::map<WatcherId, std::size_t> visited;
    index.visit_by_watcher([&](WatcherId w, std::string_view) {
      ++visited[w];
      return true;
    });
    EXPECT_EQ(visited, per_watcher);
  };
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < 20000; ++k) {
      const std::string& p = paths[rnd.below(paths.size())];
      const WatcherId w = 1 + rnd.below(40);
      ASSERT_TRUE(index.add(w, p, WatchKind::Data).ok());
      model[{p, w}] = WatchIndex::kData;
    }
    check();
    for (int k = 0; k < 8000; ++k) {
      const std::string& p = paths[rnd.below(paths.size())];
      const WatcherId w = 1 + rnd.below(40);
      ASSERT_EQ(index.remove(w, p, WatchIndex::kData), model.erase({p, w}) == 1);
    }
    check();
    // A change to a path fires each of its watchers once and drops them.
    std::vector<WatchEvent> out;
    for (int k = 0; k < 1000; ++k) {
      const std::string& p = paths[rnd.below(paths.size())];
      out.clear();
      index.trigger_data(p, EventType::NodeDataChanged, Zxid(k + 1), out, nullptr);
      std::vector<WatcherId> expected;
      for (auto it = model.lower_bound({p, 0}); it != model.end() && it->first.first == p;) {
        expected.push_back(it->first.second);
        it = model.erase(it);
      }
      std::vector<WatcherId> got;
      for (const WatchEvent& e : out) {
        EXPECT_EQ(e.path, p);
        got.push_back(e.watcher);
      }
      ASSERT_EQ(got, expected) << p;
    }
    check();
    // Whole watchers leave (a connection closing).
    for (int k = 0; k < 10; ++k) {
      const WatcherId w = 1 + rnd.below(40);
      index.remove_watcher(w);
      for (auto it = model.begin(); it != model.end();) {
        it = it->first.second == w ? model.erase(it) : std::next(it);
      }
    }
    check();
  }
  for (WatcherId w = 1; w <= 40; ++w)
    index.remove_watcher(w);
  model.clear();
  check();
  EXPECT_TRUE(index.empty());
}

}  // namespace
}  // namespace coord::znode::detail
