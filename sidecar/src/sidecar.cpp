#include "coord/sidecar/sidecar.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "coord/agent/http_server.h"
#include "coord/agent/prometheus.h"
#include "coord/base/limits.h"
#include "coord/base/log.h"
#include "coord/client-lib/managed_client.h"
#include "coord/registry/service_registry.h"
#include "coord/sidecar/checker.h"
#include "coord/sidecar/health.h"
#include "coord/sidecar/render.h"
#include "coord/sidecar/schedule.h"

namespace coord::sidecar {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kLog = "sidecar";
// A registration or removal that failed is tried again after this pause.
constexpr milliseconds kRegistrationRetry{1'000};
// The watch loop reads every discovery at least this often: staleness
// (the connection) changes without an on_change.
constexpr milliseconds kWatchPoll{200};
// The first pause after a failed reload; it doubles up to --reload-retry-max-ms.
constexpr milliseconds kReloadRetryMin{limits::sidecar_reload_retry_ms_min};

nlohmann::json instance_json(const ServiceInstance& i) {
  nlohmann::json j = nlohmann::json::object();
  j["id"] = i.id;
  j["name"] = i.name;
  j["address"] = i.address;
  j["port"] = i.port ? nlohmann::json(*i.port) : nlohmann::json(nullptr);
  j["sslPort"] = i.ssl_port ? nlohmann::json(*i.ssl_port) : nlohmann::json(nullptr);
  j["payload"] = nlohmann::json::object();
  for (const auto& [k, v] : i.metadata)
    j["payload"][k] = v;
  j["registrationTimeUTC"] = i.registration_time_utc_ms;
  return j;
}

agent::HttpAnswer json_answer(unsigned status, const nlohmann::json& body) {
  agent::HttpAnswer a;
  a.status = status;
  a.content_type = "application/json";
  a.body = body.dump() + "\n";
  return a;
}

// "+a -b" between two lists of instances (by id).
std::string diff_ids(const std::vector<ServiceInstance>& before,
                     const std::vector<ServiceInstance>& after) {
  std::set<std::string> a;
  std::set<std::string> b;
  for (const auto& i : before)
    a.insert(i.id);
  for (const auto& i : after)
    b.insert(i.id);
  std::string out;
  for (const auto& id : b)
    if (!a.count(id)) out += " +" + id;
  for (const auto& id : a)
    if (!b.count(id)) out += " -" + id;
  if (out.empty()) out = " (data changed)";
  return out;
}

}  // namespace

struct Sidecar::State {
  explicit State(Config c) : cfg(std::move(c)) {}
  const Config cfg;
  std::vector<Template> templates;
  ServiceInstance instance;
  std::unique_ptr<ManagedClient> mc;
  ManagedClient::ListenerId listener = 0;
  std::unique_ptr<ServiceRegistry> registry;
  std::vector<std::unique_ptr<ServiceDiscovery>> discoveries;  // in cfg.watch order
  std::unique_ptr<agent::HttpServer> http;
  std::thread checker;
  std::thread registrar;
  std::thread watcher;
  std::thread renderer;
  bool shut = false;  // shutdown() ran; only its caller's thread

  mutable std::mutex mu;
  std::condition_variable cv;  // every wait below, each with its own predicate
  bool check_stop = false;
  bool reg_stop = false;
  bool reg_abandon = false;  // the deadline passed: give up removing
  bool reg_done = false;
  bool watch_stop = false;
  bool watch_wake = false;
  bool render_stop = false;
  bool render_wake = false;

  // Health and registration.
  bool healthy = false;
  bool want_registered = false;
  bool registered = false;
  bool remove_pending = false;
  std::string last_check;
  // Discovery, as published.
  std::vector<ServiceView> views;
  std::vector<bool> loaded_once;
  std::uint64_t view_version = 0;
  // Counters for /metrics.
  std::uint64_t checks = 0;
  std::uint64_t check_failures = 0;
  std::uint64_t registrations = 0;
  std::uint64_t deregistrations = 0;
  std::uint64_t registration_errors = 0;
  std::map<std::string, std::uint64_t> discovery_changes;
  std::uint64_t renders = 0;
  std::uint64_t render_failures = 0;
  std::uint64_t files_written = 0;
  std::uint64_t reloads = 0;
  std::uint64_t reload_failures = 0;

  void wake_watch() {
    {
      std::lock_guard lock(mu);
      watch_wake = true;
    }
    cv.notify_all();
  }

  // ---------------------------------------------------------------- checks
  void check_loop() {
    HealthMachine health(cfg.rise, cfg.fall);
    auto next = Clock::now();
    std::string last_down_detail;
    std::unique_lock lock(mu);
    while (!check_stop) {
      lock.unlock();
      const CheckOutcome r = run_check(cfg.check, cfg.timeout);
      const Change change = health.observe(r.passed);
      lock.lock();
      ++checks;
      if (!r.passed) ++check_failures;
      last_check = r.detail;
      if (change != Change::None) {
        healthy = health.up();
        want_registered = healthy;
        COORD_LOG_INFO(kLog, "check ", cfg.check.target, (healthy ? " passed " : " failed "),
                       (healthy ? cfg.rise : cfg.fall), " in a row (", r.detail,
                       "): ", (healthy ? "up, registering " : "down, removing "), instance.id);
        last_down_detail.clear();
        cv.notify_all();
      } else if (health.up() && !r.passed) {
        COORD_LOG_INFO(kLog, "check ", cfg.check.target, " failed (", health.streak(), "/",
                       cfg.fall, "): ", r.detail);
      } else if (!health.up() && r.passed) {
        COORD_LOG_INFO(kLog, "check ", cfg.check.target, " passed (", health.streak(), "/",
                       cfg.rise, ")");
      } else if (!health.up() && r.detail != last_down_detail) {
        // Down and still failing: said once per kind of failure, not every interval.
        COORD_LOG_INFO(kLog, "check ", cfg.check.target, " failing while down: ", r.detail);
        last_down_detail = r.detail;
      }
      const auto now = Clock::now();
      next += cfg.interval;
      if (next < now) next = now;  // a check overran the interval: the next one at once
      cv.wait_until(lock, next, [&] { return check_stop; });
    }
  }

  // ---------------------------------------------------------- registration
  void registrar_loop() {
    const std::string path = registry->path_of(instance.name, instance.id);
    std::uint64_t rereg_seen = 0;
    std::unique_lock lock(mu);
    for (;;) {
      // Woken by a change of the wanted state; also once a second to
      // report the registry's own re-registrations after an expiry.
      cv.wait_for(lock, kRegistrationRetry,
                  [&] { return reg_stop || want_registered != registered || remove_pending; });
      lock.unlock();
      const std::uint64_t rereg = registry->reregistrations();
      lock.lock();
      if (rereg != rereg_seen) {
        COORD_LOG_INFO(kLog, "registered ", instance.id, " again with a new session");
        rereg_seen = rereg;
      }
      const bool want = want_registered && !reg_stop;
      if (want && !registered) {
        lock.unlock();
        const Status s = registry->register_instance(instance);
        lock.lock();
        if (s.ok()) {
          registered = true;
          remove_pending = false;
          ++registrations;
          COORD_LOG_INFO(kLog, "registered ", path);
        } else {
          ++registration_errors;
          COORD_LOG_WARN(kLog, "cannot register ", path, ": ", s.to_string(), "; retrying");
          cv.wait_for(lock, kRegistrationRetry, [&] { return reg_stop; });
        }
      } else if (!want && registered) {
        lock.unlock();
        const Status s = registry->unregister(instance.name, instance.id);
        lock.lock();
        registered = false;
        if (s.ok()) {
          ++deregistrations;
          COORD_LOG_INFO(kLog, "removed ", path);
        } else {
          // The registry has forgotten it; the node may still be there.
          remove_pending = true;
          ++registration_errors;
          COORD_LOG_WARN(kLog, "cannot remove ", path, ": ", s.to_string(), "; retrying");
        }
      } else if (remove_pending && !want) {
        if (reg_abandon) break;
        lock.unlock();
        const Status s = mc->client()->remove(path);
        lock.lock();
        if (s.ok() || s.code() == ErrorCode::NoNode) {
          remove_pending = false;
          ++deregistrations;
          COORD_LOG_INFO(kLog, "removed ", path);
        } else {
          ++registration_errors;
          COORD_LOG_WARN(kLog, "cannot remove ", path, ": ", s.to_string(), "; retrying");
          cv.wait_for(lock, kRegistrationRetry, [&] { return reg_abandon; });
        }
      } else if (reg_stop) {
        break;
      } else if (remove_pending) {
        remove_pending = false;  // registered again meanwhile: the node is wanted
      }
    }
    reg_done = true;
    cv.notify_all();
  }

  // ------------------------------------------------------------- discovery
  void watch_loop() {
    std::unique_lock lock(mu);
    while (!watch_stop) {
      lock.unlock();
      std::vector<ServiceView> next;
      for (std::size_t k = 0; k < discoveries.size(); ++k) {
        ServiceView v;
        v.name = cfg.watch[k];
        v.stale = discoveries[k]->stale();
        v.instances = discoveries[k]->instances();
        next.push_back(std::move(v));
      }
      lock.lock();
      bool changed = false;
      for (std::size_t k = 0; k < next.size(); ++k) {
        const ServiceView& before = views[k];
        const ServiceView& after = next[k];
        if (before.instances != after.instances) {
          ++discovery_changes[after.name];
          COORD_LOG_INFO(kLog, "discovery ", after.name, ": ", after.instances.size(),
                         " instance(s):", diff_ids(before.instances, after.instances));
          changed = true;
        }
        if (before.stale != after.stale) {
          COORD_LOG_INFO(
              kLog, "discovery ", after.name,
              after.stale ? ": stale (servers unreachable), serving the last list" : ": current");
          changed = true;
        }
        if (!after.stale) loaded_once[k] = true;
      }
      if (changed) {
        views = std::move(next);
        ++view_version;
        render_wake = true;
        cv.notify_all();
      }
      cv.wait_for(lock, kWatchPoll, [&] { return watch_stop || watch_wake; });
      watch_wake = false;
    }
  }

  // ------------------------------------------------------------- rendering
  bool all_loaded() const {
    return std::all_of(loaded_once.begin(), loaded_once.end(), [](bool b) { return b; });
  }

  // Renders every template; true when some file's content changed.
  bool render_all(const std::vector<ServiceView>& snapshot) {
    bool changed = false;
    std::uint64_t failures = 0;
    std::uint64_t written = 0;
    for (std::size_t k = 0; k < templates.size(); ++k) {
      const std::string& dest = cfg.templates[k].destination;
      auto text = templates[k].render(snapshot);
      if (!text.ok()) {
        ++failures;
        COORD_LOG_ERROR(kLog, "render ", dest, " failed: ", text.status().message());
        continue;
      }
      auto w = write_if_changed(dest, *text);
      if (!w.ok()) {
        ++failures;
        COORD_LOG_ERROR(kLog, "cannot write ", dest, ": ", w.status().message());
        continue;
      }
      if (*w) {
        ++written;
        changed = true;
        COORD_LOG_INFO(kLog, "rendered ", dest, " (", text->size(), " bytes, changed)");
      } else {
        COORD_LOG_DEBUG(kLog, "rendered ", dest, " (unchanged)");
      }
    }
    std::lock_guard lock(mu);
    ++renders;
    render_failures += failures;
    files_written += written;
    return changed;
  }

  void render_loop() {
    RenderSchedule sched(cfg.debounce, cfg.debounce_max, kReloadRetryMin, cfg.reload_retry_max);
    std::uint64_t seen_version = 0;
    bool started = false;  // the first render is wanted once every service was read
    std::unique_lock lock(mu);
    while (!render_stop) {
      const auto now = Clock::now();
      if (!started && all_loaded()) {
        started = true;
        seen_version = view_version;
        sched.changed(now);
        COORD_LOG_INFO(kLog, "every watched service read: rendering");
      } else if (started && view_version != seen_version) {
        seen_version = view_version;
        sched.changed(now);
      }
      const RenderSchedule::Action a = sched.next(now);
      if (a.kind == RenderSchedule::Kind::Render) {
        const std::vector<ServiceView> snapshot = views;
        lock.unlock();
        const bool changed = render_all(snapshot);
        sched.rendered(Clock::now(), changed && !cfg.reload_cmd.empty());
        lock.lock();
        continue;
      }
      if (a.kind == RenderSchedule::Kind::Reload) {
        lock.unlock();
        COORD_LOG_INFO(kLog, "reloading: ", cfg.reload_cmd);
        const CommandOutcome r = run_command(cfg.reload_cmd, cfg.reload_timeout);
        sched.reloaded(Clock::now(), r.ok);
        lock.lock();
        ++reloads;
        if (r.ok) {
          COORD_LOG_INFO(kLog, "reload done: ", r.describe());
        } else {
          ++reload_failures;
          COORD_LOG_ERROR(kLog, "reload failed (", sched.reload_failures(),
                          " in a row): ", r.describe(), "; retrying in ",
                          sched.retry_delay(sched.reload_failures()).count(), " ms");
        }
        continue;
      }
      auto until = Clock::now() + kWatchPoll * 5;
      if (a.kind == RenderSchedule::Kind::Wait && a.at < until) until = a.at;
      cv.wait_until(lock, until, [&] { return render_stop || render_wake; });
      render_wake = false;
    }
  }

  // ------------------------------------------------------------------ HTTP
  agent::HttpAnswer handle(const agent::HttpRequest& req) {
    if (req.method != "GET" && req.method != "HEAD") {
      agent::HttpAnswer a = json_answer(405, {{"error", "only GET"}});
      return a;
    }
    const std::string prefix = "/v1/services/";
    if (req.path == "/v1/services" || req.path == "/v1/services/") {
      std::lock_guard lock(mu);
      nlohmann::json list = nlohmann::json::array();
      bool stale = false;
      for (const auto& v : views) {
        list.push_back({{"name", v.name}, {"stale", v.stale}, {"instances", v.instances.size()}});
        stale = stale || v.stale;
      }
      return json_answer(200, {{"services", list}, {"stale", stale}});
    }
    if (req.path.rfind(prefix, 0) == 0) {
      const std::string name = req.path.substr(prefix.size());
      std::lock_guard lock(mu);
      for (const auto& v : views) {
        if (v.name != name) continue;
        nlohmann::json list = nlohmann::json::array();
        for (const auto& i : v.instances)
          list.push_back(instance_json(i));
        return json_answer(200, {{"name", v.name}, {"stale", v.stale}, {"instances", list}});
      }
      return json_answer(404, {{"error", "not a watched service: " + name}});
    }
    if (req.path == "/healthz") {
      // Asked before taking the lock: the client's listeners take it.
      const bool connected = mc->connected();
      std::lock_guard lock(mu);
      nlohmann::json j = {{"status", "ok"}, {"connected", connected}};
      if (!cfg.service.empty()) {
        j["service"] = cfg.service;
        j["id"] = instance.id;
        j["healthy"] = healthy;
        j["registered"] = registered;
        j["last_check"] = last_check;
      }
      return json_answer(200, j);
    }
    if (req.path == "/metrics") return metrics();
    return json_answer(404, {{"error", "no such path: " + req.path}});
  }

  agent::HttpAnswer metrics() {
    agent::PromText p;
    const bool connected = mc->connected();
    const std::uint64_t rereg = registry ? registry->reregistrations() : 0;
    std::lock_guard lock(mu);
    p.counter("coord_sidecar_checks_total", "Health checks run", static_cast<double>(checks));
    p.counter("coord_sidecar_check_failures_total", "Health checks that failed",
              static_cast<double>(check_failures));
    p.gauge("coord_sidecar_healthy", "1 while the local instance is up (rise/fall)",
            healthy ? 1 : 0);
    p.gauge("coord_sidecar_registered", "1 while the local instance is registered",
            registered ? 1 : 0);
    p.counter("coord_sidecar_registrations_total", "Times the instance was registered",
              static_cast<double>(registrations));
    p.counter("coord_sidecar_deregistrations_total", "Times the instance was removed",
              static_cast<double>(deregistrations));
    p.counter("coord_sidecar_registration_errors_total",
              "Registrations or removals that failed (and were retried)",
              static_cast<double>(registration_errors));
    p.counter("coord_sidecar_reregistrations_total",
              "Registrations written again after a session expiry", static_cast<double>(rereg));
    p.gauge("coord_sidecar_connected", "1 while connected to the coordination service",
            connected ? 1 : 0);
    // A metric's samples go together: one loop per metric.
    for (const auto& v : views) {
      auto it = discovery_changes.find(v.name);
      p.counter("coord_sidecar_discovery_changes_total",
                "Changes seen in a watched service's instances",
                static_cast<double>(it == discovery_changes.end() ? 0 : it->second),
                {{"service", v.name}});
    }
    for (const auto& v : views)
      p.gauge("coord_sidecar_instances", "Instances of a watched service",
              static_cast<double>(v.instances.size()), {{"service", v.name}});
    for (const auto& v : views)
      p.gauge("coord_sidecar_stale", "1 while a watched service's list may be behind",
              v.stale ? 1 : 0, {{"service", v.name}});
    p.counter("coord_sidecar_renders_total", "Template renders", static_cast<double>(renders));
    p.counter("coord_sidecar_render_failures_total", "Templates that failed to render or write",
              static_cast<double>(render_failures));
    p.counter("coord_sidecar_files_written_total", "Rendered files whose content changed",
              static_cast<double>(files_written));
    p.counter("coord_sidecar_reloads_total", "Reload commands run", static_cast<double>(reloads));
    p.counter("coord_sidecar_reload_failures_total", "Reload commands that failed",
              static_cast<double>(reload_failures));
    agent::HttpAnswer a;
    a.content_type = agent::PromText::content_type;
    a.body = p.str();
    return a;
  }
};

Result<std::unique_ptr<Sidecar>> Sidecar::start(Config config) {
  auto st = std::make_shared<State>(std::move(config));
  const Config& cfg = st->cfg;
  for (const auto& t : cfg.templates) {
    auto parsed = Template::load(t.source);
    if (!parsed.ok()) return parsed.status();
    st->templates.push_back(std::move(*parsed));
  }
  {
    std::set<std::string> dests;
    for (const auto& t : cfg.templates) {
      if (!dests.insert(t.destination).second)
        return Status(ErrorCode::BadArguments, "two templates write " + t.destination);
    }
  }
  ClientOptions o;
  o.servers = cfg.servers;
  o.session_timeout = cfg.session_timeout;
  auto mc = ManagedClient::start(o);
  if (!mc.ok()) return mc.status();
  st->mc = std::move(*mc);
  std::weak_ptr<State> weak = st;
  st->listener = st->mc->add_listener([weak](ConnectionEvent ev, std::uint64_t gen) {
    COORD_LOG_INFO(kLog, "connection: ", connection_event_name(ev), " (session ", gen, ")");
    if (auto s = weak.lock()) s->wake_watch();
  });
  if (!cfg.service.empty()) {
    auto reg = ServiceRegistry::start(*st->mc, cfg.base_path);
    if (!reg.ok()) return reg.status();
    st->registry = std::move(*reg);
    ServiceInstance& i = st->instance;
    i.name = cfg.service;
    i.id = cfg.id;
    i.address = cfg.address;
    i.port = cfg.port;
    i.metadata = cfg.metadata;
  }
  for (const auto& name : cfg.watch) {
    DiscoveryOptions d;
    d.base_path = cfg.base_path;
    d.name = name;
    d.on_change = [weak](const std::vector<ServiceInstance>&) {
      if (auto s = weak.lock()) s->wake_watch();
    };
    auto disc = ServiceDiscovery::start(*st->mc, std::move(d));
    if (!disc.ok()) return disc.status();
    st->discoveries.push_back(std::move(*disc));
    st->views.push_back(ServiceView{name, true, {}});
    st->loaded_once.push_back(false);
  }
  auto http = agent::HttpServer::start(
      cfg.listen_host, cfg.listen_port,
      [raw = st.get()](const agent::HttpRequest& r) { return raw->handle(r); });
  if (!http.ok()) return http.status();
  st->http = std::move(*http);
  COORD_LOG_INFO(kLog, "listening on ", cfg.listen_host, ":", st->http->port());

  State* raw = st.get();
  if (st->registry) {
    if (cfg.check.kind == CheckKind::None) {
      st->healthy = true;
      st->want_registered = true;
      COORD_LOG_INFO(kLog, "no health check: registering ", cfg.id);
    } else {
      st->checker = std::thread([raw] { raw->check_loop(); });
    }
    st->registrar = std::thread([raw] { raw->registrar_loop(); });
  }
  if (!st->discoveries.empty()) st->watcher = std::thread([raw] { raw->watch_loop(); });
  if (!st->templates.empty()) st->renderer = std::thread([raw] { raw->render_loop(); });
  return std::unique_ptr<Sidecar>(new Sidecar(std::move(st)));
}

Sidecar::Sidecar(std::shared_ptr<State> s) : state_(std::move(s)) {}

Sidecar::~Sidecar() {
  shutdown();
}

void Sidecar::shutdown() {
  State& s = *state_;
  if (s.shut) return;
  s.shut = true;
  // 1. No more checks: nothing may register the instance again.
  {
    std::lock_guard lock(s.mu);
    s.check_stop = true;
    s.want_registered = false;
  }
  s.cv.notify_all();
  if (s.checker.joinable()) s.checker.join();
  // 2. Deregister, bounded: past the deadline the session is closed, which
  // removes the ephemeral node on the servers just the same.
  if (s.registrar.joinable()) {
    std::unique_lock lock(s.mu);
    s.reg_stop = true;
    s.cv.notify_all();
    const bool done = s.cv.wait_for(lock, milliseconds(limits::sidecar_deregister_ms_max),
                                    [&] { return s.reg_done; });
    if (!done) {
      s.reg_abandon = true;
      s.cv.notify_all();
      lock.unlock();
      COORD_LOG_WARN(kLog, "deregistration did not finish in ", limits::sidecar_deregister_ms_max,
                     " ms: closing the session");
      (void)s.mc->close(milliseconds(limits::sidecar_deregister_ms_max));
    }
    s.registrar.join();
  }
  // 3. Everything else.
  {
    std::lock_guard lock(s.mu);
    s.watch_stop = true;
    s.render_stop = true;
  }
  s.cv.notify_all();
  if (s.renderer.joinable()) s.renderer.join();
  if (s.watcher.joinable()) s.watcher.join();
  s.http.reset();
  s.mc->remove_listener(s.listener);
  s.discoveries.clear();
  s.registry.reset();
  s.mc.reset();
}

std::uint16_t Sidecar::http_port() const {
  return state_->http ? state_->http->port() : 0;
}

}  // namespace coord::sidecar
