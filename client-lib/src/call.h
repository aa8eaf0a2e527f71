// One request on its way through the client: built by make_call on the
// caller's thread, then owned by the I/O thread until its completion, or
// the call itself with its result, is handed to the event thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "coord/client-lib/client.h"
#include "coord/protocol/records.h"

namespace coord::client_detail {

struct Call {
  protocol::OpCode op = protocol::OpCode::Ping;
  protocol::RequestBody body;
  // Runs on the event thread with the server's answer (body paths already
  // relative to the chroot) or the error.
  std::function<void(Result<protocol::ResponseBody>)> complete;
  // Watch registration confirmed by a successful reply. For exists, a
  // NoNode answer registers an exist watch instead.
  WatchKind watch_kind = WatchKind::None;
  std::string watch_path;  // as given by the user; chrooted by the client
  Watcher watcher;
  // removeWatches: drop local watchers of this type on success.
  std::optional<WatcherType> removes;
  // Arguments rejected before sending (e.g. a bad path).
  Status invalid;

  // Filled in by the client.
  std::chrono::steady_clock::time_point deadline;
  std::int32_t xid = 0;
  bool done = false;  // completion already delivered (timed out)
  // The answer, when the call itself goes back to the event thread.
  std::optional<Result<protocol::ResponseBody>> result;
};

}  // namespace coord::client_detail
