// The Jute primitives: byte order, null forms, and the reader's bounds.
#include <gtest/gtest.h>

#include <limits>

#include "coord/protocol/jute.h"
#include "hex.h"

namespace coord::protocol {
namespace {

using testhex::hex;
using testhex::to_hex;

TEST(JuteWriter, BigEndianTwosComplement) {
  Bytes out;
  JuteWriter w(out);
  w.write_int(1);
  w.write_int(-2);
  w.write_long(0x0102030405060708);
  w.write_long(std::numeric_limits<std::int64_t>::min());
  w.write_bool(true);
  w.write_bool(false);
  EXPECT_EQ(to_hex(out),
            "00000001fffffffe01020304050607088000000000000000"
            "0100");
}

TEST(JuteWriter, StringsBuffersAndNulls) {
  Bytes out;
  JuteWriter w(out);
  w.write_string("");
  w.write_string("ab");
  w.write_buffer(std::nullopt);
  w.write_buffer(std::string("\0", 1));
  EXPECT_EQ(to_hex(out),
            "00000000"
            "000000026162"
            "ffffffff"
            "0000000100");
}

TEST(JuteWriter, FramePatchesTheLength) {
  Bytes out = hex("ee");
  JuteWriter w(out);
  const std::size_t at = w.begin_frame();
  w.write_int(7);
  w.end_frame(at);
  EXPECT_EQ(to_hex(out),
            "ee"
            "00000004"
            "00000007");
}

TEST(JuteReader, ReadsWhatTheWriterWrote) {
  const Bytes in = hex("00000001 fffffffe 0102030405060708 01 07 00000002 6162 ffffffff");
  JuteReader r(in);
  std::int32_t a = 0, b = 0;
  std::int64_t c = 0;
  bool t = false, u = false;
  std::string s;
  Data d = std::string("x");
  ASSERT_TRUE(r.read_int(a).ok());
  ASSERT_TRUE(r.read_int(b).ok());
  ASSERT_TRUE(r.read_long(c).ok());
  ASSERT_TRUE(r.read_bool(t).ok());
  ASSERT_TRUE(r.read_bool(u).ok());
  ASSERT_TRUE(r.read_string(s).ok());
  ASSERT_TRUE(r.read_buffer(d).ok());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, -2);
  EXPECT_EQ(c, 0x0102030405060708);
  EXPECT_TRUE(t);
  EXPECT_TRUE(u) << "any non-zero byte is true";
  EXPECT_EQ(s, "ab");
  EXPECT_FALSE(d.has_value());
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.expect_end("test").ok());
}

TEST(JuteReader, NeverReadsPastTheEnd) {
  const Bytes in = hex("000000");
  JuteReader r(in);
  std::int32_t v = 0;
  Status s = r.read_int(v);
  EXPECT_EQ(s.code(), ErrorCode::MarshallingError);
  EXPECT_EQ(r.position(), 0u) << "a failed read consumes nothing";
  std::int64_t l = 0;
  EXPECT_EQ(r.read_long(l).code(), ErrorCode::MarshallingError);
  JuteReader empty{ByteSpan()};
  bool b = false;
  std::uint8_t byte = 0;
  EXPECT_EQ(empty.read_bool(b).code(), ErrorCode::MarshallingError);
  EXPECT_EQ(empty.read_byte(byte).code(), ErrorCode::MarshallingError);
}

TEST(JuteReader, NullStringReadsAsEmpty) {
  const Bytes in = hex("ffffffff");
  JuteReader r(in);
  std::string s = "old";
  ASSERT_TRUE(r.read_string(s).ok());
  EXPECT_EQ(s, "");
}

TEST(JuteReader, VectorCountBounds) {
  std::size_t n = 0;
  {
    const Bytes in = hex("ffffffff");
    JuteReader r(in);
    ASSERT_TRUE(r.read_vector_count(n, 4).ok());
    EXPECT_EQ(n, 0u);
  }
  {
    const Bytes in = hex("00000002 0000000000000000");  // two 4-byte elements fit
    JuteReader r(in);
    ASSERT_TRUE(r.read_vector_count(n, 4).ok());
    EXPECT_EQ(n, 2u);
  }
  {
    const Bytes in = hex("00000003 0000000000000000");  // three do not
    JuteReader r(in);
    EXPECT_EQ(r.read_vector_count(n, 4).code(), ErrorCode::MarshallingError);
  }
  {
    const Bytes in = hex("fffffffe");
    JuteReader r(in);
    EXPECT_EQ(r.read_vector_count(n, 1).code(), ErrorCode::MarshallingError);
  }
}

TEST(JuteReader, TrailingBytesAreReported) {
  const Bytes in = hex("0000000100");
  JuteReader r(in);
  std::int32_t v = 0;
  ASSERT_TRUE(r.read_int(v).ok());
  const Status s = r.expect_end("thing");
  EXPECT_EQ(s.code(), ErrorCode::MarshallingError);
  EXPECT_NE(s.message().find("1 trailing bytes after thing"), std::string::npos) << s;
}

TEST(JuteCodec, MinimumWireSizes) {
  EXPECT_EQ(jute::min_wire_bytes<Stat>(), 68u);
  EXPECT_EQ(jute::min_wire_bytes<Acl>(), 12u);
  EXPECT_EQ(jute::min_wire_bytes<std::string>(), 4u);
  Bytes out;
  JuteWriter w(out);
  jute::put(w, Stat{});
  EXPECT_EQ(out.size(), 68u);
}

}  // namespace
}  // namespace coord::protocol
