// The live event stream of coordd's HTTP port: GET /v1/events upgraded to
// a WebSocket, one JSON object per text frame.
//
//   GET /v1/events?path=/x&recursive=1&from_zxid=N&token=T
//
// First {"type":"sync","zxid":Z} (live from Z on), or {"type":"resync",
// "zxid":Z} when N is older than what the server still holds; then events
// {"type":"created"|"changed"|"deleted"|"children","zxid":Z,"path":"/x/y",
// "stat":{...}|null} in zxid order. With from_zxid, the changes after N
// come before the sync message.
//
// Live events ride the tree's own watches: each stream is a watcher of the
// replica (Replica::add_host_watch) holding one PERSISTENT_RECURSIVE watch
// on `path` (recursive=1, the default: created, changed and deleted of the
// node and every descendant) or one PERSISTENT watch (recursive=0: the
// node's own changes and "children" when its list of children changes), so
// a stream costs the server what a client's persistent watch costs. The
// Stat of an event is read from the tree while the entry that fired it is
// applied (null for a deletion). An event about a node the stream's
// identities (ip of the socket, and the digest and super identities of its
// credentials or login token) may not READ is never sent.
//
// Resume: while streams are open, and for event_history_keep_ms after the
// last one closed, the hub keeps the last changes of the whole tree (one
// recursive watch on "/", bounded by event_history_entries_max and
// event_history_bytes_max; nothing is kept on a server nobody streams
// from) and replays those after N that the stream would
// have received, checked against the identities now, in the same turn of
// the loop thread that adds the stream's watch: nothing falls between the
// replay and the live events and nothing comes twice. N older than the
// oldest change held (or than the history's start) gets "resync", and so
// does a replay longer than event_replay_events_max or
// event_replay_bytes_max. N beyond what this server applied (a client that
// was on a server further on): the sync message says N, and the changes
// up to N are not sent as this server catches up.
//
// Bounded: the hub counts what each stream has queued and its consumer
// has not taken; past event_stream_queued_messages_max or
// event_stream_queued_bytes_max the stream's watch is dropped and the
// stream closes with 1008 and a reason naming the last zxid it was given
// (resume from there). At most event_streams_max streams are open.
//
// Thread safety: EventHub runs on the loop thread; EventOutbox's core-side
// calls (deliver, finish) are safe there and post to the HTTP thread,
// where everything else of the stream runs.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coord/base/limits.h"
#include "coord/base/status.h"
#include "coord/core/replica.h"
#include "coord/io/http_api.h"

namespace coord::io {

// What a stream asked for in its URL.
struct EventStreamParams {
  std::string path = "/";
  bool recursive = true;
  std::optional<std::int64_t> from_zxid;
  std::string token;
};

// Parses the query of GET /v1/events (`path`, `recursive` 0 or 1,
// `from_zxid` >= 0, `token`; %XX escapes decoded). BadArguments saying
// why for an unknown parameter, a malformed value or an invalid path.
Result<EventStreamParams> parse_event_stream_query(std::string_view query);

// The messages of one stream, between the loop thread that produces them
// and the HTTP thread that writes them.
class EventOutbox : public std::enable_shared_from_this<EventOutbox> {
 public:
  explicit EventOutbox(boost::asio::any_io_executor net) : net_(std::move(net)) {}

  // ---- loop thread -------------------------------------------------------
  // Queues one message (the hub checked the bounds first).
  void deliver(std::string message);
  // The stream is to close with `code` after what was queued (or at once,
  // dropping it, when `drop`).
  void finish(std::uint16_t code, std::string reason, bool drop);
  // Queued and not yet written, as the hub bounds them.
  std::size_t queued_messages() const { return queued_messages_.load(); }
  std::size_t queued_bytes() const { return queued_bytes_.load(); }

  // ---- HTTP thread -------------------------------------------------------
  struct Finish {
    std::uint16_t code = 1000;
    std::string reason;
  };
  bool empty() const { return messages_.empty(); }
  // Called whenever a message or the finish arrives.
  void on_ready(std::function<void()> fn) { ready_ = std::move(fn); }
  // The next message to write, out of the queue; nullopt when none.
  std::optional<std::string> take();
  // A message taken was written (or given up): it no longer counts.
  void written(std::size_t bytes);
  const std::optional<Finish>& finishing() const { return finish_; }

 private:
  boost::asio::any_io_executor net_;
  std::atomic<std::size_t> queued_messages_{0};
  std::atomic<std::size_t> queued_bytes_{0};
  std::deque<std::string> messages_;
  std::optional<Finish> finish_;
  std::function<void()> ready_;
};

class EventHub {
 public:
  // `first_id` counts down: the ids of streams' watchers, out of the
  // reach of client connections and REST sessions.
  EventHub(core::Replica& replica, HttpMetrics& metrics, core::ConnId first_id);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Opens a stream for an upgrade request that passed admit_event_stream:
  // registers its watch and queues the replay and the sync message. The
  // refusal (400 for bad parameters, 503 at event_streams_max) otherwise;
  // `id` is the stream's, for closed().
  std::optional<HttpReply> open(const EventStreamParams& params, znode::Caller caller,
                                std::shared_ptr<EventOutbox> outbox, core::ConnId& id);
  // The WebSocket ended (either side): its watch goes.
  void closed(core::ConnId id);
  // The server stops: every stream closes with 1001.
  void stop();
  // Every tick: the history stops (its watch goes, its memory is freed)
  // once no stream has been open for event_history_keep_ms.
  void tick(TimeMs now);

  std::size_t open_streams() const { return streams_.size(); }

 private:
  struct Stream {
    std::shared_ptr<EventOutbox> outbox;
    znode::Caller caller;
    std::string path;
    bool recursive = true;
    Zxid last_zxid{0};     // of the last message queued
    Zxid seen_through{0};  // the client had every change up to here
  };
  // One change of the tree, as the history keeps it.
  struct Change {
    Zxid zxid{0};
    EventType type = EventType::None;
    std::string path;
    std::optional<Stat> stat;         // null for a deletion
    std::optional<Stat> parent_stat;  // creations and deletions
    std::optional<AclList> acl;       // as the watch event carried it
    std::size_t bytes() const;
  };

  void on_event(const znode::WatchEvent& ev);
  void on_reset();
  void history_on();
  void history_off();
  void record(const znode::WatchEvent& ev);
  // Queues `message` (of the change at `zxid`) to the stream, or cuts the
  // stream off when its consumer is behind by too much; false then (the
  // stream is gone).
  bool push(core::ConnId id, Stream& s, Zxid zxid, std::string message);
  void drop(core::ConnId id);
  // The replay for a stream that resumes after `from`, or nullopt when
  // the history does not reach back that far or the replay is too long.
  std::optional<std::vector<std::string>> replay(const Stream& s, Zxid from) const;

  core::Replica& replica_;
  HttpMetrics& metrics_;
  core::ConnId next_id_;
  core::ConnId history_id_;
  std::unordered_map<core::ConnId, Stream> streams_;
  std::deque<Change> history_;
  std::size_t history_bytes_ = 0;
  // Every change after this zxid is in history_ (while history_on_).
  Zxid history_floor_{0};
  bool history_on_ = false;
  TimeMs last_busy_{0};
};

// One stream's WebSocket on the HTTP thread, over the HTTP connection's
// stream (plain or TLS) that `keep` owns. `on_end` runs once when the
// stream is over, on the HTTP thread.
template <class Next>
class EventSocket : public std::enable_shared_from_this<EventSocket<Next>> {
 public:
  EventSocket(std::shared_ptr<void> keep, Next next, std::shared_ptr<EventOutbox> outbox,
              std::function<void()> on_end)
      : keep_(std::move(keep)),
        ws_(next),
        outbox_(std::move(outbox)),
        close_timer_(ws_.get_executor()),
        on_end_(std::move(on_end)) {}

  template <class Request>
  void start(const Request& req) {
    namespace ws = boost::beast::websocket;
    ws_.set_option(ws::stream_base::decorator(
        [](ws::response_type& res) { res.set(boost::beast::http::field::server, "coordd"); }));
    ws::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    // A consumer that is gone (not only slow) is found by pings.
    t.idle_timeout = std::chrono::seconds(60);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(limits::event_stream_read_bytes_max);
    ws_.text(true);
    ws_.async_accept(req, [self = this->shared_from_this()](boost::beast::error_code ec) {
      if (ec) return self->end();
      self->accepted_ = true;
      self->outbox_->on_ready([weak = self->weak_from_this()] {
        if (auto s = weak.lock()) s->pump();
      });
      self->read();
      self->pump();
    });
  }

 private:
  void read() {
    ws_.async_read(in_,
                   [self = this->shared_from_this()](boost::beast::error_code ec, std::size_t) {
                     // The consumer has nothing to say; what it sends is dropped.
                     self->in_.clear();
                     if (ec) return self->end();
                     self->read();
                   });
  }

  void pump() {
    if (!accepted_ || ended_ || closing_) return;
    if (const auto& f = outbox_->finishing(); f && outbox_->empty()) {
      closing_ = true;
      // A consumer that does not read may never take the close frame: the
      // connection goes without it after a while. The close frame follows
      // a write in flight, if any.
      close_timer_.expires_after(std::chrono::milliseconds(limits::event_stream_close_ms_max));
      close_timer_.async_wait([self = this->shared_from_this()](boost::beast::error_code ec) {
        if (ec) return;
        boost::beast::error_code ignored;
        boost::beast::get_lowest_layer(self->ws_).socket().shutdown(
            boost::asio::ip::tcp::socket::shutdown_both, ignored);
        self->end();
      });
      boost::beast::websocket::close_reason reason(
          static_cast<boost::beast::websocket::close_code>(f->code), f->reason);
      ws_.async_close(reason, [self = this->shared_from_this()](boost::beast::error_code) {
        self->close_timer_.cancel();
        self->end();
      });
      return;
    }
    if (writing_) return;
    auto next = outbox_->take();
    if (!next) return;
    writing_ = true;
    current_ = std::move(*next);
    ws_.async_write(boost::asio::buffer(current_),
                    [self = this->shared_from_this()](boost::beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      self->outbox_->written(self->current_.size());
                      if (ec) return self->end();
                      self->pump();
                    });
  }

  void end() {
    if (ended_) return;
    ended_ = true;
    outbox_->on_ready(nullptr);
    if (on_end_) std::exchange(on_end_, nullptr)();
  }

  std::shared_ptr<void> keep_;
  boost::beast::websocket::stream<Next> ws_;
  std::shared_ptr<EventOutbox> outbox_;
  boost::beast::flat_buffer in_;
  std::string current_;  // being written
  boost::asio::steady_timer close_timer_;
  std::function<void()> on_end_;
  bool accepted_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool ended_ = false;
};

}  // namespace coord::io
