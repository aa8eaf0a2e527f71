#include "coord/io/log_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "coord/base/assert.h"
#include "coord/base/bytes.h"
#include "coord/base/checksum.h"
#include "coord/base/limits.h"
#include "coord/io/log_records.h"

namespace coord::io {
namespace {

constexpr std::uint8_t flag_hard_state = 0x01;
// As in LMDB's meta table (records::hard_state_body).
constexpr std::size_t hard_state_bytes = 24;
constexpr std::size_t entry_head_bytes = 8 + 8 + 1 + 4;

Status os_error(const std::string& path, std::string_view what, int err) {
  std::string msg = path + ": " + std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC) msg += " (the disk is full)";
  return Status(ErrorCode::SystemError, std::move(msg));
}

}  // namespace

LogJournal::LogJournal(int fd, std::string path, std::uint64_t id)
    : fd_(fd), path_(std::move(path)), id_(id) {}

LogJournal::~LogJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<LogJournal>> LogJournal::open(const std::string& path, std::uint64_t id) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_DSYNC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_DSYNC | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return os_error(path, "create", errno);
    std::unique_ptr<LogJournal> j(new LogJournal(fd, path, id));
    // Without the room (a nearly full disk), the journal grows as it is
    // written instead: each flush then records the file's new size too.
    if (::posix_fallocate(fd, 0, limits::log_journal_preallocate_bytes) != 0 &&
        ::ftruncate(fd, 0) != 0) {
      return os_error(path, "truncate", errno);
    }
    if (::fsync(fd) != 0) return os_error(path, "sync", errno);
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return os_error(dir, "open", errno);
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0) return os_error(dir, "sync", err);
    return j;
  }
  if (fd < 0) return os_error(path, "open", errno);
  return std::unique_ptr<LogJournal>(new LogJournal(fd, path, id));
}

std::uint32_t LogJournal::checksum(std::string_view record) const {
  unsigned char id[8];
  for (int i = 0; i < 8; ++i)
    id[i] = static_cast<unsigned char>(id_ >> (56 - 8 * i));
  return crc32c_extend(crc32c(id, sizeof id), record.data() + 4, record.size() - 4);
}

void LogJournal::encode(const std::optional<HardState>& hard_state,
                        const std::vector<LogEntryRef>& entries, std::string& out) const {
  std::size_t bytes = header_bytes + 1 + (hard_state ? hard_state_bytes : 0) + 4;
  for (const LogEntryRef& e : entries)
    bytes += entry_head_bytes + e.data.size();
  out.clear();
  out.reserve(bytes);
  put_be32(out, 0);  // the checksum, below
  put_be32(out, static_cast<std::uint32_t>(bytes - header_bytes));
  put_be64(out, last_seq_ + 1);
  out.push_back(static_cast<char>(hard_state ? flag_hard_state : 0));
  if (hard_state) out += records::hard_state_body(*hard_state);
  put_be32(out, static_cast<std::uint32_t>(entries.size()));
  for (const LogEntryRef& e : entries) {
    put_be64(out, e.index.value());
    put_be64(out, e.term.value());
    out.push_back(static_cast<char>(e.kind));
    put_be32(out, static_cast<std::uint32_t>(e.data.size()));
    out.append(e.data);
  }
  COORD_ASSERT(out.size() == bytes, "journal record of ", out.size(), " bytes, sized ", bytes);
  const std::uint32_t crc = checksum(out);
  for (int i = 0; i < 4; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>(crc >> (24 - 8 * i));
}

Result<JournalRecord> LogJournal::decode(std::string_view bytes) {
  const Status bad(ErrorCode::DataInconsistency, "journal record does not parse");
  if (bytes.size() < header_bytes + 5) return bad;
  JournalRecord r;
  r.seq = get_be64(bytes.data() + 8);
  std::string_view in = bytes.substr(header_bytes);
  const auto flags = static_cast<std::uint8_t>(in[0]);
  in.remove_prefix(1);
  if ((flags & ~flag_hard_state) != 0) return bad;
  if (flags & flag_hard_state) {
    if (in.size() < hard_state_bytes) return bad;
    auto h = records::decode_hard_state(in.substr(0, hard_state_bytes));
    if (!h.ok()) return bad;
    r.hard_state = *h;
    in.remove_prefix(hard_state_bytes);
  }
  std::uint32_t count = 0;
  if (!take_be32(in, count) || count > in.size() / entry_head_bytes) return bad;
  r.entries.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t index = 0, term = 0;
    std::uint32_t data_bytes = 0;
    if (!take_be64(in, index) || !take_be64(in, term) || in.empty()) return bad;
    const auto kind = static_cast<std::uint8_t>(in[0]);
    in.remove_prefix(1);
    if (!take_be32(in, data_bytes) || data_bytes > in.size()) return bad;
    r.entries.push_back(LogEntryRef{LogIndex(index), Term(term), kind, in.substr(0, data_bytes)});
    in.remove_prefix(data_bytes);
  }
  if (!in.empty()) return bad;
  return r;
}

Status LogJournal::recover(std::uint64_t applied, const Take& take) {
  end_ = 0;
  last_seq_ = applied;
  usable_ = true;
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size < 0) return os_error(path_, "seek", errno);
  std::string file(static_cast<std::size_t>(size), '\0');
  for (std::size_t done = 0; done < file.size();) {
    const ssize_t n =
        ::pread(fd_, file.data() + done, file.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error(path_, "read", errno);
    if (n == 0) return Status(ErrorCode::SystemError, path_ + ": shorter than its size");
    done += static_cast<std::size_t>(n);
  }
  // The record at `at`, if it is whole and passes its checksum: its size.
  auto valid_at = [&](std::size_t at) -> std::optional<std::size_t> {
    if (file.size() - at < header_bytes) return std::nullopt;
    const std::size_t body = get_be32(file.data() + at + 4);
    if (body > limits::log_journal_record_bytes_max || body > file.size() - at - header_bytes) {
      return std::nullopt;
    }
    const std::string_view record(file.data() + at, header_bytes + body);
    if (get_be32(record.data()) != checksum(record)) return std::nullopt;
    return record.size();
  };
  auto seq_at = [&](std::size_t at) { return get_be64(file.data() + at + 8); };
  std::optional<std::uint64_t> prev;
  std::size_t at = 0;
  while (at < file.size()) {
    const std::uint64_t expected = prev ? *prev + 1 : applied + 1;
    const auto len = valid_at(at);
    if (!len || (prev && seq_at(at) != expected)) {
      // The end, unless the next record is the one after this: then this
      // one was written, acknowledged and damaged since.
      if (!len && file.size() - at >= header_bytes) {
        const std::size_t next = at + header_bytes + get_be32(file.data() + at + 4);
        if (next < file.size() && valid_at(next) && seq_at(next) == expected + 1) {
          return Status(ErrorCode::DataInconsistency,
                        path_ + ": journal record " + std::to_string(expected) + " at offset " +
                            std::to_string(at) + " fails its checksum");
        }
      }
      break;
    }
    const std::uint64_t seq = seq_at(at);
    if (seq > applied) {
      if (seq != last_seq_ + 1) {
        return Status(ErrorCode::DataInconsistency,
                      path_ + ": journal record " + std::to_string(seq) + " follows record " +
                          std::to_string(last_seq_) + " that the log holds: records are missing");
      }
      const std::string_view bytes(file.data() + at, *len);
      auto r = decode(bytes);
      if (!r.ok()) return Status(r.code(), path_ + ": " + r.status().message());
      COORD_RETURN_IF_ERROR(take(*r, at, bytes));
      last_seq_ = seq;
      end_ = at + *len;
    }
    prev = seq;
    at += *len;
  }
  return Status();
}

Status LogJournal::append(std::string_view record) {
  COORD_ASSERT(usable_, "append to a journal that failed");
  ++last_seq_;
  for (std::size_t done = 0; done < record.size();) {
    const ssize_t n =
        ::pwrite(fd_, record.data() + done, record.size() - done, static_cast<off_t>(end_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      usable_ = false;
      return os_error(path_, "write", n < 0 ? errno : EIO);
    }
    done += static_cast<std::size_t>(n);
  }
  end_ += record.size();
  return Status();
}

Status LogJournal::read(std::uint64_t offset, std::size_t bytes, std::string& out) const {
  out.resize(bytes);
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error(path_, "read", errno);
    if (n == 0) return Status(ErrorCode::SystemError, path_ + ": a record ends past the file");
    done += static_cast<std::size_t>(n);
  }
  return Status();
}

void LogJournal::restart() {
  end_ = 0;
  usable_ = true;
}

}  // namespace coord::io
