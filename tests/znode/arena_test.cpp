// The data tree's arena (znode/src/arena.h): blocks of every size are
// distinct, aligned and keep their bytes while other blocks come and go;
// big buffers arrive zeroed and aligned. Under AddressSanitizer the arena
// forwards to the heap, and these tests then check that path instead.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "arena.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"

namespace coord::znode::detail {
namespace {

struct Block {
  unsigned char* p;
  std::size_t bytes;
  unsigned char fill;
};

void fill(const Block& b) {
  std::memset(b.p, b.fill, b.bytes);
}

bool intact(const Block& b) {
  for (std::size_t i = 0; i < b.bytes; ++i) {
    if (b.p[i] != b.fill) return false;
  }
  return true;
}

TEST(ArenaTest, BlocksKeepTheirBytesThroughChurn) {
  Arena arena;
  Random rnd(11);
  std::vector<Block> live;
  // Enough bytes to span several chunks, sizes on both sides of the
  // arena's block limit.
  for (int step = 0; step < 60000; ++step) {
    if (!live.empty() && rnd.below(3) == 0) {
      const std::size_t k = rnd.below(live.size());
      ASSERT_TRUE(intact(live[k])) << "block of " << live[k].bytes << " bytes overwritten";
      arena.deallocate(live[k].p, live[k].bytes);
      live[k] = live.back();
      live.pop_back();
      continue;
    }
    const std::size_t bytes = 1 + rnd.below(limits::znode_arena_block_bytes_max + 200);
    Block b{static_cast<unsigned char*>(arena.allocate(bytes)), bytes,
            static_cast<unsigned char>(step)};
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(b.p) % 8, 0u) << bytes << " bytes";
    fill(b);
    live.push_back(b);
  }
  for (const Block& b : live) {
    ASSERT_TRUE(intact(b)) << "block of " << b.bytes << " bytes overwritten";
    arena.deallocate(b.p, b.bytes);
  }
}

TEST(ArenaTest, AFreedBlockServesTheNextOfItsSize) {
  Arena arena;
  void* a = arena.allocate(100);
  void* b = arena.allocate(100);
  EXPECT_NE(a, b);
  arena.deallocate(a, 100);
  void* c = arena.allocate(97);  // same 8-byte class as 100 bytes
#if defined(__SANITIZE_ADDRESS__)
  (void)c;  // the heap decides
#else
  EXPECT_EQ(c, a);
  EXPECT_EQ(arena.chunk_bytes(), limits::znode_arena_chunk_bytes);
#endif
  arena.deallocate(b, 100);
  arena.deallocate(c, 97);
}

TEST(ArenaTest, BigBuffersAreZeroedAndAligned) {
  for (std::size_t bytes : {std::size_t{64}, std::size_t{4096}, limits::znode_arena_chunk_bytes,
                            3 * limits::znode_arena_chunk_bytes + 8}) {
    auto* p = static_cast<unsigned char*>(allocate_big(bytes));
    const std::uintptr_t align = bytes >= limits::znode_arena_chunk_bytes
                                     ? limits::znode_arena_chunk_bytes
                                     : std::uintptr_t{64};
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << bytes;
    bool zero = true;
    for (std::size_t i = 0; i < bytes; ++i)
      zero = zero && p[i] == 0;
    EXPECT_TRUE(zero) << bytes;
    free_big(p);
  }
}

}  // namespace
}  // namespace coord::znode::detail
