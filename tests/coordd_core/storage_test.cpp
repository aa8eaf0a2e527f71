// MemoryReplicaStorage against ReplicaStorage's contract for snapshots
// streamed in chunks (coord/core/storage.h): chunks written at their
// offsets, installed once complete, refused when they do not follow.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "coord/core/storage.h"

namespace coord::core {
namespace {

using consensus::Ready;
using consensus::SnapshotChunk;
using consensus::SnapshotMeta;

const SnapshotMeta kMeta{LogIndex(30), Term(3),
                         consensus::ConfState{{NodeId(1), NodeId(2)}, {}, {NodeId(1), NodeId(3)}}};

std::vector<SnapshotChunk> chunks_of(const std::string& payload, std::size_t chunk_bytes,
                                     const SnapshotMeta& meta = kMeta) {
  std::vector<SnapshotChunk> out;
  std::size_t at = 0;
  do {
    SnapshotChunk c{meta, at, payload.substr(at, chunk_bytes), false};
    at += c.data.size();
    c.last = at >= payload.size();
    out.push_back(std::move(c));
  } while (at < payload.size());
  return out;
}

Ready with_chunks(std::vector<SnapshotChunk> chunks) {
  Ready rd;
  rd.snapshot_chunks = std::move(chunks);
  return rd;
}

Ready install(const SnapshotMeta& meta = kMeta) {
  Ready rd;
  rd.snapshot = std::make_shared<consensus::Snapshot>(consensus::Snapshot{meta, {}});
  rd.snapshot_in_chunks = true;
  return rd;
}

Ready entries(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  Ready rd;
  for (std::uint64_t i = from; i <= to; ++i)
    rd.entries.push_back(consensus::Entry{Term(term), LogIndex(i), consensus::EntryType::Normal,
                                          "e" + std::to_string(i)});
  return rd;
}

class MemoryReplicaStorageTest : public ::testing::Test {
 protected:
  MemoryReplicaStorageTest() {
    payload_.resize(10'000);
    for (std::size_t i = 0; i < payload_.size(); ++i)
      payload_[i] = static_cast<char>(i * 131 + i / 7);
    EXPECT_TRUE(s_.persist(entries(2, 5, 1)).ok());
  }

  void expect_nothing_installed() {
    EXPECT_EQ(s_.snapshot_meta().index, LogIndex(0));
    EXPECT_EQ(s_.first_index(), LogIndex(1));
    EXPECT_EQ(s_.last_index(), LogIndex(5));
  }

  MemoryReplicaStorage s_{consensus::ConfState{{NodeId(1)}, {}}};
  std::string payload_;
};

TEST_F(MemoryReplicaStorageTest, ChunksAreInstalledAsTheSnapshotOnceComplete) {
  const auto chunks = chunks_of(payload_, 1500);
  ASSERT_EQ(chunks.size(), 7u);
  ASSERT_TRUE(s_.persist(with_chunks({chunks[0], chunks[1], chunks[2]})).ok());
  expect_nothing_installed();
  ASSERT_TRUE(s_.persist(with_chunks({chunks[3], chunks[4], chunks[5], chunks[6]})).ok());
  expect_nothing_installed();
  Ready rd = install();
  rd.entries = entries(31, 32, 3).entries;
  ASSERT_TRUE(s_.persist(rd).ok());
  EXPECT_EQ(s_.snapshot_meta(), kMeta);
  EXPECT_EQ(s_.first_index(), LogIndex(31));
  EXPECT_EQ(s_.last_index(), LogIndex(32));
  EXPECT_EQ(s_.term(LogIndex(30)), Term(3));
  const consensus::Snapshot snap = s_.snapshot();
  EXPECT_EQ(snap.meta, kMeta);
  EXPECT_TRUE(snap.data == payload_);
  // And it streams on, the same bytes.
  ASSERT_EQ(s_.snapshot_bytes(), payload_.size());
  std::string relayed;
  while (relayed.size() < payload_.size())
    s_.read_snapshot(relayed.size(), 999, relayed);
  EXPECT_TRUE(relayed == payload_);
}

// A chunk at offset 0 starts over: what was held before is not part of it.
TEST_F(MemoryReplicaStorageTest, OffsetZeroStartsTheSnapshotOver) {
  const auto old = chunks_of(std::string(5000, 'x'), 1000);
  ASSERT_TRUE(s_.persist(with_chunks({old[0], old[1], old[2]})).ok());
  const std::string small = "a whole snapshot in one chunk";
  ASSERT_TRUE(s_.persist(with_chunks(chunks_of(small, 1000))).ok());
  ASSERT_TRUE(s_.persist(install()).ok());
  EXPECT_EQ(s_.snapshot().data, small);
  // An empty snapshot is one empty last chunk.
  const SnapshotMeta later{LogIndex(40), Term(3), kMeta.conf};
  ASSERT_TRUE(s_.persist(with_chunks(chunks_of("", 1000, later))).ok());
  ASSERT_TRUE(s_.persist(install(later)).ok());
  EXPECT_EQ(s_.snapshot_meta().index, LogIndex(40));
  EXPECT_EQ(s_.snapshot().data, "");
}

TEST_F(MemoryReplicaStorageTest, AChunkThatDoesNotFollowIsRefusedAndNothingInstalled) {
  const auto chunks = chunks_of(payload_, 2000);
  ASSERT_EQ(chunks.size(), 5u);
  SnapshotChunk other = chunks[2];
  other.meta.index = LogIndex(31);
  SnapshotChunk after_last = chunks[4];
  after_last.offset = payload_.size();
  const std::vector<std::pair<const char*, std::vector<SnapshotChunk>>> cases = {
      {"a gap", {chunks[3]}},
      {"a repeat", {chunks[1]}},
      {"another snapshot", {other}},
      {"after the last chunk", {chunks[2], chunks[3], chunks[4], after_last}},
  };
  for (const auto& [why, bad] : cases) {
    SCOPED_TRACE(why);
    ASSERT_TRUE(s_.persist(with_chunks({chunks[0], chunks[1]})).ok());
    Ready rd = with_chunks(bad);
    rd.entries = entries(6, 7, 1).entries;
    Status st = s_.persist(rd);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("does not follow what is held"), std::string::npos) << st;
    // The partial snapshot is dropped: continuing it fails too.
    EXPECT_FALSE(s_.persist(with_chunks({chunks[2], chunks[3], chunks[4]})).ok());
    EXPECT_FALSE(s_.persist(install()).ok());
    expect_nothing_installed();
  }
  // Nothing held at all (a restart lost it).
  MemoryReplicaStorage fresh(consensus::ConfState{{NodeId(1)}, {}});
  EXPECT_FALSE(fresh.persist(with_chunks({chunks[1]})).ok());
}

TEST_F(MemoryReplicaStorageTest, AnIncompleteOrDifferentSnapshotIsNotInstalled) {
  const auto chunks = chunks_of(payload_, 2000);
  ASSERT_TRUE(s_.persist(with_chunks({chunks[0], chunks[1]})).ok());
  Ready rd = install();
  rd.entries = entries(31, 31, 3).entries;
  EXPECT_FALSE(s_.persist(rd).ok());
  expect_nothing_installed();
  ASSERT_TRUE(s_.persist(with_chunks(chunks)).ok());
  SnapshotMeta wrong = kMeta;
  wrong.term = Term(4);
  EXPECT_FALSE(s_.persist(install(wrong)).ok());
  expect_nothing_installed();
  // Installing consumed the chunks even though it failed.
  EXPECT_FALSE(s_.persist(install()).ok());
  expect_nothing_installed();
}

}  // namespace
}  // namespace coord::core
