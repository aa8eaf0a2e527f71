// coord-faults-workload: a client of a fault test that records what it did
// as a history (history.h, docs/formats/fault-history.md) for
// coord-faults-check.
//
//   coord-faults-workload --servers HOSTS --process NAME --out FILE
//       --duration-ms N --seed S [--mode registers|sequential|final]
//       [--keys K] [--prefix /faults] [--threads T]
//       [--session-timeout-ms N] [--request-timeout-ms N]
//
// Each thread is a process of its own (NAME.t) with its own Client and one
// request in flight, so its records are sequential. Modes:
//   registers   ops on PREFIX/r/0..K-1 drawn from the seed: ~50% read
//               (sync + getData), ~35% setData with the last version the
//               thread saw (or -1 one time in five), ~10% create, ~5%
//               delete with the last version seen. Every value written is
//               unique in the run (NAME.t-n).
//   sequential  PERSISTENT_SEQUENTIAL creates under PREFIX/seq, each with a
//               token unique in the run as data.
//   final       one sync + getData of each key and one getChildren of
//               PREFIX/seq, each retried until it has a definite answer;
//               run once per server, --servers naming that server only.
// A reply lost (ConnectionLoss, OperationTimeout) is "unknown"; any other
// error did nothing and is "fail"; after SessionExpired (or any final
// state) the thread opens a new session. No thread stops early on errors.
//
// Bounds: no request starts after --duration-ms; each is bounded by the
// request timeout, and closing a session by the same, so the program ends
// within the duration plus two request timeouts. Each record is flushed as
// it is written: a killed workload leaves whole lines.
// Exit: 0; 2 on bad usage or when the history cannot be written.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coord/base/error.h"
#include "coord/base/random.h"
#include "coord/client-lib/client.h"
#include "history.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using coord::faults::Kind;
using coord::faults::Outcome;
using coord::faults::Record;

// Bounds of the command line.
constexpr int workload_threads_max = 64;
constexpr int workload_keys_max = 10'000;
constexpr std::int64_t workload_duration_ms_max = 24LL * 3600 * 1000;
constexpr int workload_timeout_ms_min = 100;
constexpr int workload_timeout_ms_max = 600'000;
// The pause between two ops of a thread is drawn in [0, this].
constexpr std::uint64_t workload_pause_ms_max = 10;
// The pause before asking again: a parent not created yet, a final read
// without a definite answer.
constexpr auto retry_pause = 50ms;

constexpr int exit_usage = 2;

struct Flags {
  std::string servers;
  std::string process;
  std::string out;
  std::int64_t duration_ms = 0;
  std::uint64_t seed = 0;
  std::string mode = "registers";
  int keys = 5;
  std::string prefix = "/faults";
  int threads = 3;
  int session_timeout_ms = 6'000;
  int request_timeout_ms = 3'000;
};

std::uint64_t now_ns() {
  // steady_clock is CLOCK_MONOTONIC with libstdc++ on Linux, the clock of
  // Python's time.monotonic_ns(): the histories of both compare.
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

// One file, written by every thread; a line at a time, each flushed.
class HistoryFile {
 public:
  bool open(const std::string& path) {
    file_ = std::fopen(path.c_str(), "w");
    return file_ != nullptr;
  }
  void write(const Record& r) {
    const std::string line = coord::faults::to_json_line(r) + "\n";
    std::lock_guard lock(mu_);
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
      failed_ = true;
    }
  }
  // False when any write failed.
  bool close() {
    std::lock_guard lock(mu_);
    if (file_ == nullptr) return false;
    const bool ok = std::fclose(file_) == 0 && !failed_;
    file_ = nullptr;
    return ok;
  }

 private:
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  bool failed_ = false;
};

bool is_final_state(coord::SessionState s) {
  return s == coord::SessionState::Expired || s == coord::SessionState::Closed ||
         s == coord::SessionState::AuthFailed;
}

class Worker {
 public:
  Worker(const Flags& flags, int index, HistoryFile& history, Clock::time_point deadline)
      : flags_(flags),
        process_(flags.process + "." + std::to_string(index)),
        rng_(flags.seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(index) + 1),
        history_(history),
        deadline_(deadline) {}

  // False when a Client could not even be started (bad options).
  bool run() {
    if (!renew_client()) return false;
    if (flags_.mode == "registers") {
      ensure_path(flags_.prefix + "/r");
      while (!past_deadline()) {
        register_op();
        pause();
      }
    } else if (flags_.mode == "sequential") {
      ensure_path(flags_.prefix + "/seq");
      while (!past_deadline()) {
        seq_create();
        pause();
      }
    } else {
      final_reads();
    }
    client_.reset();  // closes the session, bounded by the request timeout
    return true;
  }

  const std::string& start_error() const { return start_error_; }

 private:
  bool past_deadline() const { return Clock::now() >= deadline_; }

  void pause() {
    const auto ms = std::chrono::milliseconds(rng_.uniform(0, workload_pause_ms_max));
    const auto until = std::min(Clock::now() + ms, deadline_);
    std::this_thread::sleep_until(until);
  }

  // Opens a new session; on failure the old Client stays (its calls fail
  // fast in its final state, and the next op tries again).
  bool renew_client() {
    coord::ClientOptions o;
    o.servers = flags_.servers;
    o.session_timeout = std::chrono::milliseconds(flags_.session_timeout_ms);
    o.request_timeout = std::chrono::milliseconds(flags_.request_timeout_ms);
    o.seed = rng_.next_u64() | 1;  // 0 would ask for a random seed
    auto c = coord::Client::start(o);
    if (!c.ok()) {
      start_error_ = c.status().to_string();
      return false;
    }
    client_ = std::move(c).value();
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    const auto wait = std::min(left, std::chrono::milliseconds(flags_.request_timeout_ms));
    if (wait > 0ms) (void)client_->wait_connected(wait);
    return true;
  }

  // After a final state (SessionExpired, ...) the next op needs a new
  // session.
  void after_reply(const coord::Status& s) {
    if (s.code() == coord::ErrorCode::SessionExpired || s.code() == coord::ErrorCode::Closing ||
        s.code() == coord::ErrorCode::AuthFailed || is_final_state(client_->state())) {
      if (!renew_client()) {
        // Options that worked once do not stop working; keep the last
        // error for the report and go on with whatever client we have.
        std::fprintf(stderr, "coord-faults-workload: %s: new session: %s\n", process_.c_str(),
                     start_error_.c_str());
      }
    }
  }

  Record begin(Kind kind, const std::string& key) {
    Record r;
    r.process = process_;
    r.kind = kind;
    r.key = key;
    r.call_ns = now_ns();
    return r;
  }

  // Fills the outcome of a reply and writes the record.
  void finish(Record& r, const coord::Status& s) {
    const std::uint64_t ret = now_ns();
    switch (s.code()) {
      case coord::ErrorCode::Ok:
        r.outcome = Outcome::Ok;
        break;
      case coord::ErrorCode::NodeExists:
        r.outcome = Outcome::NodeExists;
        break;
      case coord::ErrorCode::NoNode:
        r.outcome = Outcome::NoNode;
        break;
      case coord::ErrorCode::BadVersion:
        r.outcome = Outcome::BadVersion;
        break;
      case coord::ErrorCode::ConnectionLoss:
      case coord::ErrorCode::OperationTimeout:
        r.outcome = Outcome::Unknown;
        break;
      default:
        r.outcome = Outcome::Fail;
        break;
    }
    if (r.outcome == Outcome::Unknown || r.outcome == Outcome::Fail) {
      r.error = std::string(coord::error_name(s.code()));
    }
    if (r.outcome != Outcome::Unknown) r.ret_ns = ret;
    if (client_) {
      r.server = client_->connected_server();
      const auto sid = client_->session_id().value();
      if (sid != 0) {
        char hex[32];
        std::snprintf(hex, sizeof hex, "%" PRIx64, static_cast<std::uint64_t>(sid));
        r.session = hex;
      }
    }
    history_.write(r);
    after_reply(s);
  }

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(flags_.request_timeout_ms);
  }

  // Creates `path` and its ancestors; NodeExists is success. Not recorded:
  // the parents are scaffolding, outside every register. Retried until it
  // holds or the deadline.
  void ensure_path(const std::string& path) {
    std::size_t at = 1;
    while (at <= path.size() && !past_deadline()) {
      const std::size_t slash = path.find('/', at);
      const std::string part = path.substr(0, slash == std::string::npos ? path.size() : slash);
      auto r = client_->run(coord::ops::Create{part, coord::Data{""}}, timeout());
      if (r.ok() || r.code() == coord::ErrorCode::NodeExists) {
        if (slash == std::string::npos) return;
        at = slash + 1;
        continue;
      }
      after_reply(r.status());
      std::this_thread::sleep_until(std::min(Clock::now() + retry_pause, deadline_));
    }
  }

  std::string key(std::uint64_t i) const { return flags_.prefix + "/r/" + std::to_string(i); }
  std::string next_value() { return process_ + "-" + std::to_string(++written_); }

  // sync then getData on this session: a linearizable read in coord (and
  // in ZooKeeper). Returns the outcome.
  Outcome read(const std::string& k, const std::string& note = {}) {
    Record r = begin(Kind::Read, k);
    r.note = note;
    auto s = client_->run(coord::ops::Sync{k}, timeout());
    if (!s.ok()) {
      finish(r, s.status());
      return r.outcome;
    }
    auto g = client_->run(coord::ops::GetData{k}, timeout());
    if (g.ok()) {
      r.data = g->data.value_or("");
      r.version = g->stat.version;
      last_seen_[k] = r.version;
    } else if (g.code() == coord::ErrorCode::NoNode) {
      last_seen_.erase(k);
    }
    finish(r, g.status());
    return r.outcome;
  }

  void register_op() {
    const std::string k = key(rng_.below(static_cast<std::uint64_t>(flags_.keys)));
    const std::uint64_t dice = rng_.below(100);
    const auto seen = last_seen_.find(k);
    const std::int32_t last = seen == last_seen_.end() ? -1 : seen->second;
    if (dice < 50) {
      read(k);
    } else if (dice < 85) {
      Record r = begin(Kind::Set, k);
      r.data = next_value();
      r.expected_version = rng_.chance(1, 5) ? -1 : last;
      auto res =
          client_->run(coord::ops::SetData{k, coord::Data{r.data}, r.expected_version}, timeout());
      if (res.ok()) {
        r.version = res->version;
        last_seen_[k] = r.version;
      } else if (res.code() == coord::ErrorCode::NoNode) {
        last_seen_.erase(k);
      }
      finish(r, res.status());
    } else if (dice < 95) {
      Record r = begin(Kind::Create, k);
      r.data = next_value();
      auto res = client_->run(coord::ops::Create{k, coord::Data{r.data}}, timeout());
      if (res.ok()) last_seen_[k] = 0;
      finish(r, res.status());
    } else {
      Record r = begin(Kind::Delete, k);
      r.expected_version = last;
      auto res = client_->run(coord::ops::Delete{k, r.expected_version}, timeout());
      if (res.ok() || res.code() == coord::ErrorCode::NoNode) last_seen_.erase(k);
      finish(r, res.status());
    }
  }

  void seq_create() {
    const std::string parent = flags_.prefix + "/seq";
    Record r = begin(Kind::SeqCreate, parent);
    r.data = next_value();
    auto res = client_->run(coord::ops::Create{parent + "/n", coord::Data{r.data},
                                               coord::CreateMode::PersistentSequential},
                            timeout());
    if (res.ok()) r.path = res->path;
    finish(r, res.status());
  }

  static bool definite(Outcome o) { return o == Outcome::Ok || o == Outcome::NoNode; }

  void final_reads() {
    for (int i = 0; i < flags_.keys; ++i) {
      while (!past_deadline() && !definite(read(key(static_cast<std::uint64_t>(i)), "final"))) {
        std::this_thread::sleep_until(std::min(Clock::now() + retry_pause, deadline_));
      }
    }
    const std::string parent = flags_.prefix + "/seq";
    while (!past_deadline()) {
      Record r = begin(Kind::SeqList, parent);
      r.note = "final";
      auto res = client_->run(coord::ops::GetChildren{parent}, timeout());
      if (res.ok()) r.children = *res;
      finish(r, res.status());
      if (definite(r.outcome)) break;
      std::this_thread::sleep_until(std::min(Clock::now() + retry_pause, deadline_));
    }
  }

  const Flags& flags_;
  const std::string process_;
  coord::Random rng_;
  HistoryFile& history_;
  const Clock::time_point deadline_;
  std::unique_ptr<coord::Client> client_;
  std::map<std::string, std::int32_t> last_seen_;
  std::uint64_t written_ = 0;
  std::string start_error_;
};

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"coord-faults-workload: a fault test's client, recording a history"};
  app.add_option("--servers", f.servers, "host:port,host:port,...")->required();
  app.add_option("--process", f.process, "name of this client; threads are NAME.0, NAME.1, ...")
      ->required();
  app.add_option("--out", f.out, "history file to write (JSON lines)")->required();
  app.add_option("--duration-ms", f.duration_ms, "no request starts after this")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, workload_duration_ms_max));
  app.add_option("--seed", f.seed, "seed of the op choices and pauses")->required();
  app.add_option("--mode", f.mode)
      ->check(CLI::IsMember({"registers", "sequential", "final"}))
      ->capture_default_str();
  app.add_option("--keys", f.keys, "registers PREFIX/r/0..K-1")
      ->check(CLI::Range(1, workload_keys_max))
      ->capture_default_str();
  app.add_option("--prefix", f.prefix, "znode under which the workload works")
      ->capture_default_str();
  app.add_option("--threads", f.threads, "clients, each a process of its own (final mode: 1)")
      ->check(CLI::Range(1, workload_threads_max))
      ->capture_default_str();
  app.add_option("--session-timeout-ms", f.session_timeout_ms)
      ->check(CLI::Range(workload_timeout_ms_min, workload_timeout_ms_max))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", f.request_timeout_ms)
      ->check(CLI::Range(workload_timeout_ms_min, workload_timeout_ms_max))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : exit_usage;
  }
  if (f.prefix.size() < 2 || f.prefix.front() != '/' || f.prefix.back() == '/') {
    std::fprintf(stderr, "coord-faults-workload: --prefix must be an absolute znode path\n");
    return exit_usage;
  }
  if (f.mode == "final") f.threads = 1;

  HistoryFile history;
  if (!history.open(f.out)) {
    std::fprintf(stderr, "coord-faults-workload: cannot write %s\n", f.out.c_str());
    return exit_usage;
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(f.duration_ms);
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> bad_options{false};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < f.threads; ++t) {
      workers.push_back(std::make_unique<Worker>(f, t, history, deadline));
      threads.emplace_back([&, w = workers.back().get()] {
        if (!w->run()) bad_options = true;
      });
    }
  }
  const bool written = history.close();
  if (bad_options) {
    for (const auto& w : workers) {
      if (!w->start_error().empty()) {
        std::fprintf(stderr, "coord-faults-workload: %s\n", w->start_error().c_str());
        break;
      }
    }
    return exit_usage;
  }
  if (!written) {
    std::fprintf(stderr, "coord-faults-workload: writing %s failed\n", f.out.c_str());
    return exit_usage;
  }
  return 0;
}
