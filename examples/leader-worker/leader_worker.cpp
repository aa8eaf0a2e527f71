// leader-worker: N processes elect a leader; every other process registers
// itself as a worker; the leader keeps a live list of the workers.
//
//   leader-worker -s SERVERS --id ID --address HOST:PORT
//                 [--election /leader-worker/election] [--registry /service_registry]
//
// Each process runs for leadership (coord::LeaderElection, predecessor
// watches). A process that is not the leader registers itself as an
// instance of the service "workers" under the registry path
// (coord::ServiceRegistry: an ephemeral znode holding its address). The
// leader withdraws its own registration and follows the registry
// (coord::ServiceDiscovery) to keep the list of workers it would hand tasks
// to. Kill the leader and the next process takes over, withdraws itself and
// picks up the list; a restarted old leader rejoins as a worker. SIGTERM or
// SIGINT stops the process (it leaves the election and deregisters).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "coord/election/leader_election.h"
#include "coord/registry/service_registry.h"

namespace {

using std::chrono::milliseconds;

void say(const std::string& id, const std::string& what) {
  std::printf("[%s] %s\n", id.c_str(), what.c_str());
  std::fflush(stdout);
}

struct Args {
  std::string servers, id, address, election = "/leader-worker/election",
                                    registry = "/service_registry";
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "-s") {
      a.servers = v;
    } else if (k == "--id") {
      a.id = v;
    } else if (k == "--address") {
      a.address = v;
    } else if (k == "--election") {
      a.election = v;
    } else if (k == "--registry") {
      a.registry = v;
    } else {
      std::fprintf(stderr, "leader-worker: unknown argument %s\n", k.c_str());
      return 2;
    }
  }
  const auto colon = a.address.rfind(':');
  if (a.servers.empty() || a.id.empty() || colon == std::string::npos) {
    std::fprintf(stderr,
                 "usage: leader-worker -s SERVERS --id ID --address HOST:PORT "
                 "[--election PATH] [--registry PATH]\n");
    return 2;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  coord::ClientOptions o;
  o.servers = a.servers;
  o.session_timeout = milliseconds(4000);
  auto mc = coord::ManagedClient::start(o);
  if (!mc.ok() || !(*mc)->wait_connected(milliseconds(30'000)).ok()) {
    std::fprintf(stderr, "leader-worker: cannot reach %s\n", a.servers.c_str());
    return 1;
  }
  auto registry = coord::ServiceRegistry::start(**mc, a.registry);
  if (!registry.ok()) return 2;

  coord::ServiceInstance me;
  me.name = "workers";
  me.id = a.id;
  me.address = a.address.substr(0, colon);
  me.port = std::atoi(a.address.c_str() + colon + 1);

  // What this process is, changed only by the main thread.
  std::unique_ptr<coord::ServiceDiscovery> workers;
  bool registered = false;
  auto become_worker = [&] {
    workers.reset();
    if (!registered && (*registry)->register_instance(me).ok()) {
      registered = true;
      say(a.id, "registered as a worker at " + a.address);
    }
  };
  auto become_leader = [&](std::int64_t token) {
    if (registered) {
      (void)(*registry)->unregister(me.name, me.id);
      registered = false;
    }
    say(a.id, "leading (token " + std::to_string(token) + "); withdrew my registration");
    coord::DiscoveryOptions d;
    d.base_path = a.registry;
    d.name = "workers";
    const std::string id = a.id;
    d.on_change = [id](const std::vector<coord::ServiceInstance>& list) {
      std::string line = "workers (" + std::to_string(list.size()) + "):";
      for (const auto& w : list)
        line += " " + w.id + "@" + w.address + ":" + std::to_string(w.port.value_or(0));
      say(id, line);
    };
    auto s = coord::ServiceDiscovery::start(**mc, d);
    if (s.ok()) workers = std::move(*s);
  };

  // Election events are handed to the main thread, which owns the role.
  std::mutex mu;
  std::vector<coord::LeadershipEvent> inbox;
  coord::ElectionOptions eo;
  eo.path = a.election;
  eo.id = a.id;
  eo.on_event = [&](const coord::LeadershipEvent& ev) {
    std::lock_guard lock(mu);
    inbox.push_back(ev);
  };
  auto election = coord::LeaderElection::start(**mc, eo);
  if (!election.ok()) return 2;
  become_worker();

  std::string last_leader;
  for (;;) {
    timespec ts{0, 100'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &ts) > 0) break;
    std::vector<coord::LeadershipEvent> events;
    {
      std::lock_guard lock(mu);
      events.swap(inbox);
    }
    for (const auto& ev : events) {
      if (ev.kind == coord::LeadershipEventKind::Elected) {
        become_leader(ev.token);
      } else if (ev.kind == coord::LeadershipEventKind::Revoked ||
                 ev.kind == coord::LeadershipEventKind::Suspended) {
        say(a.id, std::string("leadership ") +
                      (ev.kind == coord::LeadershipEventKind::Revoked ? "lost" : "uncertain") +
                      "; back to work");
        become_worker();
      } else if (ev.kind == coord::LeadershipEventKind::Waiting) {
        auto l = (*election)->leader();
        const std::string who = l.ok() && *l ? (*l)->id : "?";
        if (who != last_leader) {
          last_leader = who;
          say(a.id, "worker; the leader is " + who);
        }
      }
    }
  }
  say(a.id, "stopping");
  election->reset();
  workers.reset();
  registry->reset();
  return 0;
}
