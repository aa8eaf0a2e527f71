// The Client's machinery on its runtime's two threads: the I/O thread
// (Boost.Asio: reads, timers, connecting) and the event thread (callbacks in
// order, bounded per Client), which also writes the requests its callbacks
// make. The connection's state belongs to whichever of them holds io_mu_.
// See client.h for the contract.
#include "coord/client-lib/client.h"

#include <openssl/ssl.h>
#include <algorithm>
#include <array>
#include <atomic>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include "call.h"
#include "coord/base/random.h"
#include "coord/client-lib/connect_string.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "runtime.h"

namespace coord {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace protocol;
using client_detail::Call;
using client_detail::CallPtr;

std::string_view session_state_name(SessionState s) {
  switch (s) {
    case SessionState::Connecting:
      return "Connecting";
    case SessionState::Connected:
      return "Connected";
    case SessionState::Disconnected:
      return "Disconnected";
    case SessionState::Expired:
      return "Expired";
    case SessionState::Closed:
      return "Closed";
    case SessionState::AuthFailed:
      return "AuthFailed";
  }
  return "?";
}

namespace {

bool is_final(SessionState s) {
  return s == SessionState::Expired || s == SessionState::Closed || s == SessionState::AuthFailed;
}

Status final_status(SessionState s) {
  switch (s) {
    case SessionState::Expired:
      return Status(ErrorCode::SessionExpired, "session expired");
    case SessionState::AuthFailed:
      return Status(ErrorCode::AuthFailed, "authentication failed");
    default:
      return Status(ErrorCode::Closing, "client is closed");
  }
}

// Prefixes the chroot to every path of a request body.
void chroot_request(const std::string& chroot, RequestBody& body) {
  if (chroot.empty()) return;
  auto fix = [&chroot](auto& rec) {
    using T = std::decay_t<decltype(rec)>;
    if constexpr (std::is_same_v<T, MultiRequest>) {
      for (MultiOp& op : rec.ops) {
        std::visit([&chroot](auto& r) { r.path = chroot_path(chroot, r.path); }, op.op);
      }
    } else if constexpr (std::is_same_v<T, GetEphemeralsRequest>) {
      rec.prefix_path = chroot_path(chroot, rec.prefix_path);
    } else if constexpr (requires { rec.path; }) {
      rec.path = chroot_path(chroot, rec.path);
    }
  };
  std::visit(fix, body);
}

// Makes the paths of a reply relative to the chroot.
void unchroot_response(const std::string& chroot, ResponseBody& body) {
  if (chroot.empty()) return;
  auto fix = [&chroot](auto& rec) {
    using T = std::decay_t<decltype(rec)>;
    if constexpr (std::is_same_v<T, MultiResponse>) {
      for (MultiResult& r : rec.results) {
        if (!r.path.empty()) r.path = strip_chroot(chroot, r.path);
      }
    } else if constexpr (std::is_same_v<T, GetEphemeralsResponse>) {
      for (auto& p : rec.ephemerals)
        p = strip_chroot(chroot, p);
    } else if constexpr (requires { rec.path; }) {
      rec.path = strip_chroot(chroot, rec.path);
    }
  };
  std::visit(fix, body);
}

}  // namespace

namespace ssl = asio::ssl;
using TlsStream = ssl::stream<tcp::socket&>;

// Why `path` cannot be read, or "" when it can.
std::string unreadable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return "";
}

Result<std::shared_ptr<ssl::context>> make_tls_context(const ClientTls& t) {
  auto bad = [](std::string_view what, const std::string& path, std::string_view why) {
    return Status(ErrorCode::BadArguments,
                  "TLS " + std::string(what) + " " + path + ": " + std::string(why));
  };
  if (t.cert_file.empty() != t.key_file.empty()) {
    return Status(ErrorCode::BadArguments,
                  "TLS: a client certificate needs both its file and its key file");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (t.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status(ErrorCode::BadArguments, "TLS: no system CAs: " + ec.message());
  } else {
    if (auto why = unreadable(t.ca_file); !why.empty()) return bad("CA file", t.ca_file, why);
    ctx->load_verify_file(t.ca_file, ec);
    if (ec) return bad("CA file", t.ca_file, ec.message());
  }
  if (!t.cert_file.empty()) {
    if (auto why = unreadable(t.cert_file); !why.empty()) {
      return bad("certificate file", t.cert_file, why);
    }
    if (auto why = unreadable(t.key_file); !why.empty()) return bad("key file", t.key_file, why);
    ctx->use_certificate_chain_file(t.cert_file, ec);
    if (ec) return bad("certificate file", t.cert_file, ec.message());
    ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return bad("key file", t.key_file, "does not match the certificate " + t.cert_file);
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Owned by shared pointers: the Client's, and those of the handlers and
// events in flight on the runtime's threads, so that it outlives the last
// of them however the Client goes.
class Client::Impl : public std::enable_shared_from_this<Client::Impl>,
                     public client_detail::EventOwner {
 public:
  Impl(ClientRuntime::Core& rt, ClientOptions opts, ConnectString cs,
       std::shared_ptr<ssl::context> tls)
      : rt_(rt),
        io_(rt.io()),
        opts_(std::move(opts)),
        servers_(std::move(cs.servers)),
        chroot_(std::move(cs.chroot)),
        rng_(opts_.seed != 0 ? opts_.seed : Random::entropy_seed()),
        socket_(io_),
        tls_ctx_(std::move(tls)),
        resolver_(io_),
        tick_timer_(io_) {
    // Shuffle so that many clients spread over the ensemble.
    for (std::size_t i = servers_.size(); i > 1; --i) {
      std::swap(servers_[i - 1], servers_[rng_.below(i)]);
    }
    session_id_ = opts_.session_id;
    password_ = opts_.session_password;
    if (password_.size() != limits::session_password_bytes) {
      password_.assign(limits::session_password_bytes, '\0');
    }
    connect_timeout_ =
        opts_.connect_timeout.count() > 0
            ? opts_.connect_timeout
            : std::max(milliseconds(limits::client_connect_attempt_ms_min),
                       opts_.session_timeout /
                           static_cast<std::int64_t>(std::max(
                               limits::client_connect_attempts_per_session_min, servers_.size())));
  }

  // A handler for the I/O thread that holds io_mu_ while it runs, and the
  // Impl alive until it is gone. The event thread is woken for what it
  // queued once the lock is let go.
  template <typename F>
  auto locked(F f) {
    return [this, self = shared_from_this(), f = std::move(f)](auto&&... args) mutable {
      ClientRuntime::Core::WakeHold hold(rt_);
      std::lock_guard lock(io_mu_);
      f(std::forward<decltype(args)>(args)...);
    };
  }

  void start() {
    asio::post(io_, locked([this] {
                 schedule_tick();
                 start_connect();
               }));
  }

  // Called once, from ~Client (never on the runtime's threads): enters a
  // final state, after which nothing more starts. The handlers and events
  // still in flight end soon; the last of them lets the Impl go.
  void shutdown() {
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(io_, locked([this, &done] {
                 if (!is_final(state_.load())) finalize(SessionState::Closed, "client destroyed");
                 done.set_value();
               }));
    f.wait();
  }

  // `gone` is set when the Impl has been destroyed, wherever that happens.
  void when_gone(std::promise<void>* gone) { gone_.promise = gone; }

  // ---- called from any thread ------------------------------------------------

  void submit(CallPtr call, milliseconds timeout) {
    if (!call->invalid.ok()) {
      Status invalid = call->invalid;
      fail_now(std::move(call), std::move(invalid));
      return;
    }
    const SessionState s = state_.load();
    if (is_final(s)) {
      fail_now(std::move(call), final_error(s));
      return;
    }
    if (pending_.fetch_add(1) >= opts_.pending_requests_max) {
      pending_.fetch_sub(1);
      fail_now(std::move(call), Status(ErrorCode::Throttled, "too many outstanding requests"));
      return;
    }
    call->deadline = SteadyClock::now() + (timeout.count() > 0 ? timeout : opts_.request_timeout);
    // Pipelined submissions share one hand-off: the I/O thread is woken
    // once per batch, not once per request, and the requests a batch of
    // callbacks makes are sent by the event thread when the batch is done,
    // without waking the I/O thread at all.
    bool schedule = false;
    {
      std::lock_guard lock(sub_mu_);
      sub_q_.push_back(std::move(call));
      schedule = !sub_scheduled_;
      sub_scheduled_ = true;
    }
    if (!schedule) return;
    if (on_event_thread()) {
      rt_.send_after_batch(shared_from_this());
    } else {
      asio::post(io_, locked([this] { drain_submissions(); }));
    }
  }

  // Holding io_mu_: moves the submitted calls, in submission order, to
  // enqueue, and writes them in one go.
  void drain_submissions() {
    {
      std::lock_guard lock(sub_mu_);
      sub_batch_.swap(sub_q_);
      sub_scheduled_ = false;
    }
    corked_ = true;
    for (auto& c : sub_batch_)
      enqueue(std::move(c));
    sub_batch_.clear();
    corked_ = false;
    flush();
  }

  Status wait_connected(milliseconds timeout) {
    std::unique_lock lock(state_mu_);
    const bool ok = state_cv_.wait_for(lock, timeout, [this] {
      const SessionState s = state_.load();
      return s == SessionState::Connected || is_final(s);
    });
    const SessionState s = state_.load();
    if (s == SessionState::Connected) return Status();
    if (is_final(s)) return final_error(s);
    (void)ok;
    const Status last = last_error();
    if (last.ok()) return Status(ErrorCode::ConnectionLoss, "not connected within the timeout");
    return Status(ErrorCode::ConnectionLoss,
                  "not connected within the timeout; last: " + std::string(last.message()));
  }

  Status close(milliseconds timeout) {
    if (on_event_thread()) return Status(ErrorCode::ApiError, "close() from a callback");
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    asio::post(io_, locked([this, promise, timeout] { begin_close(promise, timeout); }));
    if (future.wait_for(timeout + milliseconds(limits::client_close_grace_ms)) !=
        std::future_status::ready) {
      return Status(ErrorCode::OperationTimeout, "close did not finish");
    }
    return future.get();
  }

  void drop_connection(milliseconds pause) {
    asio::post(io_, locked([this, pause] {
                 if (is_final(state_.load())) return;
                 connection_lost("dropped for testing", pause);
               }));
  }

  bool on_event_thread() const { return rt_.on_event_thread(); }

  SessionState state() const { return state_.load(); }
  SessionId session_id() const {
    std::lock_guard lock(info_mu_);
    return session_id_;
  }
  std::string password() const {
    std::lock_guard lock(info_mu_);
    return password_;
  }
  milliseconds negotiated() const { return milliseconds(negotiated_ms_.load()); }
  Zxid last_zxid() const { return Zxid(last_zxid_.load()); }
  std::string server() const {
    std::lock_guard lock(info_mu_);
    return server_name_;
  }
  Status last_error() const {
    std::lock_guard lock(info_mu_);
    return last_error_;
  }
  // The Status calls fail with in final state `s`: the reason recorded when
  // the client entered it, or the plain one before that is visible.
  Status final_error(SessionState s) const {
    std::lock_guard lock(info_mu_);
    if (!final_error_.ok()) return final_error_;
    return final_status(s);
  }

 private:
  enum class Conn : std::uint8_t { Idle, Connecting, Handshaking, Open, Dead };

  // ---- event thread ------------------------------------------------------------

  void post_event(std::function<void()> task) {
    ev_backlog_.fetch_add(1);
    rt_.post_event(shared_from_this(), std::move(task));
  }

  // Callbacks of this Client queued or taken by the event thread but not
  // yet run.
  std::size_t event_backlog() { return ev_backlog_.load(); }

  void event_ran() override {
    const std::size_t left = ev_backlog_.fetch_sub(1) - 1;
    if (read_paused_.load() && left <= opts_.event_queue_max / 2) {
      asio::post(io_, locked([this] { resume_reading(); }));
    }
  }

  void send_requests() override {
    std::lock_guard lock(io_mu_);
    drain_submissions();
  }

  void fail_now(CallPtr call, Status status) { hand_back(std::move(call), std::move(status)); }

  // Hands a call back to the event thread with its result: there its
  // completion runs and it is freed. Most calls were made on that thread,
  // and memory given back by the thread that took it does not contend for
  // the allocator's locks with the other thread.
  void hand_back(CallPtr call, Result<ResponseBody> result) {
    call->result.emplace(std::move(result));
    ev_backlog_.fetch_add(1);
    rt_.post_completion(shared_from_this(), std::move(call));
  }

  // ---- I/O thread: state ----------------------------------------------------------

  // `reason`: Ok for Connecting and Connected, otherwise why (see
  // ClientOptions::on_state_change).
  void set_state(SessionState s, const Status& reason = Status()) {
    {
      std::lock_guard lock(state_mu_);
      if (state_.load() == s) return;
      state_.store(s);
    }
    state_cv_.notify_all();
    if (opts_.on_state) {
      post_event([cb = opts_.on_state, s] { cb(s); });
    }
    if (opts_.on_state_change) {
      post_event([cb = opts_.on_state_change, s, reason] { cb(s, reason); });
    }
  }

  // Remembers why a connection was lost or an attempt failed, for
  // last_error() and for the calls that fail because of it.
  Status note_error(ErrorCode code, std::string_view server, std::string_view why) {
    std::string message;
    if (!server.empty()) {
      message.append(server);
      message.append(": ");
    }
    message.append(why);
    Status st(code, std::move(message));
    std::lock_guard lock(info_mu_);
    last_error_ = st;
    return st;
  }

  // The server of the current connection or attempt, for messages.
  std::string current_server() const {
    std::lock_guard lock(info_mu_);
    return server_name_.empty() ? attempt_server_ : server_name_;
  }

  // Completes a call that is no longer queued: exactly once, handing it
  // back with the result.
  void complete(CallPtr call, Result<ResponseBody> result) {
    if (call->done) return;
    call->done = true;
    pending_.fetch_sub(1);
    hand_back(std::move(call), std::move(result));
  }

  // Completes a call exactly once, handing the result to the event thread.
  void complete(Call& call, Result<ResponseBody> result) {
    if (call.done) return;
    call.done = true;
    pending_.fetch_sub(1);
    post_event([complete = std::move(call.complete), result = std::move(result)]() mutable {
      complete(std::move(result));
    });
  }

  // Enters a final state: every call fails, the socket closes, nothing more
  // is sent.
  void finalize(SessionState s, std::string_view why) {
    const Status plain = final_status(s);
    const Status st =
        note_error(plain.code(), "", std::string(plain.message()) + ": " + std::string(why));
    {
      std::lock_guard lock(info_mu_);
      final_error_ = st;
    }
    // The state first, so that a callback failed below already sees it.
    set_state(s, st);
    close_socket();
    conn_ = Conn::Dead;
    watches_.clear();
    for (auto& c : sent_)
      complete(*c, st);
    for (auto& c : unsent_)
      complete(*c, st);
    sent_.clear();
    unsent_.clear();
    for (auto& w : auth_waiters_) {
      if (w) complete(**w, st);
    }
    auth_waiters_.clear();
    tick_timer_.cancel();
    if (close_promise_) {
      close_promise_->set_value(s == SessionState::Closed ? Status() : st);
      close_promise_.reset();
    }
  }

  void close_socket() {
    ++generation_;
    boost::system::error_code ec;
    resolver_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    // Operations still in flight on it hold their own reference.
    tls_.reset();
    out_.clear();
    writing_ = false;
    frames_ = FrameBuffer(limits::frame_bytes_max);
    read_paused_.store(false);
    reading_ = false;
    {
      std::lock_guard lock(info_mu_);
      server_name_.clear();
      attempt_server_.clear();
    }
  }

  // ---- I/O thread: connecting --------------------------------------------------------

  void start_connect() {
    if (conn_ != Conn::Idle || closing_) return;
    const auto now = SteadyClock::now();
    if (now < reconnect_not_before_) return;  // the tick retries
    const ServerAddress& server = servers_[next_server_ % servers_.size()];
    ++next_server_;
    ++attempts_;
    conn_ = Conn::Connecting;
    attempt_deadline_ = now + connect_timeout_;
    {
      std::lock_guard lock(info_mu_);
      attempt_server_ = server.host + ":" + std::to_string(server.port);
    }
    const std::uint64_t gen = ++generation_;
    resolver_.async_resolve(server.host, std::to_string(server.port),
                            locked([this, gen, server](const boost::system::error_code& ec,
                                                       tcp::resolver::results_type results) {
                              if (gen != generation_) return;
                              if (ec) {
                                attempt_failed("resolve: " + ec.message());
                                return;
                              }
                              connect_to(results, gen, server);
                            }));
  }

  void connect_to(const tcp::resolver::results_type& results, std::uint64_t gen,
                  const ServerAddress& server) {
    // Locked by hand: a generic handler would not tell async_connect's
    // overloads apart.
    asio::async_connect(socket_, results,
                        [this, self = shared_from_this(), gen, server](
                            const boost::system::error_code& ec, const tcp::endpoint&) {
                          std::lock_guard lock(io_mu_);
                          if (gen != generation_) return;
                          if (ec) {
                            attempt_failed("connect: " + ec.message());
                            return;
                          }
                          on_connected(server);
                        });
  }

  void on_connected(const ServerAddress& server) {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    {
      std::lock_guard lock(info_mu_);
      server_name_ = server.host + ":" + std::to_string(server.port);
    }
    conn_ = Conn::Handshaking;
    if (tls_ctx_) {
      tls_ = std::make_shared<TlsStream>(socket_, *tls_ctx_);
      // SNI takes names only.
      if (!is_ip_address(server.host)) {
        SSL_set_tlsext_host_name(tls_->native_handle(), server.host.c_str());
      }
      if (opts_.tls.verify_server_name) {
        tls_->set_verify_callback(ssl::host_name_verification(server.host));
      }
      const std::uint64_t gen = generation_;
      tls_->async_handshake(ssl::stream_base::client,
                            locked([this, gen, keep = tls_](const boost::system::error_code& ec) {
                              if (gen != generation_) return;
                              if (ec) {
                                attempt_failed("TLS handshake: " + socket_error(ec));
                                return;
                              }
                              send_connect_request();
                            }));
      return;
    }
    send_connect_request();
  }

  void send_connect_request() {
    ConnectRequest req;
    req.last_zxid_seen = Zxid(last_zxid_.load());
    req.timeout_ms = static_cast<std::int32_t>(opts_.session_timeout.count());
    req.session_id = session_id_;
    req.password = password_;
    append_connect_request_frame(out_, req);
    flush();
    start_read();
  }

  // A connection attempt (resolve, connect or handshake) did not work out.
  void attempt_failed(std::string_view why) {
    (void)note_error(ErrorCode::ConnectionLoss, current_server(), why);
    close_socket();
    conn_ = Conn::Idle;
    // After a full round over the servers without success, back off a
    // little so that an unreachable ensemble does not spin the CPU.
    if (attempts_ % servers_.size() == 0) {
      reconnect_not_before_ =
          SteadyClock::now() +
          milliseconds(limits::client_reconnect_pause_ms_min +
                       static_cast<std::int64_t>(rng_.below(
                           static_cast<std::uint64_t>(limits::client_reconnect_jitter_ms))));
    }
    start_connect();
  }

  // An established connection broke: sent requests fail with ConnectionLoss
  // (they may have been applied), unsent ones wait for the next connection.
  void connection_lost(std::string_view why, milliseconds pause = milliseconds(0)) {
    const bool was_open = conn_ == Conn::Open;
    const Status loss = note_error(ErrorCode::ConnectionLoss, current_server(),
                                   "connection lost: " + std::string(why));
    close_socket();
    conn_ = Conn::Idle;
    for (auto& c : sent_)
      complete(*c, loss);
    sent_.clear();
    for (auto& w : auth_waiters_) {
      if (w) complete(**w, loss);
    }
    auth_waiters_.clear();
    if (was_open) {
      set_state(SessionState::Disconnected, loss);
      attempts_ = 0;
      reconnect_not_before_ = SteadyClock::now() + pause;
    }
    if (closing_) {
      finalize(SessionState::Closed, "closed while disconnected");
      return;
    }
    start_connect();
  }

  void on_handshake(ByteSpan payload) {
    auto resp = decode_connect_response(payload);
    if (!resp.ok()) {
      attempt_failed("undecodable handshake reply: " + resp.status().to_string());
      return;
    }
    if (resp->timeout_ms <= 0) {
      // The server does not know the session (expired or wrong password):
      // docs/PROTOCOL.md, "Handshake".
      finalize(SessionState::Expired, "the server " + current_server() +
                                          " reports the session expired (or the password wrong)");
      return;
    }
    {
      std::lock_guard lock(info_mu_);
      session_id_ = resp->session_id;
      password_ = resp->password;
    }
    negotiated_ms_.store(resp->timeout_ms);
    conn_ = Conn::Open;
    attempts_ = 0;
    last_recv_ = SteadyClock::now();
    last_contact_ = last_recv_;
    prime_connection();
    set_state(SessionState::Connected);
  }

  // After the handshake: re-arm watches, replay credentials, then send what
  // waited for the connection, in that order (as the Java client does).
  void prime_connection() {
    corked_ = true;
    if (!watches_.empty()) send_set_watches();
    for (const AuthPacket& a : auths_) {
      send_frame(RequestHeader{xid_auth, OpCode::Auth}, a);
      auth_waiters_.push_back(std::nullopt);
    }
    std::deque<CallPtr> waiting;
    waiting.swap(unsent_);
    for (auto& c : waiting) {
      if (c->done) continue;
      send_call(std::move(c));
    }
    corked_ = false;
    flush();
  }

  void send_set_watches() {
    const WatchTable::Paths p = watches_.paths();
    const bool persistent = !p.persistent.empty() || !p.persistent_recursive.empty();
    SetWatches2 batch;
    std::size_t bytes = 0;
    auto flush_batch = [&] {
      batch.relative_zxid = Zxid(last_zxid_.load());
      if (persistent) {
        send_frame(RequestHeader{xid_set_watches, OpCode::SetWatches2}, batch);
      } else {
        send_frame(RequestHeader{xid_set_watches, OpCode::SetWatches},
                   SetWatches{batch.relative_zxid, batch.data_watches, batch.exist_watches,
                              batch.child_watches});
      }
      batch = SetWatches2{};
      bytes = 0;
    };
    auto add = [&](std::vector<std::string>& list, const std::string& path) {
      if (bytes + path.size() + 4 > limits::client_set_watches_frame_bytes_max) flush_batch();
      list.push_back(path);
      bytes += path.size() + 4;
    };
    for (const auto& s : p.data)
      add(batch.data_watches, s);
    for (const auto& s : p.exist)
      add(batch.exist_watches, s);
    for (const auto& s : p.child)
      add(batch.child_watches, s);
    for (const auto& s : p.persistent)
      add(batch.persistent_watches, s);
    for (const auto& s : p.persistent_recursive)
      add(batch.persistent_recursive_watches, s);
    flush_batch();
  }

  // ---- I/O thread: requests -------------------------------------------------------------

  void enqueue(CallPtr call) {
    if (conn_ == Conn::Dead) {
      complete(std::move(call), final_error(state_.load()));
      return;
    }
    chroot_request(chroot_, call->body);
    if (!call->watch_path.empty()) call->watch_path = chroot_path(chroot_, call->watch_path);
    if (call->op == OpCode::Auth) auths_.push_back(std::get<AuthPacket>(call->body));
    earliest_deadline_ = std::min(earliest_deadline_, call->deadline);
    if (conn_ == Conn::Open && !closing_) {
      send_call(std::move(call));
    } else {
      unsent_.push_back(std::move(call));
    }
  }

  void send_call(CallPtr call) {
    if (call->op == OpCode::Auth) {
      send_frame(RequestHeader{xid_auth, OpCode::Auth}, call->body);
      auth_waiters_.push_back(std::move(call));
      return;
    }
    call->xid = next_xid_;
    next_xid_ = next_xid_ == std::numeric_limits<std::int32_t>::max() ? 1 : next_xid_ + 1;
    send_frame(RequestHeader{call->xid, call->op}, call->body);
    sent_.push_back(std::move(call));
  }

  void send_frame(const RequestHeader& h, const RequestBody& body) {
    append_request_frame(out_, h, body);
    last_send_ = SteadyClock::now();
    flush();
  }

  // Holding io_mu_, on either thread: writes out_ now as far as the socket
  // takes it, and leaves the rest to an asynchronous write on the I/O
  // thread. Failures are handled there too, later, never inside the caller
  // (which may be in the middle of sending a series of frames).
  void flush() {
    if (writing_ || corked_ || out_.empty()) return;
    if (!tls_) {
      const ssize_t n =
          ::send(socket_.native_handle(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(out_.size())) {
        out_.clear();
        return;
      }
      if (n > 0) {
        out_.erase(out_.begin(), out_.begin() + n);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        const std::string why = std::string("write: ") + std::strerror(errno);
        writing_ = true;  // nothing more goes out on this connection
        asio::post(io_, locked([this, gen = generation_, why] {
                     if (gen == generation_) lost_or_failed(why);
                   }));
        return;
      }
    }
    writing_ = true;
    if (!rt_.on_io_thread()) {
      // Asynchronous operations start on the I/O thread only.
      asio::post(io_, locked([this, gen = generation_] {
                   if (gen != generation_) return;
                   writing_ = false;
                   flush();
                 }));
      return;
    }
    write_async();
  }

  void write_async() {
    writing_buf_.clear();
    writing_buf_.swap(out_);
    const std::uint64_t gen = generation_;
    auto done = locked([this, gen, keep = tls_](const boost::system::error_code& ec, std::size_t) {
      if (gen != generation_) return;
      writing_ = false;
      if (ec) {
        lost_or_failed("write: " + socket_error(ec));
        return;
      }
      flush();
    });
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(writing_buf_), std::move(done));
    } else {
      asio::async_write(socket_, asio::buffer(writing_buf_), std::move(done));
    }
  }

  void lost_or_failed(std::string_view why) {
    if (conn_ == Conn::Open) {
      connection_lost(why);
    } else if (conn_ == Conn::Connecting || conn_ == Conn::Handshaking) {
      attempt_failed(why);
    }
  }

  static std::string socket_error(const boost::system::error_code& ec) {
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      return "the server closed the connection";
    }
    return ec.message();
  }

  // ---- I/O thread: replies --------------------------------------------------------------

  void start_read() {
    if (reading_) return;
    reading_ = true;
    const std::uint64_t gen = generation_;
    auto done =
        locked([this, gen, keep = tls_](const boost::system::error_code& ec, std::size_t n) {
          if (gen != generation_) return;
          reading_ = false;
          if (ec) {
            lost_or_failed("read: " + socket_error(ec));
            return;
          }
          frames_.append(ByteSpan(read_buf_.data(), n));
          if (!process_frames()) return;
          if (event_backlog() > opts_.event_queue_max) {
            read_paused_.store(true);
            // The event thread may have drained the queue
            // before it could see the flag.
            if (event_backlog() > opts_.event_queue_max / 2) return;
            read_paused_.store(false);
          }
          start_read();
        });
    if (tls_) {
      tls_->async_read_some(asio::buffer(read_buf_), std::move(done));
    } else {
      socket_.async_read_some(asio::buffer(read_buf_), std::move(done));
    }
  }

  void resume_reading() {
    if (!read_paused_.load()) return;
    read_paused_.store(false);
    if (conn_ == Conn::Handshaking || conn_ == Conn::Open) start_read();
  }

  // False when the connection was torn down while processing.
  bool process_frames() {
    const std::uint64_t gen = generation_;
    while (gen == generation_) {
      const FrameCut cut = frames_.next();
      if (cut.state == FrameState::NeedMore) return true;
      if (cut.state == FrameState::Error) {
        lost_or_failed("bad frame from the server: " + cut.error.to_string());
        return false;
      }
      last_recv_ = SteadyClock::now();
      if (conn_ == Conn::Handshaking) {
        on_handshake(cut.payload);
      } else if (conn_ == Conn::Open) {
        last_contact_ = last_recv_;
        on_reply(cut.payload);
      }
    }
    return false;
  }

  void on_reply(ByteSpan payload) {
    JuteReader r(payload);
    auto header = decode_reply_header(r);
    if (!header.ok()) {
      connection_lost("undecodable reply header: " + header.status().to_string());
      return;
    }
    if (header->zxid.value() > last_zxid_.load()) last_zxid_.store(header->zxid.value());
    switch (header->xid) {
      case xid_watch_event:
        on_watch_event(r.rest());
        return;
      case xid_ping:
        return;
      case xid_set_watches:
        return;
      case xid_auth:
        on_auth_reply(header->err);
        return;
      default:
        break;
    }
    if (sent_.empty() || sent_.front()->xid != header->xid) {
      // Replies come in request order (docs/PROTOCOL.md, "Framing");
      // anything else means we lost track.
      connection_lost("reply xid " + std::to_string(header->xid) + " out of order");
      return;
    }
    CallPtr call = std::move(sent_.front());
    sent_.pop_front();
    if (call->op == OpCode::CloseSession) {
      finalize(SessionState::Closed, "session closed");
      return;
    }
    if (header->err != ErrorCode::Ok) {
      if (call->op == OpCode::Exists && header->err == ErrorCode::NoNode && call->watcher) {
        watches_.add(WatchKind::Exist, call->watch_path, std::move(call->watcher));
      }
      complete(std::move(call), Status(header->err));
      return;
    }
    auto body = decode_response_body(call->op, r.rest());
    if (!body.ok()) {
      complete(std::move(call), body.status());
      return;
    }
    unchroot_response(chroot_, *body);
    if (call->watcher) watches_.add(call->watch_kind, call->watch_path, std::move(call->watcher));
    if (call->removes) {
      for (auto& [w, type] : watches_.remove(call->watch_path, *call->removes)) {
        WatchEvent ev{type, KeeperState::SyncConnected, strip_chroot(chroot_, call->watch_path)};
        post_event([w = std::move(w), ev = std::move(ev)] { w(ev); });
      }
    }
    complete(std::move(call), std::move(*body));
  }

  void on_watch_event(ByteSpan rest) {
    auto ev = decode_watcher_event(rest);
    if (!ev.ok()) {
      connection_lost("undecodable watch event: " + ev.status().to_string());
      return;
    }
    std::vector<Watcher> ws = watches_.trigger(ev->type, ev->path);
    if (ws.empty()) return;
    WatchEvent out{ev->type, ev->state, strip_chroot(chroot_, ev->path)};
    post_event([ws = std::move(ws), out = std::move(out)] {
      for (const Watcher& w : ws)
        w(out);
    });
  }

  void on_auth_reply(ErrorCode err) {
    std::optional<CallPtr> waiter;
    if (!auth_waiters_.empty()) {
      waiter = std::move(auth_waiters_.front());
      auth_waiters_.pop_front();
    }
    if (err != ErrorCode::Ok) {
      finalize(SessionState::AuthFailed, "the server " + current_server() +
                                             " rejected the credentials (" +
                                             std::string(error_name(err)) + ")");
      if (waiter && *waiter) complete(**waiter, Status(ErrorCode::AuthFailed));
      return;
    }
    if (waiter && *waiter) complete(**waiter, Result<ResponseBody>(Empty{}));
  }

  // ---- I/O thread: close ------------------------------------------------------------------

  void begin_close(std::shared_ptr<std::promise<Status>> promise, milliseconds timeout) {
    const SessionState s = state_.load();
    if (is_final(s)) {
      promise->set_value(s == SessionState::Closed ? Status() : final_error(s));
      return;
    }
    close_promise_ = std::move(promise);
    closing_ = true;
    close_deadline_ = SteadyClock::now() + timeout;
    if (conn_ != Conn::Open) {
      finalize(SessionState::Closed, "closed while not connected");
      return;
    }
    CallPtr call(new Call);
    call->op = OpCode::CloseSession;
    call->body = Empty{};
    call->complete = [](Result<ResponseBody>) {};
    call->deadline = close_deadline_;
    pending_.fetch_add(1);
    send_call(std::move(call));
  }

  // ---- I/O thread: timers -------------------------------------------------------------------

  void schedule_tick() {
    tick_timer_.expires_after(milliseconds(limits::client_tick_ms));
    tick_timer_.async_wait(locked([this](const boost::system::error_code& ec) {
      if (ec || conn_ == Conn::Dead) return;
      on_tick();
      if (conn_ != Conn::Dead) schedule_tick();
    }));
  }

  void on_tick() {
    const auto now = SteadyClock::now();
    const milliseconds negotiated(negotiated_ms_.load());
    if (closing_ && now >= close_deadline_) {
      finalize(SessionState::Closed, "close timed out");
      return;
    }
    switch (conn_) {
      case Conn::Open:
        if (now - last_recv_ > negotiated * 2 / 3) {
          connection_lost("no reply within 2/3 of the session timeout");
          return;
        }
        if (now - last_send_ >= negotiated / 3) {
          send_frame(RequestHeader{xid_ping, OpCode::Ping}, Empty{});
        }
        break;
      case Conn::Connecting:
      case Conn::Handshaking:
        if (now >= attempt_deadline_) {
          attempt_failed("no connection and handshake within the connect timeout of " +
                         std::to_string(connect_timeout_.count()) + " ms");
          if (conn_ == Conn::Dead) return;
        }
        break;
      case Conn::Idle:
        start_connect();
        break;
      case Conn::Dead:
        return;
    }
    // A session whose client has not reached any server for its whole
    // timeout is expired by the ensemble; say so instead of hoping.
    if (conn_ != Conn::Open && negotiated.count() > 0 && now - last_contact_ > negotiated) {
      std::string why = "no server reached within the session timeout";
      {
        std::lock_guard lock(info_mu_);
        if (!last_error_.ok()) why += " (the last attempt: " + last_error_.to_string() + ")";
      }
      finalize(SessionState::Expired, why);
      return;
    }
    if (now >= earliest_deadline_) expire_requests(now);
  }

  void expire_requests(SteadyClock::time_point now) {
    const Status timeout(ErrorCode::OperationTimeout, "no reply within the request timeout");
    auto next = SteadyClock::time_point::max();
    for (auto& c : sent_) {
      if (c->done) continue;
      if (c->deadline <= now) {
        complete(*c, timeout);  // stays queued to match its reply
      } else {
        next = std::min(next, c->deadline);
      }
    }
    for (auto it = unsent_.begin(); it != unsent_.end();) {
      if ((*it)->deadline <= now) {
        complete(**it, timeout);
        it = unsent_.erase(it);
      } else {
        next = std::min(next, (*it)->deadline);
        ++it;
      }
    }
    for (auto& w : auth_waiters_) {
      if (w && !(*w)->done) next = std::min(next, (*w)->deadline);
      if (w && !(*w)->done && (*w)->deadline <= now) complete(**w, timeout);
    }
    earliest_deadline_ = next;
  }

  // ---- members ------------------------------------------------------------------------------

  // First, so that it is destroyed last.
  struct Gone {
    std::promise<void>* promise = nullptr;
    ~Gone() {
      if (promise != nullptr) promise->set_value();
    }
  } gone_;
  ClientRuntime::Core& rt_;
  asio::io_context& io_;
  const ClientOptions opts_;
  std::vector<ServerAddress> servers_;
  const std::string chroot_;
  Random rng_;
  milliseconds connect_timeout_{0};

  tcp::socket socket_;
  // TLS: the context of every connection, and the current connection's
  // stream over socket_ (shared: operations in flight keep theirs).
  std::shared_ptr<ssl::context> tls_ctx_;
  std::shared_ptr<TlsStream> tls_;
  tcp::resolver resolver_;
  asio::steady_timer tick_timer_;

  std::atomic<std::size_t> ev_backlog_{0};
  // Calls submitted but not yet taken by the I/O thread.
  std::mutex sub_mu_;
  // Swapped with sub_batch_ (I/O thread), so both keep their capacity.
  std::vector<CallPtr> sub_q_;
  bool sub_scheduled_ = false;
  std::atomic<bool> read_paused_{false};

  // Shared state, readable from any thread.
  std::mutex state_mu_;
  std::condition_variable state_cv_;
  std::atomic<SessionState> state_{SessionState::Connecting};
  mutable std::mutex info_mu_;
  SessionId session_id_{0};
  std::string password_;
  std::string server_name_;
  std::string attempt_server_;  // the server of the attempt under way
  Status last_error_;
  Status final_error_;  // set once, when a final state is entered
  std::atomic<std::int32_t> negotiated_ms_{0};
  std::atomic<std::int64_t> last_zxid_{0};
  std::atomic<std::size_t> pending_{0};

  // The connection's state: the I/O thread's handlers hold io_mu_ while
  // they run, and the event thread while it sends its callbacks' requests.
  std::mutex io_mu_;
  Conn conn_ = Conn::Idle;
  std::uint64_t generation_ = 0;
  std::size_t next_server_ = 0;
  std::size_t attempts_ = 0;
  SteadyClock::time_point attempt_deadline_{};
  SteadyClock::time_point reconnect_not_before_{};
  SteadyClock::time_point last_recv_{};
  SteadyClock::time_point last_send_{};
  SteadyClock::time_point last_contact_ = SteadyClock::now();
  SteadyClock::time_point earliest_deadline_ = SteadyClock::time_point::max();
  std::vector<CallPtr> sub_batch_;
  std::deque<CallPtr> unsent_;
  std::deque<CallPtr> sent_;
  std::deque<std::optional<CallPtr>> auth_waiters_;
  std::vector<AuthPacket> auths_;
  std::int32_t next_xid_ = 1;
  Bytes out_;
  Bytes writing_buf_;
  // An asynchronous write is under way (or posted): out_ waits for it.
  bool writing_ = false;
  // Frames are being added in a series: flush once at its end.
  bool corked_ = false;
  bool reading_ = false;
  std::array<std::uint8_t, limits::client_read_chunk_bytes> read_buf_{};
  FrameBuffer frames_{limits::frame_bytes_max};
  WatchTable watches_;
  bool closing_ = false;
  SteadyClock::time_point close_deadline_{};
  std::shared_ptr<std::promise<Status>> close_promise_;
};

// ---- Client ------------------------------------------------------------------------------------

Result<std::unique_ptr<Client>> Client::start(ClientOptions options) {
  auto cs = parse_connect_string(options.servers);
  if (!cs.ok()) return cs.status();
  if (options.session_timeout.count() <= 0 ||
      options.session_timeout.count() > std::numeric_limits<std::int32_t>::max()) {
    return Status(ErrorCode::BadArguments, "session timeout out of range");
  }
  if (options.pending_requests_max == 0 || options.event_queue_max == 0) {
    return Status(ErrorCode::BadArguments, "queue limits must be positive");
  }
  std::shared_ptr<ssl::context> tls;
  if (options.tls.enabled) {
    auto ctx = make_tls_context(options.tls);
    if (!ctx.ok()) return ctx.status();
    tls = std::move(ctx).value();
  }
  // Taken out of the options: the Impl must not hold its runtime, or the
  // runtime's last holder could be a handler on the runtime's own thread.
  std::shared_ptr<ClientRuntime> runtime = std::move(options.runtime);
  if (!runtime) runtime = ClientRuntime::start();
  auto impl =
      std::make_shared<Impl>(runtime->core(), std::move(options), std::move(*cs), std::move(tls));
  impl->start();
  return std::unique_ptr<Client>(new Client(std::move(runtime), std::move(impl)));
}

Client::Client(std::shared_ptr<ClientRuntime> runtime, std::shared_ptr<Impl> impl)
    : runtime_(std::move(runtime)), hold_(std::move(impl)), impl_(hold_.get()) {}

Client::~Client() {
  COORD_ASSERT(!impl_->on_event_thread(), "a Client must not be destroyed from its callbacks");
  if (!is_final(impl_->state())) {
    (void)impl_->close(milliseconds(limits::client_destructor_close_ms_max));
  }
  impl_->shutdown();
  std::promise<void> gone;
  auto f = gone.get_future();
  impl_->when_gone(&gone);
  hold_.reset();
  f.wait();
}

Status Client::wait_connected(milliseconds timeout) {
  return impl_->wait_connected(timeout);
}
Status Client::close(milliseconds timeout) {
  return impl_->close(timeout);
}
SessionState Client::state() const {
  return impl_->state();
}
SessionId Client::session_id() const {
  return impl_->session_id();
}
std::string Client::session_password() const {
  return impl_->password();
}
milliseconds Client::negotiated_timeout() const {
  return impl_->negotiated();
}
Zxid Client::last_zxid_seen() const {
  return impl_->last_zxid();
}
std::string Client::connected_server() const {
  return impl_->server();
}
Status Client::last_error() const {
  return impl_->last_error();
}
void Client::submit_call(CallPtr call, milliseconds timeout) {
  impl_->submit(std::move(call), timeout);
}
bool Client::on_event_thread() const {
  return impl_->on_event_thread();
}
void Client::drop_connection_for_testing(milliseconds pause) {
  impl_->drop_connection(pause);
}

Result<std::string> Client::create(std::string path, Data data, CreateMode mode, AclList acl) {
  auto r = run(ops::Create{std::move(path), std::move(data), mode, std::move(acl)});
  if (!r.ok()) return r.status();
  return std::move(r->path);
}
Status Client::remove(std::string path, std::int32_t version) {
  return run(ops::Delete{std::move(path), version}).status();
}
Result<std::optional<Stat>> Client::exists(std::string path, Watcher watcher) {
  return run(ops::Exists{std::move(path), std::move(watcher)});
}
Result<DataResult> Client::get_data(std::string path, Watcher watcher) {
  return run(ops::GetData{std::move(path), std::move(watcher)});
}
Result<Stat> Client::set_data(std::string path, Data data, std::int32_t version) {
  return run(ops::SetData{std::move(path), std::move(data), version});
}
Result<std::vector<std::string>> Client::get_children(std::string path, Watcher watcher) {
  return run(ops::GetChildren{std::move(path), std::move(watcher)});
}
Result<std::vector<OpResult>> Client::multi(MultiBuilder ops) {
  return run(ops::Multi{std::move(ops)});
}
Status Client::add_auth(std::string scheme, std::string auth) {
  return run(ops::AddAuth{std::move(scheme), std::move(auth)}).status();
}

}  // namespace coord
