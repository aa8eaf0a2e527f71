// Framing of the client protocol (docs/PROTOCOL.md §1, §10).
//
// Every message is a 4-byte big-endian signed length followed by that many
// bytes. A negative length or one above frame_bytes_max is not answered: the
// server closes the connection, as ZooKeeper does with jute.maxbuffer. The
// first four bytes of a new connection may instead be a four-letter admin
// word ("ruok", "srvr", ...), which a server recognises before treating them
// as a length.
//
// cut_frame is the stateless splitter over whatever bytes have arrived;
// FrameBuffer keeps the arrived bytes for a connection and hands out frames,
// giving back a grown buffer once it holds no partial frame.
// Thread safety: cut_frame is pure; a FrameBuffer belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "coord/base/limits.h"
#include "coord/base/status.h"
#include "coord/protocol/jute.h"

namespace coord::protocol {

inline constexpr std::size_t frame_length_prefix_bytes = 4;

enum class FrameState : std::uint8_t { NeedMore, Frame, Error };

struct FrameCut {
  FrameState state = FrameState::NeedMore;
  // NeedMore: total bytes the buffer must hold before the next call can
  // succeed (4 until the length is known, then 4 + length).
  std::size_t need_bytes = frame_length_prefix_bytes;
  // Frame: the payload (a view into the input) and the bytes to drop.
  ByteSpan payload;
  std::size_t consumed = 0;
  // Error: why the connection must be closed.
  Status error;
};

// Looks at the start of `buffered`. The payload of a Frame points into it.
FrameCut cut_frame(ByteSpan buffered, std::size_t frame_bytes_max = limits::frame_bytes_max);

// Appends a frame holding `payload`.
void append_frame(Bytes& out, ByteSpan payload);

// Accumulates a connection's incoming bytes and splits them into frames.
class FrameBuffer {
 public:
  explicit FrameBuffer(std::size_t frame_bytes_max = limits::frame_bytes_max)
      : frame_bytes_max_(frame_bytes_max) {}

  void append(ByteSpan bytes);
  // The next complete frame, NeedMore, or an Error (the buffer is then
  // useless: close the connection). A Frame's payload stays valid until the
  // next call to append() or next().
  FrameCut next();
  std::size_t buffered_bytes() const { return buf_.size() - start_; }
  // Memory held, for bounds on what an idle connection costs: at most
  // frame_buffer_idle_bytes_max once next() has said NeedMore with
  // nothing buffered.
  std::size_t capacity_bytes() const { return buf_.capacity(); }

 private:
  std::size_t frame_bytes_max_;
  Bytes buf_;
  std::size_t start_ = 0;
};

// The four-letter words ZooKeeper 3.8 knows (docs/PROTOCOL.md §10).
std::span<const std::string_view> four_letter_words();
// The command name when the first four bytes of a connection spell a known
// four-letter word; nullopt when they must be read as a frame length.
std::optional<std::string_view> four_letter_word(ByteSpan first4);

}  // namespace coord::protocol
