// Jute, ZooKeeper's binary record encoding (docs/PROTOCOL.md §2).
//
// JuteWriter appends big-endian fields to a caller-owned byte buffer.
// JuteReader walks a read-only span and never reads past its end: every read
// checks the remaining bytes first, lengths are bounded both by the limits of
// limits.h and by what is left in the span, and a negative length other than
// -1 (Jute's null) is rejected. Failures are MarshallingError statuses that
// say what was wrong and where; nothing in here throws or aborts on input.
//
// Below the two classes is the generic field codec: a record declares its
// fields once with COORD_JUTE_FIELDS and gets encode and decode for free, so
// field order is written in exactly one place per record.
//
// Thread safety: a writer or reader is used by one thread at a time; the
// functions are otherwise stateless.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"

namespace coord::protocol {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

class JuteWriter {
 public:
  // Appends to `out`, which must outlive the writer. An empty `out` gets
  // room for a small record at once: grown from nothing, a 100-byte reply
  // would be reallocated eight times on its way.
  explicit JuteWriter(Bytes& out) : out_(&out) {
    if (out.capacity() < first_capacity_bytes) out.reserve(first_capacity_bytes);
  }

  void write_byte(std::uint8_t v) { out_->push_back(v); }
  // Always 0 or 1 on the wire: kazoo compares booleans with == 1.
  void write_bool(bool v) { out_->push_back(v ? 1 : 0); }
  void write_int(std::int32_t v);
  void write_long(std::int64_t v);
  // ustring and buffer share one wire form: int32 length, then the bytes.
  void write_string(std::string_view s);
  void write_buffer(const Data& d);  // nullopt is written as length -1
  void write_null() { write_int(-1); }
  void write_vector_count(std::size_t n);
  // Bytes already in their wire form.
  void write_raw(const std::uint8_t* p, std::size_t n) { out_->insert(out_->end(), p, p + n); }

  // Frames: reserve the 4-byte length, write the payload, then patch it.
  std::size_t begin_frame();
  void end_frame(std::size_t frame_start);

  std::size_t size() const { return out_->size(); }

  static constexpr std::size_t first_capacity_bytes = 128;

 private:
  Bytes* out_;
};

class JuteReader {
 public:
  explicit JuteReader(ByteSpan in) : in_(in) {}

  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return in_.size() - pos_; }
  bool at_end() const { return pos_ == in_.size(); }
  // The bytes not read yet.
  ByteSpan rest() const { return in_.subspan(pos_); }

  Status read_byte(std::uint8_t& v);
  Status read_bool(bool& v);  // any non-zero byte is true, as ZooKeeper reads it
  Status read_int(std::int32_t& v);
  Status read_long(std::int64_t& v);
  // A null ustring (-1) reads as the empty string: no ZooKeeper record gives
  // a null string a meaning distinct from "". The reader remembers it,
  // since a server refuses a request holding one (see saw_null_string).
  Status read_string(std::string& s);
  bool saw_null_string() const { return saw_null_string_; }
  Status read_buffer(Data& d);
  // A vector's element count; -1 (null) reads as 0. `min_element_bytes` is
  // the smallest wire size of one element, so a count that the remaining
  // bytes cannot hold is refused before anything is allocated.
  Status read_vector_count(std::size_t& n, std::size_t min_element_bytes);
  // MarshallingError unless every byte was consumed.
  Status expect_end(std::string_view what) const;

 private:
  Status truncated(std::string_view what, std::size_t need) const;
  Status read_length(std::int32_t& len, std::string_view what);

  ByteSpan in_;
  std::size_t pos_ = 0;
  bool saw_null_string_ = false;
};

// Declares a record's fields, in wire order, for the generic codec.
#define COORD_JUTE_FIELDS(...)    \
  auto fields() {                 \
    return std::tie(__VA_ARGS__); \
  }                               \
  auto fields() const {           \
    return std::tie(__VA_ARGS__); \
  }
#define COORD_JUTE_NO_FIELDS()  \
  std::tuple<> fields() {       \
    return {};                  \
  }                             \
  std::tuple<> fields() const { \
    return {};                  \
  }

namespace jute {

template <typename T>
concept FieldRecord = requires(const T& t) {
  t.fields();
};

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

template <typename T>
struct is_strong_long : std::false_type {};
template <typename Tag>
struct is_strong_long<StrongInt<Tag, std::int64_t>> : std::true_type {};

// The fewest bytes one value of T takes on the wire.
template <typename T>
constexpr std::size_t min_wire_bytes();

template <typename Tuple, std::size_t... I>
constexpr std::size_t sum_min_wire_bytes(std::index_sequence<I...>) {
  return (std::size_t{0} + ... +
          min_wire_bytes<std::remove_cvref_t<std::tuple_element_t<I, Tuple>>>());
}

template <typename T>
constexpr std::size_t min_wire_bytes() {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::uint8_t>) {
    return 1;
  } else if constexpr (std::is_same_v<T, std::int32_t> || std::is_enum_v<T>) {
    return 4;
  } else if constexpr (std::is_same_v<T, std::int64_t> || is_strong_long<T>::value) {
    return 8;
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Data> ||
                       is_vector<T>::value) {
    return 4;
  } else if constexpr (std::is_same_v<T, Id>) {
    return 8;
  } else if constexpr (std::is_same_v<T, Acl>) {
    return 12;
  } else if constexpr (std::is_same_v<T, Stat>) {
    return 68;
  } else if constexpr (FieldRecord<T>) {
    using Tuple = decltype(std::declval<const T&>().fields());
    return sum_min_wire_bytes<Tuple>(std::make_index_sequence<std::tuple_size_v<Tuple>>());
  } else {
    static_assert(sizeof(T) == 0, "no Jute wire form for this type");
    return 0;
  }
}

// put: append one value. get: read one value into `v`.
inline void put(JuteWriter& w, bool v) {
  w.write_bool(v);
}
inline void put(JuteWriter& w, std::int32_t v) {
  w.write_int(v);
}
inline void put(JuteWriter& w, std::int64_t v) {
  w.write_long(v);
}
inline void put(JuteWriter& w, const std::string& v) {
  w.write_string(v);
}
inline void put(JuteWriter& w, const Data& v) {
  w.write_buffer(v);
}
void put(JuteWriter& w, const Id& v);
void put(JuteWriter& w, const Acl& v);
void put(JuteWriter& w, const Stat& v);
template <typename E>
requires std::is_enum_v<E>
void put(JuteWriter& w, E v);
template <typename Tag>
void put(JuteWriter& w, StrongInt<Tag, std::int64_t> v);
template <typename T>
void put(JuteWriter& w, const std::vector<T>& v);
template <FieldRecord T>
void put(JuteWriter& w, const T& r);

inline Status get(JuteReader& r, bool& v) {
  return r.read_bool(v);
}
inline Status get(JuteReader& r, std::int32_t& v) {
  return r.read_int(v);
}
inline Status get(JuteReader& r, std::int64_t& v) {
  return r.read_long(v);
}
inline Status get(JuteReader& r, std::string& v) {
  return r.read_string(v);
}
inline Status get(JuteReader& r, Data& v) {
  return r.read_buffer(v);
}
Status get(JuteReader& r, Id& v);
Status get(JuteReader& r, Acl& v);
Status get(JuteReader& r, Stat& v);
template <typename E>
requires std::is_enum_v<E> Status get(JuteReader& r, E& v);
template <typename Tag>
Status get(JuteReader& r, StrongInt<Tag, std::int64_t>& v);
template <typename T>
Status get(JuteReader& r, std::vector<T>& v);
template <FieldRecord T>
Status get(JuteReader& r, T& rec);

template <typename E>
requires std::is_enum_v<E>
void put(JuteWriter& w, E v) {
  static_assert(sizeof(std::underlying_type_t<E>) == 4, "wire enums are Jute ints");
  w.write_int(static_cast<std::int32_t>(v));
}
template <typename Tag>
void put(JuteWriter& w, StrongInt<Tag, std::int64_t> v) {
  w.write_long(v.value());
}
template <typename T>
void put(JuteWriter& w, const std::vector<T>& v) {
  w.write_vector_count(v.size());
  for (const T& e : v)
    put(w, e);
}
template <FieldRecord T>
void put(JuteWriter& w, const T& r) {
  std::apply([&w](const auto&... f) { (put(w, f), ...); }, r.fields());
}

// Enums hold the raw wire value, known or not: deciding that a value is
// invalid (a bad create mode, an unknown event type) is the caller's job and
// has its own error code, not MarshallingError.
template <typename E>
requires std::is_enum_v<E> Status get(JuteReader& r, E& v) {
  std::int32_t raw = 0;
  COORD_RETURN_IF_ERROR(r.read_int(raw));
  v = static_cast<E>(raw);
  return Status();
}
template <typename Tag>
Status get(JuteReader& r, StrongInt<Tag, std::int64_t>& v) {
  std::int64_t raw = 0;
  COORD_RETURN_IF_ERROR(r.read_long(raw));
  v = StrongInt<Tag, std::int64_t>(raw);
  return Status();
}
template <typename T>
Status get(JuteReader& r, std::vector<T>& v) {
  std::size_t n = 0;
  COORD_RETURN_IF_ERROR(r.read_vector_count(n, std::max<std::size_t>(1, min_wire_bytes<T>())));
  v.clear();
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    T e{};
    COORD_RETURN_IF_ERROR(get(r, e));
    v.push_back(std::move(e));
  }
  return Status();
}
template <FieldRecord T>
Status get(JuteReader& r, T& rec) {
  Status s;
  std::apply([&](auto&... f) { ((s.ok() ? (void)(s = get(r, f)) : (void)0), ...); }, rec.fields());
  return s;
}

}  // namespace jute
}  // namespace coord::protocol
