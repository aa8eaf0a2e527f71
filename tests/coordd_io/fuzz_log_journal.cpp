// Fuzz target for the log's journal as recovery reads it back from disk:
// whatever the file holds, recover() either fails with an error or hands
// over records numbered in sequence whose entries lie inside their bytes,
// and never crashes. The input is taken as records whose checksums are
// made right here (mutations would otherwise stop at the CRC), followed by
// raw bytes; the first byte picks the number of the last record applied.

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "coord/base/bytes.h"
#include "coord/base/checksum.h"
#include "coord/io/log_journal.h"

namespace {

constexpr std::uint64_t journal_id = 0x0123456789abcdefULL;
constexpr std::size_t records_max = 8;

// This process's journal file, in a directory removed at exit.
struct JournalDir {
  std::string path;
  JournalDir() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "coord-fuzz-journal-XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~JournalDir() { std::filesystem::remove_all(path); }
};

const std::string& journal_path() {
  static const JournalDir dir;
  static const std::string path = dir.path + "/journal";
  return path;
}

std::uint32_t checksum(std::string_view record) {
  std::string id;
  coord::put_be64(id, journal_id);
  return coord::crc32c_extend(coord::crc32c(id), record.data() + 4, record.size() - 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using coord::io::LogJournal;
  if (size == 0) return 0;
  const std::uint64_t applied = data[0] % 4;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string file;
  // Records: a 2-byte body length, then the body; each gets a header with
  // the next number (sometimes skipping one) and its checksum.
  std::uint64_t seq = applied;
  for (std::size_t i = 0; i < records_max && in.size() >= 2; ++i) {
    const std::size_t len = std::min<std::size_t>(coord::get_be(in.data(), 2) % 512, in.size() - 2);
    const std::string_view body = in.substr(2, len);
    in.remove_prefix(2 + len);
    seq += (len % 7 == 6) ? 2 : 1;
    std::string rec;
    coord::put_be32(rec, 0);
    coord::put_be32(rec, static_cast<std::uint32_t>(body.size()));
    coord::put_be64(rec, seq);
    rec.append(body);
    const std::uint32_t crc = checksum(rec);
    for (int b = 0; b < 4; ++b)
      rec[static_cast<std::size_t>(b)] = static_cast<char>(crc >> (24 - 8 * b));
    file += rec;
  }
  file.append(in);
  std::ofstream(journal_path(), std::ios::binary | std::ios::trunc) << file;

  auto journal = LogJournal::open(journal_path(), journal_id);
  if (!journal.ok()) std::abort();
  std::uint64_t last = applied;
  (void)(*journal)->recover(
      applied, [&](const coord::io::JournalRecord& r, std::uint64_t, std::string_view bytes) {
        if (r.seq != last + 1) std::abort();
        last = r.seq;
        for (const coord::io::LogEntryRef& e : r.entries) {
          if (e.data.data() < bytes.data() ||
              e.data.data() + e.data.size() > bytes.data() + bytes.size()) {
            std::abort();
          }
        }
        return coord::Status();
      });
  // Straight into the decoder as well, checksum or not.
  (void)LogJournal::decode(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
