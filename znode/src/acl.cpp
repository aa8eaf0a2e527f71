#include "acl.h"

#include <algorithm>
#include <array>
#include <optional>

#include "coord/base/assert.h"
#include "coord/base/limits.h"
#include "hash.h"

namespace coord::znode::detail {
namespace {

// Java's Integer.parseInt: optional sign, decimal digits, fits an int.
std::optional<std::int64_t> parse_java_int(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
  }
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > (std::int64_t{1} << 31)) return std::nullopt;
  }
  return neg ? -v : v;
}

// ZooKeeper 3.8's ip provider understands dotted IPv4 only (IPv6 ids are
// rejected as invalid; observed).
std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view s) {
  std::array<std::uint8_t, 4> out{};
  for (int i = 0; i < 4; ++i) {
    auto dot = s.find('.');
    std::string_view part = i < 3 ? s.substr(0, dot) : s;
    if (i < 3 && dot == std::string_view::npos) return std::nullopt;
    if (i == 3 && s.find('.') != std::string_view::npos) return std::nullopt;
    auto v = parse_java_int(part);
    if (!v || *v < 0 || *v > 255) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(*v);
    if (i < 3) s.remove_prefix(dot + 1);
  }
  return out;
}

struct IpAcl {
  std::array<std::uint8_t, 4> addr;
  int bits;
};

std::optional<IpAcl> parse_ip_acl(std::string_view expr) {
  auto slash = expr.find('/');
  auto addr = parse_ipv4(expr.substr(0, slash));
  if (!addr) return std::nullopt;
  int bits = 32;
  if (slash != std::string_view::npos) {
    auto b = parse_java_int(expr.substr(slash + 1));
    if (!b || *b < 0 || *b > 32) return std::nullopt;
    bits = static_cast<int>(*b);
  }
  return IpAcl{*addr, bits};
}

void mask_bits(std::array<std::uint8_t, 4>& a, int bits) {
  for (int i = 0; i < 4; ++i) {
    int keep = std::clamp(bits - 8 * i, 0, 8);
    a[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
}

// Java's id.split(":").length == 2: trailing empty parts do not count.
bool valid_digest_id(std::string_view id) {
  std::size_t parts = 1;
  for (char c : id)
    parts += c == ':';
  std::size_t end = id.size();
  // Drop trailing empty parts (a run of colons at the end).
  while (end > 0 && id[end - 1] == ':') {
    --end;
    --parts;
  }
  if (end == 0) return false;  // nothing but colons, or empty: one part at most
  return parts == 2;
}

bool is_authenticated_scheme(std::string_view scheme) {
  return scheme == "digest" || scheme == "sasl" || scheme == "x509";
}

bool valid_acl_id(const Id& id) {
  if (id.scheme == "world") return id.id == "anyone";
  if (id.scheme == "digest") return valid_digest_id(id.id);
  if (id.scheme == "ip") return parse_ip_acl(id.id).has_value();
  // A certificate subject, matched as a whole string (ZooKeeper's x509
  // provider takes any id; coordd always has the provider, since TLS
  // client certificates can give connections x509 identities).
  if (id.scheme == "x509") return !id.id.empty();
  return false;
}

}  // namespace

bool ip_matches(std::string_view address, std::string_view ip_acl) {
  auto acl = parse_ip_acl(ip_acl);
  if (!acl) return false;
  auto remote = parse_ipv4(address);
  if (!remote) return false;
  mask_bits(acl->addr, acl->bits);
  mask_bits(*remote, acl->bits);
  return acl->addr == *remote;
}

bool caller_is_super(const Caller& caller) {
  for (const auto& id : caller.identities) {
    if (id.scheme == std::string_view("super")) return true;  // length first, then bytes
  }
  return false;
}

Result<AclList> fixup_acl(const AclList& requested, const Caller& caller) {
  if (requested.empty()) return Status(ErrorCode::InvalidAcl, "empty ACL list");
  if (requested.size() > limits::acl_entries_max) {
    return Status(ErrorCode::InvalidAcl, "too many ACL entries");
  }
  AclList unique;
  unique.reserve(requested.size());
  for (const auto& a : requested) {
    if (std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(a);
  }
  AclList out;
  out.reserve(unique.size());
  for (const auto& a : unique) {
    if (a.id.scheme == "auth") {
      bool any = false;
      for (const auto& id : caller.identities) {
        if (is_authenticated_scheme(id.scheme)) {
          out.push_back(Acl{a.perms, id});
          any = true;
        }
      }
      if (!any) return Status(ErrorCode::InvalidAcl, "auth ACL without an authenticated identity");
    } else if (valid_acl_id(a.id)) {
      out.push_back(a);
    } else {
      return Status(ErrorCode::InvalidAcl, "invalid ACL id " + a.id.scheme + ":" + a.id.id);
    }
  }
  if (out.size() > limits::acl_entries_max) {
    return Status(ErrorCode::InvalidAcl, "too many ACL entries");
  }
  return out;
}

AclList mask_digests(AclList acl) {
  for (auto& a : acl) {
    if (a.id.scheme == "digest") {
      auto colon = a.id.id.find(':');
      if (colon != std::string::npos) a.id.id = a.id.id.substr(0, colon) + ":x";
    }
  }
  return acl;
}

std::uint64_t hash_acl(const AclList& acl) {
  std::uint64_t h = hash_combine(0x61636c, acl.size());
  for (const auto& a : acl) {
    h = hash_combine(h, static_cast<std::uint32_t>(a.perms));
    h = hash_combine(h, hash_str(a.id.scheme));
    h = hash_combine(h, hash_str(a.id.id));
  }
  return h;
}

AclRef AclTable::intern(const AclList& acl) {
  auto it = index_.find(acl);
  if (it != index_.end()) {
    ++entries_[it->second].refs;
    return it->second;
  }
  AclRef r;
  if (!free_.empty()) {
    r = free_.back();
    free_.pop_back();
  } else {
    r = static_cast<AclRef>(entries_.size());
    entries_.emplace_back();
  }
  Entry& e = entries_[r];
  e.acl = acl;
  e.live = true;
  e.refs = 1;
  e.hash = hash_acl(acl);
  e.world_perms = 0;
  for (const auto& a : acl) {
    if (a.id.scheme == "world" && a.id.id == "anyone") e.world_perms |= a.perms;
  }
  if (acl.empty()) e.world_perms = perm::all;
  index_.emplace(acl, r);
  return r;
}

void AclTable::ref(AclRef r) {
  COORD_ASSERT(r < entries_.size() && entries_[r].refs > 0, "ref of a dead ACL ", r);
  ++entries_[r].refs;
}

void AclTable::unref(AclRef r) {
  COORD_ASSERT(r < entries_.size() && entries_[r].refs > 0, "unref of a dead ACL ", r);
  if (--entries_[r].refs > 0) return;
  index_.erase(entries_[r].acl);
  entries_[r].live = false;
  entries_[r].acl.clear();
  entries_[r].acl.shrink_to_fit();
  free_.push_back(r);
}

// Whether an entry granting `perm` names one of the caller's identities.
bool identity_granted(const AclList& acl, const Caller& caller, std::int32_t perm) {
  for (const auto& a : acl) {
    if ((a.perms & perm) == 0) continue;
    for (const auto& id : caller.identities) {
      if (id.scheme != a.id.scheme) continue;
      if (a.id.scheme == "ip" ? ip_matches(id.id, a.id.id) : id.id == a.id.id) return true;
    }
  }
  return false;
}

bool AclTable::allows(AclRef r, const Caller& caller, bool is_super, std::int32_t perm) const {
  if (is_super) return true;
  const Entry& e = entries_[r];
  if (e.world_perms & perm) return true;
  return identity_granted(e.acl, caller, perm);
}

Status AclTable::restore(AclRef r, AclList acl) {
  if (r >= (1u << 30)) return Status(ErrorCode::DataInconsistency, "ACL reference out of range");
  if (r >= entries_.size()) entries_.resize(r + 1);
  Entry& e = entries_[r];
  if (e.live || index_.count(acl)) {
    return Status(ErrorCode::DataInconsistency, "duplicate ACL in snapshot");
  }
  e.hash = hash_acl(acl);
  e.world_perms = 0;
  for (const auto& a : acl) {
    if (a.id.scheme == "world" && a.id.id == "anyone") e.world_perms |= a.perms;
  }
  if (acl.empty()) e.world_perms = perm::all;
  e.acl = acl;
  e.refs = 0;
  e.live = true;
  index_.emplace(std::move(acl), r);
  return Status();
}

Status AclTable::restore_ref(AclRef r) {
  if (r >= entries_.size() || !entries_[r].live) {
    return Status(ErrorCode::DataInconsistency, "node refers to an unknown ACL");
  }
  ++entries_[r].refs;
  return Status();
}

void AclTable::finish_restore() {
  free_.clear();
  for (AclRef r = static_cast<AclRef>(entries_.size()); r-- > 0;) {
    Entry& e = entries_[r];
    if (e.live && e.refs == 0) {
      index_.erase(e.acl);
      e.live = false;
      e.acl.clear();
    }
    if (!e.live) free_.push_back(r);
  }
}

void AclTable::clear() {
  entries_.clear();
  free_.clear();
  index_.clear();
}

}  // namespace coord::znode::detail
