// The frame splitter and four-letter-word detection (docs/PROTOCOL.md §1, §10).
#include <gtest/gtest.h>

#include <algorithm>

#include "coord/protocol/frame.h"
#include "hex.h"

namespace coord::protocol {
namespace {

using testhex::hex;
using testhex::to_hex;

TEST(CutFrame, NeedsTheLengthFirst) {
  const Bytes b = hex("000000");
  for (std::size_t n = 0; n <= b.size(); ++n) {
    const FrameCut cut = cut_frame(ByteSpan(b).first(n));
    EXPECT_EQ(cut.state, FrameState::NeedMore);
    EXPECT_EQ(cut.need_bytes, 4u);
  }
}

TEST(CutFrame, NeedsTheWholePayload) {
  const Bytes b = hex("00000005 0102");
  const FrameCut cut = cut_frame(b);
  EXPECT_EQ(cut.state, FrameState::NeedMore);
  EXPECT_EQ(cut.need_bytes, 9u);
}

TEST(CutFrame, CutsOneFrameAndLeavesTheRest) {
  const Bytes b = hex("00000002 abcd 00000000 ff");
  const FrameCut cut = cut_frame(b);
  ASSERT_EQ(cut.state, FrameState::Frame);
  EXPECT_EQ(to_hex(cut.payload), "abcd");
  EXPECT_EQ(cut.consumed, 6u);
  const FrameCut empty = cut_frame(ByteSpan(b).subspan(6));
  ASSERT_EQ(empty.state, FrameState::Frame);
  EXPECT_TRUE(empty.payload.empty());
  EXPECT_EQ(empty.consumed, 4u);
}

TEST(CutFrame, NegativeLengthIsAnError) {
  const FrameCut cut = cut_frame(hex("ffffffff"));
  EXPECT_EQ(cut.state, FrameState::Error);
  EXPECT_EQ(cut.error.code(), ErrorCode::MarshallingError);
  EXPECT_EQ(cut_frame(hex("80000000")).state, FrameState::Error);
}

TEST(CutFrame, LengthAboveTheLimitIsAnErrorAtTheLimitIsNot) {
  // 0xfffff (jute.maxbuffer) is allowed; one more is not.
  const FrameCut at_limit = cut_frame(hex("000fffff"));
  EXPECT_EQ(at_limit.state, FrameState::NeedMore);
  EXPECT_EQ(at_limit.need_bytes, 4u + 0xfffff);
  const FrameCut over = cut_frame(hex("00100000"));
  EXPECT_EQ(over.state, FrameState::Error);
  EXPECT_NE(over.error.message().find("exceeds"), std::string::npos);
  // A 2 MiB znode write, as kazoo's test sends, is refused from its first 4 bytes.
  EXPECT_EQ(cut_frame(hex("00200040")).state, FrameState::Error);
  // The limit is a parameter.
  EXPECT_EQ(cut_frame(hex("00000011"), 16).state, FrameState::Error);
}

TEST(FrameBuffer, ByteAtATime) {
  Bytes stream;
  append_frame(stream, hex("0102030405"));
  append_frame(stream, hex(""));
  append_frame(stream, hex("ff"));
  FrameBuffer fb;
  std::vector<std::string> frames;
  for (std::uint8_t byte : stream) {
    fb.append(ByteSpan(&byte, 1));
    while (true) {
      const FrameCut cut = fb.next();
      ASSERT_NE(cut.state, FrameState::Error);
      if (cut.state == FrameState::NeedMore) break;
      frames.push_back(to_hex(cut.payload));
    }
  }
  EXPECT_EQ(frames, (std::vector<std::string>{"0102030405", "", "ff"}));
  EXPECT_EQ(fb.buffered_bytes(), 0u);
}

TEST(FrameBuffer, ManyFramesInOneRead) {
  Bytes stream;
  for (int i = 0; i < 100; ++i)
    append_frame(stream, hex("aabb"));
  FrameBuffer fb;
  fb.append(stream);
  int n = 0;
  for (FrameCut cut = fb.next(); cut.state == FrameState::Frame; cut = fb.next())
    ++n;
  EXPECT_EQ(n, 100);
}

TEST(FrameBuffer, GivesBackWhatALargeFrameGrewOnceEmpty) {
  // A frame far larger than one socket read, as a 1 MiB setData arrives.
  const Bytes payload(limits::frame_bytes_max, 0x5a);
  Bytes stream;
  append_frame(stream, payload);
  append_frame(stream, hex("0102"));
  FrameBuffer fb;
  std::size_t frames = 0;
  std::size_t grown = 0;
  for (std::size_t at = 0; at < stream.size(); at += limits::connection_read_chunk_bytes) {
    const std::size_t n = std::min(limits::connection_read_chunk_bytes, stream.size() - at);
    fb.append(ByteSpan(stream).subspan(at, n));
    grown = std::max(grown, fb.capacity_bytes());
    for (FrameCut cut = fb.next(); cut.state == FrameState::Frame; cut = fb.next()) {
      EXPECT_EQ(cut.payload.size(), frames == 0 ? payload.size() : 2u);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 2u);
  EXPECT_GE(grown, payload.size());
  EXPECT_EQ(fb.buffered_bytes(), 0u);
  EXPECT_LE(fb.capacity_bytes(), limits::frame_buffer_idle_bytes_max);
}

TEST(FrameBuffer, KeepsAPartialFrameAndGivesBackOnlyOnceItIsTaken) {
  Bytes stream;
  for (int i = 0; i < 1000; ++i)
    append_frame(stream, hex("aabbccdd"));
  FrameBuffer fb;
  // A burst of whole frames and the first byte of the next one's length.
  fb.append(stream);
  fb.append(hex("00"));
  int n = 0;
  for (FrameCut cut = fb.next(); cut.state == FrameState::Frame; cut = fb.next())
    ++n;
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(fb.buffered_bytes(), 1u);
  fb.append(hex("000001 ee"));
  FrameCut last = fb.next();
  ASSERT_EQ(last.state, FrameState::Frame);
  EXPECT_EQ(to_hex(last.payload), "ee");
  EXPECT_EQ(fb.next().state, FrameState::NeedMore);
  EXPECT_LE(fb.capacity_bytes(), limits::frame_buffer_idle_bytes_max);
}

TEST(FrameBuffer, ReportsOversizedFrames) {
  FrameBuffer fb(8);
  fb.append(hex("00000009 00"));
  EXPECT_EQ(fb.next().state, FrameState::Error);
}

TEST(FourLetterWords, KnownWordsAreDetected) {
  for (std::string_view w : four_letter_words()) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(w.data());
    auto got = four_letter_word(ByteSpan(p, 4));
    ASSERT_TRUE(got.has_value()) << w;
    EXPECT_EQ(*got, w);
  }
  EXPECT_EQ(four_letter_words().size(), 18u);
}

TEST(FourLetterWords, OtherBytesAreAFrameLength) {
  EXPECT_FALSE(four_letter_word(hex("0000002d")).has_value());  // a handshake
  const std::string xyzw = "xyzw";
  EXPECT_FALSE(four_letter_word(ByteSpan(reinterpret_cast<const std::uint8_t*>(xyzw.data()), 4))
                   .has_value());
  const std::string ruo = "ruo";
  EXPECT_FALSE(
      four_letter_word(ByteSpan(reinterpret_cast<const std::uint8_t*>(ruo.data()), 3)).has_value());
}

}  // namespace
}  // namespace coord::protocol
