// The allocator settings coord's programs run with.
//
// glibc keeps, per thread, a small cache of freed blocks of each size (7
// by default) that serves the next allocations without a lock or a search.
// coordd works in batches: it decodes, proposes and answers dozens of
// requests at a time, and frees them together, so with 7 blocks per size
// most frees and allocations miss the cache and take the arena's slower
// paths (about a tenth of a setData's instructions). glibc reads the
// cache's size only from the environment at start, so a program that
// wants another one starts itself anew with it set.
#pragma once

namespace coord {

// Freed blocks of one size a thread keeps for reuse: the batches of a
// busy server fit (a few hundred requests in flight), and an idle one
// holds at most this many of each size it used, per thread.
inline constexpr int malloc_cache_blocks_per_size = 256;

// Call first thing in main(). When GLIBC_TUNABLES is not set at all, sets
// it to the cache size above and executes the program again (same pid,
// same arguments); it does not return then. With GLIBC_TUNABLES set by
// anyone (the operator, a profiler's wrapper, the first start), or when
// the program cannot be executed again, it returns and the program runs
// with the allocator as it is.
void tune_malloc_or_restart(char** argv);

}  // namespace coord
