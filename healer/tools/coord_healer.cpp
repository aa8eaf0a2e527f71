// coord-healer: keeps N workers of one kind alive.
//
//   coord-healer -s SERVERS --workers-path /healer/workers --count N
//                [--election-path P] [--launches-path P] [--max-launches-per-min M]
//                [--grace-ms G] [--listen 127.0.0.1:PORT] [--id ID]
//                -- LAUNCH COMMAND ARGS...
//   coord-healer wrap -s SERVERS --workers-path P --id ID [--index I] -- CMD ARGS...
//
// Any number of healers may run; one is active (coord::LeaderElection on
// the election path), the others wait. The active healer reads the workers
// path and the launch records (coord/healer/records.h), asks the planner
// (coord/healer/planner.h) what to do and does it, logging each decision
// on one line. A launch is recorded in coord, in a multi that also checks
// that this healer's election node still exists, before its command runs;
// so a healer that takes over counts its predecessor's launches in flight.
//
// The launch command runs as a process group of its own, with "{index}"
// and "{id}" replaced; it is reaped when it exits, and it is not stopped
// when the healer stops (workers outlive healers). A launch given up on
// has its process group killed, so a worker that registers late cannot
// make N+1.
//
// Wrap mode registers an ephemeral `<workers-path>/<id>` for a child
// process while it lives and removes it when the child exits. If the
// registration is lost (the session expired) the child is stopped, since a
// replacement may already be on its way.
//
// Exit status: 0 after SIGTERM/SIGINT, 1 when the servers cannot be used,
// 2 for bad usage; wrap mode exits with the child's status (128+signal).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coord/agent/http_server.h"
#include "coord/agent/prometheus.h"
#include "coord/base/limits.h"
#include "coord/base/log.h"
#include "coord/client-lib/client.h"
#include "coord/client-lib/managed_client.h"
#include "coord/election/leader_election.h"
#include "coord/healer/planner.h"
#include "coord/healer/records.h"
#include "process.h"

namespace {

using namespace coord;
using std::chrono::milliseconds;

constexpr int kExitUsage = 2;
constexpr int kExitServers = 1;
constexpr const char* kLog = "coord-healer";
constexpr milliseconds kConnectTimeout{30'000};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Makes `path` and its missing ancestors as persistent nodes.
Status ensure_path(Client& client, const std::string& path) {
  std::size_t at = 0;
  while (at != std::string::npos) {
    at = path.find('/', at + 1);
    const std::string prefix = path.substr(0, at);
    auto r = client.create(prefix, std::string());
    if (!r.ok() && r.code() != ErrorCode::NodeExists) return r.status();
  }
  return Status();
}

// The children of `dir` with their data; an empty list when `dir` is gone.
// `watcher`, when set, is a one-shot child watch.
Result<std::vector<std::pair<std::string, std::string>>> read_children(Client& client,
                                                                       const std::string& dir,
                                                                       Watcher watcher) {
  auto names = client.run(ops::GetChildren{dir, std::move(watcher)});
  if (!names.ok()) {
    if (names.code() == ErrorCode::NoNode)
      return std::vector<std::pair<std::string, std::string>>{};
    return names.status();
  }
  std::vector<std::pair<std::string, std::string>> out;
  if (names->empty()) return out;
  ops::MultiRead read;
  for (const auto& n : *names)
    read.get_data.push_back(dir + "/" + n);
  auto data = client.run(std::move(read));
  if (!data.ok()) return data.status();
  for (std::size_t i = 0; i < names->size() && i < data->size(); ++i) {
    const auto& r = (*data)[i];
    if (r.err == ErrorCode::NoNode) continue;  // gone between the two reads
    if (r.err != ErrorCode::Ok) return Status(r.err, dir + "/" + (*names)[i]);
    out.emplace_back((*names)[i], r.data.value_or(std::string()));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The active healer
// ---------------------------------------------------------------------------

struct HealerOptions {
  std::string servers;
  std::string workers_path = "/healer/workers";
  std::string election_path;  // default: <workers-path>-election
  std::string launches_path;  // default: <workers-path>-launches
  int count = 0;
  int max_launches_per_min = 30;
  std::int64_t grace_ms = 10'000;
  std::int64_t backoff_ms = limits::healer_backoff_ms_default;
  std::int64_t backoff_cap_ms = limits::healer_backoff_cap_ms_default;
  std::int64_t session_timeout_ms = 10'000;
  std::string listen;
  std::string id;
  std::vector<std::string> command;
};

// What /healthz and /metrics show; written by the main loop.
struct StatusPage {
  std::mutex mu;
  bool connected = false;
  bool active = false;
  int alive = 0;
  int in_flight = 0;
  std::uint64_t launched = 0;
  std::uint64_t failed = 0;
  std::uint64_t gave_up_late = 0;
  int consecutive_failures = 0;
};

// The history the planner reads, kept in the launches path's own data so
// that a healer taking over keeps the cap and the backoff going.
struct History {
  std::deque<std::int64_t> launches;
  int consecutive_failures = 0;
  std::int64_t last_failure_ms = 0;

  std::string encode() const {
    return nlohmann::json{
        {"recent_launches", std::vector<std::int64_t>(launches.begin(), launches.end())},
        {"consecutive_failures", consecutive_failures},
        {"last_failure_ms", last_failure_ms}}
        .dump();
  }
  static History decode(const std::string& data) {
    History h;
    const auto j = nlohmann::json::parse(data, nullptr, false);
    if (!j.is_object()) return h;
    if (auto it = j.find("recent_launches"); it != j.end() && it->is_array())
      for (const auto& t : *it)
        if (t.is_number_integer() && h.launches.size() < limits::healer_launch_history_max)
          h.launches.push_back(t.get<std::int64_t>());
    if (auto it = j.find("consecutive_failures"); it != j.end() && it->is_number_integer())
      h.consecutive_failures =
          static_cast<int>(std::clamp<std::int64_t>(it->get<std::int64_t>(), 0, 1'000'000));
    if (auto it = j.find("last_failure_ms"); it != j.end() && it->is_number_integer())
      h.last_failure_ms = it->get<std::int64_t>();
    return h;
  }
  // Only what the cap can still see: the last minute, at most the cap's
  // worth (older launches cannot decide anything).
  void trim(std::int64_t now, int cap) {
    std::sort(launches.begin(), launches.end());
    while (!launches.empty() && launches.front() <= now - 60'000)
      launches.pop_front();
    while (launches.size() > static_cast<std::size_t>(cap))
      launches.pop_front();
  }
};

class Healer {
 public:
  Healer(HealerOptions o, ManagedClient& mc, StatusPage& status)
      : o_(std::move(o)), mc_(mc), status_(status) {
    config_.desired = o_.count;
    config_.max_launches_per_min = o_.max_launches_per_min;
    config_.backoff_base_ms = o_.backoff_ms;
    config_.backoff_cap_ms = o_.backoff_cap_ms;
    config_.grace_ms = o_.grace_ms;
    // Ids are unique across healers and restarts: a random tag per process.
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", static_cast<unsigned>(rd()));
    id_prefix_ = std::string("w-") + tag + "-";
  }

  void set_election(LeaderElection* e) { election_ = e; }
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  // One look at the world and the plan carried out. Returns when to look
  // again at the latest.
  milliseconds round() {
    reap();
    const bool leading = election_ != nullptr && election_->is_leader();
    {
      std::lock_guard lock(status_.mu);
      status_.connected = mc_.connected();
      status_.active = leading;
    }
    if (!leading) {
      if (active_) {
        COORD_LOG_INFO(kLog, "no longer the active healer; waiting");
        active_ = false;
      }
      return milliseconds(limits::healer_poll_ms);
    }
    auto client = mc_.client();
    if (!active_ || generation_ != mc_.generation()) {
      // New leadership or new session: the watches and the history are
      // read afresh.
      if (!take_over(*client)) return milliseconds(200);
    }
    const auto next = heal(*client);
    return next;
  }

 private:
  struct Child {
    pid_t pid = -1;
    std::optional<int> exit_status;
  };

  bool take_over(Client& client) {
    for (const auto& p : {o_.workers_path, o_.launches_path}) {
      if (auto s = ensure_path(client, p); !s.ok()) {
        COORD_LOG_WARN(kLog, "cannot create ", p, ": ", s.to_string());
        return false;
      }
    }
    auto data = client.get_data(o_.launches_path);
    if (!data.ok()) {
      COORD_LOG_WARN(kLog, "cannot read ", o_.launches_path, ": ", data.status().to_string());
      return false;
    }
    history_ = History::decode(data->data.value_or(std::string()));
    history_version_ = data->stat.version;
    workers_watch_ = false;
    launches_watch_ = false;
    generation_ = mc_.generation();
    if (!active_) {
      COORD_LOG_INFO(kLog, "active healer (token ", election_->token().value_or(0), "); desired ",
                     o_.count, ", ", history_.consecutive_failures,
                     " failed launches in a row so far");
    }
    active_ = true;
    return true;
  }

  Watcher watcher(std::atomic<bool>& armed) {
    if (armed.exchange(true)) return {};
    return [this, &armed](const WatchEvent&) {
      armed = false;
      if (wake_) wake_();
    };
  }

  milliseconds heal(Client& client) {
    auto workers = read_children(client, o_.workers_path, watcher(workers_watch_));
    if (!workers.ok()) {
      workers_watch_ = false;
      COORD_LOG_WARN(kLog, "cannot read ", o_.workers_path, ": ", workers.status().to_string());
      return milliseconds(200);
    }
    auto launches = read_children(client, o_.launches_path, watcher(launches_watch_));
    if (!launches.ok()) {
      launches_watch_ = false;
      COORD_LOG_WARN(kLog, "cannot read ", o_.launches_path, ": ", launches.status().to_string());
      return milliseconds(200);
    }
    const std::int64_t now = wall_ms();
    healer::PlannerInput in;
    in.now_ms = now;
    in.id_prefix = id_prefix_;
    in.next_id = next_id_;
    for (const auto& [name, data] : *workers) {
      const auto w = healer::decode_worker(name, data);
      in.workers.push_back({w.id, w.index});
    }
    std::map<std::string, std::int64_t> seen;
    for (const auto& [name, data] : *launches) {
      auto rec = healer::decode_launch(name, data);
      healer::Launch l;
      l.id = name;
      // The planner bounds a deadline by one grace period from when this
      // healer first saw the record (a predecessor's clock may be ahead).
      const auto first = first_seen_.find(name);
      seen[name] = first == first_seen_.end() ? now : first->second;
      l.first_seen_ms = seen[name];
      if (rec.ok()) {
        l.index = rec->index;
        l.deadline_ms = rec->deadline_ms;
      } else {
        COORD_LOG_WARN(kLog, rec.status().to_string(), "; treating it as failed");
        l.index = o_.count;  // holds no real index
        l.deadline_ms = now;
      }
      if (auto c = children_.find(name); c != children_.end())
        l.exit_status = c->second.exit_status;
      in.in_flight.push_back(l);
    }
    first_seen_ = std::move(seen);
    history_.trim(now, o_.max_launches_per_min);
    in.recent_launches.assign(history_.launches.begin(), history_.launches.end());
    in.consecutive_failures = history_.consecutive_failures;
    in.last_failure_ms = history_.last_failure_ms;

    const healer::Plan plan = healer::plan(config_, in);
    next_id_ = plan.next_id;
    const bool history_changed = plan.consecutive_failures != history_.consecutive_failures ||
                                 plan.last_failure_ms != history_.last_failure_ms;
    history_.consecutive_failures = plan.consecutive_failures;
    history_.last_failure_ms = plan.last_failure_ms;

    milliseconds wait(limits::healer_poll_ms);
    int launched = 0, failed = 0;
    bool changed = history_changed;
    for (const auto& d : plan.decisions) {
      if (const auto* r = std::get_if<healer::decision::Registered>(&d)) {
        COORD_LOG_INFO(kLog, healer::describe(d));
        drop_record(client, r->id);
        children_.erase(r->id);
      } else if (const auto* g = std::get_if<healer::decision::GiveUp>(&d)) {
        COORD_LOG_WARN(kLog, healer::describe(d));
        stop_child(g->id);
        drop_record(client, g->id);
        ++failed;
      } else if (const auto* l = std::get_if<healer::decision::Launch>(&d)) {
        if (launch(client, *l, now)) ++launched;
        history_.launches.push_back(now);
        changed = true;
      } else if (const auto* w = std::get_if<healer::decision::WaitUntil>(&d)) {
        const auto until = std::max<std::int64_t>(w->at_ms - now, 0);
        wait = std::min(wait, milliseconds(until));
        if (plan.held_back > 0 && plan.held_back_why != last_held_back_why_) {
          COORD_LOG_INFO(kLog, "holding back ", plan.held_back, " launch(es): ", plan.held_back_why,
                         "; next look in ", until, " ms");
        }
      } else if (!excess_reported_) {
        COORD_LOG_WARN(kLog, healer::describe(d));  // once per episode
      }
    }
    excess_reported_ = plan.alive > o_.count;
    last_held_back_why_ = plan.held_back > 0 ? plan.held_back_why : std::string();
    if (changed) save_history(client);
    {
      std::lock_guard lock(status_.mu);
      status_.alive = plan.alive;
      status_.in_flight = plan.in_flight;
      status_.launched += static_cast<std::uint64_t>(launched);
      status_.failed += static_cast<std::uint64_t>(failed);
      status_.consecutive_failures = history_.consecutive_failures;
    }
    // A launch just made is looked at again soon: its record is read back
    // and its process may fail at once.
    if (launched > 0) wait = std::min(wait, milliseconds(100));
    return wait;
  }

  bool launch(Client& client, const healer::decision::Launch& l, std::int64_t now) {
    healer::LaunchRecord rec;
    rec.id = l.id;
    rec.index = l.index;
    rec.launched_ms = now;
    rec.deadline_ms = now + o_.grace_ms;
    rec.healer = o_.id;
    // The record is written only while this healer's election node exists:
    // a healer that was replaced cannot add launches behind its successor.
    MultiBuilder m;
    m.check(o_.election_path + "/" + election_->node(), -1);
    m.create(o_.launches_path + "/" + l.id, healer::encode_launch(rec));
    const auto written_at = std::chrono::steady_clock::now();
    auto r = client.multi(std::move(m));
    if (!r.ok()) {
      COORD_LOG_WARN(kLog, "not launching ", l.id,
                     ": recording it failed: ", r.status().to_string());
      return false;
    }
    // A pause between the record and the start (SIGSTOP, swapping) may
    // have outlasted this healer's leadership: then the successor counts
    // this launch as in flight and gives up on it at its deadline, so the
    // command must not start late.
    if (!election_->is_leader() || std::chrono::steady_clock::now() - written_at >
                                       milliseconds(limits::healer_launch_fence_ms)) {
      COORD_LOG_WARN(kLog, "not launching ", l.id, ": leadership uncertain after recording it");
      drop_record(client, l.id);
      return false;
    }
    const auto argv = healer::expand_command(o_.command, l.index, l.id);
    auto pid = healer::spawn_group(argv);
    if (!pid.ok()) {
      COORD_LOG_WARN(kLog, healer::describe(healer::Decision(l)),
                     " failed: ", pid.status().to_string());
      // The record stays: it fails at its next look as a non-zero exit.
      children_[l.id] = Child{-1, 127};
      return false;
    }
    children_[l.id] = Child{*pid, std::nullopt};
    COORD_LOG_INFO(kLog, healer::describe(healer::Decision(l)), " pid ", *pid, ", deadline in ",
                   o_.grace_ms, " ms");
    return true;
  }

  void stop_child(const std::string& id) {
    auto c = children_.find(id);
    if (c == children_.end()) return;
    if (c->second.pid > 0 && !c->second.exit_status) {
      kill(-c->second.pid, SIGKILL);
      COORD_LOG_INFO(kLog, "killed the process group ", c->second.pid, " of launch ", id);
      waitpid(c->second.pid, nullptr, 0);
    } else if (c->second.pid > 0) {
      // Its launcher exited; anything it left in its group goes too.
      kill(-c->second.pid, SIGKILL);
    }
    children_.erase(c);
  }

  void drop_record(Client& client, const std::string& id) {
    const auto s = client.remove(o_.launches_path + "/" + id);
    if (!s.ok() && s.code() != ErrorCode::NoNode)
      COORD_LOG_WARN(kLog, "cannot remove the record of launch ", id, ": ", s.to_string());
  }

  void save_history(Client& client) {
    auto r = client.set_data(o_.launches_path, history_.encode(), history_version_);
    if (r.ok()) {
      history_version_ = r->version;
      return;
    }
    // Another healer wrote it (it was active a moment ago): take its
    // version of the history into account at the next take-over.
    COORD_LOG_WARN(kLog, "cannot save the launch history: ", r.status().to_string());
    active_ = false;
  }

  void reap() {
    for (;;) {
      int st = 0;
      const pid_t pid = waitpid(-1, &st, WNOHANG);
      if (pid <= 0) break;
      const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      for (auto& [id, c] : children_) {
        if (c.pid != pid) continue;
        c.exit_status = code;
        COORD_LOG_INFO(kLog, "launch ", id, ": its command (pid ", pid, ") exited with status ",
                       code);
      }
    }
  }

  HealerOptions o_;
  ManagedClient& mc_;
  StatusPage& status_;
  LeaderElection* election_ = nullptr;
  std::function<void()> wake_;
  healer::PlannerConfig config_;
  std::string id_prefix_;
  std::uint64_t next_id_ = 0;
  History history_;
  std::int32_t history_version_ = -1;
  std::uint64_t generation_ = 0;
  bool active_ = false;
  bool excess_reported_ = false;
  std::string last_held_back_why_;
  std::atomic<bool> workers_watch_{false};
  std::atomic<bool> launches_watch_{false};
  std::map<std::string, Child> children_;
  // Launch records by id, and when this healer first read each.
  std::map<std::string, std::int64_t> first_seen_;
};

std::string metrics(StatusPage& st, const HealerOptions& o) {
  std::lock_guard lock(st.mu);
  agent::PromText t;
  t.gauge("coord_healer_desired_workers", "Workers this healer keeps alive (--count).", o.count);
  t.gauge("coord_healer_alive_workers", "Workers registered at the last look (active healer).",
          st.alive);
  t.gauge("coord_healer_launches_in_flight", "Launches recorded and not yet registered.",
          st.in_flight);
  t.counter("coord_healer_launches_total", "Launch commands this process started.",
            static_cast<double>(st.launched));
  t.counter("coord_healer_failed_launches_total",
            "Launches given up on (not registered in time, or their command failed).",
            static_cast<double>(st.failed));
  t.gauge("coord_healer_consecutive_failed_launches", "The current crash-loop streak.",
          st.consecutive_failures);
  t.gauge("coord_healer_active", "1 while this process is the active healer.", st.active ? 1 : 0);
  t.gauge("coord_healer_connected", "1 while the session with coord is connected.",
          st.connected ? 1 : 0);
  return t.str();
}

// "host:port", port 0 for one the kernel picks (the log line names it).
Result<std::pair<std::string, std::uint16_t>> listen_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return Status(ErrorCode::BadArguments, "expected HOST:PORT, got " + text);
  std::uint32_t port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65'535)
      return Status(ErrorCode::BadArguments, "bad port in " + text);
    port = port * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (port > 65'535) return Status(ErrorCode::BadArguments, "bad port in " + text);
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

int run_healer(HealerOptions o) {
  if (o.election_path.empty()) o.election_path = o.workers_path + "-election";
  if (o.launches_path.empty()) o.launches_path = o.workers_path + "-launches";
  if (o.id.empty()) o.id = host_name() + "-" + std::to_string(getpid());

  sigset_t wanted;
  sigemptyset(&wanted);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1})
    sigaddset(&wanted, s);
  pthread_sigmask(SIG_BLOCK, &wanted, nullptr);

  ClientOptions co;
  co.servers = o.servers;
  co.session_timeout = milliseconds(o.session_timeout_ms);
  auto mc = ManagedClient::start(co);
  if (!mc.ok()) {
    std::fprintf(stderr, "coord-healer: %s\n", mc.status().to_string().c_str());
    return kExitUsage;
  }
  if (auto s = (*mc)->wait_connected(kConnectTimeout); !s.ok()) {
    std::fprintf(stderr, "coord-healer: cannot reach %s: %s\n", o.servers.c_str(),
                 s.to_string().c_str());
    return kExitServers;
  }

  StatusPage status;
  std::unique_ptr<agent::HttpServer> http;
  if (!o.listen.empty()) {
    auto hp = listen_address(o.listen);
    if (!hp.ok()) {
      std::fprintf(stderr, "coord-healer: --listen: %s\n", hp.status().to_string().c_str());
      return kExitUsage;
    }
    auto server = agent::HttpServer::start(
        hp->first, hp->second, [&status, &o](const agent::HttpRequest& req) {
          agent::HttpAnswer a;
          if (req.method != "GET") {
            a.status = 405;
            a.body = "only GET\n";
          } else if (req.path == "/healthz") {
            std::lock_guard lock(status.mu);
            a.status = status.connected ? 200 : 503;
            a.body = std::string(status.connected ? "ok" : "not connected to coord") +
                     (status.active ? " (active)\n" : " (standby)\n");
          } else if (req.path == "/metrics") {
            a.content_type = agent::PromText::content_type;
            a.body = metrics(status, o);
          } else {
            a.status = 404;
            a.body = "not found; try /healthz or /metrics\n";
          }
          return a;
        });
    if (!server.ok()) {
      std::fprintf(stderr, "coord-healer: --listen %s: %s\n", o.listen.c_str(),
                   server.status().to_string().c_str());
      return kExitUsage;
    }
    http = std::move(*server);
    COORD_LOG_INFO(kLog, "status on http://", hp->first, ":", http->port(), "/metrics");
  }

  const pid_t self = getpid();
  auto wake = [self] { kill(self, SIGUSR1); };
  Healer healer(o, **mc, status);
  healer.set_wake(wake);

  ElectionOptions eo;
  eo.path = o.election_path;
  eo.id = o.id;
  eo.on_event = [wake](const LeadershipEvent& ev) {
    COORD_LOG_INFO(kLog, "election: ", leadership_event_name(ev.kind),
                   ev.reason.empty() ? "" : " (" + ev.reason + ")");
    wake();
  };
  auto election = LeaderElection::start(**mc, eo);
  if (!election.ok()) {
    std::fprintf(stderr, "coord-healer: %s\n", election.status().to_string().c_str());
    return kExitUsage;
  }
  healer.set_election(election->get());
  COORD_LOG_INFO(kLog, "healer ", o.id, " keeping ", o.count, " workers under ", o.workers_path,
                 " (launches ", o.launches_path, ", election ", o.election_path, ")");

  milliseconds wait(0);
  for (;;) {
    const auto ms = std::clamp<std::int64_t>(wait.count(), 0, limits::healer_poll_ms);
    timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
    const int sig = sigtimedwait(&wanted, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      COORD_LOG_INFO(kLog, "stopping (signal ", sig, "); the workers keep running");
      break;
    }
    // Drain whatever else is pending, then look once.
    timespec zero{0, 0};
    while (sigtimedwait(&wanted, nullptr, &zero) > 0) {
    }
    wait = healer.round();
  }
  election->reset();
  (void)(*mc)->close();
  // The client goes before the healer its watchers point into.
  mc->reset();
  return 0;
}

// ---------------------------------------------------------------------------
// Wrap mode
// ---------------------------------------------------------------------------

struct WrapOptions {
  std::string servers;
  std::string workers_path = "/healer/workers";
  std::string id;
  int index = -1;
  std::int64_t session_timeout_ms = 10'000;
  std::vector<std::string> command;
};

int run_wrap(const WrapOptions& o) {
  const char* const log = "coord-healer wrap";
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD})
    sigaddset(&wanted, s);
  pthread_sigmask(SIG_BLOCK, &wanted, nullptr);

  ClientOptions co;
  co.servers = o.servers;
  co.session_timeout = milliseconds(o.session_timeout_ms);
  auto client = Client::start(co);
  if (!client.ok()) {
    std::fprintf(stderr, "coord-healer wrap: %s\n", client.status().to_string().c_str());
    return kExitUsage;
  }
  if (auto s = (*client)->wait_connected(kConnectTimeout); !s.ok()) {
    std::fprintf(stderr, "coord-healer wrap: cannot reach %s: %s\n", o.servers.c_str(),
                 s.to_string().c_str());
    return kExitServers;
  }
  if (auto s = ensure_path(**client, o.workers_path); !s.ok()) {
    std::fprintf(stderr, "coord-healer wrap: %s\n", s.to_string().c_str());
    return kExitServers;
  }
  auto child = healer::spawn_group(o.command, /*die_with_parent=*/true);
  if (!child.ok()) {
    std::fprintf(stderr, "coord-healer wrap: %s\n", child.status().to_string().c_str());
    return 127;
  }
  healer::WorkerRecord w;
  w.id = o.id;
  if (o.index >= 0) w.index = o.index;
  w.pid = *child;
  w.host = host_name();
  const std::string node = o.workers_path + "/" + o.id;
  auto created = (*client)->create(node, healer::encode_worker(w), CreateMode::Ephemeral);
  if (!created.ok()) {
    COORD_LOG_ERROR(log, "cannot register ", node, ": ", created.status().to_string(),
                    "; stopping the child");
    healer::stop_group(*child, milliseconds(limits::healer_stop_grace_ms));
    return kExitServers;
  }
  COORD_LOG_INFO(log, "registered ", node, " for pid ", *child);
  int code = 0;
  for (;;) {
    timespec ts{0, 100'000'000};
    const int sig = sigtimedwait(&wanted, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      COORD_LOG_INFO(log, "signal ", sig, ": stopping the child");
      code = healer::stop_group(*child, milliseconds(limits::healer_stop_grace_ms));
      break;
    }
    if (auto st = healer::poll_exit(*child); st) {
      code = *st;
      COORD_LOG_INFO(log, "child exited with status ", code);
      break;
    }
    const auto state = (*client)->state();
    if (state == SessionState::Expired || state == SessionState::Closed ||
        state == SessionState::AuthFailed) {
      // The registration is gone and a replacement may be starting: this
      // worker must not run on unregistered.
      COORD_LOG_ERROR(log, "session ", session_state_name(state),
                      ": registration lost, stopping the child");
      healer::stop_group(*child, milliseconds(limits::healer_stop_grace_ms));
      return kExitServers;
    }
  }
  (void)(*client)->remove(node);
  (void)(*client)->close();
  return code;
}

// Splits argv at the first "--": the options, and the command after it.
std::pair<std::vector<std::string>, std::vector<std::string>> split_command(int argc, char** argv) {
  std::vector<std::string> opts, cmd;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    opts.emplace_back(argv[i]);
  }
  for (; i < argc; ++i)
    cmd.emplace_back(argv[i]);
  return {opts, cmd};
}

}  // namespace

int main(int argc, char** argv) {
  auto [opts, command] = split_command(argc, argv);
  CLI::App app{
      "coord-healer: keeps N workers alive, one active healer elected among many\n"
      "  coord-healer -s SERVERS --count N [options] -- LAUNCH COMMAND ({index}, {id})\n"
      "  coord-healer wrap -s SERVERS --id ID [options] -- COMMAND"};
  app.footer("The launch command follows --; {index} and {id} in it are replaced.");
  HealerOptions h;
  app.add_option("-s,--servers", h.servers, "coord servers, host:port[,host:port...]");
  app.add_option("--workers-path", h.workers_path, "Where workers register (ephemeral nodes)")
      ->capture_default_str();
  app.add_option("--count", h.count, "Workers to keep alive")
      ->check(CLI::Range(std::int64_t{0}, limits::healer_workers_max));
  app.add_option("--election-path", h.election_path,
                 "The healers' election (default <workers-path>-election)");
  app.add_option("--launches-path", h.launches_path,
                 "Launches in flight (default <workers-path>-launches)");
  app.add_option("--max-launches-per-min", h.max_launches_per_min,
                 "At most this many launches in any minute")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, limits::healer_launches_per_min_max));
  app.add_option("--grace-ms", h.grace_ms, "A launch not registered within this has failed")
      ->capture_default_str()
      ->check(CLI::Range(limits::healer_grace_ms_min, limits::healer_grace_ms_max));
  app.add_option("--backoff-ms", h.backoff_ms, "Delay after the first failed launch (doubles)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, limits::healer_grace_ms_max));
  app.add_option("--backoff-cap-ms", h.backoff_cap_ms, "The longest crash-loop delay")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, limits::healer_grace_ms_max));
  app.add_option("--session-timeout-ms", h.session_timeout_ms, "Session timeout with coord")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1'000}, std::int64_t{600'000}));
  app.add_option("--listen", h.listen, "HOST:PORT for /healthz and /metrics (port 0: any)");
  app.add_option("--id", h.id, "This healer's id in the election (default host-pid)");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error")->capture_default_str();

  WrapOptions w;
  auto* wrap = app.add_subcommand("wrap", "Register a worker for a child process while it lives");
  wrap->add_option("-s,--servers", w.servers, "coord servers")->required();
  wrap->add_option("--workers-path", w.workers_path, "Where to register")->capture_default_str();
  wrap->add_option("--id", w.id, "The worker's id (its node's name)")->required();
  wrap->add_option("--index", w.index, "The worker's index (from {index})")
      ->check(CLI::Range(std::int64_t{0}, limits::healer_workers_max));
  wrap->add_option("--session-timeout-ms", w.session_timeout_ms, "Session timeout with coord")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1'000}, std::int64_t{600'000}));

  std::vector<std::string> reversed(opts.rbegin(), opts.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  LogLevel level;
  if (!parse_log_level(log_level, &level)) {
    std::fprintf(stderr, "coord-healer: --log-level: debug, info, warn or error\n");
    return kExitUsage;
  }
  set_log_level(level);
  if (command.empty()) {
    std::fprintf(stderr, "coord-healer: a command after -- is required\n%s", app.help().c_str());
    return kExitUsage;
  }
  if (*wrap) {
    if (auto s = healer::check_worker_id(w.id); !s.ok()) {
      std::fprintf(stderr, "coord-healer wrap: --id: %s\n", s.message().c_str());
      return kExitUsage;
    }
    if (w.workers_path.empty() || w.workers_path.front() != '/' || w.workers_path.back() == '/') {
      std::fprintf(stderr, "coord-healer wrap: --workers-path must be an absolute path\n");
      return kExitUsage;
    }
    w.command = std::move(command);
    return run_wrap(w);
  }
  if (h.servers.empty()) {
    std::fprintf(stderr, "coord-healer: -s SERVERS is required\n");
    return kExitUsage;
  }
  if (app.count("--count") == 0) {
    std::fprintf(stderr, "coord-healer: --count N is required\n");
    return kExitUsage;
  }
  for (const auto* p : {&h.workers_path, &h.election_path, &h.launches_path}) {
    if (p->empty() && p != &h.workers_path) continue;
    if (p->empty() || p->front() != '/' || p->back() == '/' || *p == "/") {
      std::fprintf(stderr, "coord-healer: paths must be absolute, not the root: %s\n", p->c_str());
      return kExitUsage;
    }
  }
  h.command = std::move(command);
  return run_healer(std::move(h));
}
