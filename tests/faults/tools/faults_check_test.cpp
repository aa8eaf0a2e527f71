// coord-faults-check's checks fed small histories: each kind of anomaly is
// caught and named, correct histories pass, and a damaged file is refused
// with its place.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "history.h"

namespace coord::faults {
namespace {

using Ret = std::optional<std::uint64_t>;

Record base(const std::string& process, Kind kind, const std::string& key, Outcome outcome,
            std::uint64_t call, Ret ret) {
  Record r;
  r.process = process;
  r.kind = kind;
  r.key = key;
  r.outcome = outcome;
  r.call_ns = call;
  r.ret_ns = ret;
  if (outcome == Outcome::Unknown) r.error = "ConnectionLoss";
  return r;
}

Record create(const std::string& p, const std::string& key, const std::string& data, Outcome o,
              std::uint64_t call, Ret ret) {
  Record r = base(p, Kind::Create, key, o, call, ret);
  r.data = data;
  return r;
}

Record set(const std::string& p, const std::string& key, const std::string& data,
           std::int32_t expected, std::int32_t version, Outcome o, std::uint64_t call, Ret ret) {
  Record r = base(p, Kind::Set, key, o, call, ret);
  r.data = data;
  r.expected_version = expected;
  r.version = version;
  return r;
}

Record read(const std::string& p, const std::string& key, const std::string& data,
            std::int32_t version, std::uint64_t call, std::uint64_t ret,
            const std::string& server = "") {
  Record r = base(p, Kind::Read, key, Outcome::Ok, call, ret);
  r.data = data;
  r.version = version;
  r.server = server;
  return r;
}

Record seq_create(const std::string& p, const std::string& token, const std::string& path,
                  Outcome o, std::uint64_t call, Ret ret) {
  Record r = base(p, Kind::SeqCreate, "/f/seq", o, call, ret);
  r.data = token;
  r.path = path;
  return r;
}

Record seq_list(const std::string& server, std::vector<std::string> children, std::uint64_t call,
                std::uint64_t ret) {
  Record r = base("final-" + server, Kind::SeqList, "/f/seq", Outcome::Ok, call, ret);
  r.children = std::move(children);
  r.server = server;
  return r;
}

Record watch_seen(const std::string& p, const std::string& key, const std::string& data,
                  std::int32_t version, std::uint64_t call, std::uint64_t ret) {
  Record r = base(p, Kind::WatchSeen, key, Outcome::Ok, call, ret);
  r.data = data;
  r.version = version;
  return r;
}

Record watch_done(const std::string& p, const std::string& key, bool reached, std::int32_t version,
                  std::int32_t final_version, std::uint64_t at) {
  Record r = base(p, Kind::WatchDone, key, Outcome::Ok, at, at);
  r.reached = reached;
  r.version = version;
  r.final_version = final_version;
  return r;
}

// Every history goes through its JSON lines first, as the program reads it.
Report run(const std::vector<Record>& records, const CheckOptions& options = {}) {
  std::vector<Record> parsed;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string line = to_json_line(records[i]);
    ParsedLine p = parse_line(line);
    EXPECT_TRUE(p.record.has_value()) << line << ": " << p.error;
    if (!p.record) continue;
    p.record->file = "h";
    p.record->line = i + 1;
    parsed.push_back(std::move(*p.record));
  }
  return check(parsed, options);
}

std::string all_details(const Report& r) {
  std::string s;
  for (const Anomaly& a : r.anomalies)
    s += a.check + " " + a.key + ": " + a.detail + "\n";
  return s;
}

bool has_anomaly(const Report& r, const std::string& check, const std::string& text) {
  for (const Anomaly& a : r.anomalies) {
    if (a.check == check && a.detail.find(text) != std::string::npos) return true;
  }
  return false;
}

// A run that did everything right, with concurrency, unknowns and failures.
std::vector<Record> good_run() {
  const std::string k = "/f/r/0";
  return {
      create("w.0", k, "w.0-1", Outcome::Ok, 100, 200),
      create("w.1", k, "w.1-1", Outcome::NodeExists, 150, 260),
      set("w.1", k, "w.1-2", 0, 1, Outcome::Ok, 300, 400),
      // Concurrent with the set: may read either value.
      read("w.0", k, "w.0-1", 0, 310, 390),
      set("w.0", k, "w.0-2", 0, 0, Outcome::BadVersion, 410, 450),
      // No reply; a later read shows it took effect.
      set("w.0", k, "w.0-3", -1, 0, Outcome::Unknown, 460, std::nullopt),
      read("w.1", k, "w.0-3", 2, 500, 520),
      // A definite failure did nothing and is left out.
      set("w.1", k, "w.1-3", -1, 0, Outcome::Fail, 530, 540),
      // Final reads on each server.
      read("final-1", k, "w.0-3", 2, 1000, 1010, "s1"),
      read("final-2", k, "w.0-3", 2, 1020, 1030, "s2"),
      seq_create("w.0", "w.0-4", "/f/seq/n0000000000", Outcome::Ok, 100, 150),
      seq_create("w.1", "w.1-4", "/f/seq/n0000000001", Outcome::Ok, 120, 170),
      seq_create("w.0", "w.0-5", "/f/seq/n0000000003", Outcome::Ok, 200, 250),
      // Unknown, and it happened: n0000000002 is its child.
      seq_create("w.1", "w.1-5", "", Outcome::Unknown, 180, std::nullopt),
      seq_list("s1", {"n0000000000", "n0000000001", "n0000000002", "n0000000003"}, 1100, 1110),
      seq_list("s2", {"n0000000003", "n0000000002", "n0000000001", "n0000000000"}, 1120, 1130),
      create("w.2", "/f/w", "a", Outcome::Ok, 10, 20),
      set("w.2", "/f/w", "b", 0, 1, Outcome::Ok, 30, 40),
      watch_seen("watcher", "/f/w", "a", 0, 25, 35),
      watch_seen("watcher", "/f/w", "b", 1, 45, 55),
      watch_done("watcher", "/f/w", true, 1, 1, 60),
  };
}

TEST(FaultsCheck, ACorrectRunPasses) {
  const Report r = run(good_run());
  EXPECT_EQ(r.verdict, Verdict::Ok) << summary(r);
  EXPECT_EQ(exit_code(r.verdict), 0);
  EXPECT_EQ(r.ops, good_run().size());
  EXPECT_EQ(r.lin.keys.size(), 2u);
  EXPECT_EQ(r.lin.left_out, 1u);  // the failed set
  EXPECT_EQ(r.seq.creates_ok, 3u);
  EXPECT_EQ(r.seq.creates_unknown, 1u);
  EXPECT_EQ(r.seq.lists, 2u);
  EXPECT_EQ(r.watches.seen, 2u);
  EXPECT_EQ(r.watches.done, 1u);
}

TEST(FaultsCheck, AStaleReadIsNotLinearizable) {
  const std::string k = "/f/r/1";
  const Report r = run({
      create("a", k, "x", Outcome::Ok, 10, 20),
      set("a", k, "y", 0, 1, Outcome::Ok, 30, 40),
      // Called after the set returned, yet it reads the value before.
      read("b", k, "x", 0, 50, 60),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_EQ(exit_code(r.verdict), 1);
  EXPECT_EQ(r.lin.verdict, Verdict::Anomalies);
  ASSERT_EQ(r.anomalies.size(), 1u) << all_details(r);
  EXPECT_EQ(r.anomalies[0].check, "linearizability");
  EXPECT_EQ(r.anomalies[0].key, k);
  // The report names the offending read with its file and line.
  EXPECT_NE(r.anomalies[0].detail.find("h:3 b"), std::string::npos) << r.anomalies[0].detail;
}

TEST(FaultsCheck, AnAcknowledgedWriteMissingFromAFinalReadIsLost) {
  const std::string k = "/f/r/2";
  const Report r = run({
      create("a", k, "x", Outcome::Ok, 10, 20),
      set("a", k, "y", 0, 1, Outcome::Ok, 30, 40),
      read("final-1", k, "y", 1, 100, 110, "s1"),
      // Server 2 lost the acknowledged set.
      read("final-2", k, "x", 0, 120, 130, "s2"),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  ASSERT_FALSE(r.anomalies.empty());
  EXPECT_TRUE(has_anomaly(r, "linearizability", "on s2")) << all_details(r);
}

TEST(FaultsCheck, AnUnknownWriteMayHaveHappenedOrNot) {
  const std::string k = "/f/r/3";
  for (const char* seen : {"x", "y"}) {
    const std::int32_t version = std::string(seen) == "x" ? 0 : 1;
    const Report r = run({
        create("a", k, "x", Outcome::Ok, 10, 20),
        set("a", k, "y", 0, 0, Outcome::Unknown, 30, std::nullopt),
        read("b", k, seen, version, 100, 110),
        read("c", k, seen, version, 120, 130),
    });
    EXPECT_EQ(r.verdict, Verdict::Ok) << seen << "\n" << summary(r);
  }
  // But not both, in that order.
  const Report r = run({
      create("a", k, "x", Outcome::Ok, 10, 20),
      set("a", k, "y", 0, 0, Outcome::Unknown, 30, std::nullopt),
      read("b", k, "y", 1, 100, 110),
      read("c", k, "x", 0, 120, 130),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
}

TEST(FaultsCheck, TwoCreatesReturningOnePathFail) {
  const Report r = run({
      seq_create("a", "a-1", "/f/seq/n0000000005", Outcome::Ok, 10, 20),
      seq_create("b", "b-1", "/f/seq/n0000000005", Outcome::Ok, 12, 22),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_TRUE(has_anomaly(r, "sequential", "same path /f/seq/n0000000005")) << all_details(r);
}

TEST(FaultsCheck, SequenceNumbersAgainstRealTimeFail) {
  const Report r = run({
      seq_create("a", "a-1", "/f/seq/n0000000007", Outcome::Ok, 10, 20),
      // Called after a's create returned, yet numbered before it.
      seq_create("b", "b-1", "/f/seq/n0000000006", Outcome::Ok, 30, 40),
      // Concurrent ones may come in either order.
      seq_create("c", "c-1", "/f/seq/n0000000009", Outcome::Ok, 50, 70),
      seq_create("d", "d-1", "/f/seq/n0000000008", Outcome::Ok, 55, 65),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  ASSERT_EQ(r.anomalies.size(), 1u) << all_details(r);
  EXPECT_TRUE(has_anomaly(r, "sequential", "against real time")) << all_details(r);
  EXPECT_NE(r.anomalies[0].detail.find("n0000000006"), std::string::npos);
}

TEST(FaultsCheck, AnAcknowledgedSequentialCreateMissingFromAListingIsLost) {
  const Report r = run({
      seq_create("a", "a-1", "/f/seq/n0000000000", Outcome::Ok, 10, 20),
      seq_create("a", "a-2", "/f/seq/n0000000001", Outcome::Ok, 30, 40),
      seq_list("s1", {"n0000000000", "n0000000001"}, 100, 110),
      seq_list("s2", {"n0000000000"}, 120, 130),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_TRUE(has_anomaly(r, "sequential", "1 acknowledged creates missing")) << all_details(r);
  EXPECT_TRUE(has_anomaly(r, "sequential", "two listings differ")) << all_details(r);
}

TEST(FaultsCheck, ChildrenNoCreateReturnedAreExplainedOnlyByUnknownCreates) {
  std::vector<Record> h = {
      seq_create("a", "a-1", "/f/seq/n0000000000", Outcome::Ok, 10, 20),
      seq_list("s1", {"n0000000000", "n0000000001"}, 100, 110),
  };
  Report r = run(h);
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_TRUE(has_anomaly(r, "sequential", "only 0 creates have an unknown outcome"))
      << all_details(r);
  h.push_back(seq_create("b", "b-1", "", Outcome::Unknown, 30, std::nullopt));
  r = run(h);
  EXPECT_EQ(r.verdict, Verdict::Ok) << summary(r);
}

TEST(FaultsCheck, AWatcherGoingBackFails) {
  const Report r = run({
      watch_seen("w", "/f/w", "b", 2, 10, 20),
      watch_seen("w", "/f/w", "a", 1, 30, 40),
      // Another watcher's order is its own.
      watch_seen("v", "/f/w", "a", 1, 5, 15),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  ASSERT_EQ(r.anomalies.size(), 1u) << all_details(r);
  EXPECT_TRUE(has_anomaly(r, "watches", "went back from v2 to v1")) << all_details(r);
}

TEST(FaultsCheck, DataThatDisagreesForOneVersionFails) {
  const Report r = run({
      create("a", "/f/w", "x", Outcome::Ok, 10, 20),
      set("a", "/f/w", "y", 0, 1, Outcome::Ok, 30, 40),
      watch_seen("w", "/f/w", "z", 1, 35, 50),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_TRUE(has_anomaly(r, "watches", "name v1 with different data")) << all_details(r);
}

TEST(FaultsCheck, DataPerVersionIsNotComparedForAKeyDeletedDuringTheRun) {
  // A deleted and re-created node starts again at version 0.
  Record del = base("a", Kind::Delete, "/f/w", Outcome::Ok, 25, 28);
  const Report r = run({
      create("a", "/f/w", "x", Outcome::Ok, 10, 20),
      del,
      create("a", "/f/w", "y", Outcome::Ok, 30, 40),
      watch_seen("w", "/f/w", "y", 0, 35, 50),
  });
  EXPECT_EQ(r.verdict, Verdict::Ok) << summary(r);
  ASSERT_EQ(r.watches.not_compared.size(), 1u);
}

TEST(FaultsCheck, AWatcherThatNeverReachedTheFinalVersionLostAWatch) {
  const Report r = run({
      watch_seen("w", "/f/w", "a", 3, 10, 20),
      watch_done("w", "/f/w", false, 3, 5, 30),
  });
  EXPECT_EQ(r.verdict, Verdict::Anomalies) << summary(r);
  EXPECT_TRUE(has_anomaly(r, "watches", "watch lost")) << all_details(r);
}

TEST(FaultsCheck, ASearchPastItsBoundIsUnknownNotAPass) {
  // Many concurrent unknown writes and a read: more steps than allowed.
  std::vector<Record> h = {create("a", "/f/r/4", "x", Outcome::Ok, 1, 2)};
  for (int i = 0; i < 12; ++i) {
    h.push_back(set("p" + std::to_string(i), "/f/r/4", "v" + std::to_string(i), -1, 0,
                    Outcome::Unknown, 10, std::nullopt));
  }
  h.push_back(read("r", "/f/r/4", "nothing-wrote-this", 3, 100, 110));
  CheckOptions tight;
  tight.steps_max = 50;
  const Report r = run(h, tight);
  EXPECT_EQ(r.verdict, Verdict::Unknown) << summary(r);
  EXPECT_EQ(exit_code(r.verdict), 3);
  EXPECT_EQ(r.lin.unknown_keys, 1u);
}

TEST(FaultsCheck, TheVerdictFileHasItsFields) {
  const Report r = run({
      create("a", "/f/r/5", "x", Outcome::Ok, 10, 20),
      read("b", "/f/r/5", "y", 0, 30, 40),
  });
  const auto j = nlohmann::json::parse(to_json(r));
  EXPECT_EQ(j["verdict"], "anomalies");
  EXPECT_EQ(j["ops"], 2);
  EXPECT_EQ(j["checks"]["linearizability"]["verdict"], "anomalies");
  EXPECT_EQ(j["checks"]["sequential"]["verdict"], "ok");
  EXPECT_EQ(j["checks"]["watches"]["verdict"], "ok");
  ASSERT_EQ(j["anomalies"].size(), 1u);
  EXPECT_EQ(j["anomalies"][0]["check"], "linearizability");
  EXPECT_EQ(j["anomalies"][0]["key"], "/f/r/5");
  EXPECT_TRUE(j["anomalies"][0]["detail"].is_string());
}

TEST(FaultsHistory, ARecordSurvivesItsLine) {
  Record r = seq_create("w.3", "w.3-9", "/f/seq/n0000000042", Outcome::Ok, 5, 9);
  r.server = "127.0.0.1:2181";
  r.session = "1a2b";
  r.note = "after a pause";
  const ParsedLine p = parse_line(to_json_line(r));
  ASSERT_TRUE(p.record) << p.error;
  EXPECT_EQ(p.record->process, "w.3");
  EXPECT_EQ(p.record->kind, Kind::SeqCreate);
  EXPECT_EQ(p.record->path, "/f/seq/n0000000042");
  EXPECT_EQ(p.record->data, "w.3-9");
  EXPECT_EQ(p.record->ret_ns, Ret(9));
  EXPECT_EQ(p.record->server, "127.0.0.1:2181");
  EXPECT_EQ(p.record->session, "1a2b");
  EXPECT_EQ(p.record->note, "after a pause");
  // An unknown outcome is written with ret_ns null.
  const std::string unknown =
      to_json_line(set("w", "/k", "v", -1, 0, Outcome::Unknown, 5, std::nullopt));
  EXPECT_NE(unknown.find("\"ret_ns\":null"), std::string::npos) << unknown;
}

TEST(FaultsHistory, LinesThatContradictTheFormatAreRefused) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"process\":\"a\"", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"f":"read","key":"/k","outcome":"ok","call_ns":1,"ret_ns":2,"data":"","version":0})",
       "missing field \"process\""},
      {R"({"process":"a","f":"write","key":"/k","outcome":"ok","call_ns":1,"ret_ns":2})",
       "unknown kind"},
      {R"({"process":"a","f":"read","key":"/k","outcome":"maybe","call_ns":1,"ret_ns":2})",
       "unknown outcome"},
      {R"({"process":"a","f":"read","key":"/k","outcome":"bad_version","call_ns":1,"ret_ns":2})",
       "impossible"},
      {R"({"process":"a","f":"set","key":"/k","data":"x","outcome":"unknown","call_ns":1,"ret_ns":2})",
       "ret_ns null"},
      {R"({"process":"a","f":"set","key":"/k","data":"x","version":1,"outcome":"ok","call_ns":1,"ret_ns":null})",
       "ret_ns is needed"},
      {R"({"process":"a","f":"set","key":"/k","data":"x","version":1,"outcome":"ok","call_ns":5,"ret_ns":2})",
       "before call_ns"},
      {R"({"process":"a","f":"set","key":"/k","data":"x","outcome":"ok","call_ns":1,"ret_ns":2})",
       "missing field \"version\""},
      {R"({"process":"a","f":"read","key":"/k","data":"x","version":"1","outcome":"ok","call_ns":1,"ret_ns":2})",
       "not an integer"},
      {R"({"process":"a","f":"seq_list","key":"/k","children":[1],"outcome":"ok","call_ns":1,"ret_ns":2})",
       "non-string"},
      {R"({"process":"a","f":"read","key":"/k","outcome":"ok","call_ns":-1,"ret_ns":2,"data":"","version":0})",
       "out of range"},
  };
  for (const auto& [line, why] : bad) {
    const ParsedLine p = parse_line(line);
    EXPECT_FALSE(p.record) << line;
    EXPECT_NE(p.error.find(why), std::string::npos) << line << " -> " << p.error;
  }
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("faults-check-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = (path_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string lines(const std::vector<Record>& records) {
  std::string s;
  for (const Record& r : records)
    s += to_json_line(r) + "\n";
  return s;
}

TEST(FaultsHistory, AMalformedLineIsNamedByFileAndLine) {
  TempDir dir;
  const std::string good = dir.write("good.jsonl", lines(good_run()));
  const std::string bad = dir.write(
      "bad.jsonl", lines({create("a", "/k", "x", Outcome::Ok, 1, 2)}) + "\n{\"process\": 3}\n");
  std::vector<Record> records;
  std::string error;
  ASSERT_TRUE(load_file(good, records, error)) << error;
  EXPECT_EQ(records.size(), good_run().size());
  EXPECT_EQ(records[4].file, good);
  EXPECT_EQ(records[4].line, 5u);
  EXPECT_FALSE(load_file(bad, records, error));
  EXPECT_NE(error.find(bad + ":3: "), std::string::npos) << error;
  EXPECT_FALSE(load_file(dir.file("absent.jsonl"), records, error));
}

TEST(FaultsHistory, LinesAndRecordsPastTheirBoundsAreRefused) {
  TempDir dir;
  const std::string one = lines({create("a", "/k", "x", Outcome::Ok, 1, 2)});
  const std::string long_data(200, 'x');
  const std::string too_long =
      dir.write("long.jsonl", one + lines({create("a", "/k", long_data, Outcome::Ok, 3, 4)}));
  LoadLimits small;
  small.line_bytes_max = 150;
  std::vector<Record> records;
  std::string error;
  EXPECT_FALSE(load_file(too_long, records, error, small));
  EXPECT_NE(error.find(too_long + ":2: line longer than 150 bytes"), std::string::npos) << error;

  // The record bound counts over every file of the run.
  const std::string first = dir.write("first.jsonl", one + one);
  const std::string second = dir.write("second.jsonl", one + one);
  small.line_bytes_max = history_line_bytes_max;
  small.records_max = 3;
  records.clear();
  ASSERT_TRUE(load_file(first, records, error, small)) << error;
  EXPECT_FALSE(load_file(second, records, error, small));
  EXPECT_NE(error.find(second + ":2: more than 3 records"), std::string::npos) << error;
}

TEST(FaultsHistory, ALastLineWithoutNewlineAndCrlfLinesAreRead) {
  TempDir dir;
  std::string text = to_json_line(create("a", "/k", "x", Outcome::Ok, 1, 2)) + "\r\n\n  \n" +
                     to_json_line(set("a", "/k", "y", 0, 1, Outcome::Ok, 3, 4));
  const std::string path = dir.write("h.jsonl", text);
  std::vector<Record> records;
  std::string error;
  ASSERT_TRUE(load_file(path, records, error)) << error;
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].line, 4u);
  EXPECT_EQ(records[1].data, "y");
}

TEST(FaultsCheck, KeysPastTheRunsStepBudgetAreUnknown) {
  CheckOptions options;
  options.steps_total_max = 2;
  const Report r = run(
      {
          create("a", "/f/r/a", "x", Outcome::Ok, 1, 2),
          read("a", "/f/r/a", "x", 0, 3, 4),
          create("a", "/f/r/b", "x", Outcome::Ok, 1, 2),
      },
      options);
  EXPECT_EQ(r.verdict, Verdict::Unknown) << summary(r);
  ASSERT_EQ(r.lin.keys.size(), 2u);
  EXPECT_EQ(r.lin.keys[1].verdict, "unknown");
  EXPECT_NE(r.lin.keys[1].explanation.find("budget of 2 steps"), std::string::npos)
      << r.lin.keys[1].explanation;
}

TEST(FaultsCheck, AnomaliesPastTheirBoundAreCounted) {
  std::vector<Record> h;
  for (int i = 0; i < 25; ++i) {
    const std::string path = "/f/seq/n" + std::to_string(1000000000 + i);
    h.push_back(seq_create("a", "a-" + std::to_string(i), path, Outcome::Ok, 10, 20));
    h.push_back(seq_create("b", "b-" + std::to_string(i), path, Outcome::Ok, 10, 20));
  }
  const Report r = run(h);
  ASSERT_EQ(r.anomalies.size(), check_anomalies_per_key_max + 1) << all_details(r);
  EXPECT_NE(r.anomalies.back().detail.find("5 more anomalies"), std::string::npos)
      << r.anomalies.back().detail;
}

// The program itself: exit codes and the verdict file.
int run_program(const std::string& args) {
  const std::string cmd = std::string(COORD_FAULTS_CHECK_BIN) + " " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FaultsCheckProgram, ExitCodesSayTheVerdict) {
  TempDir dir;
  const std::string good = dir.write("good.jsonl", lines(good_run()));
  const std::string stale = dir.write(
      "stale.jsonl",
      lines({create("a", "/k", "x", Outcome::Ok, 10, 20),
             set("a", "/k", "y", 0, 1, Outcome::Ok, 30, 40), read("b", "/k", "x", 0, 50, 60)}));
  const std::string malformed =
      dir.write("malformed.jsonl", lines(good_run()) + "{\"process\":\"a\",\"f\":\n");
  const std::string verdict = dir.file("verdict.json");
  EXPECT_EQ(run_program("--json " + verdict + " " + good), 0);
  std::ifstream in(verdict);
  const auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "ok");
  EXPECT_EQ(run_program(good + " " + stale), 1);
  EXPECT_EQ(run_program(good + " " + malformed), 2);
  EXPECT_EQ(run_program(dir.file("absent.jsonl")), 2);
  EXPECT_EQ(run_program(""), 2);  // no file named
}

}  // namespace
}  // namespace coord::faults
