// The client's watch bookkeeping against ZooKeeper's trigger rules (docs/PROTOCOL.md §8).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coord/client-lib/watch_table.h"

namespace coord {
namespace {

// A watcher that appends its name to a log when called.
struct Log {
  std::vector<std::string> calls;
  Watcher named(std::string name) {
    return [this, name](const WatchEvent&) { calls.push_back(name); };
  }
  void fire(const std::vector<Watcher>& ws) {
    for (const auto& w : ws)
      w(WatchEvent{});
  }
};

TEST(WatchTable, OneShotWatchesFireOnceByKind) {
  WatchTable t;
  Log log;
  t.add(WatchKind::Data, "/a", log.named("data"));
  t.add(WatchKind::Exist, "/b", log.named("exist"));
  t.add(WatchKind::Child, "/a", log.named("child"));
  log.fire(t.trigger(EventType::NodeDataChanged, "/a"));
  EXPECT_EQ(log.calls, (std::vector<std::string>{"data"}));
  log.fire(t.trigger(EventType::NodeDataChanged, "/a"));
  EXPECT_EQ(log.calls.size(), 1u) << "one-shot watches are removed when they fire";
  log.fire(t.trigger(EventType::NodeCreated, "/b"));
  log.fire(t.trigger(EventType::NodeChildrenChanged, "/a"));
  EXPECT_EQ(log.calls, (std::vector<std::string>{"data", "exist", "child"}));
  EXPECT_TRUE(t.empty());
}

TEST(WatchTable, DeleteFiresDataExistAndChildWatches) {
  WatchTable t;
  Log log;
  t.add(WatchKind::Data, "/a", log.named("data"));
  t.add(WatchKind::Child, "/a", log.named("child"));
  t.add(WatchKind::Child, "/", log.named("parent"));
  log.fire(t.trigger(EventType::NodeDeleted, "/a"));
  EXPECT_EQ(log.calls, (std::vector<std::string>{"data", "child"}));
  EXPECT_EQ(t.size(), 1u);
}

TEST(WatchTable, PersistentAndRecursive) {
  WatchTable t;
  Log log;
  t.add(WatchKind::Persistent, "/p", log.named("p"));
  t.add(WatchKind::PersistentRecursive, "/r", log.named("r"));
  t.add(WatchKind::PersistentRecursive, "/", log.named("root"));
  log.fire(t.trigger(EventType::NodeChildrenChanged, "/p"));
  log.fire(t.trigger(EventType::NodeDataChanged, "/p"));
  EXPECT_EQ(log.calls, (std::vector<std::string>{"p", "p", "root"}));
  log.calls.clear();
  log.fire(t.trigger(EventType::NodeCreated, "/r/x/y"));
  EXPECT_EQ(log.calls, (std::vector<std::string>{"r", "root"}));
  log.calls.clear();
  log.fire(t.trigger(EventType::NodeChildrenChanged, "/r"));
  EXPECT_TRUE(log.calls.empty()) << "recursive watches never see NodeChildrenChanged";
  EXPECT_EQ(t.size(), 3u) << "persistent watches stay";
}

TEST(WatchTable, RemoveByTypeReportsTheLocalEvent) {
  WatchTable t;
  Log log;
  t.add(WatchKind::Data, "/a", log.named("data"));
  t.add(WatchKind::Child, "/a", log.named("child"));
  t.add(WatchKind::Persistent, "/a", log.named("p"));
  EXPECT_TRUE(t.contains("/a", WatcherType::Children));
  auto removed = t.remove("/a", WatcherType::Children);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].second, EventType::ChildWatchRemoved);
  EXPECT_FALSE(t.contains("/a", WatcherType::Children));
  auto rest = t.remove("/a", WatcherType::Any);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].second, EventType::DataWatchRemoved);
  EXPECT_EQ(rest[1].second, EventType::PersistentWatchRemoved);
  EXPECT_TRUE(t.empty());
}

TEST(WatchTable, PathsForSetWatches) {
  WatchTable t;
  t.add(WatchKind::Data, "/d", [](const WatchEvent&) {});
  t.add(WatchKind::Exist, "/e", [](const WatchEvent&) {});
  t.add(WatchKind::Child, "/c", [](const WatchEvent&) {});
  t.add(WatchKind::PersistentRecursive, "/r", [](const WatchEvent&) {});
  const auto p = t.paths();
  EXPECT_EQ(p.data, std::vector<std::string>{"/d"});
  EXPECT_EQ(p.exist, std::vector<std::string>{"/e"});
  EXPECT_EQ(p.child, std::vector<std::string>{"/c"});
  EXPECT_TRUE(p.persistent.empty());
  EXPECT_EQ(p.persistent_recursive, std::vector<std::string>{"/r"});
}

}  // namespace
}  // namespace coord
