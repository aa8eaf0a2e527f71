// A stand-in for libFuzzer where clang is not used: feeds the target
// LLVMFuzzerTestOneInput with a fixed number of random inputs and mutations
// of the corpus files named on the command line, from a fixed seed, so a CI
// run is repeatable. A crash or sanitizer abort fails the test; the input
// that caused it is written to crash-input.bin in the working directory so
// it can be replayed by passing that file as the corpus with --runs=1.
//
//   target [--runs=N] [--seed=S] [--max-len=B] [corpus files or dirs...]

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "coord/base/random.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

void mutate(coord::Random& rng, Bytes& b, std::size_t max_len) {
  const int steps = 1 + static_cast<int>(rng.below(4));
  for (int s = 0; s < steps; ++s) {
    switch (rng.below(6)) {
      case 0:  // flip a bit
        if (!b.empty()) b[rng.below(b.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
        break;
      case 1:  // set a byte to an interesting value
        if (!b.empty()) {
          static constexpr std::uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe};
          b[rng.below(b.size())] = kInteresting[rng.below(sizeof kInteresting)];
        }
        break;
      case 2:  // truncate
        if (!b.empty()) b.resize(rng.below(b.size()));
        break;
      case 3:  // insert random bytes
        if (b.size() < max_len) {
          const std::size_t n = 1 + rng.below(8);
          const std::size_t at = b.empty() ? 0 : rng.below(b.size() + 1);
          for (std::size_t k = 0; k < n && b.size() < max_len; ++k) {
            b.insert(b.begin() + static_cast<std::ptrdiff_t>(at),
                     static_cast<std::uint8_t>(rng.below(256)));
          }
        }
        break;
      case 4:  // overwrite a 4-byte big-endian length with an edge value
        if (b.size() >= 4) {
          static constexpr std::uint32_t kLengths[] = {0,           1,         0xffffffffu,
                                                       0x7fffffffu, 0x100000u, 16};
          const std::uint32_t v = kLengths[rng.below(std::size(kLengths))];
          const std::size_t at = rng.below(b.size() - 3);
          for (int k = 0; k < 4; ++k)
            b[at + k] = static_cast<std::uint8_t>(v >> (24 - 8 * k));
        }
        break;
      default:  // duplicate a slice
        if (!b.empty() && b.size() < max_len) {
          const std::size_t from = rng.below(b.size());
          const std::size_t len = std::min(b.size() - from, max_len - b.size());
          Bytes slice(b.begin() + static_cast<std::ptrdiff_t>(from),
                      b.begin() + static_cast<std::ptrdiff_t>(from + len));
          b.insert(b.end(), slice.begin(), slice.end());
        }
        break;
    }
  }
}

const Bytes* g_current = nullptr;

// Async-signal-safe: only open/write/close, then the default action.
void save_current_input(int sig) {
  if (g_current != nullptr) {
    const int fd = ::open("crash-input.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      [[maybe_unused]] auto n = ::write(fd, g_current->data(), g_current->size());
      ::close(fd);
    }
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void add_file(const std::filesystem::path& p, std::vector<Bytes>& corpus) {
  std::ifstream in(p, std::ios::binary);
  corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = 10000;
  std::uint64_t seed = 1;
  std::size_t max_len = 4096;
  std::vector<Bytes> corpus;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::strtoull(a.c_str() + 7, nullptr, 10);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 7, nullptr, 10);
    } else if (a.rfind("--max-len=", 0) == 0) {
      max_len = std::strtoull(a.c_str() + 10, nullptr, 10);
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a))
        add_file(e.path(), corpus);
    } else {
      add_file(a, corpus);
    }
  }

  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    std::signal(sig, save_current_input);
  coord::Random rng(seed);
  for (std::uint64_t n = 0; n < runs; ++n) {
    Bytes input;
    if (!corpus.empty() && rng.chance(3, 4)) {
      input = corpus[rng.below(corpus.size())];
      mutate(rng, input, max_len);
    } else {
      input.resize(rng.below(std::min<std::size_t>(max_len, 256) + 1));
      for (auto& byte : input)
        byte = static_cast<std::uint8_t>(rng.below(256));
    }
    g_current = &input;
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::printf("fuzz driver: %llu inputs from seed %llu, no crash\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(seed));
  return 0;
}
