// The small containers the watch index is made of, shaped for memory: a
// registration costs a share of its path's entry, a slot of the path table
// and a slot in its watcher's set, and all of them are kept a few bytes
// wide because a server may hold millions of watches (caches that watch
// every node of a subtree).
//
// RegList: the registrations on one path, sorted by watcher. Most watched
// paths have one watcher, so the first registration lives inline and the
// list is 16 bytes; two or more move to a heap array.
//
// WatchedPath: one watched path, one heap block: its RegList, its length
// and its bytes right after, 20 bytes beyond the path.
//
// PathTable: the watched paths by path, open addressing with linear
// probing and backward-shift deletion over tagged pointers (8 bytes a
// slot): a lookup hashes the path once and most probes that meet another
// path are settled by the slot's tag without touching its entry. The table
// shrinks again as paths leave.
//
// PointerSet: a set of pointers (a watcher's WatchedPaths, which never
// move), open addressing likewise, so a member costs one pointer slot.
//
// Thread safety: none; owned by one WatchIndex.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coord/base/assert.h"
#include "coord/znode/ops.h"
#include "hash.h"

namespace coord::znode::detail {

struct Reg {
  WatcherId watcher = 0;
  std::uint8_t bits = 0;
};

class RegList {
 public:
  RegList() = default;
  RegList(const RegList&) = delete;
  RegList& operator=(const RegList&) = delete;
  RegList(RegList&& o) noexcept
      : word_(o.word_), size_(o.size_), bits_(o.bits_), cap_log2_(o.cap_log2_), spare_(o.spare_) {
    o.size_ = 0;
  }
  RegList& operator=(RegList&& o) noexcept {
    if (this != &o) {
      release();
      word_ = o.word_;
      size_ = o.size_;
      bits_ = o.bits_;
      cap_log2_ = o.cap_log2_;
      spare_ = o.spare_;
      o.size_ = 0;
    }
    return *this;
  }
  ~RegList() { release(); }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Two bytes the struct would pad anyway, the owner's to use: the path
  // table keeps the low half of its entry's hash here.
  std::uint16_t spare() const { return spare_; }
  void set_spare(std::uint16_t v) { spare_ = v; }

  Reg get(std::size_t i) const {
    COORD_ASSERT(i < size_, "registration index out of range");
    if (size_ == 1) return Reg{word_, bits_};
    return heap()[i];
  }
  void set_bits(std::size_t i, std::uint8_t bits) {
    COORD_ASSERT(i < size_, "registration index out of range");
    if (size_ == 1) {
      bits_ = bits;
    } else {
      heap()[i].bits = bits;
    }
  }
  // The index of the first registration whose watcher is not below w.
  std::size_t lower_bound(WatcherId w) const {
    if (size_ <= 1) return size_ == 1 && word_ < w ? 1 : 0;
    const Reg* h = heap();
    std::size_t lo = 0, hi = size_;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (h[mid].watcher < w) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  // The index of w's registration, or size() when it has none.
  std::size_t find(WatcherId w) const {
    std::size_t i = lower_bound(w);
    return i < size_ && get(i).watcher == w ? i : size_;
  }

  void insert(std::size_t i, Reg r) {
    COORD_ASSERT(i <= size_, "registration index out of range");
    if (size_ == 0) {
      word_ = r.watcher;
      bits_ = r.bits;
      size_ = 1;
      return;
    }
    if (size_ == 1) {
      Reg only{word_, bits_};
      Reg* h = allocate(kFirstHeapLog2);
      h[i == 0 ? 1 : 0] = only;
      h[i] = r;
      set_heap(h, kFirstHeapLog2);
      size_ = 2;
      return;
    }
    Reg* h = heap();
    if (size_ == capacity()) {
      const std::uint8_t grown = static_cast<std::uint8_t>(cap_log2_ + 1);
      Reg* g = allocate(grown);
      std::memcpy(static_cast<void*>(g), h, size_ * sizeof(Reg));
      std::free(h);
      set_heap(g, grown);
      h = g;
    }
    std::memmove(static_cast<void*>(h + i + 1), h + i, (size_ - i) * sizeof(Reg));
    h[i] = r;
    ++size_;
  }

  void erase(std::size_t i) {
    COORD_ASSERT(i < size_, "registration index out of range");
    if (size_ == 1) {
      size_ = 0;
      return;
    }
    Reg* h = heap();
    if (size_ == 2) {
      Reg keep = h[i == 0 ? 1 : 0];
      std::free(h);
      word_ = keep.watcher;
      bits_ = keep.bits;
      size_ = 1;
      return;
    }
    std::memmove(static_cast<void*>(h + i), h + i + 1, (size_ - i - 1) * sizeof(Reg));
    --size_;
    // Give back most of a list that has emptied out.
    if (cap_log2_ > kFirstHeapLog2 && size_ * 4 <= capacity()) {
      const std::uint8_t shrunk = static_cast<std::uint8_t>(cap_log2_ - 1);
      Reg* s = allocate(shrunk);
      std::memcpy(static_cast<void*>(s), h, size_ * sizeof(Reg));
      std::free(h);
      set_heap(s, shrunk);
    }
  }

 private:
  static constexpr std::uint8_t kFirstHeapLog2 = 2;  // room for 4

  std::size_t capacity() const { return std::size_t{1} << cap_log2_; }
  Reg* heap() const { return reinterpret_cast<Reg*>(static_cast<std::uintptr_t>(word_)); }
  void set_heap(Reg* h, std::uint8_t cap_log2) {
    word_ = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(h));
    cap_log2_ = cap_log2;
  }
  static Reg* allocate(std::uint8_t cap_log2) {
    void* p = std::malloc((std::size_t{1} << cap_log2) * sizeof(Reg));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<Reg*>(p);
  }
  void release() {
    if (size_ > 1) std::free(heap());
    size_ = 0;
  }

  // size_ 1: the one registration's watcher; size_ > 1: the heap array.
  std::uint64_t word_ = 0;
  std::uint32_t size_ = 0;
  std::uint8_t bits_ = 0;      // the inline registration's bits
  std::uint8_t cap_log2_ = 0;  // the heap array's capacity
  std::uint16_t spare_ = 0;
};
static_assert(sizeof(RegList) == 16, "one registration per path must stay inline and small");
static_assert(sizeof(std::uintptr_t) <= sizeof(std::uint64_t));

// A watched path: its registrations and its bytes, in one block from
// WatchedPath::make. The bytes start right after `len`, in what would be
// the struct's tail padding.
struct WatchedPath {
  RegList regs;  // regs.spare(): the low 16 bits of the path's hash32
  std::uint32_t len = 0;

  static constexpr std::size_t kHeadBytes = sizeof(RegList) + sizeof(std::uint32_t);

  const char* bytes() const { return reinterpret_cast<const char*>(this) + kHeadBytes; }
  std::string_view path() const { return {bytes(), len}; }
  static WatchedPath* make(std::string_view path, std::uint32_t hash32) {
    void* p = std::malloc(std::max(sizeof(WatchedPath), kHeadBytes + path.size()));
    if (p == nullptr) throw std::bad_alloc();
    auto* e = new (p) WatchedPath();
    e->len = static_cast<std::uint32_t>(path.size());
    e->regs.set_spare(static_cast<std::uint16_t>(hash32));
    if (!path.empty()) std::memcpy(static_cast<char*>(p) + kHeadBytes, path.data(), path.size());
    return e;
  }
  static void destroy(WatchedPath* e) {
    e->~WatchedPath();
    std::free(e);
  }
};
static_assert(offsetof(WatchedPath, len) + sizeof(std::uint32_t) == WatchedPath::kHeadBytes,
              "a watched path's bytes follow its length");

// The watched paths by path. A slot is 0 (free) or an entry's pointer with
// the high 16 bits of its path's hash32 above it; the entry keeps the low
// 16, so the table knows every member's full hash (for its home slot when
// it moves) without hashing its path again.
class PathTable {
 public:
  PathTable() = default;
  PathTable(const PathTable&) = delete;
  PathTable& operator=(const PathTable&) = delete;
  ~PathTable() {
    for (std::uint64_t s : slots_) {
      if (s != 0) WatchedPath::destroy(entry_of(s));
    }
  }

  static std::uint32_t hash32(std::string_view path) {
    const std::uint64_t h = hash_str(path);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return slots_.size(); }

  WatchedPath* find(std::string_view path) const {
    if (size_ == 0) return nullptr;
    const std::uint32_t h = hash32(path);
    const std::uint64_t tag = tag_of(h);
    const auto lo = static_cast<std::uint16_t>(h);
    for (std::size_t i = h & mask();; i = (i + 1) & mask()) {
      const std::uint64_t s = slots_[i];
      if (s == 0) return nullptr;
      if ((s & ~kPtrMask) != tag) continue;
      WatchedPath* e = entry_of(s);
      if (e->regs.spare() == lo && e->path() == path) return e;
    }
  }

  // A new, empty entry for `path`, which must be absent.
  WatchedPath* insert(std::string_view path) {
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum) {
      rehash(slots_.empty() ? kMinSlots : slots_.size() * 2);
    }
    const std::uint32_t h = hash32(path);
    WatchedPath* e = WatchedPath::make(path, h);
    place(e, h);
    ++size_;
    return e;
  }

  // Removes and frees `e`, a member.
  void erase(WatchedPath* e) {
    std::size_t i = hash32(e->path()) & mask();
    while (entry_of(slots_[i]) != e) {
      COORD_ASSERT(slots_[i] != 0, "path table: erasing a path it does not hold");
      i = (i + 1) & mask();
    }
    // Backward shift: move up every later member of the run whose home
    // does not lie between the hole and it, so no probe meets a gap.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask(); slots_[j] != 0; j = (j + 1) & mask()) {
      const std::size_t home = home_of_slot(slots_[j]);
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = 0;
    --size_;
    WatchedPath::destroy(e);
    if (size_ == 0) {
      std::vector<std::uint64_t>().swap(slots_);
    } else if (slots_.size() > kMinSlots && size_ * 8 < slots_.size()) {
      rehash(slots_.size() / 2);
    }
  }

  // Every entry once, in no particular order, until fn returns false.
  template <typename Fn>
  bool visit(Fn&& fn) const {
    for (std::uint64_t s : slots_) {
      if (s != 0 && !fn(entry_of(s))) return false;
    }
    return true;
  }

 private:
  static constexpr std::size_t kMinSlots = 8;
  static constexpr std::size_t kLoadNum = 7;  // at most 7/8 full, as PointerSet
  static constexpr std::size_t kLoadDen = 8;
  static constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;

  static std::uint64_t tag_of(std::uint32_t h) { return static_cast<std::uint64_t>(h >> 16) << 48; }
  static WatchedPath* entry_of(std::uint64_t s) {
    return reinterpret_cast<WatchedPath*>(s & kPtrMask);
  }
  static std::uint32_t hash_of_slot(std::uint64_t s) {
    return static_cast<std::uint32_t>((s >> 48) << 16) | entry_of(s)->regs.spare();
  }
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home_of_slot(std::uint64_t s) const { return hash_of_slot(s) & mask(); }

  void place(WatchedPath* e, std::uint32_t h) {
    const auto p = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(e));
    COORD_ASSERT((p & ~kPtrMask) == 0, "pointer above 48 bits");
    std::size_t i = h & mask();
    while (slots_[i] != 0)
      i = (i + 1) & mask();
    slots_[i] = p | tag_of(h);
  }
  void rehash(std::size_t capacity) {
    COORD_ASSERT(std::has_single_bit(capacity) && capacity * kLoadNum >= size_ * kLoadDen,
                 "path table capacity too small");
    std::vector<std::uint64_t> old(capacity, 0);
    old.swap(slots_);
    for (std::uint64_t s : old) {
      if (s != 0) place(entry_of(s), hash_of_slot(s));
    }
  }

  std::vector<std::uint64_t> slots_;  // the size a power of two, or 0 when empty
  std::size_t size_ = 0;
};

template <typename T>
class PointerSet {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // False if k was already a member.
  bool insert(T* k) {
    COORD_ASSERT(k != nullptr, "null key");
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum) rehash(grown_capacity());
    std::size_t i = home(k);
    while (slots_[i] != nullptr) {
      if (slots_[i] == k) return false;
      i = (i + 1) & mask();
    }
    slots_[i] = k;
    ++size_;
    return true;
  }

  // False if k was not a member.
  bool erase(T* k) {
    if (size_ == 0) return false;
    std::size_t i = home(k);
    while (slots_[i] != k) {
      if (slots_[i] == nullptr) return false;
      i = (i + 1) & mask();
    }
    // Backward shift: move up every later member of the run whose home
    // does not lie between the hole and it, so no probe meets a gap.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask(); slots_[j] != nullptr; j = (j + 1) & mask()) {
      const std::size_t h = home(slots_[j]);
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = nullptr;
    --size_;
    if (size_ == 0) {
      std::vector<T*>().swap(slots_);
    } else if (slots_.size() > kMinSlots && size_ * 8 < slots_.size()) {
      rehash(slots_.size() / 2);
    }
    return true;
  }

  bool contains(T* k) const {
    if (size_ == 0) return false;
    for (std::size_t i = home(k); slots_[i] != nullptr; i = (i + 1) & mask()) {
      if (slots_[i] == k) return true;
    }
    return false;
  }

  // Every member once, in no particular order, until fn returns false.
  template <typename Fn>
  bool visit(Fn&& fn) const {
    for (T* k : slots_) {
      if (k != nullptr && !fn(k)) return false;
    }
    return true;
  }

 private:
  static constexpr std::size_t kMinSlots = 4;
  // The most a table is filled: 7/8, linear probing's runs stay short at
  // that with a well-mixed hash.
  static constexpr std::size_t kLoadNum = 7;
  static constexpr std::size_t kLoadDen = 8;

  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(T* k) const {
    return static_cast<std::size_t>(
               mix64(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(k)))) &
           mask();
  }
  std::size_t grown_capacity() const { return slots_.empty() ? kMinSlots : slots_.size() * 2; }
  void rehash(std::size_t capacity) {
    COORD_ASSERT(std::has_single_bit(capacity) && capacity * kLoadNum >= size_ * kLoadDen,
                 "pointer set capacity too small");
    std::vector<T*> old(capacity, nullptr);
    old.swap(slots_);
    for (T* k : old) {
      if (k == nullptr) continue;
      std::size_t i = home(k);
      while (slots_[i] != nullptr)
        i = (i + 1) & mask();
      slots_[i] = k;
    }
  }

  std::vector<T*> slots_;  // nullptr: free; the size a power of two
  std::size_t size_ = 0;
};

}  // namespace coord::znode::detail
