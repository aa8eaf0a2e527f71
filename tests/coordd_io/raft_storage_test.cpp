// DiskReplicaStorage on a real LMDB and real files: what the Raft core reads
// back after writes, replaced suffixes, snapshots and reopening.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "coord/base/bytes.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/consensus/raft.h"
#include "coord/io/raft_storage.h"

namespace coord::io {
namespace {

namespace fs = std::filesystem;
using consensus::Entry;
using consensus::EntryType;

class DiskStorageTest : public ::testing::Test {
 protected:
  DiskStorageTest() {
    std::string templ = (fs::temp_directory_path() / "coord-disk-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
  }
  ~DiskStorageTest() override { fs::remove_all(dir_); }

  std::unique_ptr<DiskReplicaStorage> open() { return open_at(dir_); }

  static std::unique_ptr<DiskReplicaStorage> open_at(
      const std::string& dir,
      consensus::ConfState initial = consensus::ConfState{{NodeId(1)}, {}}) {
    auto s = DiskReplicaStorage::open(dir, std::move(initial), LmdbLogStore::Options{});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static consensus::Ready entries(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
    consensus::Ready rd;
    for (std::uint64_t i = from; i <= to; ++i) {
      rd.entries.push_back(Entry{Term(term), LogIndex(i), EntryType::Normal,
                                 "e" + std::to_string(i) + "t" + std::to_string(term)});
    }
    return rd;
  }

  std::vector<Entry> read(const DiskReplicaStorage& s, std::uint64_t lo, std::uint64_t hi) {
    std::vector<Entry> out;
    s.entries(LogIndex(lo), LogIndex(hi), std::size_t{1} << 20, out);
    return out;
  }

  std::string dir_;
};

consensus::ConfState joint_conf() {
  return consensus::ConfState{
      {NodeId(1), NodeId(2), NodeId(4)}, {NodeId(5)}, {NodeId(1), NodeId(2), NodeId(3)}};
}

std::string pseudo_random_bytes(std::size_t n, std::uint64_t seed) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    out[i] = static_cast<char>(seed >> 56);
  }
  return out;
}

// The snapshot as the leader's core streams it: read_snapshot at each
// offset, `chunk_bytes` at a time, the last chunk flagged (an empty
// snapshot is one empty last chunk).
std::vector<consensus::SnapshotChunk> read_chunks(const consensus::LogStorage& s,
                                                  std::size_t chunk_bytes) {
  std::vector<consensus::SnapshotChunk> out;
  const std::uint64_t size = s.snapshot_bytes();
  std::uint64_t offset = 0;
  do {
    consensus::SnapshotChunk c;
    c.meta = s.snapshot_meta();
    c.offset = offset;
    if (offset < size) s.read_snapshot(offset, chunk_bytes, c.data);
    EXPECT_LE(c.data.size(), chunk_bytes);
    offset += c.data.size();
    c.last = offset >= size;
    out.push_back(std::move(c));
  } while (offset < size);
  return out;
}

consensus::Ready chunk_ready(std::vector<consensus::SnapshotChunk> chunks) {
  consensus::Ready rd;
  rd.snapshot_chunks = std::move(chunks);
  return rd;
}

// The Ready that ends a streamed transfer: the snapshot to install from
// the chunks written, and what follows it.
consensus::Ready install_ready(const consensus::SnapshotMeta& meta) {
  consensus::Ready rd;
  rd.snapshot = std::make_shared<consensus::Snapshot>(consensus::Snapshot{meta, {}});
  rd.snapshot_in_chunks = true;
  return rd;
}

std::string partial_file(const std::string& data_dir) {
  return (fs::path(data_dir) / "snapshots" / "incoming.snap.part").string();
}

TEST_F(DiskStorageTest, FreshStorageHoldsTheBootstrapEntries) {
  const consensus::ConfState founding{{NodeId(1)}, {}};
  {
    auto s = open();
    EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
    EXPECT_EQ(s->first_index(), LogIndex(1));
    EXPECT_EQ(s->last_index(), LogIndex(1));
    EXPECT_EQ(s->hard_state(), consensus::bootstrap_hard_state(founding));
    EXPECT_EQ(read(*s, 1, 2), consensus::bootstrap_entries(founding));
    auto snap = s->load_snapshot_payload();
    ASSERT_TRUE(snap.ok());
    EXPECT_FALSE(snap->has_value());
  }
  // Written once: reopening finds them and adds nothing.
  auto s = open();
  EXPECT_EQ(s->last_index(), LogIndex(1));
  EXPECT_EQ(s->hard_state(), consensus::bootstrap_hard_state(founding));
}

TEST_F(DiskStorageTest, FoundingChangesKeepTheirContexts) {
  // The founding entries of a cluster carry each member's server line, so
  // that a server added later learns the addresses from the log.
  const std::vector<consensus::ConfChange> founding{
      {consensus::ConfChangeType::AddVoter, NodeId(1), "server.1=127.0.0.1:7001:0:participant"},
      {consensus::ConfChangeType::AddVoter, NodeId(2), "server.2=127.0.0.1:7002:0:participant"},
      {consensus::ConfChangeType::AddLearner, NodeId(3), "server.3=127.0.0.1:7003:0:observer"}};
  const consensus::ConfState conf{{NodeId(1), NodeId(2)}, {NodeId(3)}};
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto s = DiskReplicaStorage::open(dir_, founding, LmdbLogStore::Options{});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->last_index(), LogIndex(3));
    EXPECT_EQ((*s)->hard_state(), consensus::bootstrap_hard_state(conf));
    const auto got = read(**s, 1, 4);
    EXPECT_EQ(got, consensus::bootstrap_entries(founding));
    ASSERT_EQ(got.size(), 3u);
    auto changes = consensus::conf_entry_changes(got[2].data);
    ASSERT_TRUE(changes.ok());
    EXPECT_EQ(*changes, std::vector<consensus::ConfChange>{founding[2]});
  }
}

TEST_F(DiskStorageTest, AJoiningServerStartsWithAnEmptyLog) {
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto s = DiskReplicaStorage::open(dir_, std::vector<consensus::ConfChange>{},
                                      LmdbLogStore::Options{});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->last_index(), LogIndex(0));
    EXPECT_EQ((*s)->hard_state(), consensus::HardState{});
    EXPECT_EQ((*s)->snapshot_meta().index, LogIndex(0));
  }
  // Once the leader's entries are stored, the directory is no longer new:
  // opening it as a founding member adds nothing of its own.
  {
    auto s = DiskReplicaStorage::open(dir_, std::vector<consensus::ConfChange>{},
                                      LmdbLogStore::Options{});
    ASSERT_TRUE(s.ok());
    consensus::Ready rd = entries(1, 4, 2);
    rd.hard_state = consensus::HardState{Term(2), NodeId(0), LogIndex(4)};
    ASSERT_TRUE((*s)->persist(rd).ok());
  }
  auto s = open();
  EXPECT_EQ(s->last_index(), LogIndex(4));
  EXPECT_EQ(read(*s, 1, 2).front().data, "e1t2");
}

TEST_F(DiskStorageTest, PersistedEntriesAndHardStateSurviveReopen) {
  {
    auto s = open();
    consensus::Ready rd = entries(1, 10, 1);
    rd.hard_state = consensus::HardState{Term(1), NodeId(1), LogIndex(8)};
    ASSERT_TRUE(s->persist(rd).ok());
  }
  auto s = open();
  EXPECT_EQ(s->last_index(), LogIndex(10));
  EXPECT_EQ(s->hard_state(), (consensus::HardState{Term(1), NodeId(1), LogIndex(8)}));
  EXPECT_EQ(s->term(LogIndex(10)), Term(1));
  auto got = read(*s, 3, 6);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].data, "e3t1");
  EXPECT_EQ(got[2].index, LogIndex(5));
}

// Flips one bit of every copy of `needle` in `file`, as a damaged disk
// would; returns how many copies. LMDB copies pages on write, so a record
// can sit in freed pages too: one of the copies is the live one.
int flip_every_copy(const std::string& file, const std::string& needle) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  int copies = 0;
  for (auto at = bytes.find(needle); at != std::string::npos && copies < 16;
       at = bytes.find(needle, at + 1)) {
    f.seekp(static_cast<std::streamoff>(at + needle.size() / 2));
    f.put(static_cast<char>(bytes[at + needle.size() / 2] ^ 0x10));
    ++copies;
  }
  f.flush();
  return copies;
}

constexpr std::string_view damaged_payload = "a-payload-that-the-disk-damages-0123456789";

consensus::Ready entries_with_damaged_payload_at_4() {
  consensus::Ready rd;
  for (std::uint64_t i = 2; i <= 6; ++i) {
    rd.entries.push_back(Entry{Term(1), LogIndex(i), EntryType::Normal,
                               i == 4 ? std::string(damaged_payload) : "e" + std::to_string(i)});
  }
  rd.hard_state = consensus::HardState{Term(1), NodeId(1), LogIndex(6)};
  return rd;
}

TEST_F(DiskStorageTest, ACorruptEntryRefusesTheStartAndSaysWhatToDo) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries_with_damaged_payload_at_4()).ok());
    // Into LMDB, as a clean stop leaves it (the journal would give the
    // entry back undamaged otherwise).
    ASSERT_TRUE(s->checkpoint_log_and_release_map().ok());
  }
  ASSERT_GE(flip_every_copy(dir_ + "/log/data.mdb", std::string(damaged_payload)), 1);
  auto s = DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                    LmdbLogStore::Options{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::DataInconsistency);
  const std::string m = s.status().message();
  EXPECT_NE(m.find("the log in " + dir_ + " is damaged"), std::string::npos) << m;
  EXPECT_NE(m.find("log entry 4 fails its checksum"), std::string::npos) << m;
  EXPECT_NE(m.find("start this server with an empty one"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

// The file damaged under a running server: the entry is read to be sent or
// applied, and the server stops with the same message instead of
// returning it or aborting on an assertion.
TEST_F(DiskStorageTest, ACorruptEntryReadWhileRunningStopsTheServerCleanly) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries_with_damaged_payload_at_4()).ok());
  EXPECT_EQ(read(*s, 4, 5).front().data, damaged_payload);
  // Entries written since push it out of those kept in memory, so that it
  // is read from the file again.
  consensus::Ready more;
  for (std::uint64_t i = s->last_index().value() + 1;
       more.entries.size() * 64 * 1024 <= limits::log_recent_entries_bytes_max; ++i)
    more.entries.push_back(
        Entry{Term(1), LogIndex(i), EntryType::Normal, std::string(64 * 1024, 'm')});
  ASSERT_TRUE(s->persist(more).ok());
  ASSERT_TRUE(s->checkpoint_log_and_release_map().ok());
  ASSERT_GE(flip_every_copy(dir_ + "/log/data.mdb", std::string(damaged_payload)), 1);
  EXPECT_EXIT(read(*s, 2, 7), ::testing::ExitedWithCode(damaged_log_exit_code),
              "stopping: the log in .* is damaged: .*log entry 4 fails its checksum.*empty one");
  // Entries before the damaged one still read (the leader sends them).
  EXPECT_EQ(read(*s, 2, 4).size(), 2u);
}

// The snapshot file damaged under a running server, which is about to send
// it to a follower: it stops, as for a damaged log record.
TEST_F(DiskStorageTest, ADamagedSnapshotToSendStopsTheServerCleanly) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(1, 10, 3)).ok());
  consensus::SnapshotMeta meta{LogIndex(6), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
  ASSERT_TRUE(s->snapshot_saved(meta, std::string(damaged_payload)).ok());
  ASSERT_EQ(flip_every_copy(dir_ + "/snapshots/snapshot-0000000000000006.snap",
                            std::string(damaged_payload)),
            1);
  EXPECT_EXIT(s->snapshot(), ::testing::ExitedWithCode(damaged_log_exit_code),
              "stopping: the snapshot in .* is damaged: .*snapshot-0000000000000006.snap");
  EXPECT_EXIT(s->snapshot_bytes(), ::testing::ExitedWithCode(damaged_log_exit_code),
              "stopping: the snapshot in .* is damaged");
}

// What entries() gives back is what was written, whether it comes from
// the entries kept in memory or from LMDB: appends of every size, replaced
// suffixes and compactions in a seeded random order, checked against a
// model after every step and after reopening.
TEST_F(DiskStorageTest, EntriesReadBackAreTheOnesWrittenRecentOrNot) {
  auto s = open();
  std::map<std::uint64_t, Entry> model;
  for (std::uint64_t i = s->first_index().value(); i <= s->last_index().value(); ++i)
    model[i] = read(*s, i, i + 1).front();
  std::uint64_t seed = 7;
  auto next = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    return (seed >> 33) % n;
  };
  std::uint64_t term = 1;
  auto check = [&](const DiskReplicaStorage& st, int step) {
    const std::uint64_t first = st.first_index().value();
    const std::uint64_t last = st.last_index().value();
    ASSERT_EQ(model.begin()->first, first) << step;
    ASSERT_EQ(model.rbegin()->first, last) << step;
    for (int probe = 0; probe < 8; ++probe) {
      const std::uint64_t lo = first + next(last - first + 1);
      const std::uint64_t hi = lo + 1 + next(last - lo + 1);
      const std::size_t max_bytes = next(2) ? std::size_t{1} << 30 : 1 + next(512 * 1024);
      std::vector<Entry> got;
      st.entries(LogIndex(lo), LogIndex(hi), max_bytes, got);
      std::vector<Entry> want;
      std::size_t bytes = 0;
      // LogStorage's contract: never past max_bytes, but at least one.
      for (std::uint64_t i = lo; i < hi; ++i) {
        bytes += model.at(i).data.size();
        if (i != lo && bytes > max_bytes) break;
        want.push_back(model.at(i));
      }
      ASSERT_EQ(got, want) << "step " << step << " [" << lo << ", " << hi << ") max " << max_bytes;
    }
  };
  for (int step = 0; step < 120; ++step) {
    const std::uint64_t first = s->first_index().value();
    const std::uint64_t last = s->last_index().value();
    const std::uint64_t what = next(10);
    if (what < 6 || last < first + 2) {  // append, sometimes big entries
      consensus::Ready rd;
      const std::uint64_t count = 1 + next(20);
      for (std::uint64_t i = last + 1; i <= last + count; ++i) {
        const std::size_t size = next(10) == 0 ? next(400 * 1024) : next(200);
        rd.entries.push_back(
            Entry{Term(term), LogIndex(i), EntryType::Normal, pseudo_random_bytes(size, seed + i)});
      }
      for (const Entry& e : rd.entries)
        model[e.index.value()] = e;
      // Before persist(), which may take rd.entries.
      ASSERT_TRUE(s->persist(rd).ok());
    } else if (what < 8) {  // a new leader replaces a suffix
      ++term;
      const std::uint64_t from = first + 1 + next(last - first);
      consensus::Ready rd;
      for (std::uint64_t i = from; i <= from + next(5); ++i)
        rd.entries.push_back(
            Entry{Term(term), LogIndex(i), EntryType::Normal, "t" + std::to_string(term)});
      model.erase(model.lower_bound(from), model.end());
      for (const Entry& e : rd.entries)
        model[e.index.value()] = e;
      ASSERT_TRUE(s->persist(rd).ok());
    } else {  // a snapshot compacts the log
      const std::uint64_t at = first + next(last - first);
      consensus::SnapshotMeta meta{LogIndex(at), model.at(at).term,
                                   consensus::ConfState{{NodeId(1)}, {}}};
      if (meta.index <= s->snapshot_meta().index) continue;
      ASSERT_TRUE(s->snapshot_saved(meta, "tree").ok());
      model.erase(model.begin(), model.lower_bound(s->first_index().value()));
    }
    check(*s, step);
  }
  s.reset();
  s = open();
  check(*s, -1);
}

TEST_F(DiskStorageTest, ReplacedSuffixUpdatesTermsAndEntries) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(1, 10, 1)).ok());
  ASSERT_TRUE(s->persist(entries(5, 7, 2)).ok());
  EXPECT_EQ(s->last_index(), LogIndex(7));
  EXPECT_EQ(s->term(LogIndex(4)), Term(1));
  EXPECT_EQ(s->term(LogIndex(5)), Term(2));
  EXPECT_EQ(read(*s, 7, 8).front().data, "e7t2");
  s.reset();
  s = open();
  EXPECT_EQ(s->last_index(), LogIndex(7));
  EXPECT_EQ(s->term(LogIndex(6)), Term(2));
}

TEST_F(DiskStorageTest, SavedSnapshotCompactsTheLogAndComesBack) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries(1, 10, 3)).ok());
    consensus::SnapshotMeta meta{LogIndex(6), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
    ASSERT_TRUE(s->snapshot_saved(meta, "tree at 6").ok());
    EXPECT_EQ(s->first_index(), LogIndex(7));
    EXPECT_EQ(s->term(LogIndex(6)), Term(3));
    EXPECT_EQ(s->term(LogIndex(9)), Term(3));
  }
  auto s = open();
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(6));
  EXPECT_EQ(s->first_index(), LogIndex(7));
  EXPECT_EQ(s->last_index(), LogIndex(10));
  auto payload = s->load_snapshot_payload();
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(**payload, "tree at 6");
  EXPECT_EQ(s->snapshot().data, "tree at 6");
}

TEST_F(DiskStorageTest, SnapshotFromTheLeaderReplacesTheWholeLog) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(1, 10, 1)).ok());
  consensus::Ready rd = entries(21, 22, 4);
  auto snap = std::make_shared<consensus::Snapshot>();
  snap->meta = consensus::SnapshotMeta{LogIndex(20), Term(4),
                                       consensus::ConfState{{NodeId(1), NodeId(2)}, {}}};
  snap->data = "leader state";
  rd.snapshot = snap;
  ASSERT_TRUE(s->persist(rd).ok());
  EXPECT_EQ(s->first_index(), LogIndex(21));
  EXPECT_EQ(s->last_index(), LogIndex(22));
  EXPECT_EQ(s->term(LogIndex(20)), Term(4));
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta().conf.voters, (std::vector<NodeId>{NodeId(1), NodeId(2)}));
  EXPECT_EQ(**s->load_snapshot_payload(), "leader state");
}

// The log deleted, or cut to zero bytes, while snapshot files remain: the
// server must not start from an empty tree (its own snapshots would then be
// pruned in favour of the old files, and its writes lost at the next start).
TEST_F(DiskStorageTest, AnEmptyLogNextToSnapshotsIsRefusedAndCanBeRecovered) {
  const std::string log_file = (fs::path(dir_) / "log" / "data.mdb").string();
  for (const bool cut_to_zero : {false, true}) {
    SCOPED_TRACE(cut_to_zero ? "log cut to zero bytes" : "log deleted");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    {
      auto s = open();
      ASSERT_TRUE(s->persist(entries(2, 30, 2)).ok());
      const consensus::ConfState conf{{NodeId(1)}, {}};
      ASSERT_TRUE(s->snapshot_saved({LogIndex(10), Term(2), conf}, "tree at 10").ok());
      ASSERT_TRUE(s->snapshot_saved({LogIndex(20), Term(2), conf}, "tree at 20").ok());
    }
    if (cut_to_zero) {
      fs::resize_file(log_file, 0);
    } else {
      fs::remove_all(fs::path(dir_) / "log");
    }
    auto refused = DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                            LmdbLogStore::Options{});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.code(), ErrorCode::DataInconsistency);
    EXPECT_NE(refused.status().message().find(log_file), std::string::npos) << refused.status();
    EXPECT_NE(refused.status().message().find("newest at index 20"), std::string::npos);
    EXPECT_NE(refused.status().message().find("--recover-from-snapshot"), std::string::npos);
    // Refusing wrote nothing that a second try would take for a log.
    EXPECT_FALSE(DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                          LmdbLogStore::Options{})
                     .ok());

    // The newest snapshot is damaged: recovery takes the one before it.
    {
      std::ofstream f((fs::path(dir_) / "snapshots" / "snapshot-0000000000000014.snap").string(),
                      std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(50);
      f.put('!');
    }
    {
      auto r = DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                        LmdbLogStore::Options{}, true);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ((*r)->snapshot_meta().index, LogIndex(10));
      EXPECT_EQ((*r)->snapshot_meta().term, Term(2));
      EXPECT_EQ((*r)->hard_state().commit, LogIndex(10));
      EXPECT_EQ((*r)->first_index(), LogIndex(11));
      EXPECT_EQ((*r)->last_index(), LogIndex(10));
      EXPECT_EQ(**(*r)->load_snapshot_payload(), "tree at 10");
      // Writing goes on after it, and a later snapshot replaces it.
      ASSERT_TRUE((*r)->persist(entries(11, 12, 3)).ok());
      ASSERT_TRUE(
          (*r)->snapshot_saved({LogIndex(12), Term(3), consensus::ConfState{{NodeId(1)}, {}}},
                               "tree at 12")
              .ok());
    }
    // An ordinary start from here on, from the snapshot the log names, not
    // from the higher-numbered (damaged) file.
    auto again = open();
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->snapshot_meta().index, LogIndex(12));
    EXPECT_EQ(**again->load_snapshot_payload(), "tree at 12");
  }
}

TEST_F(DiskStorageTest, RecoveryWithoutAValidSnapshotFails) {
  fs::create_directories(fs::path(dir_) / "snapshots");
  std::ofstream((fs::path(dir_) / "snapshots" / "snapshot-0000000000000005.snap").string())
      << "not a snapshot";
  auto r = DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                    LmdbLogStore::Options{}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no snapshot file to recover from"), std::string::npos)
      << r.status();
}

// A leader's snapshot streamed, a few KB per chunk, into a follower's
// storage through persist(), installed from the chunks written, and both
// reopened: the same payload and meta (a joint configuration included),
// and the follower's log starts after it.
TEST_F(DiskStorageTest, ASnapshotStreamedInChunksIsInstalledWhole) {
  for (const std::size_t size : {std::size_t{300'017}, std::size_t{0}}) {
    SCOPED_TRACE(size);
    const std::string leader_dir = (fs::path(dir_) / ("leader" + std::to_string(size))).string();
    const std::string follower_dir =
        (fs::path(dir_) / ("follower" + std::to_string(size))).string();
    const std::string payload = pseudo_random_bytes(size, 11);
    const consensus::SnapshotMeta meta{LogIndex(40), Term(2), joint_conf()};
    auto leader = open_at(leader_dir);
    ASSERT_TRUE(leader->persist(entries(2, 50, 2)).ok());
    ASSERT_TRUE(leader->snapshot_saved(meta, payload).ok());
    ASSERT_EQ(leader->snapshot_bytes(), size);

    auto follower = open_at(follower_dir, consensus::ConfState{});
    const LogIndex first = follower->first_index();
    const LogIndex last = follower->last_index();
    std::vector<consensus::SnapshotChunk> chunks = read_chunks(*leader, 4096 + 7);
    ASSERT_EQ(chunks.size(), size == 0 ? 1u : (size + 4102) / 4103);
    // Two chunks to a Ready, as several messages may be stepped before one.
    for (std::size_t i = 0; i < chunks.size(); i += 2) {
      std::vector<consensus::SnapshotChunk> two(
          chunks.begin() + static_cast<std::ptrdiff_t>(i),
          chunks.begin() + static_cast<std::ptrdiff_t>(std::min(i + 2, chunks.size())));
      ASSERT_TRUE(follower->persist(chunk_ready(std::move(two))).ok());
      // Written, not installed.
      EXPECT_EQ(follower->snapshot_meta().index, LogIndex(0));
      EXPECT_EQ(follower->first_index(), first);
      EXPECT_EQ(follower->last_index(), last);
      EXPECT_TRUE(fs::exists(partial_file(follower_dir)));
    }
    consensus::Ready rd = install_ready(meta);
    rd.entries = entries(41, 42, 2).entries;
    rd.hard_state = consensus::HardState{Term(2), NodeId(0), LogIndex(42)};
    ASSERT_TRUE(follower->persist(rd).ok());
    EXPECT_FALSE(fs::exists(partial_file(follower_dir)));

    auto check = [&](const DiskReplicaStorage& s) {
      EXPECT_EQ(s.snapshot_meta(), meta);
      EXPECT_EQ(s.first_index(), LogIndex(41));
      EXPECT_EQ(s.term(LogIndex(40)), Term(2));
      auto loaded = s.load_snapshot_payload();
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_TRUE(**loaded == payload);
      const consensus::Snapshot snap = s.snapshot();
      EXPECT_EQ(snap.meta, meta);
      EXPECT_TRUE(snap.data == payload);
      EXPECT_EQ(s.snapshot_bytes(), size);
    };
    check(*follower);
    EXPECT_EQ(follower->last_index(), LogIndex(42));
    // The follower can now stream it on: the same bytes.
    std::string relayed;
    for (const auto& c : read_chunks(*follower, 65536))
      relayed += c.data;
    EXPECT_TRUE(relayed == payload);

    leader.reset();
    follower.reset();
    leader = open_at(leader_dir);
    follower = open_at(follower_dir, consensus::ConfState{});
    check(*leader);
    check(*follower);
    EXPECT_EQ(leader->last_index(), LogIndex(50));
    EXPECT_EQ(follower->last_index(), LogIndex(42));
    EXPECT_EQ(follower->hard_state().commit, LogIndex(42));
  }
}

// A restart in the middle of a transfer: the partial file is gone, the
// log is as it was, and the transfer must start over from offset 0.
TEST_F(DiskStorageTest, ARestartMidTransferLeavesNoPartialFileAndTheLogUnchanged) {
  const std::string leader_dir = (fs::path(dir_) / "leader").string();
  const std::string follower_dir = (fs::path(dir_) / "follower").string();
  const consensus::SnapshotMeta meta{LogIndex(30), Term(3), joint_conf()};
  const std::string payload = pseudo_random_bytes(50'000, 5);
  auto leader = open_at(leader_dir);
  ASSERT_TRUE(leader->persist(entries(2, 30, 3)).ok());
  ASSERT_TRUE(leader->snapshot_saved(meta, payload).ok());
  const auto chunks = read_chunks(*leader, 8192);
  ASSERT_GT(chunks.size(), 3u);

  {
    auto follower = open_at(follower_dir);
    ASSERT_TRUE(follower->persist(entries(2, 5, 1)).ok());
    ASSERT_TRUE(follower->persist(chunk_ready({chunks[0], chunks[1], chunks[2]})).ok());
    EXPECT_TRUE(fs::exists(partial_file(follower_dir)));
  }
  auto follower = open_at(follower_dir);
  EXPECT_FALSE(fs::exists(partial_file(follower_dir)));
  EXPECT_EQ(follower->snapshot_meta().index, LogIndex(0));
  EXPECT_EQ(follower->first_index(), LogIndex(1));
  EXPECT_EQ(follower->last_index(), LogIndex(5));
  EXPECT_EQ(read(*follower, 5, 6).front().data, "e5t1");
  EXPECT_EQ(follower->snapshot_files_bytes(), 0u);
  // What it held before the restart is not there to continue.
  EXPECT_FALSE(follower->persist(chunk_ready({chunks[3]})).ok());
  EXPECT_FALSE(follower->persist(install_ready(meta)).ok());
  EXPECT_EQ(follower->last_index(), LogIndex(5));
  // Started over, it arrives.
  ASSERT_TRUE(follower->persist(chunk_ready(chunks)).ok());
  ASSERT_TRUE(follower->persist(install_ready(meta)).ok());
  EXPECT_TRUE(**follower->load_snapshot_payload() == payload);
  EXPECT_EQ(follower->first_index(), LogIndex(31));
}

// Chunks out of order are refused, and what was held is dropped: nothing
// is installed, and the entries of the refused Ready are not written.
TEST_F(DiskStorageTest, AChunkThatDoesNotFollowIsRefusedAndNothingInstalled) {
  const std::string leader_dir = (fs::path(dir_) / "leader").string();
  const consensus::SnapshotMeta meta{LogIndex(30), Term(3), joint_conf()};
  auto leader = open_at(leader_dir);
  ASSERT_TRUE(leader->persist(entries(2, 30, 3)).ok());
  ASSERT_TRUE(leader->snapshot_saved(meta, pseudo_random_bytes(40'000, 9)).ok());
  const auto chunks = read_chunks(*leader, 8192);
  ASSERT_EQ(chunks.size(), 5u);

  auto s = open();
  ASSERT_TRUE(s->persist(entries(2, 5, 1)).ok());
  auto refused = [&](std::vector<consensus::SnapshotChunk> cs, const char* why) {
    SCOPED_TRACE(why);
    ASSERT_TRUE(s->persist(chunk_ready({chunks[0], chunks[1]})).ok());
    consensus::Ready rd = chunk_ready(std::move(cs));
    rd.entries = entries(6, 7, 1).entries;
    Status st = s->persist(rd);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("does not follow what is held"), std::string::npos) << st;
    EXPECT_EQ(s->last_index(), LogIndex(5));
    // Dropped: the next chunk in order is refused as well, and so is the
    // install.
    EXPECT_FALSE(s->persist(chunk_ready({chunks[2], chunks[3], chunks[4]})).ok());
    EXPECT_FALSE(s->persist(install_ready(meta)).ok());
    EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
    EXPECT_EQ(s->first_index(), LogIndex(1));
    EXPECT_EQ(s->last_index(), LogIndex(5));
    EXPECT_TRUE(s->snapshot_files_bytes() == 0);
  };
  refused({chunks[3]}, "a gap");
  refused({chunks[1]}, "a repeat");
  consensus::SnapshotChunk other = chunks[2];
  other.meta.index = LogIndex(31);
  refused({other}, "another snapshot");
  consensus::SnapshotChunk after_last = chunks[4];
  after_last.offset = 40'000;
  refused({chunks[2], chunks[3], chunks[4], after_last}, "after the last chunk");

  // Installing before the last chunk arrived, or a snapshot other than the
  // one received, installs nothing either.
  ASSERT_TRUE(s->persist(chunk_ready({chunks[0], chunks[1]})).ok());
  EXPECT_FALSE(s->persist(install_ready(meta)).ok());
  ASSERT_TRUE(s->persist(chunk_ready(chunks)).ok());
  consensus::SnapshotMeta wrong = meta;
  wrong.term = Term(4);
  EXPECT_FALSE(s->persist(install_ready(wrong)).ok());
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
  EXPECT_EQ(s->last_index(), LogIndex(5));
  EXPECT_FALSE(fs::exists(partial_file(dir_)));
}

// The partial file damaged before the install (a lost or corrupted write):
// refused, nothing installed.
TEST_F(DiskStorageTest, ADamagedAssembledSnapshotIsNotInstalled) {
  const std::string leader_dir = (fs::path(dir_) / "leader").string();
  const consensus::SnapshotMeta meta{LogIndex(30), Term(3), joint_conf()};
  auto leader = open_at(leader_dir);
  ASSERT_TRUE(leader->persist(entries(2, 30, 3)).ok());
  ASSERT_TRUE(leader->snapshot_saved(meta, pseudo_random_bytes(20'000, 2)).ok());
  auto s = open();
  ASSERT_TRUE(s->persist(chunk_ready(read_chunks(*leader, 4096))).ok());
  {
    std::fstream f(partial_file(dir_), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(40 + 9000);
    f.put('!');
  }
  consensus::Ready rd = install_ready(meta);
  rd.entries = entries(31, 31, 3).entries;
  Status st = s->persist(rd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::DataInconsistency);
  EXPECT_NE(st.message().find("is damaged"), std::string::npos) << st;
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
  EXPECT_EQ(s->last_index(), LogIndex(1));
  EXPECT_TRUE(s->snapshot_files_bytes() == 0);
  EXPECT_FALSE(fs::exists(partial_file(dir_)));
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
  EXPECT_EQ(s->last_index(), LogIndex(1));
}

// A snapshot of its own, written by the child process while a newer one
// arrived from the leader, must not take the log back to before it.
TEST_F(DiskStorageTest, AnOwnSnapshotOlderThanAReceivedOneIsNotRecorded) {
  const std::string leader_dir = (fs::path(dir_) / "leader").string();
  const consensus::SnapshotMeta received{LogIndex(40), Term(3), joint_conf()};
  auto leader = open_at(leader_dir);
  ASSERT_TRUE(leader->persist(entries(2, 40, 3)).ok());
  ASSERT_TRUE(leader->snapshot_saved(received, "the leader's tree at 40").ok());

  auto s = open();
  ASSERT_TRUE(s->persist(entries(2, 20, 3)).ok());
  const consensus::SnapshotMeta own{LogIndex(15), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
  ASSERT_TRUE(s->write_snapshot_file(own, "own tree at 15").ok());
  ASSERT_TRUE(s->persist(chunk_ready(read_chunks(*leader, 5))).ok());
  ASSERT_TRUE(s->persist(install_ready(received)).ok());
  Status st = s->record_snapshot(own);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not newer"), std::string::npos) << st;
  EXPECT_EQ(s->snapshot_meta(), received);
  EXPECT_EQ(s->first_index(), LogIndex(41));
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta(), received);
  EXPECT_EQ(**s->load_snapshot_payload(), "the leader's tree at 40");
}

// persist() in its two steps, as coordd runs them: write() on another
// thread leaves the view alone, which the owner goes on reading; only
// written() shows the entries and the hard state.
TEST_F(DiskStorageTest, AWriteOnAnotherThreadShowsOnlyOnceWritten) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(2, 10, 1)).ok());
  consensus::Ready rd = entries(11, 400, 2);
  rd.hard_state = consensus::HardState{Term(2), NodeId(1), LogIndex(9)};
  Status st;
  std::thread writer([&] { st = s->write(rd); });
  // What the Raft core may read meanwhile: the stable entries, unchanged.
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(s->last_index(), LogIndex(10));
    EXPECT_EQ(s->term(LogIndex(10)), Term(1));
    EXPECT_EQ(read(*s, 9, 11).size(), 2u);
  }
  writer.join();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(s->last_index(), LogIndex(10));
  EXPECT_EQ(s->hard_state().term, Term(1));
  s->written(rd);
  EXPECT_EQ(s->last_index(), LogIndex(400));
  EXPECT_EQ(s->term(LogIndex(400)), Term(2));
  EXPECT_EQ(s->hard_state().term, Term(2));
  EXPECT_EQ(read(*s, 399, 401).back().data, "e400t2");
  s.reset();
  s = open();
  EXPECT_EQ(s->last_index(), LogIndex(400));
  EXPECT_EQ(s->hard_state().commit, LogIndex(9));
}

// A snapshot of its own is recorded in two steps: the view starts after it
// at once, the store drops the entries later, queued behind the writes
// before it. A stop in between finds the entries still there.
TEST_F(DiskStorageTest, ASnapshotRecordedInTwoStepsCompactsTheStoreOnlyWhenWritten) {
  const consensus::SnapshotMeta meta{LogIndex(20), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries(2, 30, 3)).ok());
    ASSERT_TRUE(s->write_snapshot_file(meta, "tree at 20").ok());
    ASSERT_TRUE(s->begin_record_snapshot(meta).ok());
    EXPECT_EQ(s->first_index(), LogIndex(21));
    EXPECT_EQ(s->snapshot_meta(), meta);
    EXPECT_EQ(s->term(LogIndex(20)), Term(3));
    EXPECT_EQ(s->term(LogIndex(25)), Term(3));
    EXPECT_EQ(read(*s, 21, 23).front().data, "e21t3");
    // Not newer than the view's now: refused before anything is written.
    EXPECT_FALSE(s->begin_record_snapshot(meta).ok());
  }
  auto s = open();
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(0));
  EXPECT_EQ(s->first_index(), LogIndex(1));
  EXPECT_EQ(read(*s, 2, 3).front().data, "e2t3");
  ASSERT_TRUE(s->begin_record_snapshot(meta).ok());
  consensus::Ready more = entries(31, 32, 3);
  ASSERT_TRUE(s->write(more).ok());
  s->written(more);
  ASSERT_TRUE(s->write_snapshot_record(meta).ok());
  EXPECT_EQ(s->first_index(), LogIndex(21));
  EXPECT_EQ(s->last_index(), LogIndex(32));
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta(), meta);
  EXPECT_EQ(s->first_index(), LogIndex(21));
  EXPECT_EQ(s->last_index(), LogIndex(32));
  EXPECT_EQ(**s->load_snapshot_payload(), "tree at 20");
}

// The entries a snapshot covers are dropped a chunk at a time, each its own
// transaction, with log writes between; a stop before the first chunk or
// between two leaves them below the snapshot, where a restart finds them,
// serves the log from after the snapshot, and compacts them still.
TEST_F(DiskStorageTest, AStopBetweenCompactionChunksRestartsWithAConsistentLog) {
  const std::uint64_t snap_at = 3 * limits::log_compaction_chunk_entries + 7;
  const std::uint64_t last = snap_at + 50;
  const consensus::SnapshotMeta meta{LogIndex(snap_at), Term(3),
                                     consensus::ConfState{{NodeId(1)}, {}}};
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries(2, last, 3)).ok());
    ASSERT_TRUE(s->write_snapshot_file(meta, "tree").ok());
    ASSERT_TRUE(s->begin_record_snapshot(meta).ok());
    ASSERT_TRUE(s->write_snapshot_record(meta).ok());
    // Recorded, nothing dropped yet: a stop here.
    EXPECT_TRUE(s->log_compaction_pending());
  }
  auto s = open();
  EXPECT_EQ(s->snapshot_meta(), meta);
  EXPECT_EQ(s->first_index(), LogIndex(snap_at + 1));
  EXPECT_EQ(s->last_index(), LogIndex(last));
  EXPECT_EQ(s->term(LogIndex(snap_at)), Term(3));
  EXPECT_TRUE(s->log_compaction_pending());
  // One chunk, then a write between chunks, then a stop.
  auto more = s->compact_log_chunk();
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_TRUE(*more);
  ASSERT_TRUE(s->persist(entries(last + 1, last + 5, 4)).ok());
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta(), meta);
  EXPECT_EQ(s->first_index(), LogIndex(snap_at + 1));
  EXPECT_EQ(s->last_index(), LogIndex(last + 5));
  EXPECT_EQ(s->term(LogIndex(last + 1)), Term(4));
  EXPECT_EQ(read(*s, snap_at + 1, snap_at + 2).front().data,
            "e" + std::to_string(snap_at + 1) + "t3");
  EXPECT_TRUE(s->log_compaction_pending());
  // The rest: each chunk bounded, the last says so.
  int chunks = 0;
  for (bool again = true; again && chunks < 10; ++chunks) {
    auto r = s->compact_log_chunk();
    ASSERT_TRUE(r.ok()) << r.status();
    again = *r;
  }
  EXPECT_EQ(chunks, 3);
  EXPECT_FALSE(s->log_compaction_pending());
  auto none = s->compact_log_chunk();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  s.reset();
  s = open();
  EXPECT_FALSE(s->log_compaction_pending());
  EXPECT_EQ(s->first_index(), LogIndex(snap_at + 1));
  EXPECT_EQ(s->last_index(), LogIndex(last + 5));
  EXPECT_EQ(**s->load_snapshot_payload(), "tree");
}

// record_snapshot() at once (no storage thread) leaves nothing to compact.
TEST_F(DiskStorageTest, ASnapshotRecordedAtOnceCompactsEveryChunk) {
  const std::uint64_t snap_at = limits::log_compaction_chunk_entries + 10;
  auto s = open();
  ASSERT_TRUE(s->persist(entries(2, snap_at + 3, 2)).ok());
  const consensus::SnapshotMeta meta{LogIndex(snap_at), Term(2),
                                     consensus::ConfState{{NodeId(1)}, {}}};
  ASSERT_TRUE(s->snapshot_saved(meta, "tree").ok());
  EXPECT_FALSE(s->log_compaction_pending());
  s.reset();
  s = open();
  EXPECT_FALSE(s->log_compaction_pending());
  EXPECT_EQ(s->first_index(), LogIndex(snap_at + 1));
  EXPECT_EQ(s->last_index(), LogIndex(snap_at + 3));
}

// A leader's snapshot replaces the log after it at once and leaves what it
// covers to compaction, which a restart picks up.
TEST_F(DiskStorageTest, AnInstalledSnapshotLeavesTheCoveredEntriesToCompaction) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries(2, 30, 2)).ok());
    consensus::Ready install = entries(21, 22, 5);
    auto snap = std::make_shared<consensus::Snapshot>();
    snap->meta =
        consensus::SnapshotMeta{LogIndex(20), Term(4), consensus::ConfState{{NodeId(1)}, {}}};
    snap->data = "leader state at 20";
    install.snapshot = snap;
    ASSERT_TRUE(s->persist(install).ok());
    EXPECT_TRUE(s->log_compaction_pending());
    EXPECT_EQ(s->first_index(), LogIndex(21));
    EXPECT_EQ(s->last_index(), LogIndex(22));
  }
  auto s = open();
  EXPECT_TRUE(s->log_compaction_pending());
  EXPECT_EQ(s->first_index(), LogIndex(21));
  EXPECT_EQ(s->last_index(), LogIndex(22));
  // The entries after the snapshot are the leader's, not the old ones.
  EXPECT_EQ(s->term(LogIndex(21)), Term(5));
  EXPECT_EQ(read(*s, 21, 23).back().data, "e22t5");
  auto more = s->compact_log_chunk();
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_FALSE(s->log_compaction_pending());
}

// The leader's snapshot, written before the store's record of an own,
// older one: the record is refused (the store never goes back) and the
// leader's snapshot stays the log's start.
TEST_F(DiskStorageTest, AnOwnRecordQueuedBehindANewerReceivedSnapshotIsRefused) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(2, 20, 3)).ok());
  const consensus::SnapshotMeta own{LogIndex(15), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
  ASSERT_TRUE(s->write_snapshot_file(own, "own tree at 15").ok());
  consensus::Ready install = entries(41, 42, 4);
  auto snap = std::make_shared<consensus::Snapshot>();
  snap->meta =
      consensus::SnapshotMeta{LogIndex(40), Term(4), consensus::ConfState{{NodeId(1)}, {}}};
  snap->data = "leader state at 40";
  install.snapshot = snap;
  // The order coordd can produce: the leader's snapshot is out for
  // writing when the own snapshot's record begins.
  ASSERT_TRUE(s->write(install).ok());
  ASSERT_TRUE(s->begin_record_snapshot(own).ok());
  s->written(install);
  Status st = s->write_snapshot_record(own);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not newer"), std::string::npos) << st;
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(40));
  EXPECT_EQ(s->first_index(), LogIndex(41));
  EXPECT_EQ(s->last_index(), LogIndex(42));
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(40));
  EXPECT_EQ(s->last_index(), LogIndex(42));
  EXPECT_EQ(**s->load_snapshot_payload(), "leader state at 40");
}

// The leader's streamed bytes follow its latest snapshot: a newer one
// replaces what read_snapshot returns.
TEST_F(DiskStorageTest, ReadSnapshotFollowsTheLatestSnapshot) {
  auto s = open();
  EXPECT_EQ(s->snapshot_bytes(), 0u);
  ASSERT_TRUE(s->persist(entries(2, 30, 3)).ok());
  const consensus::ConfState conf{{NodeId(1)}, {}};
  ASSERT_TRUE(s->snapshot_saved({LogIndex(10), Term(3), conf}, "tree at 10").ok());
  std::string out;
  s->read_snapshot(5, 3, out);
  EXPECT_EQ(out, "at ");
  ASSERT_TRUE(s->snapshot_saved({LogIndex(20), Term(3), conf}, "the tree at 20").ok());
  EXPECT_EQ(s->snapshot_bytes(), 14u);
  out.clear();
  s->read_snapshot(4, 100, out);
  EXPECT_EQ(out, "tree at 20");
}

TEST_F(DiskStorageTest, AJointConfigurationSurvivesReopen) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(entries(2, 10, 3)).ok());
    ASSERT_TRUE(s->snapshot_saved({LogIndex(8), Term(3), joint_conf()}, "tree").ok());
  }
  auto s = open();
  EXPECT_EQ(s->snapshot_meta().conf, joint_conf());
  EXPECT_TRUE(s->snapshot_meta().conf.joint());
}

// Two real Raft cores, the whole chunk path: a leader that compacted its
// log behind a snapshot, and a new learner with an empty storage. The
// leader's core reads the snapshot through read_snapshot() a chunk at a
// time; the follower's core hands the chunks to persist() and then
// installs them; the follower ends with the leader's snapshot and log.
class TwoCores {
 public:
  TwoCores(core::ReplicaStorage& leader, core::ReplicaStorage& follower)
      : storage_{&leader, &follower} {}

  consensus::Raft& raft(int i) { return *raft_[i]; }

  void start(int i, std::size_t chunk_bytes) {
    consensus::RaftConfig c;
    c.id = NodeId(static_cast<std::uint64_t>(i + 1));
    c.snapshot_chunk_bytes = chunk_bytes;
    raft_[i] = std::make_unique<consensus::Raft>(c, *storage_[i], Random(7 + i));
  }

  // Every Ready of both cores handled as the replica does (persist, send,
  // advance) and every message delivered, a tick each round, until `done`
  // or `rounds_max` rounds.
  bool run_until(const std::function<bool()>& done, int rounds_max) {
    for (int round = 0; round < rounds_max; ++round) {
      if (done()) return true;
      for (int i = 0; i < 2; ++i) {
        if (raft_[i]) raft_[i]->tick();
      }
      for (int pass = 0; pass == 0 || (pass < 100 && !network_.empty()); ++pass) {
        for (int i = 0; i < 2; ++i)
          drain(i);
        std::vector<consensus::Message> in;
        in.swap(network_);
        for (auto& m : in) {
          const int to = static_cast<int>(m.to.value()) - 1;
          if (raft_[to]) {
            EXPECT_TRUE(raft_[to]->step(std::move(m)).ok());
          }
        }
      }
    }
    return done();
  }

  std::size_t chunks_written = 0;
  std::size_t installed_from_chunks = 0;

 private:
  void drain(int i) {
    for (int n = 0; raft_[i] && raft_[i]->has_ready() && n < 100; ++n) {
      consensus::Ready rd = raft_[i]->ready();
      chunks_written += rd.snapshot_chunks.size();
      Status s = storage_[i]->persist(rd);
      EXPECT_TRUE(s.ok()) << s;
      if (rd.snapshot && rd.snapshot_in_chunks) ++installed_from_chunks;
      for (auto& m : rd.messages)
        network_.push_back(std::move(m));
      raft_[i]->advance();
    }
  }

  core::ReplicaStorage* storage_[2];
  std::unique_ptr<consensus::Raft> raft_[2];
  std::vector<consensus::Message> network_;
};

// Drives a leader on `leader` to a compacted log with a learner, node 2,
// then brings node 2 up on `follower` and lets the snapshot stream.
void stream_between_two_cores(core::ReplicaStorage& leader, core::ReplicaStorage& follower,
                              const std::string& payload) {
  TwoCores net(leader, follower);
  net.start(0, 4096);
  net.raft(0).campaign();
  ASSERT_TRUE(net.run_until([&] { return net.raft(0).role() == consensus::Role::Leader; }, 50));
  auto committed = [&] {
    const auto st = net.raft(0).status();
    return st.commit == st.last_index && st.applied == st.commit;
  };
  ASSERT_TRUE(net.run_until(committed, 50));
  ASSERT_TRUE(
      net.raft(0).propose_conf_change({consensus::ConfChangeType::AddLearner, NodeId(2)}).ok());
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(net.raft(0).propose("command " + std::to_string(i)).ok());
  ASSERT_TRUE(net.run_until(committed, 50));
  const LogIndex at = net.raft(0).status().applied;
  const consensus::SnapshotMeta meta{at, leader.term(at),
                                     consensus::ConfState{{NodeId(1)}, {NodeId(2)}}};
  ASSERT_TRUE(leader.snapshot_saved(meta, payload).ok());
  ASSERT_EQ(leader.first_index(), at.next());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(net.raft(0).propose("after " + std::to_string(i)).ok());
  ASSERT_TRUE(net.run_until(committed, 50));

  net.start(1, 4096);
  const LogIndex last = leader.last_index();
  ASSERT_TRUE(net.run_until(
      [&] { return follower.snapshot_meta().index == at && follower.last_index() == last; }, 2000))
      << "follower at snapshot " << follower.snapshot_meta().index << ", last "
      << follower.last_index() << "; leader's last " << last;
  EXPECT_EQ(net.installed_from_chunks, 1u);
  EXPECT_GE(net.chunks_written, (payload.size() + 4095) / 4096);
  EXPECT_EQ(follower.snapshot_meta(), meta);
  const consensus::Snapshot got = follower.snapshot();
  EXPECT_EQ(got.meta, meta);
  EXPECT_TRUE(got.data == payload)
      << got.data.size() << " bytes, " << payload.size() << " expected";
  std::vector<consensus::Entry> tail;
  follower.entries(at.next(), last.next(), std::size_t{1} << 20, tail);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail.back().data, "after 2");
}

TEST_F(DiskStorageTest, TwoRaftCoresStreamASnapshotBetweenDiskStorages) {
  const std::string payload = pseudo_random_bytes(100'000, 21);
  const std::string leader_dir = (fs::path(dir_) / "leader").string();
  const std::string follower_dir = (fs::path(dir_) / "follower").string();
  {
    auto leader = open_at(leader_dir);
    auto follower = open_at(follower_dir, consensus::ConfState{});
    stream_between_two_cores(*leader, *follower, payload);
  }
  auto follower = open_at(follower_dir, consensus::ConfState{});
  EXPECT_FALSE(fs::exists(partial_file(follower_dir)));
  EXPECT_TRUE(**follower->load_snapshot_payload() == payload);
  EXPECT_EQ(follower->snapshot_meta().conf, (consensus::ConfState{{NodeId(1)}, {NodeId(2)}}));
}

TEST(MemoryStorage, TwoRaftCoresStreamASnapshotBetweenMemoryStorages) {
  core::MemoryReplicaStorage leader(consensus::ConfState{{NodeId(1)}, {}});
  core::MemoryReplicaStorage follower(consensus::ConfState{});
  stream_between_two_cores(leader, follower, pseudo_random_bytes(50'000, 4));
}

TEST(ConfStateCodec, RoundTripsAndRejectsDamage) {
  consensus::ConfState c{{NodeId(1), NodeId(2), NodeId(3)}, {NodeId(9)}};
  const std::string bytes = encode_conf_state(c);
  auto back = decode_conf_state(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(decode_conf_state(bytes.substr(0, len)).ok());
  }
  EXPECT_FALSE(decode_conf_state(bytes + "x").ok());
}

// The outgoing voters of a joint configuration are stored after the
// learners; a record without them (all records written before they were)
// still decodes, as a configuration that is not joint.
TEST(ConfStateCodec, JointConfigurationsRoundTripAndOldRecordsStillDecode) {
  const consensus::ConfState joint = joint_conf();
  const std::string bytes = encode_conf_state(joint);
  auto back = decode_conf_state(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, joint);
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    auto cut = decode_conf_state(bytes.substr(0, len));
    // Cut right after the learners it is an old, non-joint record.
    if (len == 8 + 3 * 8 + 8 + 8) {
      ASSERT_TRUE(cut.ok());
      EXPECT_FALSE(cut->joint());
      continue;
    }
    EXPECT_FALSE(cut.ok()) << len;
  }
  EXPECT_FALSE(decode_conf_state(bytes + "x").ok());

  // The layout written before joint configurations were stored.
  std::string old;
  put_be64(old, 2);
  put_be64(old, 1);
  put_be64(old, 2);
  put_be64(old, 1);
  put_be64(old, 7);
  auto decoded = decode_conf_state(old);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, (consensus::ConfState{{NodeId(1), NodeId(2)}, {NodeId(7)}}));
  // A configuration that is not joint is still written that way.
  EXPECT_EQ(encode_conf_state(*decoded), old);
  // An empty outgoing list is never written: refused, so that every
  // configuration has one encoding.
  std::string empty_outgoing = old;
  put_be64(empty_outgoing, 0);
  EXPECT_FALSE(decode_conf_state(empty_outgoing).ok());
  std::string too_many = old;
  put_be64(too_many, limits::cluster_members_max + 1);
  EXPECT_FALSE(decode_conf_state(too_many).ok());
}

}  // namespace
}  // namespace coord::io
