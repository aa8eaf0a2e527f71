#include "coord/consensus/codec.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "coord/base/checksum.h"
#include "coord/base/limits.h"

namespace coord::consensus::codec {
namespace {

constexpr std::uint8_t flag_reject = 1;
constexpr std::uint8_t flag_transfer = 2;
constexpr std::uint8_t flag_snapshot = 4;
// Added within version 1 (older frames never set them, so they decode as
// before): a chunk offset follows the body; the chunk is the last one; the
// snapshot's configuration is joint (its outgoing voters follow).
constexpr std::uint8_t flag_chunk = 8;
constexpr std::uint8_t flag_chunk_last = 16;
constexpr std::uint8_t flag_joint = 32;
constexpr std::uint8_t flags_known =
    flag_reject | flag_transfer | flag_snapshot | flag_chunk | flag_chunk_last | flag_joint;

bool is_chunk_type(MessageType t) {
  return t == MessageType::SnapshotChunk || t == MessageType::SnapshotChunkResponse;
}

// Fixed part of the body, then the smallest entry.
constexpr std::size_t body_fixed_bytes = 8 * 8 + 1 + 4;
constexpr std::size_t entry_min_bytes = 8 + 8 + 1 + 4;

Status bad(const char* what) {
  return Status(ErrorCode::MarshallingError, std::string("peer frame: ") + what);
}

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void bytes(std::string_view b) { out_.append(b.data(), b.size()); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::size_t left() const { return in_.size() - pos_; }
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= std::uint32_t{static_cast<std::uint8_t>(in_[pos_ + i])} << (8 * i);
    pos_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t{static_cast<std::uint8_t>(in_[pos_ + i])} << (8 * i);
    pos_ += 8;
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (left() < n) return false;
    out.assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

std::uint32_t le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= std::uint32_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
  return v;
}

Status read_ids(Reader& r, std::vector<NodeId>& out) {
  std::uint32_t n = 0;
  if (!r.u32(n)) return bad("short member list");
  if (n > limits::cluster_members_max) return bad("too many members");
  if (r.left() / 8 < n) return bad("short member list");
  out.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint64_t v = 0;
    r.u64(v);
    out.push_back(NodeId(v));
  }
  if (!std::is_sorted(out.begin(), out.end()) ||
      std::adjacent_find(out.begin(), out.end()) != out.end()) {
    return bad("member list not sorted");
  }
  return Status();
}

}  // namespace

Result<std::string> encode(const Message& m) {
  if (m.entries.size() > limits::append_entries_per_message_max) {
    return Status(ErrorCode::BadArguments, "peer frame: too many entries");
  }
  std::size_t entry_bytes = 0;
  for (const Entry& e : m.entries)
    entry_bytes += e.data.size();
  if (entry_bytes > limits::append_entry_bytes_per_message_max) {
    return Status(ErrorCode::BadArguments, "peer frame: entries too large");
  }
  if (m.snapshot) {
    if (m.snapshot->data.size() > limits::snapshot_bytes_max) {
      return Status(ErrorCode::BadArguments, "peer frame: snapshot too large");
    }
    if (m.snapshot->meta.conf.size() > limits::cluster_members_max ||
        m.snapshot->meta.conf.voters_outgoing.size() > limits::cluster_members_max) {
      return Status(ErrorCode::BadArguments, "peer frame: too many members");
    }
  }
  Writer w;
  w.out().reserve(frame_header_bytes + body_fixed_bytes + entry_bytes +
                  m.entries.size() * entry_min_bytes);
  w.u32(0);  // body length, patched below
  w.u8(peer_codec_version);
  w.u8(static_cast<std::uint8_t>(m.type));
  w.u8(0);
  w.u8(0);
  w.u32(0);  // checksum, patched below
  w.u64(m.from.value());
  w.u64(m.to.value());
  w.u64(m.term.value());
  w.u64(m.log_term.value());
  w.u64(m.index.value());
  w.u64(m.commit.value());
  w.u64(m.reject_hint.value());
  w.u64(m.context);
  const bool chunk = is_chunk_type(m.type);
  const bool joint = m.snapshot && m.snapshot->meta.conf.joint();
  w.u8(static_cast<std::uint8_t>((m.reject ? flag_reject : 0) | (m.transfer ? flag_transfer : 0) |
                                 (m.snapshot ? flag_snapshot : 0) | (chunk ? flag_chunk : 0) |
                                 (chunk && m.chunk_last ? flag_chunk_last : 0) |
                                 (joint ? flag_joint : 0)));
  w.u32(static_cast<std::uint32_t>(m.entries.size()));
  for (const Entry& e : m.entries) {
    w.u64(e.term.value());
    w.u64(e.index.value());
    w.u8(static_cast<std::uint8_t>(e.type));
    w.u32(static_cast<std::uint32_t>(e.data.size()));
    w.bytes(e.data);
  }
  if (m.snapshot) {
    const Snapshot& s = *m.snapshot;
    w.u64(s.meta.index.value());
    w.u64(s.meta.term.value());
    w.u32(static_cast<std::uint32_t>(s.meta.conf.voters.size()));
    for (NodeId id : s.meta.conf.voters)
      w.u64(id.value());
    w.u32(static_cast<std::uint32_t>(s.meta.conf.learners.size()));
    for (NodeId id : s.meta.conf.learners)
      w.u64(id.value());
    if (joint) {
      w.u32(static_cast<std::uint32_t>(s.meta.conf.voters_outgoing.size()));
      for (NodeId id : s.meta.conf.voters_outgoing)
        w.u64(id.value());
    }
    w.u64(s.data.size());
    w.bytes(s.data);
  }
  if (chunk) w.u64(m.chunk_offset);
  std::string& out = w.out();
  if (out.size() > limits::peer_message_bytes_max) {
    return Status(ErrorCode::BadArguments, "peer frame: message too large");
  }
  const auto body = static_cast<std::uint32_t>(out.size() - frame_header_bytes);
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<char>((body >> (8 * i)) & 0xff);
  std::uint32_t crc = crc32c_extend(0, out.data(), 8);
  crc = crc32c_extend(crc, out.data() + frame_header_bytes, body);
  for (int i = 0; i < 4; ++i)
    out[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return std::move(out);
}

Result<std::size_t> frame_size(std::string_view buffer) {
  if (buffer.size() < frame_header_bytes) return std::size_t{0};
  const std::uint32_t body = le32(buffer.data());
  if (body > limits::peer_message_bytes_max - frame_header_bytes) return bad("oversized frame");
  if (static_cast<std::uint8_t>(buffer[4]) != peer_codec_version) return bad("unknown version");
  return frame_header_bytes + body;
}

Result<Message> decode(std::string_view frame) {
  auto size = frame_size(frame);
  if (!size.ok()) return size.status();
  if (*size == 0) return bad("short header");
  if (frame.size() < *size) return bad("short frame");
  if (frame.size() > *size) return bad("trailing bytes after the frame");
  std::uint32_t crc = crc32c_extend(0, frame.data(), 8);
  crc = crc32c_extend(crc, frame.data() + frame_header_bytes, frame.size() - frame_header_bytes);
  if (crc != le32(frame.data() + 8)) return bad("checksum mismatch");
  const auto type = static_cast<std::uint8_t>(frame[5]);
  if (type >= message_type_count) return bad("unknown message type");
  if (frame[6] != 0 || frame[7] != 0) return bad("reserved bytes set");

  Reader r(frame.substr(frame_header_bytes));
  if (r.left() < body_fixed_bytes) return bad("short body");
  Message m;
  m.type = static_cast<MessageType>(type);
  // The fixed part is known to be there.
  auto next = [&r] {
    std::uint64_t x = 0;
    r.u64(x);
    return x;
  };
  m.from = NodeId(next());
  m.to = NodeId(next());
  m.term = Term(next());
  m.log_term = Term(next());
  m.index = LogIndex(next());
  m.commit = LogIndex(next());
  m.reject_hint = LogIndex(next());
  m.context = next();
  std::uint64_t v = 0;
  std::uint8_t flags = 0;
  r.u8(flags);
  if (flags & ~flags_known) return bad("unknown flags");
  m.reject = flags & flag_reject;
  m.transfer = flags & flag_transfer;
  // Exactly the chunk messages carry an offset, and only a snapshot has a
  // configuration: anything else would not encode back to the same frame.
  if (((flags & flag_chunk) != 0) != is_chunk_type(m.type)) return bad("chunk flag mismatch");
  if ((flags & flag_chunk_last) && !(flags & flag_chunk)) return bad("chunk flag mismatch");
  if ((flags & flag_joint) && !(flags & flag_snapshot)) return bad("joint flag without snapshot");
  m.chunk_last = flags & flag_chunk_last;
  std::uint32_t count = 0;
  r.u32(count);
  if (count > limits::append_entries_per_message_max) return bad("too many entries");
  if (r.left() / entry_min_bytes < count) return bad("short entries");
  m.entries.reserve(count);
  std::size_t entry_bytes = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    Entry e;
    std::uint8_t et = 0;
    std::uint32_t len = 0;
    if (!r.u64(v)) return bad("short entry");
    e.term = Term(v);
    if (!r.u64(v)) return bad("short entry");
    e.index = LogIndex(v);
    if (!r.u8(et) || !r.u32(len)) return bad("short entry");
    if (et > static_cast<std::uint8_t>(EntryType::ConfChange)) return bad("unknown entry type");
    e.type = static_cast<EntryType>(et);
    entry_bytes += len;
    if (entry_bytes > limits::append_entry_bytes_per_message_max) return bad("entries too large");
    if (!r.bytes(len, e.data)) return bad("short entry data");
    m.entries.push_back(std::move(e));
  }
  if (flags & flag_snapshot) {
    auto s = std::make_shared<Snapshot>();
    if (!r.u64(v)) return bad("short snapshot");
    s->meta.index = LogIndex(v);
    if (!r.u64(v)) return bad("short snapshot");
    s->meta.term = Term(v);
    COORD_RETURN_IF_ERROR(read_ids(r, s->meta.conf.voters));
    COORD_RETURN_IF_ERROR(read_ids(r, s->meta.conf.learners));
    if (flags & flag_joint) {
      COORD_RETURN_IF_ERROR(read_ids(r, s->meta.conf.voters_outgoing));
      if (s->meta.conf.voters_outgoing.empty()) return bad("empty outgoing voters");
    }
    if (s->meta.conf.size() > limits::cluster_members_max) return bad("too many members");
    for (NodeId id : s->meta.conf.learners) {
      if (s->meta.conf.is_voter(id)) return bad("a member both voter and learner");
    }
    std::uint64_t len = 0;
    if (!r.u64(len)) return bad("short snapshot");
    if (len > limits::snapshot_bytes_max) return bad("snapshot too large");
    if (!r.bytes(static_cast<std::size_t>(len), s->data)) return bad("short snapshot data");
    m.snapshot = std::move(s);
  }
  if (flags & flag_chunk) {
    if (!r.u64(v)) return bad("short chunk offset");
    m.chunk_offset = v;
  }
  if (r.left() != 0) return bad("trailing bytes in the body");
  return m;
}

}  // namespace coord::consensus::codec
