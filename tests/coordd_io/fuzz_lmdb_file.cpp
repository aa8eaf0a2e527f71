// Fuzz target for the start-up check of the log's LMDB file: any bytes
// either fail the check with an error naming the file, or pass it, and
// then LMDB itself opens the file and the log store reads every entry
// without crashing (no read past the end of the map: the check exists so
// that a damaged file is an error, never a SIGBUS).

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "coord/io/lmdb_check.h"
#include "coord/io/log_store.h"

namespace {

namespace fs = std::filesystem;

// Where an image that passed is written for LMDB; removed at exit.
struct Scratch {
  std::string dir;
  Scratch() {
    std::string templ = (fs::temp_directory_path() / "coord-fuzz-lmdb-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    dir = templ;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const std::string& scratch_dir() {
  static const Scratch scratch;
  return scratch.dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view image(reinterpret_cast<const char*>(data), size);
  const coord::io::LmdbImageReader read = [&](std::uint64_t offset, std::size_t len,
                                              std::string& out) {
    if (offset > image.size() || len > image.size() - offset) return false;
    out.assign(image.substr(offset, len));
    return true;
  };
  coord::Status st = coord::io::check_lmdb_image("fuzz.mdb", image.size(), read);
  if (!st.ok()) {
    if (st.message().rfind("fuzz.mdb: ", 0) != 0) std::abort();
    return 0;
  }
  if (size == 0) return 0;
  // Passed: what LMDB maps must now stay inside the file.
  const std::string& dir = scratch_dir();
  fs::remove(fs::path(dir) / "lock.mdb");
  std::ofstream(fs::path(dir) / "data.mdb", std::ios::binary | std::ios::trunc) << image;
  coord::io::LmdbLogStore::Options options;
  options.map_bytes = std::size_t{64} << 20;
  options.sync = false;
  auto store = coord::io::LmdbLogStore::open(dir, options);
  if (store.ok()) {
    (void)(*store)->entries((*store)->first_index(), (*store)->last_index().next(),
                            std::size_t{1} << 30);
  }
  return 0;
}
