#include "coord/protocol/jute.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string>

namespace coord::protocol {

namespace {

// Big-endian fields gathered on the stack and appended to the frame at
// once: a frame is mostly such fields, and growing the vector a field (or
// a byte) at a time cost more than all the rest of writing it.
template <std::size_t Cap>
struct BeFields {
  std::array<std::uint8_t, Cap> bytes;
  std::size_t n = 0;

  template <int N>
  void put(std::uint64_t v) {
    static_assert(N == 4 || N == 8);
    COORD_ASSERT(n + N <= Cap, "field past the end of the gathered bytes");
    std::uint64_t be = v << (8 * (8 - N));  // the field's first byte on top
    if constexpr (std::endian::native == std::endian::little) be = __builtin_bswap64(be);
    std::memcpy(bytes.data() + n, &be, N);
    n += N;
  }
};

std::uint64_t get_be(ByteSpan in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  std::memcpy(&v, in.data() + at, static_cast<std::size_t>(bytes));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  return v >> (8 * (8 - bytes));
}

Status marshalling(std::string message) {
  return Status(ErrorCode::MarshallingError, std::move(message));
}

}  // namespace

void JuteWriter::write_int(std::int32_t v) {
  BeFields<4> f;
  f.put<4>(static_cast<std::uint32_t>(v));
  write_raw(f.bytes.data(), f.n);
}

void JuteWriter::write_long(std::int64_t v) {
  BeFields<8> f;
  f.put<8>(static_cast<std::uint64_t>(v));
  write_raw(f.bytes.data(), f.n);
}

void JuteWriter::write_string(std::string_view s) {
  COORD_ASSERT(s.size() <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()));
  write_int(static_cast<std::int32_t>(s.size()));
  // As bytes: from char iterators the insert would copy one at a time.
  write_raw(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

void JuteWriter::write_buffer(const Data& d) {
  if (!d) {
    write_null();
    return;
  }
  write_string(*d);
}

void JuteWriter::write_vector_count(std::size_t n) {
  COORD_ASSERT(n <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()));
  write_int(static_cast<std::int32_t>(n));
}

std::size_t JuteWriter::begin_frame() {
  const std::size_t at = out_->size();
  write_int(0);
  return at;
}

void JuteWriter::end_frame(std::size_t frame_start) {
  COORD_ASSERT(frame_start + 4 <= out_->size());
  const std::size_t len = out_->size() - frame_start - 4;
  COORD_ASSERT(len <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()));
  for (int i = 0; i < 4; ++i) {
    (*out_)[frame_start + static_cast<std::size_t>(i)] =
        static_cast<std::uint8_t>(len >> (8 * (3 - i)));
  }
}

Status JuteReader::truncated(std::string_view what, std::size_t need) const {
  return marshalling("truncated " + std::string(what) + ": need " + std::to_string(need) +
                     " bytes at offset " + std::to_string(pos_) + ", " +
                     std::to_string(remaining()) + " left");
}

Status JuteReader::read_byte(std::uint8_t& v) {
  if (remaining() < 1) return truncated("byte", 1);
  v = in_[pos_++];
  return Status();
}

Status JuteReader::read_bool(bool& v) {
  if (remaining() < 1) return truncated("boolean", 1);
  v = in_[pos_++] != 0;
  return Status();
}

Status JuteReader::read_int(std::int32_t& v) {
  if (remaining() < 4) return truncated("int", 4);
  v = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_be(in_, pos_, 4)));
  pos_ += 4;
  return Status();
}

Status JuteReader::read_long(std::int64_t& v) {
  if (remaining() < 8) return truncated("long", 8);
  v = static_cast<std::int64_t>(get_be(in_, pos_, 8));
  pos_ += 8;
  return Status();
}

Status JuteReader::read_length(std::int32_t& len, std::string_view what) {
  const std::size_t at = pos_;
  COORD_RETURN_IF_ERROR(read_int(len));
  if (len < -1) {
    return marshalling("negative " + std::string(what) + " length " + std::to_string(len) +
                       " at offset " + std::to_string(at));
  }
  return Status();
}

Status JuteReader::read_string(std::string& s) {
  std::int32_t len = 0;
  COORD_RETURN_IF_ERROR(read_length(len, "string"));
  s.clear();
  if (len == -1) {
    saw_null_string_ = true;
    return Status();
  }
  const auto n = static_cast<std::size_t>(len);
  if (n > limits::jute_string_bytes_max) {
    return marshalling("string of " + std::to_string(n) + " bytes exceeds the limit of " +
                       std::to_string(limits::jute_string_bytes_max));
  }
  if (n > remaining()) return truncated("string", n);
  s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return Status();
}

Status JuteReader::read_buffer(Data& d) {
  std::int32_t len = 0;
  COORD_RETURN_IF_ERROR(read_length(len, "buffer"));
  if (len == -1) {
    d.reset();
    return Status();
  }
  const auto n = static_cast<std::size_t>(len);
  if (n > limits::jute_string_bytes_max) {
    return marshalling("buffer of " + std::to_string(n) + " bytes exceeds the limit of " +
                       std::to_string(limits::jute_string_bytes_max));
  }
  if (n > remaining()) return truncated("buffer", n);
  d.emplace(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return Status();
}

Status JuteReader::read_vector_count(std::size_t& n, std::size_t min_element_bytes) {
  COORD_ASSERT(min_element_bytes > 0);
  std::int32_t count = 0;
  COORD_RETURN_IF_ERROR(read_length(count, "vector"));
  if (count == -1) {
    n = 0;
    return Status();
  }
  n = static_cast<std::size_t>(count);
  if (n > limits::jute_vector_elements_max) {
    return marshalling("vector of " + std::to_string(n) + " elements exceeds the limit of " +
                       std::to_string(limits::jute_vector_elements_max));
  }
  if (n > remaining() / min_element_bytes) {
    return marshalling("vector of " + std::to_string(n) + " elements cannot fit in the " +
                       std::to_string(remaining()) + " bytes left");
  }
  return Status();
}

Status JuteReader::expect_end(std::string_view what) const {
  if (at_end()) return Status();
  return marshalling(std::to_string(remaining()) + " trailing bytes after " + std::string(what));
}

namespace jute {

void put(JuteWriter& w, const Id& v) {
  w.write_string(v.scheme);
  w.write_string(v.id);
}

void put(JuteWriter& w, const Acl& v) {
  w.write_int(v.perms);
  put(w, v.id);
}

void put(JuteWriter& w, const Stat& s) {
  // In nearly every reply: its 68 bytes appended in one go.
  BeFields<68> f;
  f.put<8>(static_cast<std::uint64_t>(s.czxid));
  f.put<8>(static_cast<std::uint64_t>(s.mzxid));
  f.put<8>(static_cast<std::uint64_t>(s.ctime));
  f.put<8>(static_cast<std::uint64_t>(s.mtime));
  f.put<4>(static_cast<std::uint32_t>(s.version));
  f.put<4>(static_cast<std::uint32_t>(s.cversion));
  f.put<4>(static_cast<std::uint32_t>(s.aversion));
  f.put<8>(static_cast<std::uint64_t>(s.ephemeral_owner));
  f.put<4>(static_cast<std::uint32_t>(s.data_length));
  f.put<4>(static_cast<std::uint32_t>(s.num_children));
  f.put<8>(static_cast<std::uint64_t>(s.pzxid));
  w.write_raw(f.bytes.data(), f.n);
}

Status get(JuteReader& r, Id& v) {
  COORD_RETURN_IF_ERROR(r.read_string(v.scheme));
  return r.read_string(v.id);
}

Status get(JuteReader& r, Acl& v) {
  COORD_RETURN_IF_ERROR(r.read_int(v.perms));
  return get(r, v.id);
}

Status get(JuteReader& r, Stat& s) {
  if (r.remaining() < min_wire_bytes<Stat>()) {
    return Status(ErrorCode::MarshallingError,
                  "truncated Stat: need 68 bytes, " + std::to_string(r.remaining()) + " left");
  }
  COORD_RETURN_IF_ERROR(r.read_long(s.czxid));
  COORD_RETURN_IF_ERROR(r.read_long(s.mzxid));
  COORD_RETURN_IF_ERROR(r.read_long(s.ctime));
  COORD_RETURN_IF_ERROR(r.read_long(s.mtime));
  COORD_RETURN_IF_ERROR(r.read_int(s.version));
  COORD_RETURN_IF_ERROR(r.read_int(s.cversion));
  COORD_RETURN_IF_ERROR(r.read_int(s.aversion));
  COORD_RETURN_IF_ERROR(r.read_long(s.ephemeral_owner));
  COORD_RETURN_IF_ERROR(r.read_int(s.data_length));
  COORD_RETURN_IF_ERROR(r.read_int(s.num_children));
  return r.read_long(s.pzxid);
}

}  // namespace jute
}  // namespace coord::protocol
