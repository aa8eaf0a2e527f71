#include "check.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "coordd_core/linearizability.h"

namespace coord::faults {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* lin_check = "linearizability";
constexpr const char* seq_check = "sequential";
constexpr const char* watch_check = "watches";

// Collects anomalies, at most check_anomalies_per_key_max in detail per
// (check, key); the rest are counted into one more line.
class Anomalies {
 public:
  void add(const char* check, const std::string& key, std::string detail) {
    auto& n = count_[{check, key}];
    ++n;
    if (n <= check_anomalies_per_key_max) {
      list_.push_back({check, key, std::move(detail)});
    }
  }
  std::vector<Anomaly> take() {
    for (const auto& [ck, n] : count_) {
      if (n > check_anomalies_per_key_max) {
        list_.push_back({ck.first, ck.second,
                         std::to_string(n - check_anomalies_per_key_max) +
                             " more anomalies of this check and key, not shown"});
      }
    }
    return std::move(list_);
  }
  bool any(const char* check) const {
    return std::any_of(count_.begin(), count_.end(),
                       [&](const auto& e) { return e.first.first == check; });
  }

 private:
  std::vector<Anomaly> list_;
  std::map<std::pair<std::string, std::string>, std::size_t> count_;
};

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The sequence number a server appended to a created name: its trailing
// digits (ZooKeeper appends ten). nullopt when there are none.
std::optional<std::int64_t> sequence_of(const std::string& name) {
  std::size_t digits = 0;
  while (digits < name.size() && digits < 10 &&
         std::isdigit(static_cast<unsigned char>(name[name.size() - 1 - digits]))) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  return std::stoll(name.substr(name.size() - digits));
}

// Orders a process's records as it made them (one request in flight).
bool before_in_time(const Record* a, const Record* b) {
  const std::uint64_t ta = a->ret_ns.value_or(a->call_ns);
  const std::uint64_t tb = b->ret_ns.value_or(b->call_ns);
  if (ta != tb) return ta < tb;
  if (a->file != b->file) return a->file < b->file;
  return a->line < b->line;
}

bool is_register(Kind k) {
  return k == Kind::Create || k == Kind::Set || k == Kind::Delete || k == Kind::Read;
}

// ---- linearizability ----

std::optional<testing::lin::Op> to_lin_op(const Record& r) {
  namespace lin = testing::lin;
  lin::Op op;
  op.key = r.key;
  switch (r.kind) {
    case Kind::Create:
      op.kind = lin::Kind::Create;
      break;
    case Kind::Set:
      op.kind = lin::Kind::Set;
      break;
    case Kind::Delete:
      op.kind = lin::Kind::Delete;
      break;
    case Kind::Read:
      op.kind = lin::Kind::Read;
      break;
    default:
      return std::nullopt;
  }
  switch (r.outcome) {
    case Outcome::Ok:
      op.outcome = lin::Outcome::Ok;
      break;
    case Outcome::NodeExists:
      op.outcome = lin::Outcome::NodeExists;
      break;
    case Outcome::NoNode:
      // A create refused for want of its parent did nothing to the
      // register: outside the model, like any definite failure.
      if (r.kind == Kind::Create) return std::nullopt;
      op.outcome = lin::Outcome::NoNode;
      break;
    case Outcome::BadVersion:
      op.outcome = lin::Outcome::BadVersion;
      break;
    case Outcome::Unknown:
      // A read without a reply tells nothing.
      if (r.kind == Kind::Read) return std::nullopt;
      op.outcome = lin::Outcome::Unknown;
      break;
    case Outcome::Fail:
      return std::nullopt;
  }
  op.data = r.data;
  op.expected_version = r.expected_version;
  op.version = r.version;
  op.call = r.call_ns;
  op.ret = r.outcome == Outcome::Unknown ? lin::never : *r.ret_ns;
  op.label = r.file + ":" + std::to_string(r.line) + " " + r.process;
  if (!r.server.empty()) op.label += " on " + r.server;
  return op;
}

void check_linearizability(const std::vector<Record>& records, const CheckOptions& options,
                           LinSection& out, Anomalies& anomalies) {
  namespace lin = testing::lin;
  std::map<std::string, std::vector<lin::Op>> by_key;
  for (const Record& r : records) {
    if (!is_register(r.kind)) continue;
    if (auto op = to_lin_op(r)) {
      ++out.ops;
      by_key[r.key].push_back(std::move(*op));
    } else {
      ++out.left_out;
    }
  }
  for (auto& [key, ops] : by_key) {
    LinKey k;
    k.key = key;
    k.ops = ops.size();
    if (out.steps >= options.steps_total_max) {
      k.verdict = "unknown";
      k.explanation = "not searched: the run's budget of " +
                      std::to_string(options.steps_total_max) + " steps was spent on other keys";
      ++out.unknown_keys;
      out.keys.push_back(std::move(k));
      continue;
    }
    lin::Limits limits;
    limits.steps_max = std::min(options.steps_max, options.steps_total_max - out.steps);
    // A memoized state holds one bit per operation of the key.
    const std::size_t entry_bytes = 8 * ((ops.size() + 63) / 64) + 96;
    limits.cache_entries_max =
        std::min(options.cache_entries_max, check_cache_bytes_max / entry_bytes);
    const lin::Result res = lin::check(ops, limits);
    // One key in, at most one key out (none when nothing is left to check).
    if (!res.keys.empty()) {
      const lin::KeyResult& kr = res.keys.front();
      k.steps = kr.steps;
      out.steps += kr.steps;
      switch (kr.verdict) {
        case lin::Verdict::Linearizable:
          k.verdict = "linearizable";
          break;
        case lin::Verdict::NotLinearizable:
          k.verdict = "not_linearizable";
          k.explanation = kr.explanation;
          anomalies.add(lin_check, key, kr.explanation);
          break;
        case lin::Verdict::Unknown:
          k.verdict = "unknown";
          k.explanation = kr.explanation;
          ++out.unknown_keys;
          break;
      }
    } else {
      k.verdict = "linearizable";
    }
    out.keys.push_back(std::move(k));
  }
  if (anomalies.any(lin_check)) {
    out.verdict = Verdict::Anomalies;
  } else if (out.unknown_keys > 0) {
    out.verdict = Verdict::Unknown;
  }
}

// ---- sequential creates ----

struct Parent {
  std::vector<const Record*> ok;
  std::size_t unknown = 0;
  std::vector<const Record*> lists;  // ok listings
};

void check_parent(const std::string& key, const Parent& p, Anomalies& anomalies) {
  // Distinct paths, each with a sequence number.
  struct Created {
    const Record* r;
    std::string name;
    std::int64_t seq;
  };
  std::vector<Created> created;
  std::unordered_map<std::string, const Record*> by_name;
  for (const Record* r : p.ok) {
    std::string name = basename_of(r->path);
    auto [it, fresh] = by_name.try_emplace(name, r);
    if (!fresh) {
      anomalies.add(seq_check, key,
                    "two acknowledged creates returned the same path " + r->path + ":\n    " +
                        describe(*it->second) + "\n    " + describe(*r));
      continue;
    }
    const auto seq = sequence_of(name);
    if (!seq) {
      anomalies.add(seq_check, key, "a created path has no sequence number:\n    " + describe(*r));
      continue;
    }
    created.push_back({r, std::move(name), *seq});
  }

  // Real time: A returned before B was called => A's number is smaller.
  // Sweep B by call time, keeping the largest number among the creates
  // that returned before it.
  std::vector<const Created*> by_ret, by_call;
  for (const Created& c : created) {
    by_ret.push_back(&c);
    by_call.push_back(&c);
  }
  std::sort(by_ret.begin(), by_ret.end(),
            [](const Created* a, const Created* b) { return *a->r->ret_ns < *b->r->ret_ns; });
  std::sort(by_call.begin(), by_call.end(),
            [](const Created* a, const Created* b) { return a->r->call_ns < b->r->call_ns; });
  const Created* max_before = nullptr;
  std::size_t next = 0;
  for (const Created* b : by_call) {
    while (next < by_ret.size() && *by_ret[next]->r->ret_ns < b->r->call_ns) {
      if (max_before == nullptr || by_ret[next]->seq > max_before->seq) max_before = by_ret[next];
      ++next;
    }
    if (max_before != nullptr && max_before->seq >= b->seq) {
      anomalies.add(seq_check, key,
                    "sequence numbers against real time: the first returned before the second "
                    "was called, yet its number is not smaller:\n    " +
                        describe(*max_before->r) + "\n    " + describe(*b->r));
    }
  }

  // Listings: every acknowledged child present; extras explained by the
  // unknown creates; all listings the same.
  const Record* first = nullptr;
  std::set<std::string> first_children;
  for (const Record* list : p.lists) {
    const std::unordered_set<std::string> children(list->children.begin(), list->children.end());
    std::size_t missing = 0;
    std::string missing_detail;
    for (const Created& c : created) {
      if (*c.r->ret_ns >= list->call_ns) continue;  // may be concurrent with the listing
      if (children.count(c.name) == 0) {
        if (++missing <= check_anomalies_per_key_max) missing_detail += "\n    " + describe(*c.r);
      }
    }
    if (missing > 0) {
      anomalies.add(seq_check, key,
                    std::to_string(missing) + " acknowledged creates missing from the listing " +
                        describe(*list) + ", among them:" + missing_detail);
    }
    std::size_t extras = 0;
    std::string extra_names;
    for (const std::string& child : list->children) {
      if (by_name.count(child) == 0) {
        if (++extras <= check_anomalies_per_key_max) extra_names += " " + child;
      }
    }
    if (extras > p.unknown) {
      anomalies.add(seq_check, key,
                    "the listing " + describe(*list) + " holds " + std::to_string(extras) +
                        " children no acknowledged create returned, but only " +
                        std::to_string(p.unknown) +
                        " creates have an unknown outcome:" + extra_names);
    }
    std::set<std::string> sorted(list->children.begin(), list->children.end());
    if (first == nullptr) {
      first = list;
      first_children = std::move(sorted);
      continue;
    }
    if (sorted != first_children) {
      std::vector<std::string> only_first, only_this;
      std::set_difference(first_children.begin(), first_children.end(), sorted.begin(),
                          sorted.end(), std::back_inserter(only_first));
      std::set_difference(sorted.begin(), sorted.end(), first_children.begin(),
                          first_children.end(), std::back_inserter(only_this));
      std::ostringstream os;
      os << "two listings differ:\n    " << describe(*first) << "\n    " << describe(*list)
         << "\n  only in the first: " << only_first.size();
      for (std::size_t i = 0; i < std::min(only_first.size(), check_anomalies_per_key_max); ++i)
        os << " " << only_first[i];
      os << "\n  only in the second: " << only_this.size();
      for (std::size_t i = 0; i < std::min(only_this.size(), check_anomalies_per_key_max); ++i)
        os << " " << only_this[i];
      anomalies.add(seq_check, key, os.str());
    }
  }
}

void check_sequential(const std::vector<Record>& records, SeqSection& out, Anomalies& anomalies) {
  std::map<std::string, Parent> parents;
  for (const Record& r : records) {
    if (r.kind == Kind::SeqCreate) {
      Parent& p = parents[r.key];
      if (r.outcome == Outcome::Ok) {
        p.ok.push_back(&r);
        ++out.creates_ok;
      } else if (r.outcome == Outcome::Unknown) {
        ++p.unknown;
        ++out.creates_unknown;
      }
    } else if (r.kind == Kind::SeqList && r.outcome == Outcome::Ok) {
      parents[r.key].lists.push_back(&r);
      ++out.lists;
    }
  }
  out.parents = parents.size();
  for (const auto& [key, p] : parents)
    check_parent(key, p, anomalies);
  if (anomalies.any(seq_check)) out.verdict = Verdict::Anomalies;
}

// ---- watches ----

void check_watches(const std::vector<Record>& records, WatchSection& out, Anomalies& anomalies) {
  std::set<std::string> keys;
  for (const Record& r : records) {
    if (r.kind == Kind::WatchSeen || r.kind == Kind::WatchDone) keys.insert(r.key);
  }
  out.keys = keys.size();
  std::map<std::pair<std::string, std::string>, std::vector<const Record*>> seen;  // (key, process)
  std::map<std::string, std::map<std::int32_t, std::vector<const Record*>>> named;
  std::set<std::string> deleted;
  for (const Record& r : records) {
    if (keys.count(r.key) == 0) continue;
    switch (r.kind) {
      case Kind::WatchSeen:
        if (r.outcome != Outcome::Ok) break;
        ++out.seen;
        seen[{r.key, r.process}].push_back(&r);
        named[r.key][r.version].push_back(&r);
        break;
      case Kind::WatchDone:
        ++out.done;
        if (!r.reached) {
          anomalies.add(watch_check, r.key,
                        "watch lost: the watcher never saw the final version v" +
                            std::to_string(r.final_version) + " (last seen v" +
                            std::to_string(r.version) + "):\n    " + describe(r));
        }
        break;
      case Kind::Create:
      case Kind::Set:
      case Kind::Read:
        if (r.outcome == Outcome::Ok) named[r.key][r.version].push_back(&r);
        break;
      case Kind::Delete:
        if (r.outcome == Outcome::Ok || r.outcome == Outcome::Unknown) deleted.insert(r.key);
        break;
      default:
        break;
    }
  }
  for (auto& [kp, list] : seen) {
    std::sort(list.begin(), list.end(), before_in_time);
    const Record* highest = nullptr;
    for (const Record* r : list) {
      if (highest != nullptr && r->version < highest->version) {
        anomalies.add(watch_check, kp.first,
                      "a watcher went back from v" + std::to_string(highest->version) + " to v" +
                          std::to_string(r->version) + ":\n    " + describe(*highest) + "\n    " +
                          describe(*r));
      }
      if (highest == nullptr || r->version > highest->version) highest = r;
    }
  }
  for (const auto& [key, versions] : named) {
    if (deleted.count(key) != 0) {
      out.not_compared.push_back(key);
      continue;
    }
    for (const auto& [version, list] : versions) {
      const Record* first = list.front();
      for (const Record* r : list) {
        if (r->data != first->data) {
          anomalies.add(watch_check, key,
                        "two records name v" + std::to_string(version) +
                            " with different data:\n    " + describe(*first) + "\n    " +
                            describe(*r));
          break;
        }
      }
    }
  }
  if (anomalies.any(watch_check)) out.verdict = Verdict::Anomalies;
}

}  // namespace

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Ok:
      return "ok";
    case Verdict::Anomalies:
      return "anomalies";
    case Verdict::Unknown:
      return "unknown";
  }
  return "?";
}

int exit_code(Verdict v) {
  switch (v) {
    case Verdict::Ok:
      return 0;
    case Verdict::Anomalies:
      return 1;
    case Verdict::Unknown:
      return 3;
  }
  return 1;
}

Report check(const std::vector<Record>& records, const CheckOptions& options) {
  Report report;
  report.ops = records.size();
  Anomalies anomalies;
  check_linearizability(records, options, report.lin, anomalies);
  check_sequential(records, report.seq, anomalies);
  check_watches(records, report.watches, anomalies);
  report.anomalies = anomalies.take();
  if (!report.anomalies.empty()) {
    report.verdict = Verdict::Anomalies;
  } else if (report.lin.verdict == Verdict::Unknown) {
    report.verdict = Verdict::Unknown;
  }
  return report;
}

std::string summary(const Report& report) {
  std::ostringstream os;
  const LinSection& lin = report.lin;
  os << "linearizability: " << verdict_name(lin.verdict) << ": " << lin.ops << " register ops on "
     << lin.keys.size() << " keys (" << lin.left_out
     << " left out: definite failures and unanswered reads), " << lin.steps << " search steps";
  if (lin.unknown_keys > 0) os << ", " << lin.unknown_keys << " keys unknown";
  os << "\n";
  for (const LinKey& k : lin.keys) {
    os << "  " << k.key << ": " << k.verdict << ", " << k.ops << " ops, " << k.steps << " steps\n";
    if (k.verdict == "unknown") os << "    " << k.explanation << "\n";
  }
  const SeqSection& seq = report.seq;
  os << "sequential: " << verdict_name(seq.verdict) << ": " << seq.creates_ok
     << " acknowledged and " << seq.creates_unknown << " unknown creates, " << seq.lists
     << " listings, under " << seq.parents << " parents\n";
  const WatchSection& w = report.watches;
  os << "watches: " << verdict_name(w.verdict) << ": " << w.seen << " reads after events, "
     << w.done << " watchers done, on " << w.keys << " keys\n";
  for (const std::string& k : w.not_compared)
    os << "  " << k << ": data per version not compared (the key was deleted during the run)\n";
  if (!report.anomalies.empty()) {
    os << report.anomalies.size() << " anomalies:\n";
    for (const Anomaly& a : report.anomalies)
      os << "- " << a.check << " " << a.key << ": " << a.detail << "\n";
  }
  os << "verdict: " << verdict_name(report.verdict) << " (" << report.ops << " records)\n";
  return os.str();
}

std::string to_json(const Report& report) {
  Json j;
  j["verdict"] = verdict_name(report.verdict);
  j["ops"] = report.ops;
  Json lin;
  lin["verdict"] = verdict_name(report.lin.verdict);
  lin["ops"] = report.lin.ops;
  lin["left_out"] = report.lin.left_out;
  lin["steps"] = report.lin.steps;
  lin["unknown_keys"] = report.lin.unknown_keys;
  lin["keys"] = Json::array();
  for (const LinKey& k : report.lin.keys) {
    Json e;
    e["key"] = k.key;
    e["verdict"] = k.verdict;
    e["ops"] = k.ops;
    e["steps"] = k.steps;
    if (!k.explanation.empty()) e["explanation"] = k.explanation;
    lin["keys"].push_back(std::move(e));
  }
  Json seq;
  seq["verdict"] = verdict_name(report.seq.verdict);
  seq["parents"] = report.seq.parents;
  seq["creates_ok"] = report.seq.creates_ok;
  seq["creates_unknown"] = report.seq.creates_unknown;
  seq["lists"] = report.seq.lists;
  Json w;
  w["verdict"] = verdict_name(report.watches.verdict);
  w["keys"] = report.watches.keys;
  w["seen"] = report.watches.seen;
  w["done"] = report.watches.done;
  w["not_compared"] = report.watches.not_compared;
  j["checks"] = Json::object();
  j["checks"][lin_check] = std::move(lin);
  j["checks"][seq_check] = std::move(seq);
  j["checks"][watch_check] = std::move(w);
  j["anomalies"] = Json::array();
  for (const Anomaly& a : report.anomalies)
    j["anomalies"].push_back(Json{{"check", a.check}, {"key", a.key}, {"detail", a.detail}});
  return j.dump(2, ' ', true, Json::error_handler_t::replace) + "\n";
}

}  // namespace coord::faults
