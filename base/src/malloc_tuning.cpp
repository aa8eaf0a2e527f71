#include "coord/base/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace coord {

void tune_malloc_or_restart(char** argv) {
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  const std::string tunables =
      "glibc.malloc.tcache_count=" + std::to_string(malloc_cache_blocks_per_size);
  if (::setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  // /proc/self/exe is this very binary, wherever argv[0] points.
  ::execv("/proc/self/exe", argv);
  // Not executed (no /proc): run on as started, and leave the environment
  // as it was for whatever this program starts.
  ::unsetenv("GLIBC_TUNABLES");
}

}  // namespace coord
