// The LMDB log store against a real LMDB in a temporary directory: what is
// written survives reopening, a conflicting suffix is replaced, a snapshot
// drops the prefix, corruption and a full map are reported as errors, and a
// process killed with SIGKILL loses no write it had been told was durable.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "coord/io/log_records.h"
#include "coord/io/log_store.h"
#include "coord/testing/temp_dir.h"

namespace coord::io {
namespace {

using coord::testing::TempDir;

LogRecord rec(std::uint64_t index, std::uint64_t term, std::string data = "") {
  if (data.empty()) data = "entry-" + std::to_string(index) + "-term-" + std::to_string(term);
  return LogRecord{LogIndex(index), Term(term), 1, std::move(data)};
}

LogWrite append(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  LogWrite w;
  for (std::uint64_t i = from; i <= to; ++i)
    w.entries.push_back(rec(i, term));
  return w;
}

std::unique_ptr<LmdbLogStore> open_ok(const std::string& dir,
                                      LmdbLogStore::Options opts = LmdbLogStore::Options{}) {
  auto s = LmdbLogStore::open(dir, opts);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Entries are sealed straight into their LMDB pages; the bytes are those
// of the record format, whatever the data's size (empty, inline in a leaf
// page, or on overflow pages).
TEST(LmdbLogStore, ARecordSealedInPlaceHasTheFormatsBytes) {
  for (const std::string& data : {std::string(), std::string("x"), std::string(5'000, 'q')}) {
    const LogRecord r{LogIndex(7), Term(0x0102030405060708), 3, data};
    const std::string key = records::index_key(r.index);
    std::string in_place(records::sealed_entry_bytes(data.size()), '\0');
    records::seal_entry_at(in_place.data(), key, r.term, r.kind, r.data);
    EXPECT_EQ(in_place, records::seal(key, records::entry_body(r)));
    auto back = records::decode_entry(key, in_place);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r);
  }
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  const std::string big(9'000, 'b');
  const std::vector<LogEntryRef> refs{{LogIndex(1), Term(2), 0, "small"},
                                      {LogIndex(2), Term(2), 1, big},
                                      {LogIndex(3), Term(2), 0, ""}};
  ASSERT_TRUE(store->write(LogWrite{}, refs).ok());
  auto got = store->entries(LogIndex(1), LogIndex(4), std::size_t{1} << 20);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].data, "small");
  EXPECT_EQ((*got)[1].data, big);
  EXPECT_EQ((*got)[1].kind, 1);
  EXPECT_EQ((*got)[2].data, "");
}

TEST(LmdbLogStore, StartsEmpty) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->first_index(), LogIndex(1));
  EXPECT_EQ(store->last_index(), LogIndex(0));
  EXPECT_FALSE(store->hard_state().has_value());
  EXPECT_FALSE(store->snapshot_meta().has_value());
  EXPECT_EQ(store->entry(LogIndex(1)).code(), ErrorCode::NoNode);
}

TEST(LmdbLogStore, EntriesAndHardStateSurviveReopen) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    LogWrite w = append(1, 100, 3);
    w.hard_state = HardState{Term(3), NodeId(2), LogIndex(90)};
    ASSERT_TRUE(store->write(w).ok());
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->first_index(), LogIndex(1));
  EXPECT_EQ(store->last_index(), LogIndex(100));
  ASSERT_TRUE(store->hard_state().has_value());
  EXPECT_EQ(*store->hard_state(), (HardState{Term(3), NodeId(2), LogIndex(90)}));
  for (std::uint64_t i = 1; i <= 100; ++i) {
    auto e = store->entry(LogIndex(i));
    ASSERT_TRUE(e.ok()) << i << ": " << e.status();
    EXPECT_EQ(*e, rec(i, 3));
  }
}

TEST(LmdbLogStore, EntriesRangeStopsAtByteBudgetButReturnsAtLeastOne) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store->write(append(1, 10, 1)).ok());
  auto all = store->entries(LogIndex(3), LogIndex(8), 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().index, LogIndex(3));
  EXPECT_EQ(all->back().index, LogIndex(7));
  auto one = store->entries(LogIndex(3), LogIndex(8), 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto none = store->entries(LogIndex(11), LogIndex(20), 1 << 20);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(LmdbLogStore, ConflictingSuffixIsReplaced) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_TRUE(store->write(append(1, 100, 1)).ok());
    ASSERT_TRUE(store->write(append(50, 60, 2)).ok());
    EXPECT_EQ(store->last_index(), LogIndex(60));
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->last_index(), LogIndex(60));
  EXPECT_EQ(store->entry(LogIndex(49))->term, Term(1));
  EXPECT_EQ(store->entry(LogIndex(50))->term, Term(2));
  EXPECT_EQ(store->entry(LogIndex(61)).code(), ErrorCode::NoNode);
}

TEST(LmdbLogStore, SnapshotDropsTheCoveredPrefix) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_TRUE(store->write(append(1, 100, 1)).ok());
    LogWrite w;
    w.snapshot = SnapshotMeta{LogIndex(40), Term(1), "members:1,2,3"};
    ASSERT_TRUE(store->write(w).ok());
    EXPECT_EQ(store->first_index(), LogIndex(41));
    EXPECT_TRUE(store->compaction_pending());
    auto more = store->compact_covered(1000, SIZE_MAX);
    ASSERT_TRUE(more.ok()) << more.status();
    EXPECT_FALSE(*more);
    EXPECT_FALSE(store->compaction_pending());
  }
  auto store = open_ok(dir.path());
  EXPECT_FALSE(store->compaction_pending());
  EXPECT_EQ(store->first_index(), LogIndex(41));
  EXPECT_EQ(store->last_index(), LogIndex(100));
  ASSERT_TRUE(store->snapshot_meta().has_value());
  EXPECT_EQ(store->snapshot_meta()->config, "members:1,2,3");
  EXPECT_EQ(store->entry(LogIndex(40)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(41)).ok());
}

// A snapshot's record leaves the entries it covers stored; compaction drops
// them oldest first in chunks bounded by count and bytes, one transaction
// each. A stop between chunks reopens with the log starting after the
// snapshot and the rest still to drop.
TEST(LmdbLogStore, CoveredEntriesAreDroppedInBoundedChunksAcrossAReopen) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_TRUE(store->write(append(1, 100, 1)).ok());
    LogWrite w;
    w.snapshot = SnapshotMeta{LogIndex(60), Term(1), ""};
    ASSERT_TRUE(store->write(w).ok());
    EXPECT_EQ(store->first_index(), LogIndex(61));
    EXPECT_EQ(store->last_index(), LogIndex(100));
    EXPECT_TRUE(store->compaction_pending());
    EXPECT_TRUE(store->entry(LogIndex(1)).ok());
    auto more = store->compact_covered(25, SIZE_MAX);
    ASSERT_TRUE(more.ok()) << more.status();
    EXPECT_TRUE(*more);
    EXPECT_EQ(store->entry(LogIndex(25)).code(), ErrorCode::NoNode);
    EXPECT_TRUE(store->entry(LogIndex(26)).ok());
  }
  auto store = open_ok(dir.path());
  EXPECT_TRUE(store->compaction_pending());
  EXPECT_EQ(store->first_index(), LogIndex(61));
  EXPECT_EQ(store->last_index(), LogIndex(100));
  // Appends go on between chunks.
  ASSERT_TRUE(store->write(append(101, 102, 2)).ok());
  auto more = store->compact_covered(25, SIZE_MAX);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_EQ(store->entry(LogIndex(50)).code(), ErrorCode::NoNode);
  more = store->compact_covered(25, SIZE_MAX);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more) << "ten entries were left";
  EXPECT_FALSE(store->compaction_pending());
  EXPECT_EQ(store->entry(LogIndex(60)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(61)).ok());
  store.reset();
  store = open_ok(dir.path());
  EXPECT_FALSE(store->compaction_pending());
  EXPECT_EQ(store->first_index(), LogIndex(61));
  EXPECT_EQ(store->last_index(), LogIndex(102));
}

TEST(LmdbLogStore, ACompactionChunkStopsAtItsByteBudgetButDropsOneEntryAtLeast) {
  TempDir dir;
  auto store = open_ok(dir.path());
  LogWrite w;
  for (std::uint64_t i = 1; i <= 10; ++i)
    w.entries.push_back(rec(i, 1, std::string(1000, 'x')));
  ASSERT_TRUE(store->write(w).ok());
  LogWrite snap;
  snap.snapshot = SnapshotMeta{LogIndex(10), Term(1), ""};
  ASSERT_TRUE(store->write(snap).ok());
  const std::size_t record = records::sealed_entry_bytes(1000);
  // Three records fit in three and a half; the fourth would not.
  auto more = store->compact_covered(100, 3 * record + record / 2);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_EQ(store->entry(LogIndex(3)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(4)).ok());
  // A budget below one record still drops one.
  more = store->compact_covered(100, 1);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_EQ(store->entry(LogIndex(4)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(5)).ok());
}

// Bytes of `file` resident in this process's mappings (/proc/self/smaps).
std::size_t resident_bytes_of(const std::string& file) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  std::size_t kb = 0;
  while (std::getline(smaps, line)) {
    // A mapping's header: "start-end perms offset dev inode [path]".
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      in_file = line.size() >= file.size() && line.ends_with(file);
    } else if (in_file && line.starts_with("Rss:")) {
      kb += std::stoul(line.substr(4));
    }
  }
  return kb * 1024;
}

TEST(LmdbLogStore, ASnapshotLetsGoOfTheMapsPages) {
  TempDir dir;
  auto store = open_ok(dir.path());
  const std::string file = std::filesystem::canonical(store->file_path()).string();
  auto data = [](std::uint64_t i) { return std::string(4000, static_cast<char>('a' + i % 26)); };
  // About 16 MiB of entries from `from` on, each page of them read back
  // through the map; returns what is then resident.
  constexpr std::uint64_t count = 4000;
  auto write_and_read = [&](std::uint64_t from) {
    LogWrite w;
    for (std::uint64_t i = from; i < from + count; ++i)
      w.entries.push_back(rec(i, 1, data(i)));
    EXPECT_TRUE(store->write(w).ok());
    auto all = store->entries(LogIndex(from), LogIndex(from + count), SIZE_MAX);
    EXPECT_TRUE(all.ok() && all->size() == count);
    return resident_bytes_of(file);
  };
  std::size_t before = write_and_read(1);
  EXPECT_GT(before, std::size_t{8} << 20);
  LogWrite snap;
  snap.snapshot = SnapshotMeta{LogIndex(count - 10), Term(1), "members:1"};
  ASSERT_TRUE(store->write(snap).ok());
  // Once compaction has dropped the entries the snapshot covers.
  for (int chunks = 0; chunks < 100 && *store->compact_covered(1000, SIZE_MAX); ++chunks) {
  }
  EXPECT_FALSE(store->compaction_pending());
  EXPECT_LT(resident_bytes_of(file), std::size_t{1} << 20) << "before the snapshot: " << before;
  // What is left still reads, from the file.
  auto rest = store->entries(LogIndex(count - 9), LogIndex(count), SIZE_MAX);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 9u);
  EXPECT_EQ(rest->back().data, data(count - 1));
  // compact() lets go of them too.
  before = write_and_read(count);
  EXPECT_GT(before, std::size_t{8} << 20);
  ASSERT_TRUE(store->compact(LogIndex(2 * count - 10)).ok());
  EXPECT_LT(resident_bytes_of(file), std::size_t{1} << 20) << "before compact: " << before;
  EXPECT_EQ(store->entry(LogIndex(2 * count - 1))->data, data(2 * count - 1));
}

// A store that does not sync and releases its map every `release_bytes`;
// `file` gets the path of its data file as the process's maps name it.
std::unique_ptr<LmdbLogStore> open_releasing(const TempDir& dir, std::size_t release_bytes,
                                             std::string* file) {
  LmdbLogStore::Options opts;
  opts.sync = false;
  opts.map_release_bytes = release_bytes;
  auto store = open_ok(dir.path(), opts);
  if (store != nullptr) *file = std::filesystem::canonical(store->file_path()).string();
  return store;
}

// Appended a write at a time, as a server appends, each entry read back
// right after its write (as the replica applies and sends it), the log's
// pages stay mapped only until Options::map_release_bytes more have been
// appended; without the periodic release every page of the log would be.
TEST(LmdbLogStore, AppendsLetGoOfTheMapsPagesAsTheLogGrows) {
  auto data = [](std::uint64_t i) {
    return std::string(1000, static_cast<char>('a' + i % 26)) + std::to_string(i);
  };
  constexpr std::uint64_t count = 12000;  // about 12 MiB of entries
  auto resident_after_appends = [&](std::size_t release_bytes) -> std::size_t {
    TempDir dir;
    std::string file;
    auto store = open_releasing(dir, release_bytes, &file);
    if (store == nullptr) return 0;
    for (std::uint64_t i = 1; i <= count; ++i) {
      LogWrite w;
      w.entries.push_back(rec(i, 1, data(i)));
      auto st = store->write(w);
      auto back = store->entry(LogIndex(i));
      if (!st.ok() || !back.ok() || back->data != data(i)) {
        ADD_FAILURE() << "entry " << i << ": " << st;
        return 0;
      }
    }
    const std::size_t resident = resident_bytes_of(file);
    // Every entry still reads back, from pages faulted in again.
    auto all = store->entries(LogIndex(1), LogIndex(count + 1), SIZE_MAX);
    EXPECT_TRUE(all.ok() && all->size() == count);
    if (all.ok() && all->size() == count) {
      EXPECT_EQ(all->front().data, data(1));
      EXPECT_EQ((*all)[count / 2].data, data(count / 2 + 1));
      EXPECT_EQ(all->back().data, data(count));
    }
    return resident;
  };
  const std::size_t kept = resident_after_appends(0);
  EXPECT_GT(kept, std::size_t{8} << 20);
  const std::size_t released = resident_after_appends(std::size_t{1} << 20);
  EXPECT_LT(released, std::size_t{3} << 20) << "with no release between snapshots: " << kept;
}

// A server's writes are mostly small: an entry or a few of about a hundred
// bytes, and its hard state (the commit index). Each transaction reads the
// path down the B-trees it changes to copy it on write, pages LMDB wrote
// afresh at the last commit: these count against the release as well as
// the entries' bytes, so the map stays small however small the writes.
TEST(LmdbLogStore, SmallWritesLetGoOfTheMapsPagesToo) {
  constexpr std::uint64_t count = 20000;  // about 2.5 MiB of entries, twice
  auto resident_after_writes = [&](std::size_t release_bytes) -> std::size_t {
    TempDir dir;
    std::string file;
    auto store = open_releasing(dir, release_bytes, &file);
    if (store == nullptr) return 0;
    auto data = [](std::uint64_t i) { return std::string(100, static_cast<char>('a' + i % 26)); };
    for (std::uint64_t i = 1; i <= 2 * count; ++i) {
      LogWrite w;
      w.entries.push_back(rec(i, 1, data(i)));
      w.hard_state = HardState{Term(1), NodeId(1), LogIndex(i)};
      if (auto st = store->write(w); !st.ok()) {
        ADD_FAILURE() << "entry " << i << ": " << st;
        return 0;
      }
      // After a snapshot's compaction LMDB takes the pages it freed, all
      // over the file, for the pages each commit copies.
      if (i == count) {
        EXPECT_TRUE(store->compact(LogIndex(count - 10)).ok());
      }
    }
    EXPECT_EQ(store->entry(LogIndex(count + count / 2))->data, data(count + count / 2));
    return resident_bytes_of(file);
  };
  const std::size_t kept = resident_after_writes(0);
  EXPECT_GT(kept, std::size_t{2} << 20);
  const std::size_t released = resident_after_writes(std::size_t{1} << 20);
  EXPECT_LT(released, std::size_t{1} << 20) << "with no release between snapshots: " << kept;
}

// The replica reads entries on its own thread while the storage thread
// appends: a read that meets a page just released faults it in again and
// gets the same bytes.
TEST(LmdbLogStore, ReadsOnAnotherThreadSeeTheSameEntriesAcrossReleases) {
  TempDir dir;
  LmdbLogStore::Options opts;
  opts.sync = false;
  opts.map_release_bytes = 64 * 1024;  // a release every 16 writes or so
  auto store = open_ok(dir.path(), opts);
  ASSERT_NE(store, nullptr);
  auto data = [](std::uint64_t i) {
    return std::string(4000, static_cast<char>('a' + i % 26)) + std::to_string(i);
  };
  constexpr std::uint64_t count = 3000;
  std::atomic<std::uint64_t> written{0};
  std::atomic<bool> stop{false};
  std::uint64_t reads = 0, bad = 0;
  std::thread reader([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::uint64_t x = 88172645463325252ULL;
    for (int k = 0; k < 10'000'000 && !stop.load(); ++k) {
      if (std::chrono::steady_clock::now() > deadline) break;
      const std::uint64_t w = written.load();
      if (w == 0) {
        std::this_thread::yield();
        continue;
      }
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      // Half the reads near the tail, where the writer works, half anywhere.
      const std::uint64_t i = k % 2 == 0 ? w - x % std::min<std::uint64_t>(w, 32) : 1 + x % w;
      auto e = store->entry(LogIndex(i));
      if (!e.ok() || e->data != data(i)) ++bad;
      ++reads;
    }
  });
  for (std::uint64_t i = 1; i <= count; ++i) {
    LogWrite w;
    w.entries.push_back(rec(i, 1, data(i)));
    if (auto st = store->write(w); !st.ok()) {
      ADD_FAILURE() << "entry " << i << ": " << st;
      break;
    }
    written.store(i);
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(bad, 0u) << "of " << reads << " reads";
  EXPECT_GT(reads, 0u);
}

TEST(LmdbLogStore, SnapshotPastTheLogLeavesItEmptyAndAppendContinuesAfterIt) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store->write(append(1, 10, 1)).ok());
  LogWrite w;
  w.snapshot = SnapshotMeta{LogIndex(500), Term(4), ""};
  w.entries = {rec(501, 4), rec(502, 4)};
  ASSERT_TRUE(store->write(w).ok());
  EXPECT_EQ(store->first_index(), LogIndex(501));
  EXPECT_EQ(store->last_index(), LogIndex(502));
  EXPECT_TRUE(store->compaction_pending());
  store.reset();
  store = open_ok(dir.path());
  EXPECT_EQ(store->first_index(), LogIndex(501));
  EXPECT_EQ(store->last_index(), LogIndex(502));
  auto more = store->compact_covered(1000, SIZE_MAX);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_EQ(store->entry(LogIndex(5)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(501)).ok());
}

TEST(LmdbLogStore, CompactDropsEntriesUpToTheIndex) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store->write(append(1, 20, 1)).ok());
  ASSERT_TRUE(store->compact(LogIndex(15)).ok());
  EXPECT_EQ(store->first_index(), LogIndex(16));
  EXPECT_EQ(store->entry(LogIndex(15)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(16)).ok());
  store.reset();
  store = open_ok(dir.path());
  EXPECT_EQ(store->first_index(), LogIndex(16));
  EXPECT_EQ(store->last_index(), LogIndex(20));
}

TEST(LmdbLogStore, CorruptRecordIsReportedWithFileAndIndex) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store->write(append(1, 10, 1)).ok());
  auto good = store->entry(LogIndex(7));
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(store->corrupt_entry_for_testing(LogIndex(7), "\x01\x02\x03\x04garbage").ok());
  auto bad = store->entry(LogIndex(7));
  ASSERT_EQ(bad.code(), ErrorCode::DataInconsistency);
  EXPECT_NE(bad.status().message().find("data.mdb"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("entry 7"), std::string::npos) << bad.status();
  EXPECT_EQ(store->entries(LogIndex(1), LogIndex(11), 1 << 20).code(),
            ErrorCode::DataInconsistency);
  EXPECT_TRUE(store->entry(LogIndex(6)).ok());
  // A value moved to another key fails too: the key is under the checksum.
  ASSERT_TRUE(store->corrupt_entry_for_testing(LogIndex(8), std::string(4, '\0')).ok());
  EXPECT_EQ(store->entry(LogIndex(8)).code(), ErrorCode::DataInconsistency);
}

TEST(LmdbLogStore, FullMapIsAClearErrorAndKeepsWhatWasStored) {
  TempDir dir;
  LmdbLogStore::Options opts;
  opts.map_bytes = 1 << 20;
  auto store = open_ok(dir.path(), opts);
  const std::string big(64 * 1024, 'x');
  Status failed;
  std::uint64_t stored = 0;
  for (std::uint64_t i = 1; i <= 64 && failed.ok(); ++i) {
    LogWrite w;
    w.entries.push_back(rec(i, 1, big));
    failed = store->write(w);
    if (failed.ok()) stored = i;
  }
  ASSERT_FALSE(failed.ok()) << "a 1 MiB map cannot hold 64 entries of 64 KiB";
  EXPECT_EQ(failed.code(), ErrorCode::SystemError);
  EXPECT_NE(failed.message().find("map size"), std::string::npos) << failed;
  ASSERT_GT(stored, 0u);
  EXPECT_EQ(store->last_index(), LogIndex(stored));
  for (std::uint64_t i = 1; i <= stored; ++i)
    EXPECT_TRUE(store->entry(LogIndex(i)).ok());
  // Compaction frees pages, and writing works again.
  ASSERT_TRUE(store->compact(LogIndex(stored)).ok());
  LogWrite w;
  w.entries.push_back(rec(stored + 1, 1, "small"));
  EXPECT_TRUE(store->write(w).ok());
}

TEST(LmdbLogStore, UnknownFormatIsRefused) {
  TempDir dir;
  { auto store = open_ok(dir.path()); }
  // Reopening with a different format marker must fail, not guess.
  std::filesystem::path file = std::filesystem::path(dir.path()) / "data.mdb";
  ASSERT_TRUE(std::filesystem::exists(file));
  {
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    auto at = bytes.find("coord-log-2");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 10] = '9';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  }
  auto reopened = LmdbLogStore::open(dir.path());
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find("unknown log format"), std::string::npos);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
std::uint64_t le(const std::string& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
  return v;
}

// A store whose log table is a B-tree of several levels, with values on
// overflow pages too, and pages freed by compaction; returns its file.
std::string damaged_log_fixture(const std::string& dir) {
  auto store = open_ok(dir);
  EXPECT_NE(store, nullptr);
  if (store == nullptr) return "";
  for (std::uint64_t i = 1; i <= 600; i += 50) {
    LogWrite w;
    for (std::uint64_t j = i; j < i + 50; ++j)
      w.entries.push_back(rec(j, 1, std::string(j % 100 == 0 ? 9'000 : 150, 'a' + j % 26)));
    w.hard_state = HardState{Term(1), NodeId(1), LogIndex(i + 49)};
    EXPECT_TRUE(store->write(w).ok());
  }
  EXPECT_TRUE(store->compact(LogIndex(100)).ok());
  return store->file_path();
}

// Opens the store and reads every entry: must fail cleanly or succeed,
// never crash (SIGBUS, SIGSEGV, an LMDB assertion).
Status open_and_read(const std::string& dir) {
  LmdbLogStore::Options opts;
  opts.sync = false;  // thousands of opens: each would fsync its format check
  auto s = LmdbLogStore::open(dir, opts);
  if (!s.ok()) return s.status();
  auto all = (*s)->entries((*s)->first_index(), (*s)->last_index().next(), std::size_t{1} << 30);
  return all.ok() ? Status() : all.status();
}

TEST(LmdbLogStore, AFileCutShortIsReportedBeforeItIsMapped) {
  TempDir dir;
  const std::string file = damaged_log_fixture(dir.path());
  const std::string good = read_bytes(file);
  const std::size_t psize = le(good, 40, 4);
  ASSERT_EQ(good.size() % psize, 0u);
  ASSERT_GT(good.size() / psize, 20u);
  for (std::size_t len : {good.size() / 2, 2 * psize + 100, psize + 10, std::size_t{100}}) {
    SCOPED_TRACE("cut to " + std::to_string(len) + " of " + std::to_string(good.size()));
    write_bytes(file, good.substr(0, len));
    auto s = LmdbLogStore::open(dir.path());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ErrorCode::DataInconsistency) << s.status();
    EXPECT_NE(s.status().message().find(file), std::string::npos) << s.status();
    if (len >= 2 * psize) {
      EXPECT_NE(s.status().message().find("cut short"), std::string::npos) << s.status();
    }
  }
  // Every length: an error or a log that reads back, never a crash (the
  // last pages may be free ones, which nothing reads).
  for (std::size_t len = 0; len < good.size(); len += len < 2 * psize ? 97 : psize / 2) {
    write_bytes(file, good.substr(0, len));
    Status st = open_and_read(dir.path());
    if (!st.ok()) {
      EXPECT_NE(st.message().find(file), std::string::npos) << st;
    }
  }
  write_bytes(file, good);
  EXPECT_TRUE(open_and_read(dir.path()).ok());
}

// The leaf page of the log table that holds its first entry, found the way
// LMDB finds it: the newer meta page, the main tree's record of the "log"
// table, then the leftmost branch down (LMDB 0.9's layout, lmdb_check.cpp).
std::size_t first_log_leaf(const std::string& image) {
  const std::size_t psize = le(image, 40, 4);
  const std::size_t meta = le(image, psize + 144, 8) > le(image, 144, 8) ? psize : 0;
  auto node = [&](std::size_t page, std::size_t i) {
    return page * psize + le(image, page * psize + 16 + 2 * i, 2);
  };
  auto leftmost_leaf = [&](std::size_t page) {
    while ((le(image, page * psize + 10, 2) & 0x01) != 0) {
      const std::size_t n = node(page, 0);
      page = le(image, n, 4) | le(image, n + 4, 2) << 32;
    }
    return page;
  };
  const std::size_t main = leftmost_leaf(le(image, meta + 128, 8));
  for (std::size_t i = 0; i < (le(image, main * psize + 12, 2) - 16) / 2; ++i) {
    const std::size_t n = node(main, i);
    const std::size_t ksize = le(image, n + 6, 2);
    if (image.compare(n + 8, ksize, "log") == 0)
      return leftmost_leaf(le(image, n + 8 + ksize + 40, 8));
  }
  return 0;
}

TEST(LmdbLogStore, AnEntrySizeThatRunsOffThePageIsReported) {
  // The damage that used to read past the end of the map: a leaf node of
  // the log table claiming a value far longer than its page.
  TempDir dir;
  const std::string file = damaged_log_fixture(dir.path());
  const std::string good = read_bytes(file);
  const std::size_t psize = le(good, 40, 4);
  const std::size_t page = first_log_leaf(good);
  ASSERT_GE(page, 2u);
  const std::size_t base = page * psize;
  ASSERT_EQ(le(good, base + 10, 2) & 0x02, 0x02u) << "not a leaf";
  const std::size_t keys = (le(good, base + 12, 2) - 16) / 2;
  int damaged = 0;
  for (std::size_t i = 0; i < keys; ++i) {
    const std::size_t node = base + le(good, base + 16 + 2 * i, 2);
    if (le(good, node + 4, 2) != 0) continue;  // a value on overflow pages
    std::string bad = good;
    bad[node + 2] = '\x7f';  // data size += 0x7f0000
    bad[node + 3] = '\0';
    write_bytes(file, bad);
    Status st = open_and_read(dir.path());
    ASSERT_FALSE(st.ok()) << "node " << i;
    EXPECT_NE(st.message().find(file), std::string::npos) << st;
    EXPECT_NE(st.message().find("runs past the page"), std::string::npos) << st;
    ++damaged;
  }
  EXPECT_GE(damaged, 3);
}

TEST(LmdbLogStore, DamagedPagesAreReportedAndNeverCrash) {
  TempDir dir;
  const std::string file = damaged_log_fixture(dir.path());
  const std::string good = read_bytes(file);
  const std::size_t psize = le(good, 40, 4);
  int refused = 0;
  int tried = 0;
  for (std::size_t page = 0; page < good.size() / psize; ++page) {
    for (std::size_t off = 0; off < psize; off += off < 40 ? 1 : 331) {
      for (unsigned char mask : {0x80}) {
        std::string bad = good;
        bad[page * psize + off] = static_cast<char>(bad[page * psize + off] ^ mask);
        write_bytes(file, bad);
        ++tried;
        if (!open_and_read(dir.path()).ok()) ++refused;
      }
    }
  }
  // Most flips land in header and node fields that matter; all were
  // survived, and a good share refused.
  EXPECT_GT(refused, tried / 4) << refused << " of " << tried;
  write_bytes(file, good);
  EXPECT_TRUE(open_and_read(dir.path()).ok());
}

// A child process appends entries one write at a time and reports each
// acknowledged index on a pipe; the parent kills it with SIGKILL at an
// arbitrary moment and checks that every acknowledged entry is there.
TEST(LmdbLogStore, SigkillLosesNoAcknowledgedWrite) {
  constexpr int rounds = 3;
  constexpr std::uint64_t entries_max = 100'000;
  for (int round = 0; round < rounds; ++round) {
    TempDir dir;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      auto store = LmdbLogStore::open(dir.path());
      if (!store.ok()) ::_exit(2);
      for (std::uint64_t i = 1; i <= entries_max; ++i) {
        LogWrite w;
        w.entries.push_back(rec(i, 1));
        w.hard_state = HardState{Term(1), NodeId(1), LogIndex(i)};
        if (!(*store)->write(w).ok()) ::_exit(3);
        if (::write(fds[1], &i, sizeof i) != sizeof i) ::_exit(4);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    const std::uint64_t kill_after = 20 + static_cast<std::uint64_t>(round) * 37;
    std::uint64_t acked = 0;
    std::uint64_t v = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (acked < kill_after && std::chrono::steady_clock::now() < deadline &&
           ::read(fds[0], &v, sizeof v) == sizeof v) {
      acked = v;
    }
    ::kill(child, SIGKILL);
    // Acks already in the pipe were written after their write() returned.
    while (::read(fds[0], &v, sizeof v) == sizeof v)
      acked = v;
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_GE(acked, kill_after) << "the writer did not get far enough";

    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_GE(store->last_index(), LogIndex(acked));
    ASSERT_TRUE(store->hard_state().has_value());
    EXPECT_GE(store->hard_state()->commit, LogIndex(acked));
    for (std::uint64_t i = 1; i <= acked; ++i) {
      auto e = store->entry(LogIndex(i));
      ASSERT_TRUE(e.ok()) << "acknowledged entry " << i << " lost: " << e.status();
      EXPECT_EQ(*e, rec(i, 1));
    }
  }
}

}  // namespace
}  // namespace coord::io
