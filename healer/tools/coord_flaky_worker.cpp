// coord-flaky-worker: a demo worker for coord-healer that registers and
// dies at a random moment.
//
//   coord-flaky-worker -s SERVERS --path /healer/workers [--id ID] [--index I]
//                      [--min-life-ms A --max-life-ms B] [--session-timeout-ms T]
//
// Registers the ephemeral `<path>/<id>` (data as coord/healer/records.h
// describes, with --index when given), lives for a time drawn uniformly
// from [A, B], then closes its session (the node goes at once) and exits
// 0 at once. SIGTERM or SIGINT ends it the same way, earlier. If its session
// expires it exits 1 at once: unregistered, it must not run on. Prints
// "registered ..." and "dying ..." lines with the wall-clock time in ms.
// Exit status 2 for bad usage, 1 when the servers cannot be used.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "coord/base/limits.h"
#include "coord/client-lib/client.h"
#include "coord/healer/records.h"

namespace {

using namespace coord;
using std::chrono::milliseconds;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void say(const std::string& line) {
  const std::string out = "coord-flaky-worker: " + line + "\n";
  (void)!write(1, out.data(), out.size());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coord-flaky-worker: registers under --path and dies at a random moment"};
  std::string servers, path = "/healer/workers", id;
  int index = -1;
  std::int64_t min_life_ms = 5'000, max_life_ms = 30'000, session_timeout_ms = 4'000;
  app.add_option("-s,--servers", servers, "coord servers, host:port[,host:port...]")->required();
  app.add_option("--path", path, "The workers path to register under")->capture_default_str();
  app.add_option("--id", id, "This worker's id (default host-pid)");
  app.add_option("--index", index, "This worker's index, as coord-healer's {index}")
      ->check(CLI::Range(std::int64_t{0}, limits::healer_workers_max));
  app.add_option("--min-life-ms", min_life_ms, "Shortest life")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
  app.add_option("--max-life-ms", max_life_ms, "Longest life")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
  app.add_option("--session-timeout-ms", session_timeout_ms, "Session timeout with coord")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1'000}, std::int64_t{600'000}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (min_life_ms > max_life_ms) {
    std::fprintf(stderr, "coord-flaky-worker: --min-life-ms is above --max-life-ms\n");
    return 2;
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  if (id.empty()) id = std::string(host) + "-" + std::to_string(getpid());
  if (auto s = healer::check_worker_id(id); !s.ok()) {
    std::fprintf(stderr, "coord-flaky-worker: --id: %s\n", s.message().c_str());
    return 2;
  }
  if (path.empty() || path.front() != '/' || path.back() == '/') {
    std::fprintf(stderr, "coord-flaky-worker: --path must be an absolute path\n");
    return 2;
  }

  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  pthread_sigmask(SIG_BLOCK, &wanted, nullptr);

  ClientOptions o;
  o.servers = servers;
  o.session_timeout = milliseconds(session_timeout_ms);
  auto client = Client::start(o);
  if (!client.ok()) {
    std::fprintf(stderr, "coord-flaky-worker: %s\n", client.status().to_string().c_str());
    return 2;
  }
  if (auto s = (*client)->wait_connected(milliseconds(30'000)); !s.ok()) {
    std::fprintf(stderr, "coord-flaky-worker: cannot reach %s: %s\n", servers.c_str(),
                 s.to_string().c_str());
    return 1;
  }
  // The parents, persistent, when missing.
  for (std::size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    auto r = (*client)->create(path.substr(0, at), std::string());
    if (!r.ok() && r.code() != ErrorCode::NodeExists) {
      std::fprintf(stderr, "coord-flaky-worker: %s\n", r.status().to_string().c_str());
      return 1;
    }
    if (at == std::string::npos) break;
  }
  healer::WorkerRecord w;
  w.id = id;
  if (index >= 0) w.index = index;
  w.pid = getpid();
  w.host = host;
  const std::string node = path + "/" + id;
  if (auto r = (*client)->create(node, healer::encode_worker(w), CreateMode::Ephemeral); !r.ok()) {
    std::fprintf(stderr, "coord-flaky-worker: cannot register %s: %s\n", node.c_str(),
                 r.status().to_string().c_str());
    return 1;
  }
  std::mt19937_64 rng(std::random_device{}());
  const std::int64_t life =
      std::uniform_int_distribution<std::int64_t>(min_life_ms, max_life_ms)(rng);
  const std::string who = id + " (index " + (index >= 0 ? std::to_string(index) : "-") + ")";
  say("registered " + who + " at " + std::to_string(wall_ms()) + " ms, dying in " +
      std::to_string(life) + " ms");
  const auto end = std::chrono::steady_clock::now() + milliseconds(life);
  std::string why = "its time came";
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const auto step = std::min<std::int64_t>(left.count(), 100);
    timespec ts{0, static_cast<long>(step) * 1'000'000};
    if (sigtimedwait(&wanted, nullptr, &ts) > 0) {
      why = "signal";
      break;
    }
    if ((*client)->state() != SessionState::Connected &&
        (*client)->state() != SessionState::Disconnected &&
        (*client)->state() != SessionState::Connecting) {
      say("session " + std::string(session_state_name((*client)->state())) +
          ": registration lost, exiting");
      return 1;
    }
  }
  say("dying " + who + " (" + why + ") at " + std::to_string(wall_ms()) + " ms");
  (void)(*client)->close(milliseconds(2'000));
  // At once: the node is gone, so the process must be too (a healer
  // counting processes would otherwise see N+1 for the time the
  // destructors and the leak checker of a sanitizer build take).
  std::fflush(nullptr);
  _exit(0);
}
