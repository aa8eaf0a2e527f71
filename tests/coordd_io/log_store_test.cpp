// The LMDB log store against a real LMDB in a temporary directory: what is
// written survives reopening, a conflicting suffix is replaced, a snapshot
// drops the prefix, corruption and a full map are reported as errors, and a
// process killed with SIGKILL loses no write it had been told was durable.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "coord/io/log_store.h"

namespace coord::io {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "coord-log-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->first_index(), LogIndex(41));
  EXPECT_EQ(store->last_index(), LogIndex(100));
  ASSERT_TRUE(store->snapshot_meta().has_value());
  EXPECT_EQ(store->snapshot_meta()->config, "members:1,2,3");
  EXPECT_EQ(store->entry(LogIndex(40)).code(), ErrorCode::NoNode);
  EXPECT_TRUE(store->entry(LogIndex(41)).ok());
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
  EXPECT_EQ(store->entry(LogIndex(5)).code(), ErrorCode::NoNode);
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
    auto at = bytes.find("coord-log-1");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 10] = '9';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  }
  auto reopened = LmdbLogStore::open(dir.path());
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find("unknown log format"), std::string::npos);
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
