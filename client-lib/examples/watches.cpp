// Watches with libcoord: a one-shot data watch re-armed on every event, a
// persistent recursive watch over a subtree, and the state changes that
// tell a program when to re-read what it watches.
//
//   coord-client-watches 127.0.0.1:2181
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "coord/client-lib/client.h"

namespace {

// Counts events and lets main wait for them. Watchers run on the client's
// event thread, one at a time.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  int seen = 0;
  void note(const char* who, const coord::WatchEvent& ev) {
    std::printf("%s: %s %s\n", who, std::string(coord::event_type_name(ev.type)).c_str(),
                ev.path.c_str());
    std::lock_guard lock(mu);
    ++seen;
    cv.notify_all();
  }
  bool wait(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen >= n; });
  }
};

// A one-shot watch fires once; re-arming it from its own watcher needs the
// asynchronous form (a blocking call from a callback returns ApiError).
void watch_config(coord::Client& c, Events& events) {
  c.submit(coord::ops::GetData{"/example-config",
                               [&c, &events](const coord::WatchEvent& ev) {
                                 events.note("config", ev);
                                 if (ev.type == coord::EventType::NodeDataChanged) {
                                   watch_config(c, events);
                                 }
                               }},
           [](coord::Result<coord::DataResult> r) {
             if (r.ok() && r->data) std::printf("config is now %s\n", r->data->c_str());
           });
}

}  // namespace

int main(int argc, char** argv) {
  coord::ClientOptions options;
  options.servers = argc > 1 ? argv[1] : "127.0.0.1:2181";
  // Disconnected -> Connected: one-shot watches were re-registered (and
  // fired if their node changed meanwhile), but persistent watches missed
  // the changes made while away: re-read here what matters.
  options.on_state = [](coord::SessionState s) {
    std::printf("state %s\n", std::string(coord::session_state_name(s)).c_str());
  };
  auto client = coord::Client::start(options);
  if (!client.ok() || !(*client)->wait_connected(std::chrono::seconds(10)).ok()) {
    std::fprintf(stderr, "cannot connect to %s\n", options.servers.c_str());
    return 1;
  }
  coord::Client& c = **client;
  Events events;
  (void)c.create("/example-config", std::string("v1"));
  (void)c.create("/example-tree", std::nullopt);

  watch_config(c, events);
  auto added = c.run(
      coord::ops::AddWatch{"/example-tree", coord::AddWatchMode::PersistentRecursive,
                           [&events](const coord::WatchEvent& ev) { events.note("tree", ev); }});
  if (!added.ok()) {
    std::fprintf(stderr, "addWatch: %s\n", added.status().to_string().c_str());
    return 1;
  }
  (void)c.run(coord::ops::Sync{"/example-config"});  // the first read is answered

  (void)c.set_data("/example-config", std::string("v2"));  // config event, re-armed
  (void)c.set_data("/example-config", std::string("v3"));  // config event again, or v3 is read
  (void)c.create("/example-tree/a", std::nullopt);         // tree: NodeCreated
  (void)c.create("/example-tree/a/b", std::nullopt);       // tree: NodeCreated (recursive)
  // Three events at least: v3 may land before the watch is re-armed, and
  // then the re-armed read sees v3 without a second event (one-shot
  // watches collapse changes between reads).
  const bool ok = events.wait(3);

  (void)c.run(coord::ops::RemoveWatches{"/example-tree", coord::WatcherType::Any});
  (void)c.remove("/example-tree/a/b");
  (void)c.remove("/example-tree/a");
  (void)c.remove("/example-tree");
  (void)c.remove("/example-config");
  return ok && c.close().ok() ? 0 : 1;
}
