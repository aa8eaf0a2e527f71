#include "coord/io/lmdb_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "coord/base/limits.h"

namespace coord::io {
namespace {

// LMDB 0.9's layout (mdb.c), 64-bit little-endian.
//   page header: pgno u64 @0, pad u16 @8, flags u16 @10, lower u16 @12,
//                upper u16 @14 (an overflow page's page count is u32 @12),
//                then the node offsets, u16 each;
//   node:        lo u16 @0, hi u16 @2, flags u16 @4, key size u16 @6, key,
//                then the data (or, for F_BIGDATA, the u64 overflow page);
//                a branch node's child is lo | hi << 16 | flags << 32;
//   meta page:   magic u32 @16, version u32 @20, then two MDB_db records
//                (free pages @40, main @88) of 48 bytes: pad u32 @0 (the
//                page size, in the free-pages record), flags u16 @4,
//                depth u16 @6, ..., root u64 @40; last page u64 @136,
//                txn id u64 @144.
constexpr std::size_t kPageHeader = 16;
constexpr std::size_t kNodeHeader = 8;
constexpr std::size_t kDbRecord = 48;
constexpr std::size_t kMetaEnd = 152;
constexpr std::uint32_t kMagic = 0xBEEFC0DE;
constexpr std::uint32_t kDataVersion = 1;
constexpr std::uint16_t kBranch = 0x01;
constexpr std::uint16_t kLeaf = 0x02;
constexpr std::uint16_t kOverflow = 0x04;
constexpr std::uint16_t kMeta = 0x08;
constexpr std::uint16_t kLeaf2 = 0x20;
constexpr std::uint16_t kSubPage = 0x40;
constexpr std::uint16_t kBigData = 0x01;
constexpr std::uint16_t kSubData = 0x02;
constexpr std::uint16_t kDupData = 0x04;
constexpr std::uint64_t kNoPage = ~std::uint64_t{0};
constexpr std::uint32_t kPageBytesMin = 512;
constexpr std::uint32_t kPageBytesMax = 65536;

std::uint16_t u16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) |
                                    static_cast<unsigned char>(b[at + 1]) << 8);
}
std::uint32_t u32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(u16(b, at)) | static_cast<std::uint32_t>(u16(b, at + 2)) << 16;
}
std::uint64_t u64(std::string_view b, std::size_t at) {
  return static_cast<std::uint64_t>(u32(b, at)) | static_cast<std::uint64_t>(u32(b, at + 4)) << 32;
}

struct Meta {
  std::uint32_t page_bytes = 0;
  std::uint64_t free_root = kNoPage;
  std::uint64_t main_root = kNoPage;
  std::uint64_t last_page = 0;
  std::uint64_t txn = 0;
};

enum class Tree : std::uint8_t { FreePages, Main, Named };

class Checker {
 public:
  Checker(const std::string& name, std::uint64_t bytes, const LmdbImageReader& read)
      : name_(name), bytes_(bytes), read_(read) {}

  Status run() {
    if (bytes_ == 0) return Status();
    Meta m0;
    COORD_RETURN_IF_ERROR(read_meta(0, 0, m0));
    Meta m1;
    COORD_RETURN_IF_ERROR(read_meta(1, m0.page_bytes, m1));
    // LMDB opens the environment at the meta page of the newer transaction.
    const Meta& m = m1.txn > m0.txn ? m1 : m0;
    psize_ = m.page_bytes;
    last_ = m.last_page;
    txn_ = m.txn;
    if (last_ < 1) return bad("its meta page names last page " + std::to_string(last_));
    // Only pages the trees reach must be in the file: a page LMDB freed in
    // the transaction that allocated it is never written, so a sound file
    // may end before the last page in use. A damaged last page cannot make
    // the table below huge: reachable pages are checked against the file.
    if (last_ >= bytes_ / psize_ + (std::uint64_t{1} << 20)) {
      return bad(cut_short());
    }
    seen_.assign(last_ + 1, false);
    seen_[0] = seen_[1] = true;
    COORD_RETURN_IF_ERROR(walk(m.free_root, Tree::FreePages, 0, "free-page tree"));
    COORD_RETURN_IF_ERROR(walk(m.main_root, Tree::Main, 0, "main tree"));
    return Status();
  }

 private:
  std::string cut_short() const {
    return "the file is " + std::to_string(bytes_) + " bytes, but its meta page (txn " +
           std::to_string(txn_) + ") says pages 0.." + std::to_string(last_) + " of " +
           std::to_string(psize_) + " bytes are in use: the file was cut short";
  }

  Status bad(const std::string& what) const {
    return Status(ErrorCode::DataInconsistency, name_ + ": damaged LMDB file: " + what);
  }

  Status read_meta(int which, std::uint32_t at_page_bytes, Meta& out) {
    std::string p;
    const std::uint64_t offset = static_cast<std::uint64_t>(which) * at_page_bytes;
    const std::string label = "meta page " + std::to_string(which);
    if (!read_(offset, kMetaEnd, p)) {
      return bad("shorter than its two meta pages (" + std::to_string(bytes_) + " bytes)");
    }
    if ((u16(p, 10) & kMeta) == 0) return bad(label + " is not marked as a meta page");
    if (u32(p, 16) != kMagic) return bad(label + " has a bad magic number");
    if (u32(p, 20) != kDataVersion) {
      return bad(label + " has data version " + std::to_string(u32(p, 20)));
    }
    out.page_bytes = u32(p, 40);
    if (out.page_bytes < kPageBytesMin || out.page_bytes > kPageBytesMax ||
        (out.page_bytes & (out.page_bytes - 1)) != 0) {
      return bad(label + " has page size " + std::to_string(out.page_bytes));
    }
    if (which == 1 && out.page_bytes != at_page_bytes) {
      return bad("the meta pages disagree on the page size");
    }
    out.free_root = u64(p, 40 + 40);
    out.main_root = u64(p, 40 + kDbRecord + 40);
    out.last_page = u64(p, 136);
    out.txn = u64(p, 144);
    return Status();
  }

  Status read_page(std::uint64_t pgno, std::string& out, const std::string& where) {
    if (pgno < 2 || pgno > last_) {
      return bad(where + " points at page " + std::to_string(pgno) + ", outside pages 2.." +
                 std::to_string(last_));
    }
    if (!read_(pgno * psize_, psize_, out)) {
      return bad("page " + std::to_string(pgno) + " (reached from " + where +
                 ") is beyond the end of the file; " + cut_short());
    }
    if (u64(out, 0) != pgno) {
      return bad("page " + std::to_string(pgno) + " says it is page " +
                 std::to_string(u64(out, 0)) + " (reached from " + where + ")");
    }
    return Status();
  }

  Status mark(std::uint64_t pgno, const std::string& where) {
    if (seen_[pgno]) {
      return bad("page " + std::to_string(pgno) + " is reached twice (again from " + where + ")");
    }
    seen_[pgno] = true;
    return Status();
  }

  // The data of a big value: `size` bytes in the overflow run at `pgno`.
  Status overflow(std::uint64_t pgno, std::uint64_t size, const std::string& where,
                  std::string* data) {
    const std::uint64_t pages = (kPageHeader - 1 + size) / psize_ + 1;
    std::string head;
    COORD_RETURN_IF_ERROR(read_page(pgno, head, where));
    if ((u16(head, 10) & kOverflow) == 0) {
      return bad("page " + std::to_string(pgno) + " (from " + where + ") is not an overflow page");
    }
    if (pgno + pages - 1 > last_ || u32(head, 12) < pages) {
      return bad("overflow run at page " + std::to_string(pgno) + " (from " + where +
                 ") is too short for " + std::to_string(size) + " bytes");
    }
    if (pgno + pages > bytes_ / psize_) {
      return bad("overflow run at page " + std::to_string(pgno) + " (from " + where +
                 ") is beyond the end of the file; " + cut_short());
    }
    for (std::uint64_t k = 0; k < pages; ++k)
      COORD_RETURN_IF_ERROR(mark(pgno + k, where));
    if (data != nullptr && !read_(pgno * psize_ + kPageHeader, size, *data)) {
      return bad("overflow run at page " + std::to_string(pgno) + " runs past the end of the file");
    }
    return Status();
  }

  // A free-page record: a count, then that many page numbers.
  Status free_list(std::string_view data, const std::string& where) {
    if (data.size() < 8 || data.size() % 8 != 0 || u64(data, 0) > data.size() / 8 - 1) {
      return bad(where + " holds a malformed free-page list");
    }
    const std::size_t end = 8 + 8 * static_cast<std::size_t>(u64(data, 0));
    for (std::size_t at = 8; at < end; at += 8) {
      const std::uint64_t pg = u64(data, at);
      if (pg < 2 || pg > last_) {
        return bad(where + " lists free page " + std::to_string(pg) + ", outside pages 2.." +
                   std::to_string(last_));
      }
    }
    return Status();
  }

  Status walk(std::uint64_t root, Tree tree, std::size_t depth, const std::string& what) {
    if (root == kNoPage) return Status();
    if (depth >= limits::log_btree_depth_max) {
      return bad(what + " is deeper than " + std::to_string(limits::log_btree_depth_max) +
                 " levels");
    }
    std::string page;
    COORD_RETURN_IF_ERROR(read_page(root, page, what));
    COORD_RETURN_IF_ERROR(mark(root, what));
    const std::string here = what + ", page " + std::to_string(root);
    const std::uint16_t flags = u16(page, 10);
    const bool branch = (flags & kBranch) != 0;
    const bool leaf = (flags & kLeaf) != 0;
    if (branch == leaf || (flags & (kOverflow | kMeta | kLeaf2 | kSubPage)) != 0) {
      return bad(here + " has page flags " + std::to_string(flags));
    }
    const std::size_t lower = u16(page, 12);
    const std::size_t upper = u16(page, 14);
    if (lower < kPageHeader || lower > upper || upper > psize_ || (lower - kPageHeader) % 2 != 0) {
      return bad(here + " has free-space bounds " + std::to_string(lower) + ".." +
                 std::to_string(upper));
    }
    const std::size_t keys = (lower - kPageHeader) / 2;
    if (branch && keys == 0) return bad(here + " is a branch page without keys");
    std::vector<std::pair<std::uint64_t, std::string>> named;
    for (std::size_t i = 0; i < keys; ++i) {
      const std::size_t at = u16(page, kPageHeader + 2 * i);
      const std::string node = here + ", node " + std::to_string(i);
      if (at < upper || at + kNodeHeader > psize_) {
        return bad(node + " is at offset " + std::to_string(at) + ", outside the page");
      }
      const std::uint64_t lo_hi = u32(page, at);
      const std::uint16_t nflags = u16(page, at + 4);
      const std::size_t ksize = u16(page, at + 6);
      const std::size_t key_end = at + kNodeHeader + ksize;
      if (key_end > psize_) return bad(node + " has a key that runs past the page");
      if (branch) {
        const std::uint64_t child = lo_hi | static_cast<std::uint64_t>(nflags) << 32;
        COORD_RETURN_IF_ERROR(walk(child, tree, depth + 1, what));
        continue;
      }
      if ((nflags & kDupData) != 0 || (nflags & ~(kBigData | kSubData)) != 0) {
        return bad(node + " has node flags " + std::to_string(nflags));
      }
      std::string data;
      if ((nflags & kBigData) != 0) {
        if (key_end + 8 > psize_) return bad(node + " has an overflow page number past the page");
        const bool need = tree != Tree::Named;  // free lists and tree records are read
        COORD_RETURN_IF_ERROR(overflow(u64(page, key_end), lo_hi, node, need ? &data : nullptr));
      } else {
        if (key_end + lo_hi > psize_) return bad(node + " has data that runs past the page");
        data = page.substr(key_end, lo_hi);
      }
      if (tree == Tree::FreePages) {
        if (ksize != 8)
          return bad(node + ": free-page record with a key of " + std::to_string(ksize) + " bytes");
        COORD_RETURN_IF_ERROR(free_list(data, node));
      } else if ((nflags & kSubData) != 0) {
        if (tree != Tree::Main || data.size() != kDbRecord) {
          return bad(node + " is a malformed named-database record");
        }
        if ((u16(data, 4) & 0x04) != 0) return bad(node + ": a database with duplicate keys");
        named.emplace_back(u64(data, 40), std::string(page.substr(at + kNodeHeader, ksize)));
      }
    }
    for (const auto& [sub_root, sub_name] : named) {
      COORD_RETURN_IF_ERROR(walk(sub_root, Tree::Named, 0, "database '" + sub_name + "'"));
    }
    return Status();
  }

  const std::string& name_;
  std::uint64_t bytes_;
  const LmdbImageReader& read_;
  std::uint32_t psize_ = 0;
  std::uint64_t last_ = 0;
  std::uint64_t txn_ = 0;
  std::vector<bool> seen_;
};

}  // namespace

Status check_lmdb_image(const std::string& name, std::uint64_t image_bytes,
                        const LmdbImageReader& read) {
  return Checker(name, image_bytes, read).run();
}

Status check_lmdb_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status();
    return Status(ErrorCode::SystemError, path + ": open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const Status s(ErrorCode::SystemError, path + ": stat: " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  int read_errno = 0;
  const LmdbImageReader reader = [&](std::uint64_t offset, std::size_t len, std::string& out) {
    if (offset > size || len > size - offset) return false;
    out.resize(len);
    std::size_t done = 0;
    while (done < len) {
      const ssize_t n =
          ::pread(fd, out.data() + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        read_errno = n < 0 ? errno : 0;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    return true;
  };
  Status s = check_lmdb_image(path, size, reader);
  ::close(fd);
  if (!s.ok() && read_errno != 0) {
    return Status(ErrorCode::SystemError, path + ": read: " + std::strerror(read_errno));
  }
  return s;
}

}  // namespace coord::io
