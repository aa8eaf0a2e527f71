// A first libcoord program: connect, create a node, read it back with a
// watch, change it, and see the watch fire.
//
//   coord-client-example 127.0.0.1:2181
#include <cstdio>
#include <future>

#include "coord/client-lib/client.h"

int main(int argc, char** argv) {
  coord::ClientOptions options;
  options.servers = argc > 1 ? argv[1] : "127.0.0.1:2181";
  auto client = coord::Client::start(options);
  if (!client.ok()) {
    std::fprintf(stderr, "bad options: %s\n", client.status().to_string().c_str());
    return 2;
  }
  coord::Client& c = **client;
  if (auto s = c.wait_connected(std::chrono::seconds(10)); !s.ok()) {
    std::fprintf(stderr, "cannot connect: %s\n", s.to_string().c_str());
    return 1;
  }
  auto created =
      c.create("/coord-example-", std::string("hello"), coord::CreateMode::EphemeralSequential);
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().to_string().c_str());
    return 1;
  }
  std::promise<coord::WatchEvent> fired;
  auto data = c.get_data(*created, [&fired](const coord::WatchEvent& ev) { fired.set_value(ev); });
  std::printf("%s = %s\n", created->c_str(), data.ok() && data->data ? data->data->c_str() : "?");
  (void)c.set_data(*created, std::string("world"));
  const coord::WatchEvent ev = fired.get_future().get();
  std::printf("event %s on %s\n", std::string(coord::event_type_name(ev.type)).c_str(),
              ev.path.c_str());
  return c.close().ok() ? 0 : 1;
}
