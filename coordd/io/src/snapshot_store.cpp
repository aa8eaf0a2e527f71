#include "coord/io/snapshot_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

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
// Not ".tmp": prune() removes those, and a partial file is written for a
// while, across snapshots this server takes of its own.
constexpr std::string_view kIncomingName = "incoming.snap.part";
// Buffer of the passes that read a whole file in bounded memory.
constexpr std::size_t kReadBufferBytes = std::size_t{1} << 16;

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

// The header without its checksum (the first kHeaderBytes - 4 bytes).
std::string header_fields(LogIndex index, Term term, std::uint64_t length) {
  std::string header;
  header.reserve(kHeaderBytes);
  header.append(kMagic);
  put_be(header, kVersion, 4);
  put_be(header, index.value(), 8);
  put_be(header, term.value(), 8);
  put_be(header, length, 8);
  return header;
}

std::string header_of(LogIndex index, Term term, std::string_view payload) {
  std::string header = header_fields(index, term, payload.size());
  const std::uint32_t crc = crc32c_extend(crc32c(header), payload.data(), payload.size());
  put_be(header, crc, 4);
  return header;
}

Status pwrite_all(int fd, std::string_view bytes, std::uint64_t offset, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write", path);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return Status();
}

// Reads up to `size` bytes at `offset` into buf; fewer only at the end of
// the file.
Result<std::size_t> pread_some(int fd, char* buf, std::size_t size, std::uint64_t offset,
                               const std::string& path) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, buf + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read", path);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

Result<std::uint64_t> file_size(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status("stat", path);
  return static_cast<std::uint64_t>(st.st_size);
}

// CRC-32C of `length` bytes at `offset`, extending `crc`, read in pieces.
Result<std::uint32_t> crc_of_range(int fd, std::uint64_t offset, std::uint64_t length,
                                   std::uint32_t crc, const std::string& path) {
  std::string buf(kReadBufferBytes, '\0');
  while (length > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buf.size()));
    auto n = pread_some(fd, buf.data(), want, offset, path);
    if (!n.ok()) return n.status();
    if (*n != want) {
      return Status(ErrorCode::DataInconsistency, path + ": corrupt snapshot: truncated");
    }
    crc = crc32c_extend(crc, buf.data(), want);
    offset += want;
    length -= want;
  }
  return crc;
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
  auto m = map(index);
  if (!m.ok()) return m.status();
  return SnapshotFile{m->index(), m->term(), std::string(m->payload())};
}

Result<MappedSnapshot> SnapshotStore::map(LogIndex index) const {
  const std::string path = path_of(index);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(ErrorCode::NoNode, path + ": no such snapshot");
    return errno_status("open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = errno_status("stat", path);
    ::close(fd);
    return s;
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  void* map = nullptr;
  if (bytes > 0) {
    // Populated at once: the checksum reads every page next, and one call
    // that maps them all costs far less than a fault per page.
    map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
      Status s = errno_status("map", path);
      ::close(fd);
      return s;
    }
  }
  ::close(fd);
  MappedSnapshot m(map, bytes);
  auto f = check(std::string_view(static_cast<const char*>(map), bytes), index, path);
  if (!f.ok()) return f.status();
  m.index_ = f->index;
  m.term_ = f->term;
  m.payload_ = f->payload;
  return m;
}

std::string SnapshotStore::encode(LogIndex index, Term term, std::string_view payload) {
  std::string out = header_of(index, term, payload);
  out.append(payload);
  return out;
}

Result<SnapshotFile> SnapshotStore::decode(std::string_view bytes, LogIndex index,
                                           const std::string& path) {
  auto f = check(bytes, index, path);
  if (!f.ok()) return f.status();
  return SnapshotFile{f->index, f->term, std::string(f->payload)};
}

Result<SnapshotStore::Checked> SnapshotStore::check(std::string_view bytes, LogIndex index,
                                                    const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return Status(ErrorCode::DataInconsistency, path + ": corrupt snapshot: " + why);
  };
  if (bytes.size() < kHeaderBytes) return corrupt("shorter than its header");
  if (std::string_view(bytes).substr(0, 8) != kMagic) return corrupt("bad magic");
  const auto version = static_cast<std::uint32_t>(get_be(bytes.data() + 8, 4));
  if (version != kVersion) return corrupt("unknown version " + std::to_string(version));
  Checked f;
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
  f.payload = bytes.substr(kHeaderBytes);
  return f;
}

MappedSnapshot::MappedSnapshot(MappedSnapshot&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      index_(other.index_),
      term_(other.term_),
      payload_(std::exchange(other.payload_, {})) {}

MappedSnapshot& MappedSnapshot::operator=(MappedSnapshot&& other) noexcept {
  if (this != &other) {
    unmap();
    map_ = std::exchange(other.map_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    index_ = other.index_;
    term_ = other.term_;
    payload_ = std::exchange(other.payload_, {});
  }
  return *this;
}

MappedSnapshot::~MappedSnapshot() {
  unmap();
}

void MappedSnapshot::unmap() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
  map_ = nullptr;
  bytes_ = 0;
  payload_ = {};
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

std::string SnapshotStore::incoming_path() const {
  return (fs::path(dir_) / kIncomingName).string();
}

Result<IncomingSnapshot> SnapshotStore::start_incoming(LogIndex index, Term term) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status(ErrorCode::SystemError, dir_ + ": cannot create: " + ec.message());
  const std::string path = incoming_path();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", path);
  IncomingSnapshot in(fd, path, path_of(index), dir_, index, term);
  // The header's place, blank until install() knows the length and the
  // checksum.
  COORD_RETURN_IF_ERROR(pwrite_all(fd, std::string(kHeaderBytes, '\0'), 0, path));
  return in;
}

Status SnapshotStore::remove_incoming() {
  const std::string path = incoming_path();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status("remove", path);
  return Status();
}

Result<SnapshotPayloadReader> SnapshotStore::open_payload(LogIndex index) const {
  const std::string path = path_of(index);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(ErrorCode::NoNode, path + ": no such snapshot");
    return errno_status("open", path);
  }
  // Owned from here: a failed check closes it.
  SnapshotPayloadReader reader(fd, path, index, Term(0), 0);
  auto corrupt = [&](const std::string& why) {
    return Status(ErrorCode::DataInconsistency, path + ": corrupt snapshot: " + why);
  };
  char header[kHeaderBytes];
  auto got = pread_some(fd, header, kHeaderBytes, 0, path);
  if (!got.ok()) return got.status();
  if (*got < kHeaderBytes) return corrupt("shorter than its header");
  if (std::string_view(header, 8) != kMagic) return corrupt("bad magic");
  const auto version = static_cast<std::uint32_t>(get_be(header + 8, 4));
  if (version != kVersion) return corrupt("unknown version " + std::to_string(version));
  const LogIndex file_index(get_be(header + 12, 8));
  const Term term(get_be(header + 20, 8));
  const std::uint64_t length = get_be(header + 28, 8);
  const auto crc = static_cast<std::uint32_t>(get_be(header + 36, 4));
  auto size = file_size(fd, path);
  if (!size.ok()) return size.status();
  if (length != *size - kHeaderBytes) {
    return corrupt("length " + std::to_string(length) + " but " +
                   std::to_string(*size - kHeaderBytes) + " bytes follow the header");
  }
  if (file_index != index) return corrupt("index does not match the file name");
  auto actual = crc_of_range(fd, kHeaderBytes, length, crc32c(header, kHeaderBytes - 4), path);
  if (!actual.ok()) return actual.status();
  if (*actual != crc) return corrupt("checksum mismatch");
  reader.term_ = term;
  reader.size_ = length;
  return reader;
}

// ---- IncomingSnapshot ----------------------------------------------------------

IncomingSnapshot::IncomingSnapshot(int fd, std::string path, std::string final_path,
                                   std::string dir, LogIndex index, Term term)
    : fd_(fd),
      path_(std::move(path)),
      final_path_(std::move(final_path)),
      dir_(std::move(dir)),
      index_(index),
      term_(term) {}

IncomingSnapshot::IncomingSnapshot(IncomingSnapshot&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      final_path_(std::move(other.final_path_)),
      dir_(std::move(other.dir_)),
      index_(other.index_),
      term_(other.term_),
      size_(other.size_),
      payload_crc_(other.payload_crc_) {}

IncomingSnapshot& IncomingSnapshot::operator=(IncomingSnapshot&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    final_path_ = std::move(other.final_path_);
    dir_ = std::move(other.dir_);
    index_ = other.index_;
    term_ = other.term_;
    size_ = other.size_;
    payload_crc_ = other.payload_crc_;
  }
  return *this;
}

IncomingSnapshot::~IncomingSnapshot() {
  close();
}

void IncomingSnapshot::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status IncomingSnapshot::append(std::string_view bytes) {
  if (fd_ < 0) return Status(ErrorCode::SystemError, path_ + ": partial snapshot is closed");
  COORD_RETURN_IF_ERROR(pwrite_all(fd_, bytes, kHeaderBytes + size_, path_));
  size_ += bytes.size();
  payload_crc_ = crc32c_extend(payload_crc_, bytes.data(), bytes.size());
  return Status();
}

Status IncomingSnapshot::install() {
  if (fd_ < 0) return Status(ErrorCode::SystemError, path_ + ": partial snapshot is closed");
  struct Closer {
    IncomingSnapshot& s;
    ~Closer() { s.close(); }
  } closer{*this};
  auto damaged = [&](const std::string& why) {
    return Status(ErrorCode::DataInconsistency, path_ + ": received snapshot at index " +
                                                    std::to_string(index_.value()) +
                                                    " is damaged: " + why);
  };
  auto size = file_size(fd_, path_);
  if (!size.ok()) return size.status();
  if (*size != kHeaderBytes + size_) {
    return damaged(std::to_string(*size) + " bytes in the file, " +
                   std::to_string(kHeaderBytes + size_) + " expected");
  }
  // One pass over what the file holds gives both checksums: the payload's
  // alone, to compare with what was appended, and the file's, for its
  // header.
  std::string header = header_fields(index_, term_, size_);
  std::uint32_t payload_crc = 0;
  std::uint32_t file_crc = crc32c(header);
  std::string buf(kReadBufferBytes, '\0');
  for (std::uint64_t at = 0; at < size_;) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(size_ - at, buf.size()));
    auto n = pread_some(fd_, buf.data(), want, kHeaderBytes + at, path_);
    if (!n.ok()) return n.status();
    if (*n != want) return damaged("truncated");
    payload_crc = crc32c_extend(payload_crc, buf.data(), want);
    file_crc = crc32c_extend(file_crc, buf.data(), want);
    at += want;
  }
  if (payload_crc != payload_crc_) return damaged("its bytes differ from those received");
  put_be(header, file_crc, 4);
  COORD_RETURN_IF_ERROR(pwrite_all(fd_, header, 0, path_));
  if (::fsync(fd_) != 0) return errno_status("fsync", path_);
  if (::close(std::exchange(fd_, -1)) != 0) return errno_status("close", path_);
  if (::rename(path_.c_str(), final_path_.c_str()) != 0) return errno_status("rename", path_);
  return sync_dir(dir_);
}

// ---- SnapshotPayloadReader -----------------------------------------------------

SnapshotPayloadReader::SnapshotPayloadReader(SnapshotPayloadReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      index_(other.index_),
      term_(other.term_),
      size_(other.size_) {}

SnapshotPayloadReader& SnapshotPayloadReader::operator=(SnapshotPayloadReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    index_ = other.index_;
    term_ = other.term_;
    size_ = other.size_;
  }
  return *this;
}

SnapshotPayloadReader::~SnapshotPayloadReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status SnapshotPayloadReader::read(std::uint64_t offset, std::size_t max_bytes,
                                   std::string& out) const {
  if (offset > size_) {
    return Status(ErrorCode::BadArguments, path_ + ": read at " + std::to_string(offset) +
                                               " past the payload's " + std::to_string(size_) +
                                               " bytes");
  }
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(size_ - offset, max_bytes));
  const std::size_t old = out.size();
  out.resize(old + want);
  auto n = pread_some(fd_, out.data() + old, want, kHeaderBytes + offset, path_);
  if (!n.ok() || *n != want) {
    out.resize(old);
    if (!n.ok()) return n.status();
    return Status(ErrorCode::DataInconsistency, path_ + ": corrupt snapshot: truncated");
  }
  return Status();
}

}  // namespace coord::io
