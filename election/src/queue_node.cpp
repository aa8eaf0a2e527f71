#include "coord/election/queue_node.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

namespace coord::recipe {

namespace {

// Attempts of one create before giving up (each after a lost connection or
// a parent container reaped under us).
constexpr int kCreateAttemptsMax = 16;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool connection_trouble(ErrorCode c) {
  return c == ErrorCode::ConnectionLoss || c == ErrorCode::OperationTimeout;
}

}  // namespace

std::string new_protected_prefix() {
  std::random_device rd;
  std::uint8_t b[16];
  for (auto& x : b)
    x = static_cast<std::uint8_t>(rd());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char out[40];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return "_c_" + std::string(out) + "-";
}

std::optional<std::string_view> sequence_of(std::string_view child,
                                            const std::vector<std::string>& names) {
  std::optional<std::size_t> best;
  std::size_t best_len = 0;
  for (const auto& n : names) {
    const auto at = child.rfind(n);
    if (at == std::string_view::npos) continue;
    if (!best || at > *best) {
      best = at;
      best_len = n.size();
    }
  }
  if (!best) return std::nullopt;
  const std::string_view seq = child.substr(*best + best_len);
  if (!all_digits(seq)) return std::nullopt;
  return seq;
}

std::vector<std::string> order_children(std::vector<std::string> children,
                                        const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, std::string>> keyed;  // (sequence, name)
  keyed.reserve(children.size());
  for (auto& c : children) {
    auto seq = sequence_of(c, names);
    if (!seq) continue;
    // Without leading zeros, shorter is smaller: the numeric order of
    // digit strings of any length.
    std::string_view s = *seq;
    while (s.size() > 1 && s.front() == '0')
      s.remove_prefix(1);
    keyed.emplace_back(std::string(s), std::move(c));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
    return a.first < b.first;
  });
  std::vector<std::string> out;
  out.reserve(keyed.size());
  for (auto& [key, name] : keyed)
    out.push_back(std::move(name));
  return out;
}

std::string child_path(const std::string& dir, const std::string& child) {
  if (dir == "/") return "/" + child;
  return dir + "/" + child;
}

Status ensure_containers(Client& client, const std::string& dir) {
  if (dir.empty() || dir == "/") return Status();
  std::size_t pos = 1;
  for (;;) {
    const std::size_t slash = dir.find('/', pos);
    const std::string prefix = slash == std::string::npos ? dir : dir.substr(0, slash);
    auto r = client.run(ops::Create{prefix, std::nullopt, CreateMode::Container});
    if (!r.ok() && r.code() != ErrorCode::NodeExists) return r.status();
    if (slash == std::string::npos) return Status();
    pos = slash + 1;
  }
}

Result<std::optional<OwnNode>> find_queue_node(Client& client, const std::string& dir,
                                               const std::string& prefix) {
  auto children = client.get_children(dir);
  if (!children.ok()) {
    if (children.code() == ErrorCode::NoNode) return std::optional<OwnNode>();
    return children.status();
  }
  for (const auto& c : *children) {
    if (c.rfind(prefix, 0) != 0) continue;
    auto st = client.exists(child_path(dir, c));
    if (!st.ok()) return st.status();
    // A node of an earlier session of ours (its expiry not yet processed by
    // the servers) is not ours to adopt.
    if (*st && (*st)->ephemeral_owner == client.session_id().value())
      return std::optional<OwnNode>(OwnNode{c, (*st)->czxid});
  }
  return std::optional<OwnNode>();
}

Result<OwnNode> create_queue_node(Client& client, const std::string& dir, const std::string& prefix,
                                  const std::string& name, const Data& data) {
  bool maybe_created = false;
  Status last(ErrorCode::ConnectionLoss, "no attempt made");
  for (int attempt = 0; attempt < kCreateAttemptsMax; ++attempt) {
    const SessionState st = client.state();
    if (st == SessionState::Expired || st == SessionState::Closed ||
        st == SessionState::AuthFailed) {
      return Status(ErrorCode::SessionExpired, "session gone while creating the queue node");
    }
    if (maybe_created) {
      auto found = find_queue_node(client, dir, prefix);
      if (!found.ok()) {
        last = found.status();
        if (connection_trouble(found.code())) {
          (void)client.wait_connected(client.negotiated_timeout());
          continue;
        }
        return last;
      }
      if (*found) return **found;
    }
    auto r = client.run(
        ops::Create{child_path(dir, prefix + name), data, CreateMode::EphemeralSequential});
    if (r.ok()) {
      const std::string& p = r->path;
      return OwnNode{p.substr(p.rfind('/') + 1), r->stat.czxid};
    }
    last = r.status();
    if (r.code() == ErrorCode::NoNode) {
      Status s = ensure_containers(client, dir);
      if (!s.ok() && !connection_trouble(s.code())) return s;
      continue;
    }
    if (connection_trouble(r.code())) {
      maybe_created = true;
      (void)client.wait_connected(client.negotiated_timeout());
      continue;
    }
    return last;
  }
  return last;
}

}  // namespace coord::recipe
