// Snapshot files on a real file system: round trip, newest wins, pruning,
// and every kind of damage reported with the file's name.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "coord/base/bytes.h"
#include "coord/io/lmdb_check.h"
#include "coord/io/snapshot_store.h"

namespace coord::io {
namespace {

namespace fs = std::filesystem;

class SnapshotStoreTest : public ::testing::Test {
 protected:
  SnapshotStoreTest() {
    std::string templ = (fs::temp_directory_path() / "coord-snap-XXXXXX").string();
    root_ = ::mkdtemp(templ.data());
    dir_ = (fs::path(root_) / "snapshots").string();
  }
  ~SnapshotStoreTest() override { fs::remove_all(root_); }

  std::string read_file(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void write_file(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(SnapshotStoreTest, EmptyDirectoryHasNoSnapshot) {
  SnapshotStore store(dir_);
  auto latest = store.load_latest();
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->has_value());
  EXPECT_EQ(store.total_bytes(), 0u);
}

TEST_F(SnapshotStoreTest, NewestSnapshotRoundTrips) {
  SnapshotStore store(dir_);
  std::string payload(100'000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(store.save(LogIndex(10), Term(1), "old").ok());
  ASSERT_TRUE(store.save(LogIndex(300), Term(2), payload).ok());
  ASSERT_TRUE(store.save(LogIndex(20), Term(1), "middle").ok());
  auto latest = store.load_latest();
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->index, LogIndex(300));
  EXPECT_EQ((*latest)->term, Term(2));
  EXPECT_EQ((*latest)->payload, payload);
  EXPECT_EQ(*store.list(), (std::vector<LogIndex>{LogIndex(10), LogIndex(20), LogIndex(300)}));
  EXPECT_GT(store.total_bytes(), payload.size());
}

TEST_F(SnapshotStoreTest, PruneKeepsTheNewestAndRemovesStrayTemporaries) {
  SnapshotStore store(dir_);
  for (std::uint64_t i = 1; i <= 5; ++i)
    ASSERT_TRUE(store.save(LogIndex(i * 100), Term(1), "x").ok());
  write_file(store.path_of(LogIndex(900)) + ".tmp", "half written");
  ASSERT_TRUE(store.prune(2, LogIndex(500)).ok());
  EXPECT_EQ(*store.list(), (std::vector<LogIndex>{LogIndex(400), LogIndex(500)}));
  EXPECT_FALSE(fs::exists(store.path_of(LogIndex(900)) + ".tmp"));
}

TEST_F(SnapshotStoreTest, PruneNeverRemovesTheSnapshotTheLogNames) {
  // Files of higher index than the one the log's record names (left by a
  // crash before the record, or by another life of the directory) must not
  // push the named one out.
  SnapshotStore store(dir_);
  for (std::uint64_t i = 1; i <= 5; ++i)
    ASSERT_TRUE(store.save(LogIndex(i * 100), Term(1), "x").ok());
  ASSERT_TRUE(store.prune(2, LogIndex(200)).ok());
  EXPECT_EQ(*store.list(), (std::vector<LogIndex>{LogIndex(100), LogIndex(200), LogIndex(300),
                                                  LogIndex(400), LogIndex(500)}));
  ASSERT_TRUE(store.prune(1, LogIndex(300)).ok());
  EXPECT_EQ(*store.list(), (std::vector<LogIndex>{LogIndex(300), LogIndex(400), LogIndex(500)}));
  EXPECT_TRUE(store.load(LogIndex(300)).ok());
}

TEST_F(SnapshotStoreTest, EveryFlippedByteIsDetected) {
  SnapshotStore store(dir_);
  ASSERT_TRUE(store.save(LogIndex(7), Term(3), "a small tree").ok());
  const std::string path = store.path_of(LogIndex(7));
  const std::string good = read_file(path);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    write_file(path, bad);
    auto latest = store.load_latest();
    ASSERT_FALSE(latest.ok()) << "flip at byte " << i << " went unnoticed";
    EXPECT_EQ(latest.code(), ErrorCode::DataInconsistency);
    EXPECT_NE(latest.status().message().find(path), std::string::npos);
  }
}

TEST_F(SnapshotStoreTest, EveryTruncationIsDetected) {
  SnapshotStore store(dir_);
  ASSERT_TRUE(store.save(LogIndex(7), Term(3), "a small tree").ok());
  const std::string path = store.path_of(LogIndex(7));
  const std::string good = read_file(path);
  for (std::size_t len = 0; len < good.size(); ++len) {
    write_file(path, good.substr(0, len));
    auto latest = store.load_latest();
    ASSERT_FALSE(latest.ok()) << "truncation to " << len << " bytes went unnoticed";
    EXPECT_EQ(latest.code(), ErrorCode::DataInconsistency);
  }
  write_file(path, good + "extra");
  EXPECT_EQ(store.load_latest().code(), ErrorCode::DataInconsistency);
}

TEST_F(SnapshotStoreTest, AFileRenamedToAnotherIndexIsRejected) {
  SnapshotStore store(dir_);
  ASSERT_TRUE(store.save(LogIndex(7), Term(3), "tree at 7").ok());
  fs::rename(store.path_of(LogIndex(7)), store.path_of(LogIndex(8)));
  auto latest = store.load_latest();
  ASSERT_FALSE(latest.ok());
  EXPECT_NE(latest.status().message().find("index"), std::string::npos);
}

std::string pseudo_random_bytes(std::size_t n, std::uint64_t seed) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    out[i] = static_cast<char>(seed >> 56);
  }
  return out;
}

// A snapshot received in pieces becomes, byte for byte, the file save()
// writes: listed, loaded and pruned like one.
TEST_F(SnapshotStoreTest, AnIncomingSnapshotBecomesAnOrdinaryFile) {
  SnapshotStore store(dir_);
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{200'003}}) {
    SCOPED_TRACE(size);
    const std::string payload = pseudo_random_bytes(size, size);
    auto in = store.start_incoming(LogIndex(1000 + size), Term(4));
    ASSERT_TRUE(in.ok()) << in.status();
    for (std::size_t at = 0; at < payload.size(); at += 4099)
      ASSERT_TRUE(in->append(std::string_view(payload).substr(at, 4099)).ok());
    EXPECT_EQ(in->payload_bytes(), size);
    EXPECT_TRUE(fs::exists(store.incoming_path()));
    // Not a snapshot before it is installed.
    EXPECT_EQ(store.load(LogIndex(1000 + size)).code(), ErrorCode::NoNode);
    ASSERT_TRUE(in->install().ok());
    EXPECT_FALSE(fs::exists(store.incoming_path()));
    EXPECT_EQ(read_file(store.path_of(LogIndex(1000 + size))),
              SnapshotStore::encode(LogIndex(1000 + size), Term(4), payload));
    auto f = store.load(LogIndex(1000 + size));
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->term, Term(4));
    EXPECT_EQ(f->payload, payload);
  }
  EXPECT_EQ(store.list()->size(), 3u);
  ASSERT_TRUE(store.prune(1, LogIndex(1000 + 200'003)).ok());
  EXPECT_EQ(*store.list(), std::vector<LogIndex>{LogIndex(1000 + 200'003)});
}

// The partial file is neither a snapshot nor a temporary that prune()
// removes: the server takes snapshots of its own while it receives one.
TEST_F(SnapshotStoreTest, APartialSnapshotIsNotListedAndSurvivesPrune) {
  SnapshotStore store(dir_);
  ASSERT_TRUE(store.save(LogIndex(5), Term(1), "own").ok());
  auto in = store.start_incoming(LogIndex(50), Term(2));
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(in->append("first half, ").ok());
  ASSERT_TRUE(store.save(LogIndex(9), Term(1), "own, later").ok());
  ASSERT_TRUE(store.prune(1, LogIndex(9)).ok());
  EXPECT_EQ(*store.list(), std::vector<LogIndex>{LogIndex(9)});
  ASSERT_TRUE(in->append("second half").ok());
  ASSERT_TRUE(in->install().ok());
  EXPECT_EQ(store.load(LogIndex(50))->payload, "first half, second half");
  // Gone once installed; remove_incoming() of nothing is fine.
  EXPECT_TRUE(store.remove_incoming().ok());
  auto other = store.start_incoming(LogIndex(60), Term(2));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->append("abandoned").ok());
  EXPECT_TRUE(store.remove_incoming().ok());
  EXPECT_FALSE(fs::exists(store.incoming_path()));
}

// The file changed under the writer (a disk that lost or damaged a write):
// install() refuses it and nothing takes the snapshot's name.
TEST_F(SnapshotStoreTest, ADamagedIncomingSnapshotIsNotInstalled) {
  SnapshotStore store(dir_);
  const std::string payload = pseudo_random_bytes(10'000, 7);
  for (const bool truncate : {false, true}) {
    SCOPED_TRACE(truncate ? "truncated" : "a flipped byte");
    auto in = store.start_incoming(LogIndex(70), Term(3));
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(in->append(payload).ok());
    if (truncate) {
      fs::resize_file(store.incoming_path(), fs::file_size(store.incoming_path()) - 1);
    } else {
      std::fstream f(store.incoming_path(), std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(40 + 5000);
      f.put(static_cast<char>(payload[5000] ^ 1));
    }
    Status s = in->install();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ErrorCode::DataInconsistency);
    EXPECT_NE(s.message().find("received snapshot at index 70 is damaged"), std::string::npos) << s;
    EXPECT_TRUE(store.list()->empty());
    EXPECT_FALSE(fs::exists(store.path_of(LogIndex(70))));
    // Spent: nothing more is written through it.
    EXPECT_FALSE(in->append("x").ok());
  }
}

// Reading a payload in pieces gives exactly the payload load() returns;
// a damaged file is refused before any piece is read.
TEST_F(SnapshotStoreTest, PayloadReaderReadsThePayloadAtAnyOffset) {
  SnapshotStore store(dir_);
  const std::string payload = pseudo_random_bytes(100'000, 3);
  ASSERT_TRUE(store.save(LogIndex(12), Term(2), payload).ok());
  auto r = store.open_payload(LogIndex(12));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->term(), Term(2));
  ASSERT_EQ(r->payload_bytes(), payload.size());
  std::string whole;
  for (std::uint64_t at = 0; at < payload.size(); at = whole.size())
    ASSERT_TRUE(r->read(at, 3000, whole).ok());
  EXPECT_EQ(whole, payload);
  std::string piece = "kept:";
  ASSERT_TRUE(r->read(99'990, 1000, piece).ok());
  EXPECT_EQ(piece, "kept:" + payload.substr(99'990));
  EXPECT_FALSE(r->read(payload.size() + 1, 10, piece).ok());
  // Readable through the open file even once pruned away.
  ASSERT_TRUE(store.save(LogIndex(13), Term(2), "newer").ok());
  ASSERT_TRUE(store.prune(1, LogIndex(13)).ok());
  std::string again;
  ASSERT_TRUE(r->read(0, 10, again).ok());
  EXPECT_EQ(again, payload.substr(0, 10));

  EXPECT_EQ(store.open_payload(LogIndex(99)).code(), ErrorCode::NoNode);
  const std::string path = store.path_of(LogIndex(13));
  const std::string good = read_file(path);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    write_file(path, bad);
    auto opened = store.open_payload(LogIndex(13));
    ASSERT_FALSE(opened.ok()) << "flip at byte " << i << " went unnoticed";
    EXPECT_EQ(opened.code(), ErrorCode::DataInconsistency);
    EXPECT_NE(opened.status().message().find(path), std::string::npos);
  }
  for (std::size_t len = 0; len < good.size(); ++len) {
    write_file(path, good.substr(0, len));
    EXPECT_EQ(store.open_payload(LogIndex(13)).code(), ErrorCode::DataInconsistency) << len;
  }
}

}  // namespace
}  // namespace coord::io

#include "fuzz_seeds.h"

namespace coord::io {
namespace {

// COORD_WRITE_FUZZ_CORPUS=<dir> writes the seed corpora of the storage
// fuzz targets (tests/coordd_io/fuzz_corpus) from the real encoders.
TEST(StorageFuzzCorpus, WrittenWhenAsked) {
  const auto lmdb = fuzz::lmdb_file_seeds();
  ASSERT_EQ(lmdb.size(), 2u);
  for (const auto& [name, bytes] : lmdb)
    EXPECT_TRUE(check_lmdb_image(name, bytes.size(),
                                 [&](std::uint64_t off, std::size_t len, std::string& out) {
                                   if (off > bytes.size() || len > bytes.size() - off) return false;
                                   out = bytes.substr(off, len);
                                   return true;
                                 })
                    .ok());
  for (const auto& [name, bytes] : fuzz::snapshot_file_seeds()) {
    const LogIndex index(get_be64(bytes.data() + 12));
    EXPECT_TRUE(SnapshotStore::decode(bytes, index, name).ok()) << name;
  }
  const char* dir = std::getenv("COORD_WRITE_FUZZ_CORPUS");
  if (!dir) GTEST_SKIP() << "set COORD_WRITE_FUZZ_CORPUS to write the corpus";
  fuzz::write_corpus(std::string(dir) + "/log_records", fuzz::log_record_seeds());
  fuzz::write_corpus(std::string(dir) + "/snapshot_file", fuzz::snapshot_file_seeds());
  fuzz::write_corpus(std::string(dir) + "/lmdb_file", lmdb);
}

}  // namespace
}  // namespace coord::io
