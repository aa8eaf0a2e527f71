// Drives a ZooKeeper-protocol server with the Apache ZooKeeper C client
// (libzookeeper_mt), a client nobody on this project wrote.
//
// Usage: zk_c_client_check HOST:PORT
// Runs one scenario after another (CRUD, sequential and ephemeral nodes,
// watches, multi, digest auth and ACLs, session resume after the client's
// TCP connection is cut) and exits 0 when every check held, 1 otherwise,
// printing the first failed check. Every wait is bounded. Single-threaded
// apart from the client library's own two threads; events reach the test
// through a mutex and a condition variable.

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr auto wait_max = std::chrono::seconds(15);
constexpr int recv_timeout_ms = 10000;

struct Event {
  int type;
  int state;
  std::string path;
};

// Events seen by one handle: session events and watch notifications.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  int state = 0;
};

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

#define CHECK_RC(expr, want)                                                                   \
  do {                                                                                         \
    const int rc_ = (expr);                                                                    \
    if (rc_ != (want)) {                                                                       \
      std::fprintf(stderr, "%s:%d: %s returned %d (%s), want %d\n", __FILE__, __LINE__, #expr, \
                   rc_, zerror(rc_), static_cast<int>(want));                                  \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

void on_event(zhandle_t*, int type, int state, const char* path, void* ctx) {
  auto* inbox = static_cast<Inbox*>(ctx);
  std::lock_guard lock(inbox->mu);
  if (type == ZOO_SESSION_EVENT) inbox->state = state;
  inbox->events.push_back(Event{type, state, path ? path : ""});
  inbox->cv.notify_all();
}

// Waits until `inbox` has a session state `state`.
bool wait_state(Inbox& inbox, int state) {
  std::unique_lock lock(inbox.mu);
  return inbox.cv.wait_for(lock, wait_max, [&] { return inbox.state == state; });
}

// Waits for a watch event of `type` on `path` and removes it from the inbox.
bool wait_event(Inbox& inbox, int type, const std::string& path) {
  std::unique_lock lock(inbox.mu);
  return inbox.cv.wait_for(lock, wait_max, [&] {
    for (auto it = inbox.events.begin(); it != inbox.events.end(); ++it) {
      if (it->type == type && it->path == path) {
        inbox.events.erase(it);
        return true;
      }
    }
    return false;
  });
}

// Waits for a session event reporting `state` and removes it from the inbox
// (the state may have moved on since: the event list keeps every step).
bool wait_session_event(Inbox& inbox, int state) {
  std::unique_lock lock(inbox.mu);
  return inbox.cv.wait_for(lock, wait_max, [&] {
    for (auto it = inbox.events.begin(); it != inbox.events.end(); ++it) {
      if (it->type == ZOO_SESSION_EVENT && it->state == state) {
        inbox.events.erase(it);
        return true;
      }
    }
    return false;
  });
}

bool has_event(Inbox& inbox, int type, const std::string& path) {
  std::lock_guard lock(inbox.mu);
  return std::any_of(inbox.events.begin(), inbox.events.end(),
                     [&](const Event& e) { return e.type == type && e.path == path; });
}

struct Client {
  zhandle_t* zh = nullptr;
  Inbox inbox;
};

void connect(Client& c, const std::string& hosts, const clientid_t* resume = nullptr) {
  c.zh = zookeeper_init2(hosts.c_str(), on_event, recv_timeout_ms, resume, &c.inbox, 0, nullptr);
  CHECK(c.zh != nullptr);
  CHECK(wait_state(c.inbox, ZOO_CONNECTED_STATE));
}

void disconnect(Client& c) {
  if (c.zh) zookeeper_close(c.zh);
  c.zh = nullptr;
}

std::string get(zhandle_t* zh, const char* path, Stat* stat = nullptr) {
  char buf[256];
  int len = sizeof buf;
  Stat local;
  CHECK_RC(zoo_get(zh, path, 0, buf, &len, stat ? stat : &local), ZOK);
  return len < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(len));
}

std::vector<std::string> children(zhandle_t* zh, const char* path) {
  String_vector sv{};
  CHECK_RC(zoo_get_children(zh, path, 0, &sv), ZOK);
  std::vector<std::string> out(sv.data, sv.data + sv.count);
  deallocate_String_vector(&sv);
  std::sort(out.begin(), out.end());
  return out;
}

void crud(zhandle_t* zh) {
  char created[256];
  CHECK_RC(zoo_create(zh, "/cc", nullptr, -1, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created),
           ZOK);
  CHECK(std::string(created) == "/cc");
  CHECK_RC(zoo_create(zh, "/cc/a", "one", 3, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  Stat st;
  CHECK(get(zh, "/cc/a", &st) == "one");
  CHECK(st.version == 0 && st.dataLength == 3 && st.ephemeralOwner == 0);
  CHECK_RC(zoo_set(zh, "/cc/a", "two", 3, 0), ZOK);
  CHECK_RC(zoo_set(zh, "/cc/a", "bad", 3, 0), ZBADVERSION);
  CHECK(get(zh, "/cc/a", &st) == "two");
  CHECK(st.version == 1);
  CHECK_RC(zoo_exists(zh, "/cc/missing", 0, &st), ZNONODE);
  CHECK_RC(zoo_create(zh, "/cc/a", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZNODEEXISTS);
  CHECK_RC(zoo_create(zh, "/cc/none/x", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZNONODE);
  CHECK_RC(zoo_create(zh, "/cc/a/b", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  CHECK_RC(zoo_delete(zh, "/cc/a", -1), ZNOTEMPTY);
  CHECK(children(zh, "/cc/a") == std::vector<std::string>{"b"});
  CHECK_RC(zoo_delete(zh, "/cc/a/b", 5), ZBADVERSION);
  CHECK_RC(zoo_delete(zh, "/cc/a/b", 0), ZOK);
  CHECK_RC(zoo_delete(zh, "/cc/a", -1), ZOK);
  CHECK_RC(zoo_exists(zh, "/cc/a", 0, &st), ZNONODE);
  CHECK_RC(zoo_create(zh, "bad-path", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZBADARGUMENTS);

  char seq[256];
  CHECK_RC(zoo_create(zh, "/cc/s-", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, seq, sizeof seq),
           ZOK);
  // The suffix counts every child ever created under /cc: only "a" so far.
  CHECK(std::string(seq) == "/cc/s-0000000001");
}

void ephemerals_and_watches(const std::string& hosts, zhandle_t* zh, Inbox& inbox) {
  Client other;
  connect(other, hosts);
  char path[256];
  CHECK_RC(zoo_create(other.zh, "/cc/e-", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL,
                      path, sizeof path),
           ZOK);
  Stat st;
  CHECK_RC(zoo_exists(zh, path, 1, &st), ZOK);
  CHECK(st.ephemeralOwner == zoo_client_id(other.zh)->client_id);
  CHECK_RC(zoo_create(other.zh, (std::string(path) + "/kid").c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                      0, nullptr, 0),
           ZNOCHILDRENFOREPHEMERALS);
  disconnect(other);  // closes the session: the ephemeral goes, the watch fires
  CHECK(wait_event(inbox, ZOO_DELETED_EVENT, path));
  CHECK_RC(zoo_exists(zh, path, 0, &st), ZNONODE);

  // exists watch on a missing node, then create.
  CHECK_RC(zoo_exists(zh, "/cc/w", 1, &st), ZNONODE);
  CHECK_RC(zoo_create(zh, "/cc/w", "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  CHECK(wait_event(inbox, ZOO_CREATED_EVENT, "/cc/w"));
  // data watch.
  char buf[16];
  int len = sizeof buf;
  CHECK_RC(zoo_get(zh, "/cc/w", 1, buf, &len, &st), ZOK);
  CHECK_RC(zoo_set(zh, "/cc/w", "1", 1, -1), ZOK);
  CHECK(wait_event(inbox, ZOO_CHANGED_EVENT, "/cc/w"));
  // child watch.
  String_vector sv{};
  CHECK_RC(zoo_get_children(zh, "/cc/w", 1, &sv), ZOK);
  deallocate_String_vector(&sv);
  CHECK_RC(zoo_create(zh, "/cc/w/k", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  CHECK(wait_event(inbox, ZOO_CHILD_EVENT, "/cc/w"));
  // one-shot: a second change fires nothing.
  CHECK_RC(zoo_set(zh, "/cc/w", "2", 1, -1), ZOK);
  CHECK_RC(zoo_exists(zh, "/cc", 0, &st), ZOK);
  CHECK(!has_event(inbox, ZOO_CHANGED_EVENT, "/cc/w"));
  CHECK_RC(zoo_delete(zh, "/cc/w/k", -1), ZOK);
}

void multi(zhandle_t* zh) {
  zoo_op_t ops[3];
  zoo_op_result_t results[3];
  char p0[64];
  zoo_create_op_init(&ops[0], "/cc/m", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p0, sizeof p0);
  zoo_set_op_init(&ops[1], "/cc/m", "y", 1, 0, nullptr);
  zoo_create_op_init(&ops[2], "/cc/m/k", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
  CHECK_RC(zoo_multi(zh, 3, ops, results), ZOK);
  CHECK(results[0].err == ZOK && results[1].err == ZOK && results[2].err == ZOK);
  CHECK(std::string(p0) == "/cc/m");
  CHECK(get(zh, "/cc/m") == "y");

  zoo_create_op_init(&ops[0], "/cc/m2", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
  zoo_delete_op_init(&ops[1], "/cc/m", -1);  // not empty
  zoo_check_op_init(&ops[2], "/cc/m", 1);
  CHECK_RC(zoo_multi(zh, 3, ops, results), ZNOTEMPTY);
  CHECK(results[0].err == ZOK);
  CHECK(results[1].err == ZNOTEMPTY);
  CHECK(results[2].err == ZRUNTIMEINCONSISTENCY);
  Stat st;
  CHECK_RC(zoo_exists(zh, "/cc/m2", 0, &st), ZNONODE);
}

void void_done(int rc, const void* data) {
  auto* inbox = static_cast<Inbox*>(const_cast<void*>(data));
  std::lock_guard lock(inbox->mu);
  inbox->events.push_back(Event{-100, rc, "auth"});
  inbox->cv.notify_all();
}

void auth(const std::string& hosts, zhandle_t* zh, Inbox& inbox) {
  CHECK_RC(zoo_add_auth(zh, "digest", "cuser:cpass", 11, void_done, &inbox), ZOK);
  {
    std::unique_lock lock(inbox.mu);
    CHECK(inbox.cv.wait_for(lock, wait_max, [&] {
      return std::any_of(inbox.events.begin(), inbox.events.end(),
                         [](const Event& e) { return e.type == -100 && e.state == ZOK; });
    }));
  }
  CHECK_RC(zoo_create(zh, "/cc/private", "p", 1, &ZOO_CREATOR_ALL_ACL, 0, nullptr, 0), ZOK);
  ACL_vector acl{};
  Stat st;
  CHECK_RC(zoo_get_acl(zh, "/cc/private", &acl, &st), ZOK);
  CHECK(acl.count == 1 && std::string(acl.data[0].id.scheme) == "digest" &&
        std::string(acl.data[0].id.id).rfind("cuser:", 0) == 0 &&
        acl.data[0].perms == ZOO_PERM_ALL);
  deallocate_ACL_vector(&acl);
  CHECK(get(zh, "/cc/private") == "p");

  Client stranger;
  connect(stranger, hosts);
  char buf[8];
  int len = sizeof buf;
  CHECK_RC(zoo_get(stranger.zh, "/cc/private", 0, buf, &len, &st), ZNOAUTH);
  CHECK_RC(zoo_set(stranger.zh, "/cc/private", "q", 1, -1), ZNOAUTH);
  CHECK_RC(zoo_create(stranger.zh, "/cc/noauth", "", 0, &ZOO_CREATOR_ALL_ACL, 0, nullptr, 0),
           ZINVALIDACL);
  disconnect(stranger);
}

// Finds this process's only TCP socket connected to `port`.
int socket_to(int port) {
  int found = -1;
  DIR* dir = opendir("/proc/self/fd");
  CHECK(dir != nullptr);
  while (dirent* de = readdir(dir)) {
    const int fd = std::atoi(de->d_name);
    if (fd <= 2) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    if (peer.sin_family == AF_INET && ntohs(peer.sin_port) == port) {
      CHECK(found == -1);
      found = fd;
    }
  }
  closedir(dir);
  return found;
}

// Cuts the client's TCP connection under it: the C client reconnects with
// the same session and re-arms its watches with setWatches.
void resume_after_cut(const std::string& hosts, int port, Client& c) {
  Stat st;
  CHECK_RC(zoo_create(c.zh, "/cc/mine", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, nullptr, 0),
           ZOK);
  CHECK_RC(zoo_create(c.zh, "/cc/watched", "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  char buf[8];
  int len = sizeof buf;
  CHECK_RC(zoo_get(c.zh, "/cc/watched", 1, buf, &len, &st), ZOK);
  String_vector sv{};
  CHECK_RC(zoo_get_children(c.zh, "/cc/watched", 1, &sv), ZOK);
  deallocate_String_vector(&sv);
  const int64_t session = zoo_client_id(c.zh)->client_id;

  {
    std::lock_guard lock(c.inbox.mu);
    c.inbox.events.clear();
  }
  const int fd = socket_to(port);
  CHECK(fd >= 0);
  CHECK(shutdown(fd, SHUT_RDWR) == 0);
  CHECK(wait_session_event(c.inbox, ZOO_CONNECTING_STATE));

  Client writer;  // changes made around the reconnect must still be seen
  connect(writer, hosts);
  CHECK_RC(zoo_set(writer.zh, "/cc/watched", "1", 1, -1), ZOK);
  CHECK(wait_session_event(c.inbox, ZOO_CONNECTED_STATE));
  CHECK(zoo_client_id(c.zh)->client_id == session);
  CHECK(wait_event(c.inbox, ZOO_CHANGED_EVENT, "/cc/watched"));
  CHECK_RC(zoo_create(writer.zh, "/cc/watched/k", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0), ZOK);
  CHECK(wait_event(c.inbox, ZOO_CHILD_EVENT, "/cc/watched"));
  CHECK_RC(zoo_exists(writer.zh, "/cc/mine", 0, &st), ZOK);
  CHECK(st.ephemeralOwner == session);

  disconnect(writer);
  disconnect(c);  // closes the session
  Client check;
  connect(check, hosts);
  CHECK_RC(zoo_exists(check.zh, "/cc/mine", 0, &st), ZNONODE);
  disconnect(check);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  const std::string hosts = argv[1];
  const int port = std::atoi(hosts.substr(hosts.rfind(':') + 1).c_str());

  Client c;
  connect(c, hosts);
  crud(c.zh);
  std::puts("crud ok");
  ephemerals_and_watches(hosts, c.zh, c.inbox);
  std::puts("ephemerals and watches ok");
  multi(c.zh);
  std::puts("multi ok");
  auth(hosts, c.zh, c.inbox);
  std::puts("auth ok");
  disconnect(c);

  Client r;
  connect(r, hosts);
  resume_after_cut(hosts, port, r);
  std::puts("resume after cut ok");
  return 0;
}
