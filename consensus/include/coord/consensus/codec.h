// The peer codec: how Raft messages travel between coord servers.
//
// One message is one frame, little-endian throughout (version 1):
//
//   offset  size  field
//   0       4     body length in bytes (<= peer_message_bytes_max - header)
//   4       1     codec version (1)
//   5       1     message type (MessageType)
//   6       2     reserved, zero
//   8       4     CRC-32C of bytes 0..8 followed by the body
//   12      ...   body
//
//   body: from u64, to u64, term u64, log_term u64, index u64, commit u64,
//         reject_hint u64, context u64, flags u8 (1 reject, 2 transfer,
//         4 snapshot follows, 8 chunk offset follows, 16 last chunk,
//         32 joint configuration), entry count u32, entries, [snapshot],
//         [chunk offset u64]
//   entry: term u64, index u64, type u8, data length u32, data
//   snapshot: index u64, term u64, voter count u32, voters u64...,
//             learner count u32, learners u64...,
//             [outgoing voter count u32, outgoing voters u64... (flag 32)],
//             data length u64, data
//
// Version 1 grew without a version change: message types 12-14
// (SnapshotChunk, SnapshotChunkResponse, Propose) and flags 8, 16 and 32
// were added; every frame an earlier encoder wrote decodes exactly as
// before, and a peer built before them refuses the new frames as unknown
// types or flags (a MarshallingError), never misreads them. Flag 8 is set
// exactly on the two chunk types; flag 32 only with a snapshot.
//
// Every length and count is checked against limits.h and against the bytes
// that remain before anything is allocated, so a hostile or corrupt frame
// (short, oversized, unknown version or type, bad checksum, trailing bytes)
// decodes to a MarshallingError, never to a crash or a large allocation.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coord/base/status.h"
#include "coord/consensus/types.h"

namespace coord::consensus::codec {

inline constexpr std::uint8_t peer_codec_version = 1;
inline constexpr std::size_t frame_header_bytes = 12;

// One frame for `m`; an error when the message breaks a limit (too many
// entries, too large a snapshot...).
Result<std::string> encode(const Message& m);

// For a stream reader: the size of the frame that starts `buffer`, once its
// header is complete; 0 while fewer than frame_header_bytes are buffered; an
// error when the header announces an oversized frame or an unknown version
// (the connection should be closed).
Result<std::size_t> frame_size(std::string_view buffer);

// Decodes exactly one whole frame.
Result<Message> decode(std::string_view frame);

}  // namespace coord::consensus::codec
