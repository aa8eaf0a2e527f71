// Memory for the data tree's nodes and small data buffers, and big zeroed
// buffers for its index, laid out for random access over a large tree.
//
// A tree of a million znodes spans about 300 MB; looked up in random order,
// every access misses the TLB when that memory sits on 4 KiB pages. The
// arena therefore takes memory in aligned chunks of znode_arena_chunk_bytes
// that the kernel may back with transparent huge pages (madvise
// MADV_HUGEPAGE), and carves blocks of up to znode_arena_block_bytes_max
// from them, rounded to 8 bytes and without a per-block header (the owner
// passes the size back on release). Freed blocks wait on a free list per
// size for the next block of the same size; chunks go back to the system
// only when the arena is destroyed.
//
// Built with AddressSanitizer, the arena hands every block to the general
// heap instead, so that use-after-free and overflows in the tree stay
// visible to the sanitizer.
//
// Thread safety: none; one arena belongs to one DataTree.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "coord/base/limits.h"

namespace coord::znode::detail {

class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A block of at least `bytes` (> 0), 8-byte aligned.
  void* allocate(std::size_t bytes);
  // Releases a block from allocate() with the same `bytes`.
  void deallocate(void* p, std::size_t bytes);

  // Bytes taken from the system in chunks.
  std::size_t chunk_bytes() const { return chunks_.size() * limits::znode_arena_chunk_bytes; }

 private:
  static constexpr std::size_t kGrainBytes = 8;
  static constexpr std::size_t kClasses = limits::znode_arena_block_bytes_max / kGrainBytes + 1;
  struct FreeBlock {
    FreeBlock* next;
  };
  static constexpr std::size_t class_of(std::size_t bytes) {
    return (bytes + kGrainBytes - 1) / kGrainBytes;
  }
  void new_chunk();

  std::array<FreeBlock*, kClasses> free_{};
  std::vector<void*> chunks_;
  char* next_ = nullptr;  // unused tail of the newest chunk
  char* end_ = nullptr;
};

// A zeroed buffer of `bytes`, aligned to 64 bytes, or for big buffers to the
// huge page size and offered as huge pages. Release with free_big().
void* allocate_big(std::size_t bytes);
void free_big(void* p);

}  // namespace coord::znode::detail
