#include "coord/client-lib/managed_client.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace coord {

std::string_view connection_event_name(ConnectionEvent e) {
  switch (e) {
    case ConnectionEvent::Connected:
      return "Connected";
    case ConnectionEvent::Suspended:
      return "Suspended";
    case ConnectionEvent::Reconnected:
      return "Reconnected";
    case ConnectionEvent::Lost:
      return "Lost";
    case ConnectionEvent::Closed:
      return "Closed";
  }
  return "?";
}

struct ManagedClient::Shared {
  ClientOptions options;
  std::function<void(SessionState)> user_on_state;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::shared_ptr<Client> current;
  std::uint64_t generation = 0;
  bool connected_once = false;  // of the current generation
  bool renew = false;           // the current session expired: open another
  bool stopping = false;
  bool closed = false;
  std::vector<std::shared_ptr<Client>> retired;
  std::map<ListenerId, std::shared_ptr<Listener>> listeners;
  ListenerId next_listener = 1;
  std::thread keeper;

  // Called with `mu` held: starts generation `g`.
  Status start_client_locked(std::uint64_t g, const std::shared_ptr<Shared>& self) {
    ClientOptions o = options;
    if (g > 1) {
      o.session_id = SessionId(0);
      o.session_password.clear();
    }
    std::weak_ptr<Shared> weak = self;
    o.on_state = [weak, g](SessionState s) {
      if (auto sh = weak.lock()) sh->on_state(g, s);
    };
    auto c = Client::start(std::move(o));
    if (!c.ok()) return c.status();
    if (current) retired.push_back(std::move(current));
    current = std::shared_ptr<Client>(std::move(c).value().release());
    generation = g;
    connected_once = false;
    return Status();
  }

  void on_state(std::uint64_t g, SessionState s) {
    ConnectionEvent ev;
    {
      std::lock_guard lock(mu);
      if (g != generation) return;  // a retired session's late news
      switch (s) {
        case SessionState::Connecting:
          return;
        case SessionState::Connected:
          ev = connected_once ? ConnectionEvent::Reconnected : ConnectionEvent::Connected;
          connected_once = true;
          break;
        case SessionState::Disconnected:
          ev = ConnectionEvent::Suspended;
          break;
        case SessionState::Expired:
          ev = ConnectionEvent::Lost;
          if (!stopping && !closed) renew = true;
          break;
        case SessionState::Closed:
        case SessionState::AuthFailed:
          ev = ConnectionEvent::Closed;
          closed = true;
          break;
        default:
          return;
      }
    }
    cv.notify_all();
    if (user_on_state) user_on_state(s);
    deliver(ev, g);
  }

  void deliver(ConnectionEvent ev, std::uint64_t g) {
    std::vector<std::shared_ptr<Listener>> copy;
    {
      std::lock_guard lock(mu);
      for (auto& [id, l] : listeners)
        copy.push_back(l);
    }
    for (auto& l : copy)
      (*l)(ev, g);
  }

  // The keeper thread: opens a new session after an expiry and destroys
  // retired Clients once only this list holds them.
  void keep(const std::shared_ptr<Shared>& self) {
    std::unique_lock lock(mu);
    while (!stopping) {
      cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping || renew; });
      if (stopping) break;
      if (renew) {
        renew = false;
        const Status s = start_client_locked(generation + 1, self);
        COORD_ASSERT(s.ok(), "options were valid for the first session: ", s.to_string());
      }
      std::vector<std::shared_ptr<Client>> doomed;
      for (auto it = retired.begin(); it != retired.end();) {
        if (it->use_count() == 1) {
          doomed.push_back(std::move(*it));
          it = retired.erase(it);
        } else {
          ++it;
        }
      }
      if (!doomed.empty()) {
        lock.unlock();
        doomed.clear();  // joins their threads, outside the lock
        lock.lock();
      }
    }
  }
};

Result<std::unique_ptr<ManagedClient>> ManagedClient::start(ClientOptions options) {
  auto sh = std::make_shared<Shared>();
  sh->user_on_state = std::move(options.on_state);
  options.on_state = nullptr;
  sh->options = std::move(options);
  {
    std::lock_guard lock(sh->mu);
    if (Status s = sh->start_client_locked(1, sh); !s.ok()) return s;
  }
  sh->keeper = std::thread([sh] { sh->keep(sh); });
  return std::unique_ptr<ManagedClient>(new ManagedClient(std::move(sh)));
}

ManagedClient::ManagedClient(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

ManagedClient::~ManagedClient() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  shared_->keeper.join();
  std::shared_ptr<Client> current;
  std::vector<std::shared_ptr<Client>> retired;
  {
    std::lock_guard lock(shared_->mu);
    current = std::move(shared_->current);
    retired = std::move(shared_->retired);
    shared_->listeners.clear();
  }
  // The keeper thread holds `shared_` no longer; the Clients' callbacks
  // hold it only weakly. Destroying them closes the sessions and joins.
  current.reset();
  retired.clear();
}

std::shared_ptr<Client> ManagedClient::client() const {
  std::lock_guard lock(shared_->mu);
  return shared_->current;
}

std::uint64_t ManagedClient::generation() const {
  std::lock_guard lock(shared_->mu);
  return shared_->generation;
}

bool ManagedClient::connected() const {
  auto c = client();
  return c && c->state() == SessionState::Connected;
}

Status ManagedClient::wait_connected(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto c = client();
    if (!c) return Status(ErrorCode::Closing, "managed client closed");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status(ErrorCode::ConnectionLoss, "not connected in time");
    const Status s = c->wait_connected(left);
    if (s.code() != ErrorCode::SessionExpired) return s;
    // Expired: the keeper opens the next session; wait for it.
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait_until(lock, deadline, [&] {
      return shared_->current != c || shared_->closed || shared_->stopping;
    });
    if (shared_->closed || shared_->stopping) return Status(ErrorCode::Closing, "closed");
  }
}

ManagedClient::ListenerId ManagedClient::add_listener(Listener listener) {
  std::lock_guard lock(shared_->mu);
  const ListenerId id = shared_->next_listener++;
  shared_->listeners.emplace(id, std::make_shared<Listener>(std::move(listener)));
  return id;
}

void ManagedClient::remove_listener(ListenerId id) {
  std::lock_guard lock(shared_->mu);
  shared_->listeners.erase(id);
}

Status ManagedClient::close(std::chrono::milliseconds timeout) {
  std::shared_ptr<Client> c;
  {
    std::lock_guard lock(shared_->mu);
    shared_->closed = true;
    shared_->renew = false;
    c = shared_->current;
  }
  return c ? c->close(timeout) : Status();
}

}  // namespace coord
