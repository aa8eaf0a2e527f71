#include "arena.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "coord/base/assert.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define COORD_ZNODE_ARENA_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COORD_ZNODE_ARENA_BYPASS 1
#endif
#endif

namespace coord::znode::detail {
namespace {

constexpr std::size_t kHugeBytes = limits::znode_arena_chunk_bytes;
static_assert((kHugeBytes & (kHugeBytes - 1)) == 0, "chunk size must be a power of two");

void* aligned_block(std::size_t alignment, std::size_t bytes) {
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  COORD_ASSERT(p != nullptr, "out of memory (", rounded, " bytes)");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: without transparent huge pages the memory stays on small
  // pages and everything works the same, just with more TLB misses.
  if (alignment == kHugeBytes) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

Arena::~Arena() {
  for (void* c : chunks_)
    std::free(c);
}

void Arena::new_chunk() {
  // The unused tail of the old chunk joins the free list of its size.
  const std::size_t tail = static_cast<std::size_t>(end_ - next_);
  if (tail >= kGrainBytes) {
    const std::size_t c = tail / kGrainBytes;
    free_[c] = new (next_) FreeBlock{free_[c]};
  }
  chunks_.push_back(aligned_block(kHugeBytes, kHugeBytes));
  next_ = static_cast<char*>(chunks_.back());
  end_ = next_ + kHugeBytes;
}

void* Arena::allocate(std::size_t bytes) {
  COORD_ASSERT(bytes > 0, "empty arena block");
#ifdef COORD_ZNODE_ARENA_BYPASS
  return ::operator new(bytes);
#else
  if (bytes > limits::znode_arena_block_bytes_max) return ::operator new(bytes);
  const std::size_t c = class_of(bytes);
  if (FreeBlock* b = free_[c]) {
    free_[c] = b->next;
    return b;
  }
  const std::size_t rounded = c * kGrainBytes;
  if (static_cast<std::size_t>(end_ - next_) < rounded) new_chunk();
  void* p = next_;
  next_ += rounded;
  return p;
#endif
}

void Arena::deallocate(void* p, std::size_t bytes) {
#ifdef COORD_ZNODE_ARENA_BYPASS
  (void)bytes;
  ::operator delete(p);
#else
  if (bytes > limits::znode_arena_block_bytes_max) {
    ::operator delete(p);
    return;
  }
  const std::size_t c = class_of(bytes);
  free_[c] = new (p) FreeBlock{free_[c]};
#endif
}

void* allocate_big(std::size_t bytes) {
  void* p = aligned_block(bytes >= kHugeBytes ? kHugeBytes : 64, bytes);
  std::memset(p, 0, bytes);
  return p;
}

void free_big(void* p) {
  std::free(p);
}

}  // namespace coord::znode::detail
