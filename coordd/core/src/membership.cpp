#include "coord/core/membership.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::core {

namespace {

using consensus::ConfChange;
using consensus::ConfChangeType;

Status bad(std::string why) {
  return Status(ErrorCode::BadArguments, std::move(why));
}
// 3.8 answers MarshallingError for what its parser lets escape as an
// unchecked exception (NumberFormatException, IllegalArgumentException).
Status marshalling(std::string why) {
  return Status(ErrorCode::MarshallingError, std::move(why));
}

// Java's String.trim: every character up to ' ' goes at both ends.
std::string_view java_trim(std::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ')
    s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ')
    s.remove_suffix(1);
  return s;
}

// Java's String.split around one character: trailing empty pieces are
// dropped, and a string without the character is its own only piece.
std::vector<std::string_view> java_split(std::string_view s, char sep) {
  if (s.find(sep) == std::string_view::npos) return {s};
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? s.npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  while (!out.empty() && out.back().empty())
    out.pop_back();
  return out;
}

// ZooKeeper's StringUtils.split: pieces trimmed, empty ones dropped.
std::vector<std::string_view> zk_split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    const auto piece =
        java_trim(s.substr(start, at == std::string_view::npos ? s.npos : at - start));
    if (!piece.empty()) out.push_back(piece);
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

// Java's Long.parseLong / Integer.parseInt (radix 10 or 16): an optional
// sign, then digits, within [min, max]; nullopt where Java throws
// NumberFormatException.
std::optional<std::int64_t> java_parse(std::string_view s, int radix, std::int64_t min,
                                       std::int64_t max) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  // Magnitudes up to 2^63 fit in an unsigned accumulator.
  const std::uint64_t limit = negative ? std::uint64_t(-(min + 1)) + 1 : std::uint64_t(max);
  std::uint64_t v = 0;
  for (char ch : s) {
    int d;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (radix == 16 && ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else if (radix == 16 && ch >= 'A' && ch <= 'F') {
      d = ch - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (v > (limit - std::uint64_t(d)) / std::uint64_t(radix)) return std::nullopt;
    v = v * std::uint64_t(radix) + std::uint64_t(d);
  }
  if (!negative) return static_cast<std::int64_t>(v);
  return v == std::uint64_t(-(min + 1)) + 1 ? min : -static_cast<std::int64_t>(v);
}

std::optional<std::int64_t> java_long(std::string_view s) {
  return java_parse(s, 10, INT64_MIN, INT64_MAX);
}

// A port as 3.8 reads it: Integer.parseInt (BadArguments when it throws,
// 3.8 wraps that in ConfigException), then InetSocketAddress's range check
// (MarshallingError: 3.8 lets that IllegalArgumentException escape).
Result<std::uint16_t> java_port(std::string_view s) {
  const auto v = java_parse(s, 10, INT32_MIN, INT32_MAX);
  if (!v) return bad("port '" + std::string(s) + "' is not a number");
  if (*v < 0 || *v > 65535) return marshalling("port out of range: " + std::to_string(*v));
  return static_cast<std::uint16_t>(*v);
}

// ZooKeeper's ConfigUtils.getHostAndPort: "[v6]:a:b..." or "h:a:b...". The
// character after ']' is skipped whatever it is, as 3.8 does.
Result<std::vector<std::string>> host_and_port(std::string_view s) {
  std::vector<std::string> out;
  if (!s.starts_with('[')) {
    for (auto piece : java_split(s, ':'))
      out.emplace_back(piece);
    return out;
  }
  const std::size_t i = s.find(']');
  if (i == std::string_view::npos) {
    return bad("'[' without ']' in '" + std::string(s) + "'");
  }
  if (i + 2 == s.size()) return bad("no port after ']:' in '" + std::string(s) + "'");
  if (i + 2 < s.size()) {
    out.emplace_back(s.substr(1, i - 1));
    for (auto piece : java_split(s.substr(i + 2), ':'))
      out.emplace_back(piece);
    return out;
  }
  std::string whole;
  for (char ch : s) {
    if (ch != '[' && ch != ']') whole.push_back(ch);
  }
  out.push_back(std::move(whole));
  return out;
}

// The host as 3.8 prints it (InetSocketAddress.getHostString): "" is the
// loopback, "localhost"; an IPv6 literal in Java's uncompressed lower-case
// form, or dotted when it maps an IPv4 address; anything else as given
// (names are printed as typed whether or not they resolve). Hosts that
// could not be printed back into a spec and read again unchanged
// (whitespace, control or non-ASCII bytes, any of "[]=,;|") are refused:
// 3.8 would keep them as unresolvable names.
Result<std::string> java_host(std::string_view host) {
  if (host.empty()) return std::string("localhost");
  for (char ch : host) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c >= 0x7f || std::string_view("[]=,;|").find(ch) != std::string_view::npos) {
      return bad("host '" + std::string(host) + "' has a character coord does not take");
    }
  }
  if (host.find(':') == std::string_view::npos || host.find('%') != std::string_view::npos) {
    return std::string(host);
  }
  unsigned char a[16];
  const std::string z(host);
  if (inet_pton(AF_INET6, z.c_str(), a) != 1) return std::string(host);
  const bool v4_mapped = std::all_of(a, a + 10, [](unsigned char b) { return b == 0; }) &&
                         a[10] == 0xff && a[11] == 0xff;
  char buf[64];
  if (v4_mapped) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    return std::string(buf);
  }
  std::string out;
  for (int g = 0; g < 8; ++g) {
    std::snprintf(buf, sizeof buf, "%s%x", g ? ":" : "", (a[2 * g] << 8) | a[2 * g + 1]);
    out += buf;
  }
  return out;
}

// Loopback and wildcard addresses, which 3.8 leaves out of its duplicate
// address check.
bool special_host(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  unsigned char v4[4];
  if (inet_pton(AF_INET, lower.c_str(), v4) == 1) {
    return v4[0] == 127 || (v4[0] == 0 && v4[1] == 0 && v4[2] == 0 && v4[3] == 0);
  }
  // IPv6 hosts are already in Java's long form (java_host).
  return lower == "localhost" || lower == "0:0:0:0:0:0:0:1" || lower == "0:0:0:0:0:0:0:0";
}

std::vector<HostPort> checked_addresses(const Member& m) {
  std::vector<HostPort> out;
  auto add = [&](const HostPort& a) {
    if (!special_host(a.host)) out.push_back(a);
  };
  add(m.peer);
  if (m.client) add(*m.client);
  // Election port 0 means none (a member added through the admin API).
  if (m.election_port != 0) add(HostPort{m.peer.host, m.election_port});
  return out;
}

// QuorumServer.checkAddressDuplicate.
Status check_duplicate(const Member& joiner, const Member& other) {
  for (const HostPort& mine : checked_addresses(joiner)) {
    for (const HostPort& theirs : checked_addresses(other)) {
      if (mine.port == theirs.port && mine.host.size() == theirs.host.size() &&
          std::equal(mine.host.begin(), mine.host.end(), theirs.host.begin(),
                     [](char x, char y) { return std::tolower(x) == std::tolower(y); })) {
        return bad("server." + std::to_string(joiner.id.value()) + " would reuse address " +
                   to_string(theirs) + " of server." + std::to_string(other.id.value()));
      }
    }
  }
  return Status();
}

// A membership no Raft group could hold, refused before the request is
// read any further (the checks that follow grow with the members twice).
Status too_many_members() {
  return bad("more than " + std::to_string(limits::cluster_members_max) + " members");
}

Result<NodeId> positive_id(std::int64_t id) {
  if (id <= 0) return bad("server id " + std::to_string(id) + " is not positive");
  return NodeId(static_cast<std::uint64_t>(id));
}

// java.util.Properties.load without escapes: the (key, value) pairs of
// `text` in order. Lines end at '\n' or '\r'; leading blanks go; '#' and
// '!' start comments; the key ends at '=', ':' or a blank, and blanks
// around one '=' or ':' separate it from the value.
Result<std::vector<std::pair<std::string, std::string>>> properties(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\f'; };
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && blank(line.front()))
      line.remove_prefix(1);
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    if (line.find('\\') != std::string_view::npos) {
      return bad("escapes are not supported in newMembers");
    }
    std::size_t k = 0;
    while (k < line.size() && line[k] != '=' && line[k] != ':' && !blank(line[k]))
      ++k;
    std::string key(line.substr(0, k));
    std::size_t v = k;
    while (v < line.size() && blank(line[v]))
      ++v;
    if (v < line.size() && (line[v] == '=' || line[v] == ':')) ++v;
    while (v < line.size() && blank(line[v]))
      ++v;
    out.emplace_back(std::move(key), std::string(line.substr(v)));
  }
  return out;
}

// The members a non-incremental reconfig names (QuorumPeerConfig's
// parseDynamicConfig and QuorumMaj's constructor, with standalone mode off).
Result<std::map<NodeId, Member>> parse_new_members(std::string_view text) {
  std::string lines(text);
  std::replace(lines.begin(), lines.end(), ',', '\n');
  auto props = properties(lines);
  if (!props.ok()) return props.status();
  // A key given twice keeps its last value, as in a Properties table.
  std::map<std::string, std::string> table;
  for (auto& [k, v] : *props)
    table[k] = v;
  bool hierarchical = false;
  for (const auto& [key, value] : table) {
    if (key.starts_with("group") || key.starts_with("weight")) {
      hierarchical = true;
    } else if (!key.starts_with("server.") && key != "version") {
      return bad("unknown key '" + key + "' in newMembers");
    }
  }
  if (hierarchical) return bad("hierarchical quorums (group, weight) are not supported");
  std::map<NodeId, Member> out;
  for (const auto& [key, value] : table) {
    if (key == "version") {
      if (!java_parse(value, 16, INT64_MIN, INT64_MAX)) {
        return marshalling("version '" + value + "' is not a hex number");
      }
      continue;
    }
    const auto sid = java_long(std::string_view(key).substr(key.find('.') + 1));
    if (!sid) return marshalling("'" + key + "' names no server id");
    auto id = positive_id(*sid);
    if (!id.ok()) return id.status();
    auto m = parse_server_spec(*id, value);
    if (!m.ok()) return m.status();
    out[*id] = std::move(m).value();
    if (out.size() > limits::cluster_members_max) return too_many_members();
  }
  if (std::none_of(out.begin(), out.end(),
                   [](const auto& e) { return e.second.role == MemberRole::Participant; })) {
    return marshalling("the new configuration has no participant");
  }
  return out;
}

ConfChange add_change(const Member& m) {
  return ConfChange{
      m.role == MemberRole::Participant ? ConfChangeType::AddVoter : ConfChangeType::AddLearner,
      m.id, m.line()};
}

void escape_json(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// "host:port" of the admin API, read as 3.8 reads a client address.
Result<HostPort> address_from_json(std::string_view text, const char* field) {
  auto parts = host_and_port(text);
  if (!parts.ok()) return parts.status();
  if (parts->size() != 2) return bad(std::string(field) + " must be host:port");
  auto port = java_port((*parts)[1]);
  if (!port.ok() || *port == 0) return bad(std::string(field) + " has no valid port");
  auto host = java_host((*parts)[0]);
  if (!host.ok()) return host.status();
  return HostPort{std::move(host).value(), *port};
}

}  // namespace

std::string_view to_string(MemberRole role) {
  return role == MemberRole::Participant ? "participant" : "observer";
}

std::string to_string(const HostPort& address) {
  const bool brackets = address.host.find(':') != std::string::npos;
  return (brackets ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

std::string Member::spec() const {
  std::string out =
      to_string(peer) + ":" + std::to_string(election_port) + ":" + std::string(to_string(role));
  if (client) out += ";" + to_string(*client);
  return out;
}

std::string Member::line() const {
  return "server." + std::to_string(id.value()) + "=" + spec();
}

Result<Member> parse_server_spec(NodeId id, std::string_view spec) {
  // QuorumServer(long, String), step by step: the client part first.
  const auto server_client = java_split(spec, ';');
  if (server_client.empty()) return marshalling("empty server spec '" + std::string(spec) + "'");
  const std::string wrong_format =
      "'" + std::string(spec) + "' is not host:peerport:electionport[:role][;[host:]port]";
  Member m;
  m.id = id;
  if (server_client.size() == 2) {
    auto parts = host_and_port(server_client[1]);
    if (!parts.ok()) return parts.status();
    if (parts->size() > 2) return bad(wrong_format);
    // ":" has no pieces at all; 3.8 then indexes its array at -1.
    if (parts->empty()) return marshalling("empty client address in '" + std::string(spec) + "'");
    auto port = java_port(parts->back());
    if (!port.ok()) return port.status();
    auto host = java_host(parts->size() == 2 ? (*parts)[0] : std::string("0.0.0.0"));
    if (!host.ok()) return host.status();
    m.client = HostPort{std::move(host).value(), *port};
  }
  const auto addresses = java_split(server_client[0], '|');
  if (addresses.size() > 1) {
    return bad("several addresses for server " + std::to_string(id.value()) +
               " (3.8 takes them only with multiAddress enabled; coord never)");
  }
  if (addresses.empty()) return bad(wrong_format);
  auto parts = host_and_port(addresses[0]);
  if (!parts.ok()) return parts.status();
  if (server_client.size() > 2 || parts->size() < 3 || parts->size() > 4) return bad(wrong_format);
  auto peer_port = java_port((*parts)[1]);
  if (!peer_port.ok()) return peer_port.status();
  auto election_port = java_port((*parts)[2]);
  if (!election_port.ok()) return election_port.status();
  if (*peer_port == *election_port) {
    return bad("peer and election ports of server." + std::to_string(id.value()) +
               " must be different");
  }
  if (parts->size() == 4) {
    std::string type(java_trim((*parts)[3]));
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (type == "observer") {
      m.role = MemberRole::Observer;
    } else if (type != "participant") {
      return bad("unknown role '" + (*parts)[3] + "'");
    }
  }
  auto host = java_host((*parts)[0]);
  if (!host.ok()) return host.status();
  m.peer = HostPort{std::move(host).value(), *peer_port};
  m.election_port = *election_port;
  return m;
}

Result<Member> parse_server_line(std::string_view line) {
  const auto parts = zk_split(line, '=');
  if (parts.size() != 2) return bad("'" + std::string(line) + "' is not server.N=spec");
  const std::size_t dot = parts[0].rfind('.');
  const auto sid = java_long(dot == std::string_view::npos ? parts[0] : parts[0].substr(dot + 1));
  if (!sid) return marshalling("'" + std::string(parts[0]) + "' names no server id");
  auto id = positive_id(*sid);
  if (!id.ok()) return id.status();
  return parse_server_spec(*id, parts[1]);
}

const Member* Membership::find(NodeId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const Member& m, NodeId v) { return m.id < v; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

consensus::ConfState Membership::conf_state() const {
  consensus::ConfState out;
  for (const Member& m : members)
    (m.role == MemberRole::Participant ? out.voters : out.learners).push_back(m.id);
  return out;
}

std::string Membership::config_text() const {
  std::string out;
  for (const Member& m : members)
    out += m.line() + "\n";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx",
                static_cast<unsigned long long>(static_cast<std::uint64_t>(version)));
  return out + "version=" + buf;
}

Result<Membership> Membership::parse_config(std::string_view text) {
  Membership out;
  bool have_version = false;
  std::map<NodeId, Member> members;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line.starts_with("version=")) {
      const auto v = java_parse(line.substr(8), 16, INT64_MIN, INT64_MAX);
      if (!v || *v < 0 || have_version) {
        return bad("bad or repeated version line: " + std::string(line));
      }
      out.version = *v;
      have_version = true;
      continue;
    }
    if (!line.starts_with("server.")) return bad("not a server line: " + std::string(line));
    auto m = parse_server_line(line);
    if (!m.ok()) return bad(m.status().message());
    if (members.contains(m->id)) return bad("server." + std::to_string(m->id.value()) + " twice");
    if (members.size() >= limits::cluster_members_max) return bad("too many members");
    members[m->id] = std::move(m).value();
  }
  if (!have_version) return bad("no version line");
  for (auto& [id, m] : members)
    out.members.push_back(std::move(m));
  return out;
}

Result<ReconfigPlan> plan_reconfig(const Membership& current,
                                   const protocol::ReconfigRequest& request,
                                   const std::vector<NodeId>& synced) {
  if (request.cur_config_id != -1 && request.cur_config_id != current.version) {
    return Status(ErrorCode::BadVersion,
                  "reconfiguration from version " + std::to_string(request.cur_config_id) +
                      " failed: the version is " + std::to_string(current.version));
  }
  std::map<NodeId, Member> next;
  for (const Member& m : current.members)
    next[m.id] = m;
  if (!request.new_members.empty()) {
    auto members = parse_new_members(request.new_members);
    if (!members.ok()) return members.status();
    next = std::move(members).value();
  } else {
    for (std::string_view leaving : zk_split(request.leaving_servers, ',')) {
      const auto sid = java_long(leaving);
      if (!sid) return marshalling("'" + std::string(leaving) + "' is no server id");
      if (*sid > 0) next.erase(NodeId(static_cast<std::uint64_t>(*sid)));
    }
    for (std::string_view joiner : zk_split(request.joining_servers, ',')) {
      auto m = parse_server_line(joiner);
      if (!m.ok()) return m.status();
      if (!m->client) {
        return bad("server." + std::to_string(m->id.value()) + " names no client port");
      }
      for (const auto& [id, other] : next) {
        if (id != m->id) COORD_RETURN_IF_ERROR(check_duplicate(*m, other));
      }
      next[m->id] = std::move(m).value();
      if (next.size() > limits::cluster_members_max) return too_many_members();
    }
  }
  std::size_t participants = 0, synced_participants = 0;
  for (const auto& [id, m] : next) {
    if (m.role != MemberRole::Participant) continue;
    ++participants;
    if (std::find(synced.begin(), synced.end(), id) != synced.end()) ++synced_participants;
  }
  if (participants == 0) {
    return bad("the new configuration has no participant");
  }
  if (2 * synced_participants <= participants) {
    return Status(ErrorCode::NewConfigNoQuorum,
                  "the participants in contact with the leader and caught up are no majority of "
                  "the new configuration");
  }

  ReconfigPlan plan;
  std::vector<ConfChange> observers_leaving, adds, moves, removes, demotions;
  for (const auto& [id, m] : next) {
    const Member* was = current.find(id);
    if (was == nullptr) {
      adds.push_back(add_change(m));
    } else if (*was == m) {
      continue;
    } else if (was->role == MemberRole::Participant && m.role == MemberRole::Observer) {
      moves.push_back(ConfChange{ConfChangeType::RemoveVoter, id});
      demotions.push_back(add_change(m));
    } else if (was->role == MemberRole::Observer && m.role == MemberRole::Participant) {
      adds.push_back(ConfChange{ConfChangeType::PromoteLearner, id, m.line()});
    } else {
      moves.push_back(ConfChange{ConfChangeType::RemoveVoter, id});
      moves.push_back(add_change(m));
    }
  }
  for (const Member& m : current.members) {
    if (next.contains(m.id)) continue;
    (m.role == MemberRole::Observer ? observers_leaving : removes)
        .push_back(ConfChange{ConfChangeType::RemoveVoter, m.id});
  }
  // Observers leave first (room for those who join, and never the last
  // voter), participants last (never the last voter either: one stays).
  std::vector<ConfChange> first = std::move(observers_leaving);
  first.insert(first.end(), adds.begin(), adds.end());
  first.insert(first.end(), moves.begin(), moves.end());
  first.insert(first.end(), removes.begin(), removes.end());
  for (auto* step : {&first, &demotions}) {
    if (!step->empty()) plan.steps.push_back(std::move(*step));
  }
  // The Raft rules (cluster size, the last voter, no voter turned learner
  // in one entry) decide whether the steps can be proposed as they are.
  consensus::ConfState conf = current.conf_state();
  for (const auto& step : plan.steps) {
    auto after = consensus::JointConfChange{step}.apply_to(conf);
    if (!after.ok()) return bad("the change cannot be made: " + after.status().message());
    conf = std::move(after).value();
    conf.voters_outgoing.clear();
  }
  plan.target.version = current.version;
  for (auto& [id, m] : next)
    plan.target.members.push_back(std::move(m));
  return plan;
}

std::vector<ConfChange> founding_changes(const Membership& founding) {
  std::vector<ConfChange> out;
  for (MemberRole role : {MemberRole::Participant, MemberRole::Observer}) {
    for (const Member& m : founding.members) {
      if (m.role == role) out.push_back(add_change(m));
    }
  }
  return out;
}

Result<Membership> membership_after(const Membership& before,
                                    const std::vector<ConfChange>& changes, std::int64_t version) {
  if (changes.empty()) return before;
  std::map<NodeId, Member> members;
  for (const Member& m : before.members)
    members[m.id] = m;
  auto inconsistent = [](const ConfChange& cc, std::string why) {
    return Status(ErrorCode::DataInconsistency, std::string(consensus::to_string(cc.type)) + " " +
                                                    std::to_string(cc.node.value()) + ": " +
                                                    std::move(why));
  };
  // The member a change's context names, with the role the change gives.
  auto member_of = [&](const ConfChange& cc, MemberRole role) -> Result<Member> {
    if (cc.context.empty()) {
      Member m;
      m.id = cc.node;
      m.role = role;
      return m;
    }
    auto m = parse_server_line(cc.context);
    if (!m.ok()) return inconsistent(cc, "context: " + m.status().message());
    if (m->id != cc.node)
      return inconsistent(cc, "context names server." + std::to_string(m->id.value()));
    if (m->role != role) return inconsistent(cc, "context gives the other role");
    return m;
  };
  for (const ConfChange& cc : changes) {
    const auto it = members.find(cc.node);
    switch (cc.type) {
      case ConfChangeType::AddVoter:
      case ConfChangeType::AddLearner: {
        if (it != members.end()) return inconsistent(cc, "already a member");
        auto m = member_of(cc, cc.type == ConfChangeType::AddVoter ? MemberRole::Participant
                                                                   : MemberRole::Observer);
        if (!m.ok()) return m.status();
        members[cc.node] = std::move(m).value();
        break;
      }
      case ConfChangeType::RemoveVoter:
        if (it == members.end()) return inconsistent(cc, "not a member");
        members.erase(it);
        break;
      case ConfChangeType::PromoteLearner: {
        if (it == members.end() || it->second.role != MemberRole::Observer) {
          return inconsistent(cc, "not an observer");
        }
        if (cc.context.empty()) {
          it->second.role = MemberRole::Participant;
          break;
        }
        auto m = member_of(cc, MemberRole::Participant);
        if (!m.ok()) return m.status();
        it->second = std::move(m).value();
        break;
      }
    }
  }
  Membership out;
  out.version = version;
  for (auto& [id, m] : members)
    out.members.push_back(std::move(m));
  return out;
}

std::string member_json(const Member& member) {
  std::string out = "{\"id\":" + std::to_string(member.id.value()) + ",\"peer_address\":";
  escape_json(out, member.peer.host.empty() ? std::string() : to_string(member.peer));
  out += ",\"client_address\":";
  escape_json(out, member.client ? to_string(*member.client) : std::string());
  out += ",\"role\":";
  escape_json(out, to_string(member.role));
  out += "}";
  return out;
}

Result<Member> member_from_json(std::string_view text) {
  using nlohmann::json;
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("the body must be a JSON object");
  Member m;
  if (!j.contains("id") || !j["id"].is_number_integer() || j["id"].get<std::int64_t>() <= 0) {
    return bad("\"id\" must be a positive integer");
  }
  m.id = NodeId(j["id"].get<std::uint64_t>());
  if (!j.contains("peer_address") || !j["peer_address"].is_string()) {
    return bad("\"peer_address\" must be host:port");
  }
  auto peer = address_from_json(j["peer_address"].get<std::string>(), "\"peer_address\"");
  if (!peer.ok()) return peer.status();
  m.peer = std::move(peer).value();
  if (j.contains("client_address")) {
    if (!j["client_address"].is_string()) return bad("\"client_address\" must be host:port");
    const auto text = j["client_address"].get<std::string>();
    if (!text.empty()) {
      auto client = address_from_json(text, "\"client_address\"");
      if (!client.ok()) return client.status();
      m.client = std::move(client).value();
    }
  }
  std::optional<MemberRole> role;
  if (j.contains("role")) {
    const json& r = j["role"];
    if (r == "participant") {
      role = MemberRole::Participant;
    } else if (r == "observer") {
      role = MemberRole::Observer;
    } else {
      return bad("\"role\" must be \"participant\" or \"observer\"");
    }
  }
  // The earlier form of the request said "voter": true or false.
  if (j.contains("voter")) {
    if (!j["voter"].is_boolean()) return bad("\"voter\" must be true or false");
    const MemberRole v = j["voter"].get<bool>() ? MemberRole::Participant : MemberRole::Observer;
    if (role && *role != v) return bad("\"voter\" and \"role\" disagree");
    role = v;
  }
  m.role = role.value_or(MemberRole::Participant);
  return m;
}

}  // namespace coord::core
