// Quotas: ZooKeeper's limits and stats nodes, kept by the tree.
//
// A quota on the subtree at P is the node /zookeeper/quota<P>/zookeeper_limits;
// its usage is the data of /zookeeper/quota<P>/zookeeper_stats. `quotas`
// indexes both by P so that a write finds the quotas above its path with a
// few lookups and no string building; an empty index costs a write one
// branch. The usage text itself is the state (replicated, in snapshots, in
// the digest), so nothing here needs saving.
#include <charconv>

#include "coord/base/assert.h"
#include "tree_impl.h"

namespace coord::znode {

std::string describe(const QuotaNotice& n) {
  const char* unit = n.kind == QuotaNotice::Kind::Count ? " nodes" : " bytes";
  const char* which = n.hard ? "hard" : "soft";
  std::string s = "quota of " + n.path + ": ";
  if (n.refused) {
    s += "refused a change that would make it " + std::to_string(n.usage) + unit +
         ", over its hard limit of " + std::to_string(n.limit);
  } else {
    s += std::to_string(n.usage) + unit + ", over its " + which + " limit of " +
         std::to_string(n.limit);
    if (n.hard) s += " (not enforced)";
  }
  return s;
}

namespace detail {
namespace {

constexpr std::string_view kQuotaDir = "/zookeeper/quota";
constexpr std::string_view kLimitsName = "zookeeper_limits";
constexpr std::string_view kStatsName = "zookeeper_stats";
constexpr std::string_view kCount = "count";
constexpr std::string_view kBytes = "bytes";
constexpr std::string_view kCountHard = "countHardLimit";
constexpr std::string_view kBytesHard = "byteHardLimit";

enum class QuotaNode : std::uint8_t { None, Limits, Stats };

// For /zookeeper/quota<P>/zookeeper_limits or .../zookeeper_stats: which one,
// and P in `root`. A quota node directly under /zookeeper/quota names no
// subtree; 3.8 ignores it, and so does this.
QuotaNode quota_node_of(std::string_view path, std::string_view* root) {
  if (path.size() <= kQuotaDir.size() + 1 || path[kQuotaDir.size()] != '/' ||
      path.compare(0, kQuotaDir.size(), kQuotaDir) != 0) {
    return QuotaNode::None;
  }
  const std::size_t slash = path.rfind('/');
  if (slash <= kQuotaDir.size()) return QuotaNode::None;
  const std::string_view name = path.substr(slash + 1);
  const QuotaNode kind = name == kLimitsName  ? QuotaNode::Limits
                         : name == kStatsName ? QuotaNode::Stats
                                              : QuotaNode::None;
  if (kind != QuotaNode::None) *root = path.substr(kQuotaDir.size(), slash - kQuotaDir.size());
  return kind;
}

// Java's Long.parseLong over ASCII digits: an optional sign, then digits.
std::optional<std::int64_t> parse_long(std::string_view s) {
  if (!s.empty() && s[0] == '+') {
    s.remove_prefix(1);
    if (s.empty() || s[0] == '-') return std::nullopt;
  }
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Java's String.split: pieces between separators, trailing empty ones dropped.
template <typename IsSep>
std::vector<std::string_view> java_split(std::string_view s, IsSep is_sep, bool runs) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_sep(s[i])) continue;
    out.push_back(s.substr(start, i - start));
    if (runs) {
      while (i + 1 < s.size() && is_sep(s[i + 1]))
        ++i;
    }
    start = i + 1;
  }
  out.push_back(s.substr(start));
  while (!out.empty() && out.back().empty())
    out.pop_back();
  return out;
}

// Overflow wraps, as Java's long arithmetic does; never undefined.
std::int64_t add_wrapping(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

struct Usage {
  std::int64_t count = 0;
  std::int64_t bytes = 0;
};

std::optional<QuotaText> text_of(const Node* n) {
  if (n == nullptr) return std::nullopt;
  return QuotaText::parse(std::string_view(n->data, n->data_len));
}

std::string usage_text(Usage u) {
  QuotaText t;
  t.set(kCount, u.count);
  t.set(kBytes, u.bytes);
  return t.format();
}

}  // namespace

// ---------------------------------------------------------------------------
// QuotaText
// ---------------------------------------------------------------------------

std::optional<QuotaText> QuotaText::parse(std::string_view text) {
  QuotaText t;
  if (text.empty()) return t;
  for (std::string_view pair : java_split(
           text, [](char c) { return c == ',' || c == ';'; }, true)) {
    const auto kv = java_split(
        pair, [](char c) { return c == '='; }, false);
    if (kv.size() < 2) return std::nullopt;
    std::int64_t value = -1;
    if (!kv[1].empty()) {
      auto v = parse_long(kv[1]);
      if (!v) return std::nullopt;
      value = *v;
    }
    t.set(kv[0], value);
  }
  return t;
}

bool QuotaText::has(std::string_view key) const {
  return fields_.find(key) != fields_.end();
}

std::int64_t QuotaText::get(std::string_view key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? -1 : it->second;
}

void QuotaText::set(std::string_view key, std::int64_t value) {
  auto it = fields_.find(key);
  if (it == fields_.end()) {
    fields_.emplace(std::string(key), value);
  } else {
    it->second = value;
  }
}

std::string QuotaText::format() const {
  // count and bytes first and the '=' before the others: the form 3.4's
  // parser still reads, which 3.8 keeps writing.
  std::string s = "count=" + std::to_string(get(kCount)) + ",bytes=" + std::to_string(get(kBytes));
  bool first = true;
  for (const auto& [key, value] : fields_) {
    if (key == kCount || key == kBytes) continue;
    if (first) s += '=';
    first = false;
    s += ';';
    s += key;
    s += '=';
    s += std::to_string(value);
  }
  return s;
}

// ---------------------------------------------------------------------------
// TreeImpl: the quota index and the usage
// ---------------------------------------------------------------------------

namespace {

// Calls fn(root, entry) for every quota at or above `path`, the shallowest
// first. Few quotas: scan them; many: look up each prefix of the path.
template <typename Map, typename Fn>
void for_each_quota(Map& quotas, std::string_view path, Fn&& fn) {
  auto covers = [&](std::string_view root) {
    return path.size() >= root.size() && path.compare(0, root.size(), root) == 0 &&
           (path.size() == root.size() || path[root.size()] == '/');
  };
  constexpr std::size_t kScanMax = 8;
  if (quotas.size() <= kScanMax) {
    // Map order puts a prefix before its extensions: shallowest first here
    // too.
    for (auto& [root, q] : quotas) {
      if (q.limits != nullptr && covers(root)) fn(std::string_view(root), q);
    }
    return;
  }
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    auto it = quotas.find(path.substr(0, i));
    if (it != quotas.end() && it->second.limits != nullptr)
      fn(std::string_view(it->first), it->second);
  }
}

Usage count_subtree(const TreeImpl& t, std::string_view root) {
  Usage u;
  const Node* top = t.lookup(root);
  if (top == nullptr) return u;
  std::vector<const Node*> stack{top};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    ++u.count;
    u.bytes += n->data_len;
    for (const Node* c = n->first_child; c != nullptr; c = c->next_sibling)
      stack.push_back(c);
  }
  return u;
}

// The usage a stats node holds, or nullopt when its text lacks a number.
std::optional<Usage> usage_of(const Node* stats) {
  auto t = text_of(stats);
  if (!t || !t->has(kCount) || !t->has(kBytes)) return std::nullopt;
  return Usage{t->get(kCount), t->get(kBytes)};
}

}  // namespace

void TreeImpl::quota_link(Node* n) {
  std::string_view root;
  const QuotaNode kind = quota_node_of(n->path(), &root);
  if (kind == QuotaNode::None) return;
  auto [it, inserted] = quotas.try_emplace(std::string(root));
  (kind == QuotaNode::Limits ? it->second.limits : it->second.stats) = n;
}

void TreeImpl::quota_unlink(Node* n) {
  std::string_view root;
  const QuotaNode kind = quota_node_of(n->path(), &root);
  if (kind == QuotaNode::None) return;
  auto it = quotas.find(root);
  COORD_ASSERT(it != quotas.end(), "quota index out of step for ", n->path());
  (kind == QuotaNode::Limits ? it->second.limits : it->second.stats) = nullptr;
  if (it->second.limits == nullptr && it->second.stats == nullptr) quotas.erase(it);
}

ErrorCode TreeImpl::quota_check(std::string_view path, std::int64_t count, std::int64_t bytes) {
  if (!config.enforce_quota || quotas.empty() || (count <= 0 && bytes <= 0)) {
    return ErrorCode::Ok;
  }
  ErrorCode result = ErrorCode::Ok;
  for_each_quota(quotas, path, [&](std::string_view root, QuotaRoot& q) {
    if (result != ErrorCode::Ok || q.stats == nullptr) return;
    const auto limits = text_of(q.limits);
    if (!limits) return;
    auto held = usage_of(q.stats);
    const Usage now = held ? *held : count_subtree(*this, root);
    auto refuse = [&](QuotaNotice::Kind kind, std::int64_t used, std::int64_t diff,
                      std::string_view key) {
      const std::int64_t hard = limits->get(key);
      const std::int64_t after = add_wrapping(used, diff);
      if (result != ErrorCode::Ok || diff <= 0 || hard < 0 || after <= hard) return;
      notices.push_back(QuotaNotice{std::string(root), kind, true, true, after, hard});
      result = ErrorCode::QuotaExceeded;
    };
    refuse(QuotaNotice::Kind::Count, now.count, count, kCountHard);
    refuse(QuotaNotice::Kind::Bytes, now.bytes, bytes, kBytesHard);
  });
  return result;
}

void TreeImpl::quota_account(std::string_view path, std::int64_t count, std::int64_t bytes,
                             std::vector<Undo>* undo) {
  if (quotas.empty()) return;
  for_each_quota(quotas, path, [&](std::string_view root, QuotaRoot& q) {
    if (q.stats == nullptr) return;
    auto text = text_of(q.stats);
    Usage after;
    if (text && text->has(kCount) && text->has(kBytes)) {
      after = Usage{add_wrapping(text->get(kCount), count), add_wrapping(text->get(kBytes), bytes)};
      text->set(kCount, after.count);
      text->set(kBytes, after.bytes);
      quota_write_stats(q.stats, text->format(), undo);
    } else {
      // Text nobody can add to (written by a client): start again from the
      // subtree as it now stands, which every replica sees alike.
      after = count_subtree(*this, root);
      quota_write_stats(q.stats, usage_text(after), undo);
    }
    if (count <= 0 && bytes <= 0) return;
    const auto limits = text_of(q.limits);
    if (!limits) return;
    auto report = [&](QuotaNotice::Kind kind, std::int64_t used, std::int64_t diff,
                      std::string_view key, bool hard) {
      const std::int64_t limit = limits->get(key);
      if (diff > 0 && limit >= 0 && used > limit) {
        notices.push_back(QuotaNotice{std::string(root), kind, hard, false, used, limit});
      }
    };
    report(QuotaNotice::Kind::Count, after.count, count, kCount, false);
    report(QuotaNotice::Kind::Bytes, after.bytes, bytes, kBytes, false);
    if (!config.enforce_quota) {
      report(QuotaNotice::Kind::Count, after.count, count, kCountHard, true);
      report(QuotaNotice::Kind::Bytes, after.bytes, bytes, kBytesHard, true);
    }
  });
}

void TreeImpl::quota_node_written(Node* n, bool created, std::vector<Undo>* undo) {
  std::string_view root;
  const QuotaNode kind = quota_node_of(n->path(), &root);
  // 3.8 counts when the stats node is created; a quota set or changed
  // (the limits node) counts again, so that usage is right from then on
  // whatever the stats node held.
  if (kind == QuotaNode::Stats ? created : kind == QuotaNode::Limits) {
    quota_recount(root, undo);
  }
}

void TreeImpl::quota_recount(std::string_view root, std::vector<Undo>* undo) {
  auto it = quotas.find(root);
  if (it == quotas.end() || it->second.stats == nullptr) return;
  quota_write_stats(it->second.stats, usage_text(count_subtree(*this, root)), undo);
}

void TreeImpl::quota_recount_all() {
  for (auto& [root, q] : quotas) {
    if (q.limits != nullptr && q.stats != nullptr) {
      quota_write_stats(q.stats, usage_text(count_subtree(*this, root)), nullptr);
    }
  }
}

void TreeImpl::quota_write_stats(Node* s, const std::string& text, std::vector<Undo>* undo) {
  if (!s->null_data && std::string_view(s->data, s->data_len) == text) return;
  digest_remove(*s);
  data_bytes -= s->data_len;
  if (undo != nullptr) {
    Undo u{Undo::Kind::Data};
    u.node = s;
    u.data = s->data;
    u.data_len = s->data_len;
    u.null_data = s->null_data;
    u.version = s->version;
    u.mzxid = s->mzxid;
    u.mtime = s->mtime;
    undo->push_back(u);
    s->data = nullptr;  // the old buffer now belongs to the undo record
    s->data_len = 0;
  }
  set_data(s, text);
  data_bytes += s->data_len;
  digest_add(*s);
}

}  // namespace detail
}  // namespace coord::znode
