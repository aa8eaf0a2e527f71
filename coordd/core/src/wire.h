// The translation between ZooKeeper's client frames and what the replica
// works with: the tree transaction of a write request, the reply frame of an
// applied write or of any other answer, and the bounds that keep a reply
// within reply_bytes_max. Pure functions over values: no state, safe from
// any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "coord/base/status.h"
#include "coord/base/zk_types.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "coord/protocol/op_table.h"
#include "coord/znode/tree.h"

namespace coord::core {

namespace pr = coord::protocol;
using pr::OpCode;
using pr::OpKind;

// Wire sizes, in bytes, of the parts replies are made of: the reply header
// (xid, zxid, err), a Stat, a multi result's header (type, done, err), and
// the length or count in front of a string, buffer or vector.
constexpr std::size_t kReplyHeaderBytes = 16;
constexpr std::size_t kStatBytes = 68;
constexpr std::size_t kMultiHeaderBytes = 9;
constexpr std::size_t kLengthBytes = 4;
// Digits of the largest sequential suffix (a 64-bit counter).
constexpr std::size_t kSequenceDigitsMax = std::numeric_limits<std::int64_t>::digits10 + 1;

// A reply that would pass reply_bytes_max. ZooKeeper has no code for it (its
// server sends the frame; a Java client, which refuses frames past
// jute.maxbuffer, loses the connection and retries for ever);
// MarshallingError names the failure, is known to every client, kazoo
// included, and none retries it.
constexpr ErrorCode kReplyTooLarge = ErrorCode::MarshallingError;
// A read, setWatches or addWatch whose watch the per-connection limit
// refuses. ZooKeeper's Throttled (-127) is unknown to kazoo, which fails on
// it in its reader thread; BadArguments is known everywhere, is not retried,
// and says the request asked for more than the connection may hold.
constexpr ErrorCode kWatchRefused = ErrorCode::BadArguments;

// 1..3 in ZooKeeper 3.8, 4 and 5 (persistent kinds) since 3.9.
bool valid_watcher_type(WatcherType t);

bool is_write(OpCode op);

pr::Bytes reply_frame(std::int32_t xid, Zxid zxid, ErrorCode err,
                      const pr::ResponseBody& body = pr::Empty{});

// The reply to a request whose reply would pass reply_bytes_max. multi and
// multiRead get the shape of any failed multi: header Ok and every op's
// result the error. Clients read those results, not the header (the C
// client decodes a multi reply's body even under an error header and
// cannot take an empty one), and the error results are no larger than
// the request's ops.
pr::Bytes too_large_reply(OpCode op, const pr::RequestBody& body, std::int32_t xid, Zxid zxid);

// One op's result inside a multi reply; `applied_all` false when the multi
// failed as a whole.
pr::MultiResult multi_result(OpCode op, const znode::MultiOpResult& r, bool applied_all);

// The reply frame of a write request once its entry applied at `zxid`.
pr::Bytes write_reply(OpCode op, const pr::RequestBody& body, std::int32_t xid, Zxid zxid,
                      const znode::ApplyResult& res);

// The largest reply a multi can get, from its request alone: a write's
// reply cannot be refused after the write applied, so a multi whose
// reply might not fit is refused before it is proposed.
std::size_t multi_reply_bytes_bound(const pr::MultiRequest& req);

// Builds the tree transaction of a write; BadArguments for flags that do
// not go with the opcode (docs/PROTOCOL.md §3.3, §6.3).
Result<znode::Txn> txn_of(OpCode op, const pr::RequestBody& body);

}  // namespace coord::core
