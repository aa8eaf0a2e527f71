#include "coord/cli/format.h"

#include <array>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace coord::cli {

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok:
      return exit_code::ok;
    case ErrorCode::NoNode:
      return exit_code::no_node;
    case ErrorCode::NodeExists:
      return exit_code::node_exists;
    case ErrorCode::BadVersion:
      return exit_code::bad_version;
    case ErrorCode::NotEmpty:
      return exit_code::not_empty;
    case ErrorCode::NoAuth:
    case ErrorCode::AuthFailed:
    case ErrorCode::InvalidAcl:
    case ErrorCode::SessionClosedRequireSaslAuth:
      return exit_code::auth;
    case ErrorCode::ConnectionLoss:
    case ErrorCode::OperationTimeout:
    case ErrorCode::SessionExpired:
    case ErrorCode::Closing:
    case ErrorCode::RequestTimeout:
    case ErrorCode::SessionMoved:
    case ErrorCode::SslConnectionError:
      return exit_code::connection;
    default:
      return exit_code::other;
  }
}

namespace {

// The Java client's KeeperException.Code messages, which zkCli prints after
// "KeeperErrorCode = " for codes without a sentence of their own.
std::string_view java_code_message(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok:
      return "ok";
    case ErrorCode::SystemError:
      return "SystemError";
    case ErrorCode::RuntimeInconsistency:
      return "RuntimeInconsistency";
    case ErrorCode::DataInconsistency:
      return "DataInconsistency";
    case ErrorCode::ConnectionLoss:
      return "ConnectionLoss";
    case ErrorCode::MarshallingError:
      return "MarshallingError";
    case ErrorCode::Unimplemented:
      return "Unimplemented";
    case ErrorCode::OperationTimeout:
      return "OperationTimeout";
    case ErrorCode::BadArguments:
      return "BadArguments";
    case ErrorCode::NewConfigNoQuorum:
      return "NewConfigNoQuorum";
    case ErrorCode::ReconfigInProgress:
      return "ReconfigInProgress";
    case ErrorCode::UnknownSession:
      return "Unknown session";
    case ErrorCode::ApiError:
      return "APIError";
    case ErrorCode::NoNode:
      return "NoNode";
    case ErrorCode::NoAuth:
      return "NoAuth";
    case ErrorCode::BadVersion:
      return "BadVersion";
    case ErrorCode::NoChildrenForEphemerals:
      return "NoChildrenForEphemerals";
    case ErrorCode::NodeExists:
      return "NodeExists";
    case ErrorCode::NotEmpty:
      return "Directory not empty";
    case ErrorCode::SessionExpired:
      return "Session expired";
    case ErrorCode::InvalidCallback:
      return "Invalid callback";
    case ErrorCode::InvalidAcl:
      return "InvalidACL";
    case ErrorCode::AuthFailed:
      return "AuthFailed";
    case ErrorCode::Closing:
      return "Closing";
    case ErrorCode::SessionMoved:
      return "Session moved";
    case ErrorCode::NotReadOnly:
      return "Not a read-only call";
    case ErrorCode::EphemeralOnLocalSession:
      return "Ephemeral node on local session";
    case ErrorCode::NoWatcher:
      return "No such watcher";
    case ErrorCode::RequestTimeout:
      return "Request timeout";
    case ErrorCode::ReconfigDisabled:
      return "Reconfig is disabled";
    case ErrorCode::QuotaExceeded:
      return "Quota has exceeded";
    case ErrorCode::Throttled:
      return "Op throttled due to high load";
    default:
      return error_name(code);
  }
}

}  // namespace

std::string error_sentence(ErrorCode code, std::string_view path) {
  std::string p(path);
  switch (code) {
    case ErrorCode::NoNode:
      return "Node does not exist: " + p;
    case ErrorCode::NodeExists:
      return "Node already exists: " + p;
    case ErrorCode::BadVersion:
      return "version No is not valid : " + p;
    case ErrorCode::NoAuth:
      return "Insufficient permission : " + p;
    case ErrorCode::NotEmpty:
      return "Node not empty: " + p;
    case ErrorCode::NoChildrenForEphemerals:
      return "Ephemerals cannot have children: " + p;
    case ErrorCode::InvalidAcl:
      return "Acl is not valid : " + p;
    case ErrorCode::AuthFailed:
      return "Authentication is not valid : " + p;
    default:
      break;
  }
  std::string s = "KeeperErrorCode = " + std::string(java_code_message(code));
  if (!p.empty()) s += " for " + p;
  return s;
}

std::string hex(std::int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<std::uint64_t>(v));
  return buf;
}

std::string format_time_ms(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a %b %d %H:%M:%S %Z %Y", &tm);
  return std::string(buf, n);
}

std::string format_stat(const Stat& s) {
  std::string o;
  o += "cZxid = " + hex(s.czxid) + "\n";
  o += "ctime = " + format_time_ms(s.ctime) + "\n";
  o += "mZxid = " + hex(s.mzxid) + "\n";
  o += "mtime = " + format_time_ms(s.mtime) + "\n";
  o += "pZxid = " + hex(s.pzxid) + "\n";
  o += "cversion = " + std::to_string(s.cversion) + "\n";
  o += "dataVersion = " + std::to_string(s.version) + "\n";
  o += "aclVersion = " + std::to_string(s.aversion) + "\n";
  o += "ephemeralOwner = " + hex(s.ephemeral_owner) + "\n";
  o += "dataLength = " + std::to_string(s.data_length) + "\n";
  o += "numChildren = " + std::to_string(s.num_children) + "\n";
  return o;
}

std::string format_acl(const AclList& acl) {
  std::string o;
  for (const Acl& a : acl) {
    o += "'" + a.id.scheme + ",'" + a.id.id + "\n: " + perm::to_letters(a.perms) + "\n";
  }
  return o;
}

Result<AclList> parse_acl(std::string_view text) {
  AclList out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view entry = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::size_t first = entry.find(':');
    std::size_t last = entry.rfind(':');
    if (entry.empty() || first == std::string_view::npos || first == last) {
      return Status(ErrorCode::InvalidAcl,
                    "acl '" + std::string(entry) + "' is not scheme:id:perm");
    }
    auto perms = perm::from_letters(entry.substr(last + 1));
    if (!perms) {
      return Status(ErrorCode::InvalidAcl,
                    "acl '" + std::string(entry) + "' has permissions other than r, w, c, d, a");
    }
    out.push_back(Acl{*perms, Id{std::string(entry.substr(0, first)),
                                 std::string(entry.substr(first + 1, last - first - 1))}});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Status validate_path(std::string_view path, bool sequential) {
  auto bad = [](std::string m) { return Status(ErrorCode::BadArguments, std::move(m)); };
  if (path.empty()) return bad("Path length must be > 0");
  if (path[0] != '/') return bad("Path must start with / character");
  if (path.size() == 1) return Status();
  if (path.back() == '/' && !sequential) return bad("Path must not end with / character");
  for (std::size_t i = 1; i < path.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == 0) return bad("null character not allowed @" + std::to_string(i));
    if (c == '/' && path[i - 1] == '/')
      return bad("empty node name specified @" + std::to_string(i));
    if (c == '.' && path[i - 1] == '/') {
      std::size_t end = path.find('/', i);
      std::string_view name =
          path.substr(i, end == std::string_view::npos ? path.size() - i : end - i);
      if (name == "." || name == "..") {
        return bad("relative paths not allowed @" + std::to_string(i));
      }
    }
    if ((c > 0x00 && c <= 0x1f) || c == 0x7f) {
      return bad("invalid character @" + std::to_string(i));
    }
  }
  return Status();
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                      (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                      static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                      (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string hex_dump(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(bytes[i]));
    out += buf;
    out += (i % 16 == 15 || i + 1 == bytes.size()) ? '\n' : ' ';
  }
  return out;
}

nlohmann::json stat_json(const Stat& s) {
  return nlohmann::json{{"cZxid", s.czxid},
                        {"ctime", s.ctime},
                        {"mZxid", s.mzxid},
                        {"mtime", s.mtime},
                        {"pZxid", s.pzxid},
                        {"cversion", s.cversion},
                        {"dataVersion", s.version},
                        {"aclVersion", s.aversion},
                        {"ephemeralOwner", s.ephemeral_owner},
                        {"dataLength", s.data_length},
                        {"numChildren", s.num_children}};
}

void put_data_json(nlohmann::json& j, const Data& data) {
  if (!data) {
    j["data"] = nullptr;
  } else if (is_valid_utf8(*data)) {
    j["data"] = *data;
  } else {
    j["data"] = base64_encode(*data);
    j["data_base64"] = true;
  }
}

nlohmann::json acl_json(const AclList& acl) {
  nlohmann::json a = nlohmann::json::array();
  for (const Acl& e : acl) {
    a.push_back({{"scheme", e.id.scheme}, {"id", e.id.id}, {"perms", perm::to_letters(e.perms)}});
  }
  return a;
}

}  // namespace coord::cli
