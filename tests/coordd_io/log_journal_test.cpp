// The log's journal against real files: a write lives in the journal until
// a checkpoint takes it into LMDB, a reopen takes the journal's records
// back in order (overwrites included), a torn last record is the end, a
// damaged acknowledged record is reported, a journal left by a replaced
// LMDB file is never read, and reads on another thread see the same
// entries on either side of a checkpoint.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

#include "coord/base/limits.h"
#include "coord/io/log_journal.h"
#include "coord/io/log_store.h"
#include "coord/testing/temp_dir.h"

namespace coord::io {
namespace {

using coord::testing::TempDir;

std::string journal_of(const TempDir& dir) {
  return dir.path() + "/journal";
}

LogRecord rec(std::uint64_t index, std::uint64_t term) {
  return LogRecord{LogIndex(index), Term(term), 0,
                   "entry-" + std::to_string(index) + "-term-" + std::to_string(term)};
}

LogWrite append(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  LogWrite w;
  for (std::uint64_t i = from; i <= to; ++i)
    w.entries.push_back(rec(i, term));
  w.hard_state = HardState{Term(term), NodeId(1), LogIndex(from - 1)};
  return w;
}

std::unique_ptr<LmdbLogStore> open_ok(const std::string& dir) {
  auto s = LmdbLogStore::open(dir);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Three writes of one entry each (1, 2, 3, term 1), left in the journal;
// returns its bytes.
std::string three_records(const TempDir& dir) {
  {
    auto store = open_ok(dir.path());
    EXPECT_NE(store, nullptr);
    for (std::uint64_t i = 1; store != nullptr && i <= 3; ++i)
      EXPECT_TRUE(store->write(append(i, i, 1)).ok());
  }
  return read_bytes(journal_of(dir));
}

// The bytes of each of those records: header, flags, hard state, entry
// count, then the entry's head and data.
std::size_t record_bytes() {
  return LogJournal::header_bytes + 1 + 24 + 4 + 21 + rec(1, 1).data.size();
}

// Every entry from 1 to `last`, with the term each is expected to have.
void expect_log(const LmdbLogStore& store, std::uint64_t last,
                const std::function<std::uint64_t(std::uint64_t)>& term_of) {
  ASSERT_EQ(store.first_index(), LogIndex(1));
  ASSERT_EQ(store.last_index(), LogIndex(last));
  for (std::uint64_t i = 1; i <= last; ++i) {
    auto e = store.entry(LogIndex(i));
    ASSERT_TRUE(e.ok()) << "entry " << i << ": " << e.status();
    EXPECT_EQ(*e, rec(i, term_of(i)));
  }
  EXPECT_EQ(store.entry(LogIndex(last + 1)).code(), ErrorCode::NoNode);
  auto all = store.entries(LogIndex(1), LogIndex(last + 1), std::size_t{1} << 20);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), last);
  for (std::uint64_t i = 1; i <= last; ++i)
    EXPECT_EQ((*all)[i - 1], rec(i, term_of(i)));
}

TEST(LogJournal, AWriteWaitsInTheJournalUntilACheckpointAndSurvivesAReopen) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->write(append(1, 3, 1)).ok());
    ASSERT_TRUE(store->write(append(4, 6, 1)).ok());
    EXPECT_GT(store->journal_pending_bytes(), 0u);
    expect_log(*store, 6, [](std::uint64_t) { return 1; });
  }
  // Nothing was checkpointed: the reopen finds it all in the journal.
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_GT(store->journal_pending_bytes(), 0u);
    expect_log(*store, 6, [](std::uint64_t) { return 1; });
    ASSERT_TRUE(store->hard_state().has_value());
    EXPECT_EQ(store->hard_state()->commit, LogIndex(3));
    ASSERT_TRUE(store->checkpoint().ok());
    EXPECT_EQ(store->journal_pending_bytes(), 0u);
    expect_log(*store, 6, [](std::uint64_t) { return 1; });
    // After the checkpoint the journal starts again from its beginning,
    // over the records LMDB now holds.
    ASSERT_TRUE(store->write(append(7, 7, 2)).ok());
  }
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  expect_log(*store, 7, [](std::uint64_t i) { return i == 7 ? 2 : 1; });
  EXPECT_EQ(store->hard_state()->term, Term(2));
}

TEST(LogJournal, OverwritesAreTakenBackInOrderOnEitherSideOfACheckpoint) {
  for (bool checkpoint_between : {false, true}) {
    SCOPED_TRACE(checkpoint_between ? "checkpoint between" : "all in the journal");
    TempDir dir;
    {
      auto store = open_ok(dir.path());
      ASSERT_NE(store, nullptr);
      ASSERT_TRUE(store->write(append(1, 5, 1)).ok());
      if (checkpoint_between) {
        ASSERT_TRUE(store->checkpoint().ok());
      }
      // A follower replacing a conflicting suffix, then appending past it.
      ASSERT_TRUE(store->write(append(3, 4, 2)).ok());
      ASSERT_TRUE(store->write(append(4, 4, 3)).ok());
      expect_log(*store, 4, [](std::uint64_t i) { return i < 3 ? 1 : i == 3 ? 2 : 3; });
    }
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    expect_log(*store, 4, [](std::uint64_t i) { return i < 3 ? 1 : i == 3 ? 2 : 3; });
    ASSERT_TRUE(store->checkpoint().ok());
    expect_log(*store, 4, [](std::uint64_t i) { return i < 3 ? 1 : i == 3 ? 2 : 3; });
    store.reset();
    store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    expect_log(*store, 4, [](std::uint64_t i) { return i < 3 ? 1 : i == 3 ? 2 : 3; });
  }
}

TEST(LogJournal, ATornLastRecordIsTheEnd) {
  TempDir dir;
  std::string bytes = three_records(dir);
  // The third record loses its last byte, as a crash during its write
  // leaves it: it was never acknowledged.
  const std::size_t record = record_bytes();
  ASSERT_GT(bytes.size(), 3 * record);
  bytes[3 * record - 1] ^= 0x01;
  write_bytes(journal_of(dir), bytes);
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  expect_log(*store, 2, [](std::uint64_t) { return 1; });
  // The next write goes where the torn one was.
  ASSERT_TRUE(store->write(append(3, 3, 2)).ok());
  store.reset();
  store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  expect_log(*store, 3, [](std::uint64_t i) { return i == 3 ? 2 : 1; });
}

TEST(LogJournal, ADamagedRecordBeforeItsSuccessorIsReported) {
  TempDir dir;
  std::string bytes = three_records(dir);
  bytes[record_bytes() + LogJournal::header_bytes + 30] ^= 0x40;  // inside the second record
  write_bytes(journal_of(dir), bytes);
  auto store = LmdbLogStore::open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.code(), ErrorCode::DataInconsistency);
  EXPECT_NE(store.status().message().find(journal_of(dir)), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("record 2"), std::string::npos) << store.status();
}

TEST(LogJournal, AJournalLeftByAReplacedLogIsNeverRead) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->write(append(1, 4, 1)).ok());
  }
  // The LMDB file is deleted (an operator starting the server afresh):
  // the journal's records belong to the old one.
  std::filesystem::remove(std::filesystem::path(dir.path()) / "data.mdb");
  std::filesystem::remove(std::filesystem::path(dir.path()) / "lock.mdb");
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->last_index(), LogIndex(0));
    EXPECT_FALSE(store->hard_state().has_value());
    ASSERT_TRUE(store->write(append(1, 2, 5)).ok());
  }
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  expect_log(*store, 2, [](std::uint64_t) { return 5; });
}

TEST(LogJournal, AStoreOfTheFormatBeforeTheJournalOpensAndIsMarkedAnew) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->write(append(1, 2, 1)).ok());
    ASSERT_TRUE(store->checkpoint().ok());
  }
  const std::string file = dir.path() + "/data.mdb";
  std::string bytes = read_bytes(file);
  const auto at = bytes.find("coord-log-2");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 10] = '1';
  write_bytes(file, bytes);
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    expect_log(*store, 2, [](std::uint64_t) { return 1; });
  }
  bytes = read_bytes(file);
  EXPECT_NE(bytes.find("coord-log-2"), std::string::npos);
}

// A write that would take the journal past what one checkpoint may write
// takes everything waiting into LMDB with it.
TEST(LogJournal, TheJournalNeverHoldsMoreThanACheckpointMayWrite) {
  TempDir dir;
  LmdbLogStore::Options opts;
  opts.map_bytes = std::size_t{8} << 20;  // a share of 1 MiB
  auto s = LmdbLogStore::open(dir.path(), opts);
  ASSERT_TRUE(s.ok()) << s.status();
  auto store = std::move(s).value();
  const std::size_t share = opts.map_bytes / limits::log_journal_map_share;
  std::size_t most = 0;
  for (std::uint64_t i = 1; i <= 60; ++i) {
    LogWrite w;
    w.entries.push_back(LogRecord{LogIndex(i), Term(1), 0, std::string(50'000, 'x')});
    ASSERT_TRUE(store->write(w).ok()) << i;
    most = std::max(most, store->journal_pending_bytes());
  }
  EXPECT_LE(most, share);
  EXPECT_GT(most, share / 2);
  EXPECT_EQ(store->last_index(), LogIndex(60));
}

// The replica reads entries on its own thread while the storage thread
// writes and checkpoints: every read finds the entry, on whichever side.
TEST(LogJournal, ReadsOnAnotherThreadSeeEveryEntryAcrossCheckpoints) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  constexpr std::uint64_t count = 600;
  std::atomic<std::uint64_t> written{0};
  std::atomic<bool> stop{false};
  std::uint64_t reads = 0, bad = 0;
  std::thread reader([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int k = 0; k < 10'000'000 && !stop.load(); ++k) {
      if (std::chrono::steady_clock::now() > deadline) break;
      const std::uint64_t w = written.load();
      if (w < 4) {
        std::this_thread::yield();
        continue;
      }
      const std::uint64_t lo = 1 + static_cast<std::uint64_t>(k) % (w - 3);
      auto some = store->entries(LogIndex(lo), LogIndex(lo + 4), std::size_t{1} << 20);
      if (!some.ok() || some->size() != 4) {
        ++bad;
      } else {
        for (std::uint64_t j = 0; j < 4; ++j)
          bad += (*some)[j] == rec(lo + j, 1) ? 0 : 1;
      }
      ++reads;
    }
  });
  for (std::uint64_t i = 1; i <= count; ++i) {
    LogWrite w;
    w.entries.push_back(rec(i, 1));
    Status st = store->write(w);
    if (st.ok() && i % 50 == 0) st = store->checkpoint();
    if (!st.ok()) {
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

}  // namespace
}  // namespace coord::io
