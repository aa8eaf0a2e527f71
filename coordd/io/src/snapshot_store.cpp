#include "coord/io/snapshot_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "coord/base/bytes.h"
#include "coord/base/checksum.h"

namespace coord::io {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "COORDSNP";
constexpr std::uint32_t kVersion = 1;
// magic(8) version(4) index(8) term(8) length(8) crc(4)
constexpr std::size_t kHeaderBytes = 8 + 4 + 8 + 8 + 8 + 4;
constexpr std::string_view kPrefix = "snapshot-";
constexpr std::string_view kSuffix = ".snap";
constexpr std::string_view kTmpSuffix = ".tmp";

Status errno_status(const std::string& what, const std::string& path) {
  return Status(ErrorCode::SystemError, path + ": " + what + ": " + std::strerror(errno));
}

Status write_all_and_sync(const std::string& path, std::string_view a, std::string_view b) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", path);
  for (std::string_view part : {a, b}) {
    while (!part.empty()) {
      const ssize_t n = ::write(fd, part.data(), part.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = errno_status("write", path);
        ::close(fd);
        return s;
      }
      part.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  if (::fsync(fd) != 0) {
    Status s = errno_status("fsync", path);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return errno_status("close", path);
  return Status();
}

Status sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return errno_status("fsync directory", dir);
  return Status();
}

std::optional<LogIndex> index_of(const std::string& name) {
  if (name.size() != kPrefix.size() + 16 + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  for (char c : std::string_view(name).substr(kPrefix.size(), 16)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return LogIndex(v);
}

std::string header_of(LogIndex index, Term term, std::string_view payload) {
  std::string header;
  header.reserve(kHeaderBytes);
  header.append(kMagic);
  put_be(header, kVersion, 4);
  put_be(header, index.value(), 8);
  put_be(header, term.value(), 8);
  put_be(header, payload.size(), 8);
  const std::uint32_t crc = crc32c_extend(crc32c(header), payload.data(), payload.size());
  put_be(header, crc, 4);
  return header;
}

}  // namespace

SnapshotStore::SnapshotStore(std::string dir) : dir_(std::move(dir)) {}

std::string SnapshotStore::path_of(LogIndex index) const {
  char name[64];
  std::snprintf(name, sizeof name, "snapshot-%016" PRIx64 ".snap", index.value());
  return (fs::path(dir_) / name).string();
}

Status SnapshotStore::save(LogIndex index, Term term, std::string_view payload) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status(ErrorCode::SystemError, dir_ + ": cannot create: " + ec.message());
  const std::string header = header_of(index, term, payload);

  const std::string final_path = path_of(index);
  const std::string tmp_path = final_path + std::string(kTmpSuffix);
  COORD_RETURN_IF_ERROR(write_all_and_sync(tmp_path, header, payload));
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return errno_status("rename", tmp_path);
  }
  return sync_dir(dir_);
}

Result<std::vector<LogIndex>> SnapshotStore::list() const {
  std::vector<LogIndex> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (auto idx = index_of(e.path().filename().string())) out.push_back(*idx);
  }
  if (ec) return Status(ErrorCode::SystemError, dir_ + ": cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::optional<SnapshotFile>> SnapshotStore::load_latest() const {
  auto indexes = list();
  if (!indexes.ok()) return indexes.status();
  if (indexes->empty()) return std::optional<SnapshotFile>();
  auto f = load(indexes->back());
  if (!f.ok()) return f.status();
  return std::optional<SnapshotFile>(std::move(f).value());
}

Result<SnapshotFile> SnapshotStore::load(LogIndex index) const {
  const std::string path = path_of(index);
  std::string bytes;
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status(ErrorCode::NoNode, path + ": no such snapshot");
      return errno_status("open", path);
    }
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = errno_status("read", path);
        ::close(fd);
        return s;
      }
      if (n == 0) break;
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  return decode(bytes, index, path);
}

namespace {

// Reads exactly `n` bytes at `offset` of an open file; false at its end.
bool pread_all(int fd, std::uint64_t offset, std::size_t n, char* out) {
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    offset += static_cast<std::uint64_t>(got);
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

}  // namespace

Result<std::uint64_t> SnapshotStore::payload_bytes(LogIndex index) const {
  const std::string path = path_of(index);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path);
  char header[kHeaderBytes];
  const bool read = pread_all(fd, 0, kHeaderBytes, header);
  ::close(fd);
  if (!read || std::string_view(header, 8) != kMagic) {
    return Status(ErrorCode::DataInconsistency, path + ": corrupt snapshot: bad header");
  }
  return get_be(header + 28, 8);
}

Status SnapshotStore::read_payload(LogIndex index, std::uint64_t offset, std::size_t max_bytes,
                                   std::string& out) const {
  auto size = payload_bytes(index);
  if (!size.ok()) return size.status();
  const std::string path = path_of(index);
  if (offset >= *size) {
    return Status(ErrorCode::BadArguments, path + ": read at " + std::to_string(offset) +
                                               " past the payload's " + std::to_string(*size) +
                                               " bytes");
  }
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, *size - offset));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path);
  const std::size_t at = out.size();
  out.resize(at + n);
  const bool read = pread_all(fd, kHeaderBytes + offset, n, out.data() + at);
  ::close(fd);
  if (!read) {
    out.resize(at);
    return Status(ErrorCode::DataInconsistency,
                  path + ": corrupt snapshot: shorter than its header says");
  }
  return Status();
}

std::string SnapshotStore::encode(LogIndex index, Term term, std::string_view payload) {
  std::string out = header_of(index, term, payload);
  out.append(payload);
  return out;
}

Result<SnapshotFile> SnapshotStore::decode(std::string_view bytes, LogIndex index,
                                           const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return Status(ErrorCode::DataInconsistency, path + ": corrupt snapshot: " + why);
  };
  if (bytes.size() < kHeaderBytes) return corrupt("shorter than its header");
  if (std::string_view(bytes).substr(0, 8) != kMagic) return corrupt("bad magic");
  const auto version = static_cast<std::uint32_t>(get_be(bytes.data() + 8, 4));
  if (version != kVersion) return corrupt("unknown version " + std::to_string(version));
  SnapshotFile f;
  f.index = LogIndex(get_be(bytes.data() + 12, 8));
  f.term = Term(get_be(bytes.data() + 20, 8));
  const std::uint64_t length = get_be(bytes.data() + 28, 8);
  const auto crc = static_cast<std::uint32_t>(get_be(bytes.data() + 36, 4));
  if (length != bytes.size() - kHeaderBytes) {
    return corrupt("length " + std::to_string(length) + " but " +
                   std::to_string(bytes.size() - kHeaderBytes) + " bytes follow the header");
  }
  if (f.index != index) return corrupt("index does not match the file name");
  const std::uint32_t actual =
      crc32c_extend(crc32c(bytes.data(), kHeaderBytes - 4), bytes.data() + kHeaderBytes, length);
  if (actual != crc) return corrupt("checksum mismatch");
  f.payload = std::string(bytes.substr(kHeaderBytes));
  return f;
}

Status SnapshotStore::prune(std::size_t keep, LogIndex named) {
  auto indexes = list();
  if (!indexes.ok()) return indexes.status();
  std::error_code ec;
  // Those at or below `named`, newest last: all but the last `keep` go.
  const auto end = std::upper_bound(indexes->begin(), indexes->end(), named);
  const auto at_or_below = static_cast<std::size_t>(end - indexes->begin());
  for (std::size_t i = 0; i + keep < at_or_below; ++i) {
    fs::remove(path_of((*indexes)[i]), ec);
    if (ec) return Status(ErrorCode::SystemError, path_of((*indexes)[i]) + ": " + ec.message());
  }
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().filename().string().ends_with(kTmpSuffix)) fs::remove(e.path(), ec);
  }
  return Status();
}

std::size_t SnapshotStore::total_bytes() const {
  std::size_t total = 0;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (index_of(e.path().filename().string())) total += e.file_size(ec);
  }
  return total;
}

}  // namespace coord::io
