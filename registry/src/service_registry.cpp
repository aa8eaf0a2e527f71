#include "coord/registry/service_registry.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace coord {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Pause after a step that failed for want of a connection.
constexpr milliseconds kRetryPause{200};
// Attempts of one registration write before giving up.
constexpr int kWriteAttemptsMax = 8;

bool valid_segment(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s != "." && s != "..";
}

bool valid_base(const std::string& p) {
  return !p.empty() && p.front() == '/' && (p.size() == 1 || p.back() != '/');
}

std::string join(const std::string& dir, const std::string& child) {
  return dir == "/" ? "/" + child : dir + "/" + child;
}

bool connection_trouble(ErrorCode c) {
  return c == ErrorCode::ConnectionLoss || c == ErrorCode::OperationTimeout;
}

// `dir` and its missing ancestors, as containers.
Status ensure_containers(Client& c, const std::string& dir) {
  if (dir == "/") return Status();
  for (std::size_t pos = 1;;) {
    const std::size_t slash = dir.find('/', pos);
    const std::string prefix = slash == std::string::npos ? dir : dir.substr(0, slash);
    auto r = c.run(ops::Create{prefix, std::nullopt, CreateMode::Container});
    if (!r.ok() && r.code() != ErrorCode::NodeExists) return r.status();
    if (slash == std::string::npos) return Status();
    pos = slash + 1;
  }
}

std::int64_t now_utc_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------- registry

struct ServiceRegistry::State {
  State(ManagedClient& c, std::string b) : mc(c), base(std::move(b)) {}
  ManagedClient& mc;
  const std::string base;
  ManagedClient::ListenerId listener = 0;
  std::thread worker;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool wake = false;
  std::map<std::string, ServiceInstance> instances;  // by path
  std::uint64_t registered_gen = 0;                  // the session they were written in
  std::uint64_t reregistrations = 0;

  // Writes one instance's node: create, or set in place if this session
  // has it, or replace a leftover of an earlier session.
  Status write(Client& c, const std::string& path, const ServiceInstance& i) {
    const std::string json = to_curator_json(i);
    Status last(ErrorCode::ConnectionLoss, "no attempt");
    for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
      auto r = c.run(ops::Create{path, json, CreateMode::Ephemeral});
      if (r.ok()) return Status();
      last = r.status();
      if (r.code() == ErrorCode::NoNode) {
        if (Status s = ensure_containers(c, path.substr(0, path.rfind('/'))); !s.ok()) last = s;
        continue;
      }
      if (r.code() == ErrorCode::NodeExists) {
        auto st = c.exists(path);
        if (!st.ok()) {
          last = st.status();
          continue;
        }
        if (!*st) continue;  // gone meanwhile
        if ((*st)->ephemeral_owner == c.session_id().value()) {
          auto s = c.set_data(path, json);
          if (s.ok()) return Status();
          last = s.status();
          continue;
        }
        // Someone else's node, or ours from an expired session: replace it.
        (void)c.remove(path, (*st)->version);
        continue;
      }
      if (connection_trouble(r.code())) {
        (void)c.wait_connected(c.negotiated_timeout());
        continue;
      }
      return last;
    }
    return last;
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait_for(lock, kRetryPause * 5, [&] { return stop || wake; });
      if (stop) break;
      wake = false;
      const std::uint64_t gen = mc.generation();
      if (gen == registered_gen || instances.empty()) {
        registered_gen = gen;
        continue;
      }
      auto c = mc.client();
      if (c->state() != SessionState::Connected) continue;
      auto copy = instances;
      lock.unlock();
      bool all = true;
      for (const auto& [path, i] : copy)
        all = write(*c, path, i).ok() && all;
      lock.lock();
      if (all && mc.generation() == gen) {
        registered_gen = gen;
        ++reregistrations;
      } else {
        wake = true;  // try again shortly
        cv.wait_for(lock, kRetryPause);
      }
    }
  }
};

Result<std::unique_ptr<ServiceRegistry>> ServiceRegistry::start(ManagedClient& client,
                                                                std::string base_path) {
  if (!valid_base(base_path))
    return Status(ErrorCode::BadArguments, "registry base path must be absolute: " + base_path);
  auto st = std::make_shared<State>(client, std::move(base_path));
  st->registered_gen = client.generation();
  std::weak_ptr<State> weak = st;
  st->listener = client.add_listener([weak](ConnectionEvent, std::uint64_t) {
    if (auto s = weak.lock()) {
      {
        std::lock_guard lock(s->mu);
        s->wake = true;
      }
      s->cv.notify_all();
    }
  });
  st->worker = std::thread([raw = st.get()] { raw->run(); });
  return std::unique_ptr<ServiceRegistry>(new ServiceRegistry(std::move(st)));
}

ServiceRegistry::ServiceRegistry(std::shared_ptr<State> s) : state_(std::move(s)) {}

ServiceRegistry::~ServiceRegistry() {
  state_->mc.remove_listener(state_->listener);
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  state_->worker.join();
  auto c = state_->mc.client();
  if (c->state() == SessionState::Connected) {
    for (const auto& [path, i] : state_->instances)
      (void)c->remove(path);
  }
}

std::string ServiceRegistry::path_of(const std::string& name, const std::string& id) const {
  return join(join(state_->base, name), id);
}

Status ServiceRegistry::register_instance(ServiceInstance i) {
  if (!valid_segment(i.name) || !valid_segment(i.id))
    return Status(ErrorCode::BadArguments, "an instance needs a name and an id without '/'");
  if (i.registration_time_utc_ms == 0) i.registration_time_utc_ms = now_utc_ms();
  const std::string path = path_of(i.name, i.id);
  auto c = state_->mc.client();
  if (Status s = state_->write(*c, path, i); !s.ok()) return s;
  std::lock_guard lock(state_->mu);
  state_->instances[path] = std::move(i);
  return Status();
}

Status ServiceRegistry::update(ServiceInstance i) {
  const std::string path = path_of(i.name, i.id);
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->instances.find(path);
    if (it == state_->instances.end()) return Status(ErrorCode::NoNode, "not registered: " + path);
    if (i.registration_time_utc_ms == 0)
      i.registration_time_utc_ms = it->second.registration_time_utc_ms;
  }
  auto c = state_->mc.client();
  auto r = c->set_data(path, to_curator_json(i));
  if (!r.ok() && r.code() != ErrorCode::NoNode) return r.status();
  // NoNode: the session expired; the worker writes the new data shortly.
  std::lock_guard lock(state_->mu);
  state_->instances[path] = std::move(i);
  return Status();
}

Status ServiceRegistry::unregister(const std::string& name, const std::string& id) {
  const std::string path = path_of(name, id);
  {
    std::lock_guard lock(state_->mu);
    if (state_->instances.erase(path) == 0)
      return Status(ErrorCode::NoNode, "not registered: " + path);
  }
  const Status s = state_->mc.client()->remove(path);
  return s.code() == ErrorCode::NoNode ? Status() : s;
}

std::uint64_t ServiceRegistry::reregistrations() const {
  std::lock_guard lock(state_->mu);
  return state_->reregistrations;
}

// --------------------------------------------------------------- discovery

struct ServiceDiscovery::State {
  State(ManagedClient& c, DiscoveryOptions o)
      : mc(c), opts(std::move(o)), dir(join(opts.base_path, opts.name)) {}
  ManagedClient& mc;
  const DiscoveryOptions opts;
  const std::string dir;
  ManagedClient::ListenerId listener = 0;
  std::thread worker;
  std::weak_ptr<State> self;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool stop = false;
  bool wake = true;
  bool full = true;                              // read the whole list at the next step
  std::set<std::string> pending;                 // children to read again
  std::map<std::string, ServiceInstance> cache;  // by child name
  bool loaded = false;
  bool connected = false;
  bool persistent = true;
  std::uint64_t unreadable = 0;
  std::size_t rr = 0;
  std::optional<std::string> sticky;
  std::mt19937_64 rng{std::random_device{}()};

  // The worker's own.
  std::uint64_t persistent_gen = 0;
  bool child_armed = false;
  std::uint64_t child_gen = 0;
  std::set<std::string> data_armed;
  std::uint64_t data_gen = 0;

  void poke(bool whole, const std::string& child = {}) {
    {
      std::lock_guard lock(mu);
      wake = true;
      if (whole) full = true;
      if (!child.empty()) pending.insert(child);
    }
    cv.notify_all();
  }

  Watcher watcher(bool is_data_watch) {
    std::weak_ptr<State> weak = self;
    return [weak, is_data_watch](const WatchEvent& ev) {
      auto s = weak.lock();
      if (!s) return;
      if (ev.type == EventType::None) return;
      if (ev.path == s->dir || ev.path.size() <= s->dir.size()) {
        {
          std::lock_guard lock(s->mu);
          if (!is_data_watch) s->child_armed_fired = true;
        }
        s->poke(true);
        return;
      }
      const std::string child = ev.path.substr(s->dir.size() + 1);
      if (child.find('/') != std::string::npos) return;  // deeper: not an instance
      {
        std::lock_guard lock(s->mu);
        if (is_data_watch) s->data_fired.insert(child);
      }
      s->poke(false, child);
    };
  }
  bool child_armed_fired = false;
  std::set<std::string> data_fired;

  void run() {
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait_for(lock, milliseconds(1000), [&] { return stop || wake; });
      if (stop) break;
      wake = false;
      lock.unlock();
      step();
      lock.lock();
    }
  }

  // Reads one child; nullopt when it is gone or unreadable.
  Result<std::optional<ServiceInstance>> read(Client& c, const std::string& child, bool arm) {
    auto d = c.get_data(join(dir, child), arm ? watcher(true) : Watcher{});
    if (!d.ok()) {
      if (d.code() == ErrorCode::NoNode) return std::optional<ServiceInstance>();
      return d.status();
    }
    if (arm) data_armed.insert(child);
    auto i = parse_curator_json(d->data.value_or(""));
    if (!i.ok()) {
      std::lock_guard lock(mu);
      ++unreadable;
      return std::optional<ServiceInstance>();
    }
    return std::optional<ServiceInstance>(std::move(*i));
  }

  void step() {
    auto c = mc.client();
    const std::uint64_t gen = mc.generation();
    const bool up = c->state() == SessionState::Connected;
    bool whole;
    std::set<std::string> todo;
    bool use_persistent;
    {
      std::lock_guard lock(mu);
      connected = up;
      if (!up) return;
      whole = full;
      full = false;
      todo.swap(pending);
      use_persistent = persistent && opts.persistent_watch;
      if (child_armed_fired) child_armed = false;
      child_armed_fired = false;
      for (const auto& f : data_fired)
        data_armed.erase(f);
      data_fired.clear();
    }
    if (child_gen != gen) {
      child_armed = false;
      child_gen = gen;
    }
    if (data_gen != gen) {
      data_armed.clear();
      data_gen = gen;
    }
    auto retry = [&] {
      std::lock_guard lock(mu);
      full = full || whole;
      pending.insert(todo.begin(), todo.end());
      wake = true;
    };
    if (use_persistent && persistent_gen != gen) {
      auto r = c->run(ops::AddWatch{dir, AddWatchMode::PersistentRecursive, watcher(false)});
      if (r.ok()) {
        persistent_gen = gen;
        whole = true;
      } else if (connection_trouble(r.code())) {
        retry();
        std::this_thread::sleep_for(kRetryPause);
        return;
      } else {
        std::lock_guard lock(mu);
        persistent = false;  // the server has no persistent watches
        use_persistent = false;
        whole = true;
      }
    }
    std::map<std::string, ServiceInstance> next;
    if (whole) {
      const bool arm_child = !use_persistent && !child_armed;
      auto children = c->get_children(dir, arm_child ? watcher(false) : Watcher{});
      if (!children.ok() && children.code() == ErrorCode::NoNode) {
        // No such service (yet): in one-shot mode, learn when it appears.
        if (!use_persistent) {
          auto ex = c->exists(dir, watcher(false));
          if (!ex.ok() || *ex) {
            retry();
            return;
          }
        }
        children = std::vector<std::string>();
      } else if (children.ok() && arm_child) {
        child_armed = true;
      }
      if (!children.ok()) {
        retry();
        return;
      }
      for (const auto& ch : *children) {
        auto i = read(*c, ch, !use_persistent && !data_armed.count(ch));
        if (!i.ok()) {
          retry();
          return;
        }
        if (*i) next.emplace(ch, std::move(**i));
      }
    } else {
      {
        std::lock_guard lock(mu);
        next = cache;
      }
      for (const auto& ch : todo) {
        auto i = read(*c, ch, !use_persistent && !data_armed.count(ch));
        if (!i.ok()) {
          retry();
          return;
        }
        if (*i) {
          next[ch] = std::move(**i);
        } else {
          next.erase(ch);
        }
      }
    }
    bool changed;
    std::vector<ServiceInstance> list;
    {
      std::lock_guard lock(mu);
      changed = !loaded || next != cache;
      cache = std::move(next);
      loaded = true;
      for (const auto& [k, v] : cache)
        list.push_back(v);
    }
    cv.notify_all();
    if (changed && opts.on_change) opts.on_change(list);
  }
};

Result<std::unique_ptr<ServiceDiscovery>> ServiceDiscovery::start(ManagedClient& client,
                                                                  DiscoveryOptions options) {
  if (!valid_base(options.base_path) || !valid_segment(options.name))
    return Status(ErrorCode::BadArguments, "discovery needs an absolute base path and a name");
  auto st = std::make_shared<State>(client, std::move(options));
  st->self = st;
  std::weak_ptr<State> weak = st;
  st->listener = client.add_listener([weak](ConnectionEvent, std::uint64_t) {
    if (auto s = weak.lock()) s->poke(true);
  });
  st->worker = std::thread([raw = st.get()] { raw->run(); });
  return std::unique_ptr<ServiceDiscovery>(new ServiceDiscovery(std::move(st)));
}

ServiceDiscovery::ServiceDiscovery(std::shared_ptr<State> s) : state_(std::move(s)) {}

ServiceDiscovery::~ServiceDiscovery() {
  state_->mc.remove_listener(state_->listener);
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  state_->worker.join();
}

std::vector<ServiceInstance> ServiceDiscovery::instances() const {
  std::lock_guard lock(state_->mu);
  std::vector<ServiceInstance> out;
  for (const auto& [k, v] : state_->cache)
    out.push_back(v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

bool ServiceDiscovery::stale() const {
  if (!state_->mc.connected()) return true;
  std::lock_guard lock(state_->mu);
  return !state_->loaded || !state_->connected;
}

Status ServiceDiscovery::await_loaded(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->loaded; })
             ? Status()
             : Status(ErrorCode::OperationTimeout, "service list not read in time");
}

std::optional<ServiceInstance> ServiceDiscovery::select(Selection policy) {
  auto all = instances();
  if (all.empty()) return std::nullopt;
  std::lock_guard lock(state_->mu);
  switch (policy) {
    case Selection::RoundRobin:
      return all[state_->rr++ % all.size()];
    case Selection::Random:
      return all[std::uniform_int_distribution<std::size_t>(0, all.size() - 1)(state_->rng)];
    case Selection::Sticky: {
      if (state_->sticky) {
        for (const auto& i : all)
          if (i.id == *state_->sticky) return i;
      }
      auto pick = all[std::uniform_int_distribution<std::size_t>(0, all.size() - 1)(state_->rng)];
      state_->sticky = pick.id;
      return pick;
    }
  }
  return std::nullopt;
}

bool ServiceDiscovery::uses_persistent_watch() const {
  std::lock_guard lock(state_->mu);
  return state_->persistent && state_->opts.persistent_watch;
}

std::uint64_t ServiceDiscovery::unreadable() const {
  std::lock_guard lock(state_->mu);
  return state_->unreadable;
}

}  // namespace coord
