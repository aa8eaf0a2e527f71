#include "linearizability.h"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_set>

namespace coord::testing::lin {
namespace {

// The register: absent, or present with data (interned) and version.
struct State {
  bool exists = false;
  std::int32_t data = 0;
  std::int32_t version = 0;
  friend bool operator==(const State&, const State&) = default;
};

struct InternedOp {
  const Op* op = nullptr;
  std::int32_t data = 0;
};

bool version_matches(const State& s, std::int32_t expected) {
  return expected == -1 || s.version == expected;
}

// The state after `op` from `s`, or nullopt when the op's reply could not
// have come from `s`.
std::optional<State> step(const State& s, const InternedOp& io) {
  const Op& op = *io.op;
  switch (op.kind) {
    case Kind::Create:
      switch (op.outcome) {
        case Outcome::Ok:
          if (s.exists) return std::nullopt;
          return State{true, io.data, 0};
        case Outcome::NodeExists:
          if (!s.exists) return std::nullopt;
          return s;
        case Outcome::Unknown:
          return s.exists ? s : State{true, io.data, 0};
        default:
          return std::nullopt;
      }
    case Kind::Set:
      switch (op.outcome) {
        case Outcome::Ok:
          if (!s.exists || !version_matches(s, op.expected_version) ||
              op.version != s.version + 1) {
            return std::nullopt;
          }
          return State{true, io.data, s.version + 1};
        case Outcome::NoNode:
          if (s.exists) return std::nullopt;
          return s;
        case Outcome::BadVersion:
          if (!s.exists || version_matches(s, op.expected_version)) return std::nullopt;
          return s;
        case Outcome::Unknown:
          if (s.exists && version_matches(s, op.expected_version)) {
            return State{true, io.data, s.version + 1};
          }
          return s;
        default:
          return std::nullopt;
      }
    case Kind::Delete:
      switch (op.outcome) {
        case Outcome::Ok:
          if (!s.exists || !version_matches(s, op.expected_version)) return std::nullopt;
          return State{};
        case Outcome::NoNode:
          if (s.exists) return std::nullopt;
          return s;
        case Outcome::BadVersion:
          if (!s.exists || version_matches(s, op.expected_version)) return std::nullopt;
          return s;
        case Outcome::Unknown:
          if (s.exists && version_matches(s, op.expected_version)) return State{};
          return s;
        default:
          return std::nullopt;
      }
    case Kind::Read:
      switch (op.outcome) {
        case Outcome::Ok:
          if (!s.exists || s.data != io.data || s.version != op.version) return std::nullopt;
          return s;
        case Outcome::NoNode:
          if (s.exists) return std::nullopt;
          return s;
        default:
          return std::nullopt;
      }
  }
  return std::nullopt;
}

struct CacheKey {
  std::vector<std::uint64_t> bits;
  State state;
  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

struct CacheHash {
  std::size_t operator()(const CacheKey& k) const {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL;
    auto mix = [&](std::uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    for (std::uint64_t w : k.bits)
      mix(w);
    mix(static_cast<std::uint64_t>(k.state.exists));
    mix(static_cast<std::uint64_t>(static_cast<std::uint32_t>(k.state.data)));
    mix(static_cast<std::uint64_t>(static_cast<std::uint32_t>(k.state.version)));
    return static_cast<std::size_t>(h);
  }
};

std::string describe_state(const State& s, const std::vector<std::string>& values) {
  if (!s.exists) return "absent";
  return "\"" + values[static_cast<std::size_t>(s.data)] + "\" v" + std::to_string(s.version);
}

KeyResult check_key(const std::string& key, const std::vector<const Op*>& ops,
                    const Limits& limits) {
  KeyResult res;
  res.key = key;
  res.ops = ops.size();
  const std::size_t n = ops.size();
  if (n == 0) return res;

  std::vector<std::string> values{""};
  std::map<std::string, std::int32_t> value_ids{{"", 0}};
  auto intern = [&](const std::string& v) {
    auto [it, fresh] = value_ids.try_emplace(v, static_cast<std::int32_t>(values.size()));
    if (fresh) values.push_back(v);
    return it->second;
  };
  std::vector<InternedOp> iops(n);
  std::size_t known = 0;
  for (std::size_t i = 0; i < n; ++i) {
    iops[i] = InternedOp{ops[i], intern(ops[i]->data)};
    if (ops[i]->outcome != Outcome::Unknown) ++known;
  }

  // Events: node 0 is the head; node 1 + 2i is op i's call, 2 + 2i its
  // return. Sorted by time, calls before returns at equal times (the
  // lenient reading: such ops may overlap).
  struct Event {
    std::uint64_t time;
    bool is_return;
    std::size_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back({ops[i]->call, false, i});
    events.push_back({ops[i]->ret, true, i});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    return !a.is_return && b.is_return;
  });
  const auto node_of = [](std::size_t op, bool ret) { return 1 + 2 * op + (ret ? 1 : 0); };
  const std::size_t nodes = 1 + 2 * n;
  std::vector<std::ptrdiff_t> next(nodes, -1), prev(nodes, -1);
  std::ptrdiff_t last = 0;
  for (const Event& e : events) {
    const auto id = static_cast<std::ptrdiff_t>(node_of(e.op, e.is_return));
    next[static_cast<std::size_t>(last)] = id;
    prev[static_cast<std::size_t>(id)] = last;
    last = id;
  }
  const auto op_of = [](std::ptrdiff_t node) { return static_cast<std::size_t>(node - 1) / 2; };
  const auto is_call = [](std::ptrdiff_t node) { return (node - 1) % 2 == 0; };
  auto unlink = [&](std::ptrdiff_t x) {
    const auto ux = static_cast<std::size_t>(x);
    next[static_cast<std::size_t>(prev[ux])] = next[ux];
    if (next[ux] != -1) prev[static_cast<std::size_t>(next[ux])] = prev[ux];
  };
  auto relink = [&](std::ptrdiff_t x) {
    const auto ux = static_cast<std::size_t>(x);
    next[static_cast<std::size_t>(prev[ux])] = x;
    if (next[ux] != -1) prev[static_cast<std::size_t>(next[ux])] = x;
  };
  // Lifting an op removes its call and its return; relinking in the
  // reverse order restores the list exactly (dancing links).
  auto lift = [&](std::ptrdiff_t call) {
    unlink(call);
    unlink(call + 1);
  };
  auto unlift = [&](std::ptrdiff_t call) {
    relink(call + 1);
    relink(call);
  };

  std::vector<std::uint64_t> bits((n + 63) / 64, 0);
  std::unordered_set<CacheKey, CacheHash> cache;
  struct Frame {
    std::ptrdiff_t call;
    State before;
  };
  std::vector<Frame> stack;
  State state;
  std::size_t known_done = 0;
  bool recorded = false;
  std::size_t deepest = 0;
  std::vector<std::size_t> deepest_prefix;
  std::vector<std::size_t> deepest_candidates;
  State deepest_state;

  std::ptrdiff_t entry = next[0];
  while (known_done < known) {
    if (++res.steps > limits.steps_max || cache.size() > limits.cache_entries_max) {
      res.verdict = Verdict::Unknown;
      res.explanation = "search bound passed after " + std::to_string(res.steps) + " steps, " +
                        std::to_string(cache.size()) + " memoized states";
      return res;
    }
    if (entry != -1 && is_call(entry)) {
      const std::size_t i = op_of(entry);
      if (auto after = step(state, iops[i])) {
        bits[i / 64] |= std::uint64_t{1} << (i % 64);
        if (cache.insert(CacheKey{bits, *after}).second) {
          stack.push_back({entry, state});
          state = *after;
          if (ops[i]->outcome != Outcome::Unknown) ++known_done;
          lift(entry);
          entry = next[0];
          continue;
        }
        bits[i / 64] &= ~(std::uint64_t{1} << (i % 64));
      }
      entry = next[static_cast<std::size_t>(entry)];
      continue;
    }
    // A return whose op is not linearized yet (or the end): nothing may
    // come before it, so undo the last choice.
    if (!recorded || stack.size() > deepest) {
      recorded = true;
      deepest = stack.size();
      deepest_prefix.clear();
      for (const Frame& f : stack)
        deepest_prefix.push_back(op_of(f.call));
      deepest_candidates.clear();
      for (std::ptrdiff_t e = next[0]; e != -1 && is_call(e); e = next[static_cast<std::size_t>(e)])
        deepest_candidates.push_back(op_of(e));
      deepest_state = state;
    }
    if (stack.empty()) {
      res.verdict = Verdict::NotLinearizable;
      break;
    }
    const Frame f = stack.back();
    stack.pop_back();
    const std::size_t i = op_of(f.call);
    bits[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    if (ops[i]->outcome != Outcome::Unknown) --known_done;
    state = f.before;
    unlift(f.call);
    entry = next[static_cast<std::size_t>(f.call)];
  }
  if (res.verdict == Verdict::NotLinearizable) {
    std::ostringstream os;
    os << "key " << key << ": " << n << " ops; the longest linearizable prefix has " << deepest
       << " of them";
    const std::size_t show = std::min<std::size_t>(deepest_prefix.size(), 8);
    if (show > 0) os << ", ending with:";
    for (std::size_t k = deepest_prefix.size() - show; k < deepest_prefix.size(); ++k)
      os << "\n    " << describe(*ops[deepest_prefix[k]]);
    os << "\n  the register is then " << describe_state(deepest_state, values)
       << ", and none of these can come next:";
    for (std::size_t c : deepest_candidates)
      os << "\n    " << describe(*ops[c]);
    res.explanation = os.str();
  }
  return res;
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::Linearizable:
      return "linearizable";
    case Verdict::NotLinearizable:
      return "NOT linearizable";
    case Verdict::Unknown:
      return "unknown (search bound passed)";
  }
  return "?";
}

std::string describe(const Op& op) {
  std::ostringstream os;
  static const char* kinds[] = {"create", "set", "delete", "read"};
  static const char* outcomes[] = {"Ok", "NodeExists", "NoNode", "BadVersion", "unknown"};
  os << "[" << op.call << ", ";
  if (op.ret == never) {
    os << "never";
  } else {
    os << op.ret;
  }
  os << "] " << kinds[static_cast<int>(op.kind)] << " " << op.key;
  if (op.kind == Kind::Create || op.kind == Kind::Set) os << " \"" << op.data << "\"";
  if ((op.kind == Kind::Set || op.kind == Kind::Delete) && op.expected_version != -1) {
    os << " if v" << op.expected_version;
  }
  os << " -> " << outcomes[static_cast<int>(op.outcome)];
  if (op.kind == Kind::Read && op.outcome == Outcome::Ok) {
    os << " \"" << op.data << "\" v" << op.version;
  }
  if (op.kind == Kind::Set && op.outcome == Outcome::Ok) os << " v" << op.version;
  if (!op.label.empty()) os << "  (" << op.label << ")";
  return os.str();
}

Result check(const std::vector<Op>& history, const Limits& limits) {
  std::map<std::string, std::vector<const Op*>> by_key;
  for (const Op& op : history) {
    // A read without a reply tells nothing.
    if (op.kind == Kind::Read && op.outcome == Outcome::Unknown) continue;
    by_key[op.key].push_back(&op);
  }
  Result res;
  for (const auto& [key, ops] : by_key) {
    KeyResult k = check_key(key, ops, limits);
    if (k.verdict == Verdict::NotLinearizable) res.verdict = Verdict::NotLinearizable;
    if (k.verdict == Verdict::Unknown) {
      ++res.unknown_keys;
      if (res.verdict == Verdict::Linearizable) res.verdict = Verdict::Unknown;
    }
    res.keys.push_back(std::move(k));
  }
  return res;
}

}  // namespace coord::testing::lin
