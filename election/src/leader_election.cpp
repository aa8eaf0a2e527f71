#include "coord/election/leader_election.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "coord/election/queue_node.h"

namespace coord {

std::string_view leadership_event_name(LeadershipEventKind k) {
  switch (k) {
    case LeadershipEventKind::Waiting:
      return "Waiting";
    case LeadershipEventKind::Elected:
      return "Elected";
    case LeadershipEventKind::Suspended:
      return "Suspended";
    case LeadershipEventKind::Revoked:
      return "Revoked";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Retry pause after a failed step (a create or list that hit a lost
// connection), so a flapping connection cannot spin the thread.
constexpr milliseconds kRetryPause{200};

bool valid_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && (p.size() == 1 || p.back() != '/');
}

}  // namespace

struct LeaderElection::State {
  State(ManagedClient& c, ElectionOptions o) : mc(c), opts(std::move(o)) {}

  ManagedClient& mc;
  const ElectionOptions opts;
  ManagedClient::ListenerId listener = 0;
  std::thread worker;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool stop = false;
  bool wake = true;
  bool resign_requested = false;
  // Written by the worker under `mu`, read by anyone.
  bool leading = false;
  bool suspended = false;
  std::int64_t token = 0;
  std::string node;
  std::string pred;
  std::uint64_t watch_events = 0;
  bool watch_fired = false;  // the armed watch is spent
  Clock::time_point lease_until{};

  // The worker's own.
  std::uint64_t node_gen = 0;   // generation of the session that made `node`
  std::int64_t node_czxid = 0;  // its creation zxid: the token if it leads
  std::string prefix;           // protected prefix of that session
  std::uint64_t prefix_gen = 0;
  std::string armed_pred;  // predecessor with a watch outstanding
  std::uint64_t armed_gen = 0;
  bool rejoin = false;  // Revoke policy: leave the queue once reconnected
  Clock::time_point next_check{};

  void wake_up() {
    {
      std::lock_guard lock(mu);
      wake = true;
    }
    cv.notify_all();
  }

  void emit(LeadershipEventKind kind, std::string reason = {}) {
    LeadershipEvent ev;
    {
      std::lock_guard lock(mu);
      ev.kind = kind;
      ev.token = token;
      ev.node = node;
      ev.predecessor = pred;
      ev.reason = std::move(reason);
    }
    cv.notify_all();
    if (opts.on_event) opts.on_event(ev);
  }

  void set_lost(const std::string& reason) {
    bool was;
    {
      std::lock_guard lock(mu);
      was = leading;
      leading = false;
      suspended = false;
    }
    if (was) emit(LeadershipEventKind::Revoked, reason);
    std::lock_guard lock(mu);
    token = 0;
  }

  void forget_node() {
    std::lock_guard lock(mu);
    node.clear();
    pred.clear();
    armed_pred.clear();
  }

  static milliseconds session_timeout(Client& c) {
    const milliseconds t = c.negotiated_timeout();
    return t.count() > 0 ? t : milliseconds(3000);
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait_until(lock, next_check, [&] { return stop || wake; });
      if (stop) break;
      wake = false;
      lock.unlock();
      step();
      lock.lock();
    }
    lock.unlock();
    leave();
  }

  // One pass: reconcile what this side believes with the session and the
  // queue as they are now.
  void step() {
    std::shared_ptr<Client> c = mc.client();
    const std::uint64_t gen = mc.generation();
    next_check = Clock::now() + kRetryPause;
    const milliseconds timeout = session_timeout(*c);

    std::string my_node;
    {
      std::lock_guard lock(mu);
      my_node = node;
      if (watch_fired) armed_pred.clear();
      watch_fired = false;
    }
    if (!my_node.empty() && node_gen != gen) {
      // The session that held our node expired: the node is gone.
      set_lost("session expired");
      forget_node();
      my_node.clear();
    }

    // A leader that has not heard from the servers for too long (a pause,
    // a dead connection not yet noticed) must assume the worst.
    bool lease_gone;
    {
      std::lock_guard lock(mu);
      lease_gone = leading && !suspended && Clock::now() >= lease_until;
    }
    if (lease_gone || (c->state() != SessionState::Connected && is_leading_unsuspended())) {
      suspend();
    }
    if (c->state() != SessionState::Connected) return;

    const bool resigning = take_resign();
    if (rejoin || resigning) {
      rejoin = false;
      set_lost("resigned");
      if (!my_node.empty()) {
        auto r = c->remove(recipe::child_path(opts.path, my_node));
        if (!r.ok() && r.code() != ErrorCode::NoNode) {
          rejoin = true;  // try again at the next step
          return;
        }
      }
      forget_node();
      my_node.clear();
    }

    if (my_node.empty()) {
      if (prefix_gen != gen) {
        prefix = recipe::new_protected_prefix();
        prefix_gen = gen;
      }
      auto made = recipe::create_queue_node(*c, opts.path, prefix, opts.node_name, opts.id);
      if (!made.ok()) return;
      std::lock_guard lock(mu);
      node = made->name;
      node_czxid = made->czxid;
      node_gen = gen;
      my_node = node;
    }

    const auto sent = Clock::now();
    auto children = c->get_children(opts.path);
    if (!children.ok()) {
      if (children.code() == ErrorCode::NoNode) {
        set_lost("election node deleted");
        forget_node();
        std::lock_guard lock(mu);
        wake = true;
      }
      return;
    }
    const auto ordered = recipe::order_children(std::move(*children), {opts.node_name});
    std::size_t idx = ordered.size();
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      if (ordered[i] == my_node) idx = i;
    }
    if (idx == ordered.size()) {
      // Our node was deleted by someone else: rejoin.
      set_lost("node deleted");
      forget_node();
      std::lock_guard lock(mu);
      wake = true;
      return;
    }
    {
      std::lock_guard lock(mu);
      lease_until = sent + timeout * 2 / 3;
    }
    next_check = Clock::now() + timeout / 3;

    if (idx == 0) {
      bool newly;
      {
        std::lock_guard lock(mu);
        newly = !leading || suspended;
        if (!leading) token = node_czxid;
        leading = true;
        suspended = false;
        pred.clear();
      }
      if (newly) emit(LeadershipEventKind::Elected);
      return;
    }

    set_lost("no longer first");
    const std::string p = ordered[idx - 1];
    const bool arm = !(armed_pred == p && armed_gen == gen);
    Watcher w;
    if (arm) {
      std::weak_ptr<State> weak = self;
      w = [weak](const WatchEvent& ev) {
        auto st = weak.lock();
        if (!st) return;
        if (ev.type == EventType::NodeDeleted || ev.type == EventType::NodeDataChanged ||
            ev.type == EventType::NodeCreated) {
          std::lock_guard lock(st->mu);
          ++st->watch_events;
        }
        {
          std::lock_guard lock(st->mu);
          st->watch_fired = true;
        }
        st->wake_up();
      };
    }
    auto ex = c->exists(recipe::child_path(opts.path, p), std::move(w));
    if (!ex.ok()) return;
    if (!*ex) {
      // Gone between the list and the watch: list again.
      std::lock_guard lock(mu);
      armed_pred.clear();
      wake = true;
      return;
    }
    if (arm) {
      armed_pred = p;
      armed_gen = gen;
    }
    bool changed;
    {
      std::lock_guard lock(mu);
      changed = pred != p;
      pred = p;
    }
    if (changed) emit(LeadershipEventKind::Waiting);
  }

  bool is_leading_unsuspended() {
    std::lock_guard lock(mu);
    return leading && !suspended;
  }

  bool take_resign() {
    std::lock_guard lock(mu);
    const bool r = resign_requested;
    resign_requested = false;
    return r;
  }

  void suspend() {
    {
      std::lock_guard lock(mu);
      suspended = true;
    }
    emit(LeadershipEventKind::Suspended);
    if (opts.suspension == SuspensionPolicy::Revoke) {
      set_lost("connection lost");
      rejoin = true;
    }
  }

  void leave() {
    set_lost("left the election");
    std::string my_node;
    {
      std::lock_guard lock(mu);
      my_node = node;
    }
    if (my_node.empty() || node_gen != mc.generation()) return;
    auto c = mc.client();
    if (c->state() == SessionState::Connected || c->state() == SessionState::Disconnected) {
      (void)c->remove(recipe::child_path(opts.path, my_node));
    }
    forget_node();
  }

  std::weak_ptr<State> self;
};

Result<std::unique_ptr<LeaderElection>> LeaderElection::start(ManagedClient& client,
                                                              ElectionOptions options) {
  if (!valid_path(options.path))
    return Status(ErrorCode::BadArguments, "election path must be absolute: " + options.path);
  if (options.id.empty()) return Status(ErrorCode::BadArguments, "a candidate needs an id");
  if (options.node_name.empty())
    return Status(ErrorCode::BadArguments, "the node name must not be empty");
  auto st = std::make_shared<State>(client, std::move(options));
  st->self = st;
  std::weak_ptr<State> weak = st;
  st->listener = client.add_listener([weak](ConnectionEvent, std::uint64_t) {
    if (auto s = weak.lock()) s->wake_up();
  });
  st->worker = std::thread([raw = st.get()] { raw->run(); });
  return std::unique_ptr<LeaderElection>(new LeaderElection(std::move(st)));
}

LeaderElection::LeaderElection(std::shared_ptr<State> state) : state_(std::move(state)) {}

LeaderElection::~LeaderElection() {
  state_->mc.remove_listener(state_->listener);
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  state_->worker.join();
}

bool LeaderElection::is_leader() const {
  std::lock_guard lock(state_->mu);
  return state_->leading && !state_->suspended && Clock::now() < state_->lease_until;
}

std::optional<std::int64_t> LeaderElection::token() const {
  std::lock_guard lock(state_->mu);
  if (!state_->leading) return std::nullopt;
  return state_->token;
}

Status LeaderElection::await_leadership(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mu);
  const bool ok = state_->cv.wait_for(lock, timeout, [&] {
    return state_->leading && !state_->suspended && Clock::now() < state_->lease_until;
  });
  return ok ? Status() : Status(ErrorCode::OperationTimeout, "not elected in time");
}

void LeaderElection::resign() {
  {
    std::lock_guard lock(state_->mu);
    state_->resign_requested = true;
    state_->wake = true;
  }
  state_->cv.notify_all();
}

Result<std::vector<Participant>> LeaderElection::participants() const {
  auto c = state_->mc.client();
  const std::string& dir = state_->opts.path;
  auto children = c->get_children(dir);
  if (!children.ok()) {
    if (children.code() == ErrorCode::NoNode) return std::vector<Participant>();
    return children.status();
  }
  std::vector<Participant> out;
  for (auto& name : recipe::order_children(std::move(*children), {state_->opts.node_name})) {
    auto d = c->get_data(recipe::child_path(dir, name));
    if (!d.ok()) {
      if (d.code() == ErrorCode::NoNode) continue;  // left meanwhile
      return d.status();
    }
    Participant p;
    p.id = d->data.value_or("");
    p.node = std::move(name);
    p.czxid = d->stat.czxid;
    p.leader = out.empty();
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::optional<Participant>> LeaderElection::leader() const {
  auto all = participants();
  if (!all.ok()) return all.status();
  if (all->empty()) return std::optional<Participant>();
  return std::optional<Participant>(std::move(all->front()));
}

std::string LeaderElection::node() const {
  std::lock_guard lock(state_->mu);
  return state_->node;
}

std::string LeaderElection::predecessor() const {
  std::lock_guard lock(state_->mu);
  return state_->pred;
}

std::uint64_t LeaderElection::watch_events() const {
  std::lock_guard lock(state_->mu);
  return state_->watch_events;
}

}  // namespace coord
