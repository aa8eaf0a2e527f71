#include "coord/protocol/frame.h"

#include <algorithm>
#include <array>
#include <string>

namespace coord::protocol {

FrameCut cut_frame(ByteSpan buffered, std::size_t frame_bytes_max) {
  FrameCut cut;
  if (buffered.size() < frame_length_prefix_bytes) {
    cut.need_bytes = frame_length_prefix_bytes;
    return cut;
  }
  const std::uint32_t raw = (std::uint32_t{buffered[0]} << 24) |
                            (std::uint32_t{buffered[1]} << 16) | (std::uint32_t{buffered[2]} << 8) |
                            std::uint32_t{buffered[3]};
  const auto len = static_cast<std::int32_t>(raw);
  if (len < 0) {
    cut.state = FrameState::Error;
    cut.error = Status(ErrorCode::MarshallingError, "negative frame length " + std::to_string(len));
    return cut;
  }
  const auto n = static_cast<std::size_t>(len);
  if (n > frame_bytes_max) {
    cut.state = FrameState::Error;
    cut.error = Status(ErrorCode::MarshallingError, "frame of " + std::to_string(n) +
                                                        " bytes exceeds the limit of " +
                                                        std::to_string(frame_bytes_max));
    return cut;
  }
  if (buffered.size() - frame_length_prefix_bytes < n) {
    cut.need_bytes = frame_length_prefix_bytes + n;
    return cut;
  }
  cut.state = FrameState::Frame;
  cut.payload = buffered.subspan(frame_length_prefix_bytes, n);
  cut.consumed = frame_length_prefix_bytes + n;
  cut.need_bytes = 0;
  return cut;
}

void append_frame(Bytes& out, ByteSpan payload) {
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  out.insert(out.end(), payload.begin(), payload.end());
  w.end_frame(at);
}

void FrameBuffer::append(ByteSpan bytes) {
  // Drop consumed bytes before growing, so the buffer holds at most one
  // partial frame plus what has just arrived.
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > 0 && start_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

FrameCut FrameBuffer::next() {
  FrameCut cut = cut_frame(ByteSpan(buf_).subspan(start_), frame_bytes_max_);
  if (cut.state == FrameState::Frame) start_ += cut.consumed;
  if (cut.state == FrameState::NeedMore && start_ == buf_.size()) {
    // Every frame is taken: a connection that goes quiet now keeps no more
    // than a small buffer, whatever a large frame or a burst grew it to.
    buf_.clear();
    start_ = 0;
    if (buf_.capacity() > limits::frame_buffer_idle_bytes_max) Bytes().swap(buf_);
  }
  return cut;
}

namespace {
constexpr std::array<std::string_view, 18> kWords{"conf", "cons", "crst", "dirs", "dump", "envi",
                                                  "gtmk", "hash", "isro", "mntr", "ruok", "srst",
                                                  "srvr", "stat", "stmk", "wchc", "wchp", "wchs"};
}  // namespace

std::span<const std::string_view> four_letter_words() {
  return kWords;
}

std::optional<std::string_view> four_letter_word(ByteSpan first4) {
  if (first4.size() < 4) return std::nullopt;
  const std::string_view word(reinterpret_cast<const char*>(first4.data()), 4);
  for (std::string_view w : kWords) {
    if (w == word) return w;
  }
  return std::nullopt;
}

}  // namespace coord::protocol
