// Valid records of everything coordd reads back from disk, made by the real
// encoders: the seed corpora of the storage fuzz targets
// (tests/coordd_io/fuzz_corpus, written by
// COORD_WRITE_FUZZ_CORPUS=<dir> coordd_io_test --gtest_filter='*FuzzCorpus*').
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "coord/io/log_records.h"
#include "coord/io/log_store.h"
#include "coord/io/raft_storage.h"
#include "coord/io/snapshot_store.h"

namespace coord::io::fuzz {

// fuzz_log_records: the first byte picks the decoder, the rest is its input.
enum class RecordKind : std::uint8_t { Entry = 0, HardState = 1, Snapshot = 2, ConfState = 3 };
inline constexpr std::uint8_t record_kinds = 4;

inline std::string record_input(RecordKind kind, std::string_view bytes) {
  std::string out(1, static_cast<char>(kind));
  out.append(bytes);
  return out;
}

// (name, input) pairs.
inline std::vector<std::pair<std::string, std::string>> log_record_seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  const LogRecord entries[] = {{LogIndex(1), Term(1), 1, ""},
                               {LogIndex(42), Term(7), 0, "a command"},
                               {LogIndex(0x0102030405060708), Term(3), 2, std::string(300, 'z')}};
  int n = 0;
  for (const LogRecord& e : entries) {
    const std::string key = records::index_key(e.index);
    out.emplace_back(
        "entry-" + std::to_string(n++),
        record_input(RecordKind::Entry, key + records::seal(key, records::entry_body(e))));
  }
  out.emplace_back(
      "hard-state",
      record_input(RecordKind::HardState,
                   records::seal("hard_state", records::hard_state_body(
                                                   HardState{Term(5), NodeId(2), LogIndex(9)}))));
  consensus::ConfState conf{{NodeId(1), NodeId(2), NodeId(3)}, {NodeId(4)}};
  out.emplace_back(
      "snapshot",
      record_input(
          RecordKind::Snapshot,
          records::seal("snapshot", records::snapshot_body(SnapshotMeta{
                                        LogIndex(100), Term(4), encode_conf_state(conf)}))));
  out.emplace_back("conf-state", record_input(RecordKind::ConfState, encode_conf_state(conf)));
  // A joint configuration (C_old,new): its outgoing voters follow the learners.
  const consensus::ConfState joint{
      {NodeId(1), NodeId(2), NodeId(5)}, {NodeId(4)}, {NodeId(1), NodeId(2), NodeId(3)}};
  out.emplace_back("conf-state-joint",
                   record_input(RecordKind::ConfState, encode_conf_state(joint)));
  out.emplace_back(
      "snapshot-joint",
      record_input(
          RecordKind::Snapshot,
          records::seal("snapshot", records::snapshot_body(SnapshotMeta{
                                        LogIndex(200), Term(5), encode_conf_state(joint)}))));
  return out;
}

inline std::vector<std::pair<std::string, std::string>> snapshot_file_seeds() {
  std::string tree(2'000, '\0');
  for (std::size_t i = 0; i < tree.size(); ++i)
    tree[i] = static_cast<char>(i * 31);
  return {{"empty", SnapshotStore::encode(LogIndex(1), Term(1), "")},
          {"small", SnapshotStore::encode(LogIndex(77), Term(2), "a tree")},
          {"bigger", SnapshotStore::encode(LogIndex(123456), Term(9), tree)}};
}

// Real LMDB files of the log store: fresh, and after writes that grow the
// log table past one page, spill values to overflow pages and free pages.
inline std::vector<std::pair<std::string, std::string>> lmdb_file_seeds() {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, std::string>> out;
  std::string templ = (fs::temp_directory_path() / "coord-fuzz-seed-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return out;
  auto snap = [&](const std::string& name) {
    std::ifstream in(fs::path(templ) / "data.mdb", std::ios::binary);
    out.emplace_back(
        name, std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  };
  {
    auto store = LmdbLogStore::open(templ);
    if (store.ok()) {
      (void)(*store)->write(LogWrite{HardState{Term(1), NodeId(1), LogIndex(0)}, {}, {}, false});
      snap("fresh");
      LogWrite w;
      for (std::uint64_t i = 1; i <= 40; ++i) {
        w.entries.push_back(
            LogRecord{LogIndex(i), Term(1), 1, std::string(i == 20 ? 5'000 : 120, 'a')});
      }
      (void)(*store)->write(w);
      (void)(*store)->compact(LogIndex(10));
      snap("grown");
    }
  }
  fs::remove_all(templ);
  return out;
}

inline void write_corpus(const std::string& dir,
                         const std::vector<std::pair<std::string, std::string>>& seeds) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : seeds) {
    std::ofstream(std::filesystem::path(dir) / (name + ".bin"), std::ios::binary) << bytes;
  }
}

}  // namespace coord::io::fuzz
