// DiskReplicaStorage on a real LMDB and real files: what the Raft core reads
// back after writes, replaced suffixes, snapshots and reopening.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

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

  std::unique_ptr<DiskReplicaStorage> open() {
    auto s = DiskReplicaStorage::open(dir_, consensus::ConfState{{NodeId(1)}, {}},
                                      LmdbLogStore::Options{});
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

// The core streams the latest snapshot to a lagging follower through
// snapshot_bytes() and read_snapshot(): the size is that snapshot's data,
// not the bytes of every snapshot file kept (which once sent the leader
// reading past the end of the snapshot, and abort).
TEST_F(DiskStorageTest, TheLatestSnapshotIsStreamedInChunks) {
  auto s = open();
  consensus::LogStorage& core_view = *s;
  EXPECT_EQ(core_view.snapshot_bytes(), 0u);
  ASSERT_TRUE(s->persist(entries(1, 30, 2)).ok());
  const consensus::ConfState conf{{NodeId(1)}, {}};
  ASSERT_TRUE(s->snapshot_saved({LogIndex(10), Term(2), conf}, "the tree at 10").ok());
  const std::string latest = "the tree at index 20, a little longer";
  ASSERT_TRUE(s->snapshot_saved({LogIndex(20), Term(2), conf}, latest).ok());
  ASSERT_EQ(core_view.snapshot_bytes(), latest.size());
  std::string streamed;
  for (std::uint64_t offset = 0; offset < core_view.snapshot_bytes(); offset = streamed.size()) {
    const std::size_t before = streamed.size();
    core_view.read_snapshot(offset, 8, streamed);
    ASSERT_GT(streamed.size(), before);
    ASSERT_LE(streamed.size() - before, 8u);
  }
  EXPECT_EQ(streamed, latest);
  EXPECT_EQ(core_view.snapshot().data, latest);
  // The metrics still count every file kept.
  EXPECT_GT(s->snapshot_files_bytes(), latest.size() + std::string("the tree at 10").size());
}

// A follower receives a snapshot in chunks (SnapshotChunk), then a Ready
// whose snapshot has empty data and snapshot_in_chunks set: what it stores
// and installs is the chunks' bytes (it once stored the empty data, and the
// replica then failed to load it and aborted).
TEST_F(DiskStorageTest, ASnapshotStreamedInChunksIsStoredWhole) {
  auto s = open();
  ASSERT_TRUE(s->persist(entries(1, 3, 1)).ok());
  const consensus::SnapshotMeta meta{LogIndex(40), Term(3), consensus::ConfState{{NodeId(1)}, {}}};
  const std::string whole = "a snapshot sent in three chunks";
  // A transfer that starts over at offset 0 discards what came before.
  consensus::Ready stale;
  stale.snapshot_chunks.push_back({meta, 0, "stale bytes", false});
  ASSERT_TRUE(s->persist(stale).ok());
  consensus::Ready first;
  first.snapshot_chunks.push_back({meta, 0, whole.substr(0, 10), false});
  first.snapshot_chunks.push_back({meta, 10, whole.substr(10, 10), false});
  ASSERT_TRUE(s->persist(first).ok());
  consensus::Ready last;
  last.snapshot_chunks.push_back({meta, 20, whole.substr(20), true});
  auto snap = std::make_shared<consensus::Snapshot>();
  snap->meta = meta;
  last.snapshot = snap;
  last.snapshot_in_chunks = true;
  ASSERT_TRUE(s->persist(last).ok());
  EXPECT_EQ(s->snapshot_meta().index, LogIndex(40));
  EXPECT_EQ(s->snapshot().data, whole);
  s.reset();
  s = open();
  EXPECT_EQ(s->snapshot().data, whole);
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

}  // namespace
}  // namespace coord::io
