#include "history.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace coord::faults {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 8> kind_names = {
    "create", "set", "delete", "read", "seq_create", "seq_list", "watch_seen", "watch_done"};
constexpr std::array<std::string_view, 6> outcome_names = {"ok",          "node_exists", "no_node",
                                                           "bad_version", "unknown",     "fail"};

// Reads one field of an object, recording the first problem in `error`.
class Fields {
 public:
  explicit Fields(const Json& j) : j_(j) {}
  const std::string& error() const { return error_; }

  bool has(const char* name) const { return j_.contains(name) && !j_.at(name).is_null(); }

  std::string string(const char* name, bool required) {
    if (!has(name)) {
      if (required) fail(std::string("missing field \"") + name + "\"");
      return {};
    }
    const Json& v = j_.at(name);
    if (!v.is_string()) {
      fail(std::string("field \"") + name + "\" is not a string");
      return {};
    }
    return v.get<std::string>();
  }

  std::int64_t integer(const char* name, bool required, std::int64_t fallback, std::int64_t lo,
                       std::int64_t hi) {
    if (!has(name)) {
      if (required) fail(std::string("missing field \"") + name + "\"");
      return fallback;
    }
    const Json& v = j_.at(name);
    std::int64_t x = 0;
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(std::string("field \"") + name + "\" is out of range");
        return fallback;
      }
      x = static_cast<std::int64_t>(u);
    } else if (v.is_number_integer()) {
      x = v.get<std::int64_t>();
    } else {
      fail(std::string("field \"") + name + "\" is not an integer");
      return fallback;
    }
    if (x < lo || x > hi) {
      fail(std::string("field \"") + name + "\" is out of range");
      return fallback;
    }
    return x;
  }

  std::int32_t version(const char* name, bool required, std::int32_t fallback) {
    return static_cast<std::int32_t>(
        integer(name, required, fallback, -1, std::numeric_limits<std::int32_t>::max()));
  }

  std::uint64_t nanos(const char* name, bool required) {
    return static_cast<std::uint64_t>(
        integer(name, required, 0, 0, std::numeric_limits<std::int64_t>::max()));
  }

  bool boolean(const char* name, bool required) {
    if (!has(name)) {
      if (required) fail(std::string("missing field \"") + name + "\"");
      return false;
    }
    const Json& v = j_.at(name);
    if (!v.is_boolean()) {
      fail(std::string("field \"") + name + "\" is not a boolean");
      return false;
    }
    return v.get<bool>();
  }

  std::vector<std::string> strings(const char* name, bool required) {
    std::vector<std::string> out;
    if (!has(name)) {
      if (required) fail(std::string("missing field \"") + name + "\"");
      return out;
    }
    const Json& v = j_.at(name);
    if (!v.is_array()) {
      fail(std::string("field \"") + name + "\" is not an array");
      return out;
    }
    out.reserve(v.size());
    for (const Json& e : v) {
      if (!e.is_string()) {
        fail(std::string("field \"") + name + "\" holds a non-string");
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

 private:
  const Json& j_;
  std::string error_;
};

// The replies each kind of request can get; anything else is a writer's bug.
bool outcome_fits(Kind k, Outcome o) {
  switch (k) {
    case Kind::Create:
    case Kind::SeqCreate:
      return o != Outcome::BadVersion;
    case Kind::Set:
    case Kind::Delete:
      return o != Outcome::NodeExists;
    case Kind::Read:
    case Kind::WatchSeen:
    case Kind::SeqList:
      return o == Outcome::Ok || o == Outcome::NoNode || o == Outcome::Unknown ||
             o == Outcome::Fail;
    case Kind::WatchDone:
      return o == Outcome::Ok || o == Outcome::Unknown || o == Outcome::Fail;
  }
  return false;
}

}  // namespace

std::string_view kind_name(Kind k) {
  return kind_names[static_cast<std::size_t>(k)];
}

std::optional<Kind> kind_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kind_names.size(); ++i) {
    if (kind_names[i] == name) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

std::string_view outcome_name(Outcome o) {
  return outcome_names[static_cast<std::size_t>(o)];
}

std::optional<Outcome> outcome_from_name(std::string_view name) {
  for (std::size_t i = 0; i < outcome_names.size(); ++i) {
    if (outcome_names[i] == name) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

std::string to_json_line(const Record& r) {
  Json j;
  j["process"] = r.process;
  j["f"] = kind_name(r.kind);
  j["key"] = r.key;
  const bool ok = r.outcome == Outcome::Ok;
  switch (r.kind) {
    case Kind::Create:
    case Kind::SeqCreate:
      j["data"] = r.data;
      if (r.kind == Kind::Create && ok) j["version"] = 0;
      if (r.kind == Kind::SeqCreate && ok) j["path"] = r.path;
      break;
    case Kind::Set:
      j["data"] = r.data;
      j["expected_version"] = r.expected_version;
      if (ok) j["version"] = r.version;
      break;
    case Kind::Delete:
      j["expected_version"] = r.expected_version;
      break;
    case Kind::Read:
    case Kind::WatchSeen:
      if (ok) {
        j["data"] = r.data;
        j["version"] = r.version;
      }
      break;
    case Kind::SeqList:
      if (ok) j["children"] = r.children;
      break;
    case Kind::WatchDone:
      j["reached"] = r.reached;
      j["version"] = r.version;
      j["final_version"] = r.final_version;
      break;
  }
  j["outcome"] = outcome_name(r.outcome);
  if (!r.error.empty()) j["error"] = r.error;
  j["call_ns"] = r.call_ns;
  if (r.ret_ns) {
    j["ret_ns"] = *r.ret_ns;
  } else {
    j["ret_ns"] = nullptr;
  }
  if (!r.server.empty()) j["server"] = r.server;
  if (!r.session.empty()) j["session"] = r.session;
  if (!r.note.empty()) j["note"] = r.note;
  // ensure_ascii: whatever a server returned stays one readable line.
  return j.dump(-1, ' ', true, Json::error_handler_t::replace);
}

ParsedLine parse_line(std::string_view line) {
  ParsedLine out;
  if (line.size() > history_line_bytes_max) {
    out.error = "line longer than " + std::to_string(history_line_bytes_max) + " bytes";
    return out;
  }
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    out.error = "not valid JSON";
    return out;
  }
  if (!j.is_object()) {
    out.error = "not a JSON object";
    return out;
  }
  Fields f(j);
  Record r;
  r.process = f.string("process", true);
  const std::string kind = f.string("f", true);
  r.key = f.string("key", true);
  const std::string outcome = f.string("outcome", true);
  if (!f.error().empty()) {
    out.error = f.error();
    return out;
  }
  const auto k = kind_from_name(kind);
  if (!k) {
    out.error = "unknown kind f=\"" + kind + "\"";
    return out;
  }
  const auto o = outcome_from_name(outcome);
  if (!o) {
    out.error = "unknown outcome \"" + outcome + "\"";
    return out;
  }
  r.kind = *k;
  r.outcome = *o;
  if (!outcome_fits(r.kind, r.outcome)) {
    out.error = "outcome \"" + outcome + "\" is impossible for f=\"" + kind + "\"";
    return out;
  }
  const bool ok = r.outcome == Outcome::Ok;
  r.error = f.string("error", false);
  r.call_ns = f.nanos("call_ns", true);
  if (f.has("ret_ns")) r.ret_ns = f.nanos("ret_ns", true);
  r.server = f.string("server", false);
  r.session = f.string("session", false);
  r.note = f.string("note", false);
  switch (r.kind) {
    case Kind::Create:
      r.data = f.string("data", true);
      r.version = f.version("version", false, 0);
      if (ok && r.version != 0) f.fail("a created node has version 0");
      break;
    case Kind::Set:
      r.data = f.string("data", true);
      r.expected_version = f.version("expected_version", false, -1);
      r.version = f.version("version", ok, 0);
      break;
    case Kind::Delete:
      r.expected_version = f.version("expected_version", false, -1);
      break;
    case Kind::Read:
    case Kind::WatchSeen:
      r.data = f.string("data", ok);
      r.version = f.version("version", ok, 0);
      break;
    case Kind::SeqCreate:
      r.data = f.string("data", true);
      r.path = f.string("path", ok);
      break;
    case Kind::SeqList:
      r.children = f.strings("children", ok);
      break;
    case Kind::WatchDone:
      r.reached = f.boolean("reached", true);
      r.version = f.version("version", true, 0);
      r.final_version = f.version("final_version", true, 0);
      break;
  }
  if (f.error().empty()) {
    if (r.outcome == Outcome::Unknown && r.ret_ns) {
      f.fail("an unknown outcome has ret_ns null");
    } else if ((ok || r.outcome == Outcome::NodeExists || r.outcome == Outcome::NoNode ||
                r.outcome == Outcome::BadVersion) &&
               !r.ret_ns) {
      f.fail("a reply was received, so ret_ns is needed");
    } else if (r.ret_ns && *r.ret_ns < r.call_ns) {
      f.fail("ret_ns is before call_ns");
    }
  }
  if (!f.error().empty()) {
    out.error = f.error();
    return out;
  }
  out.record = std::move(r);
  return out;
}

bool load_file(const std::string& path, std::vector<Record>& out, std::string& error,
               const LoadLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open";
    return false;
  }
  std::size_t number = 0;
  std::string line;
  auto take = [&]() {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    ParsedLine p = parse_line(line);
    if (!p.record) {
      error = path + ":" + std::to_string(number) + ": " + p.error;
      return false;
    }
    if (out.size() >= limits.records_max) {
      error = path + ":" + std::to_string(number) + ": more than " +
              std::to_string(limits.records_max) + " records in the run";
      return false;
    }
    p.record->file = path;
    p.record->line = number;
    out.push_back(std::move(*p.record));
    return true;
  };
  // Read in chunks, never a whole line unbounded: a file without newlines
  // is refused at history_line_bytes_max instead of taking all memory.
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    std::size_t at = 0;
    while (at < got) {
      const char* nl = static_cast<const char*>(std::memchr(chunk.data() + at, '\n', got - at));
      const std::size_t end = nl ? static_cast<std::size_t>(nl - chunk.data()) : got;
      if (line.size() + (end - at) > limits.line_bytes_max) {
        error = path + ":" + std::to_string(number + 1) + ": line longer than " +
                std::to_string(limits.line_bytes_max) + " bytes";
        return false;
      }
      line.append(chunk.data() + at, end - at);
      at = end;
      if (nl) {
        ++at;
        if (!take()) return false;
        line.clear();
      }
    }
  }
  if (in.bad()) {
    error = path + ": read error";
    return false;
  }
  if (!line.empty() && !take()) return false;
  return true;
}

std::string describe(const Record& r) {
  std::ostringstream os;
  if (!r.file.empty()) os << r.file << ":" << r.line << " ";
  os << r.process << " " << kind_name(r.kind) << " " << r.key;
  switch (r.kind) {
    case Kind::Create:
    case Kind::SeqCreate:
      os << " \"" << r.data << "\"";
      break;
    case Kind::Set:
      os << " \"" << r.data << "\"";
      if (r.expected_version != -1) os << " if v" << r.expected_version;
      break;
    case Kind::Delete:
      if (r.expected_version != -1) os << " if v" << r.expected_version;
      break;
    default:
      break;
  }
  os << " -> " << outcome_name(r.outcome);
  if (!r.error.empty()) os << " (" << r.error << ")";
  if (r.outcome == Outcome::Ok) {
    switch (r.kind) {
      case Kind::Set:
        os << " v" << r.version;
        break;
      case Kind::Read:
      case Kind::WatchSeen:
        os << " \"" << r.data << "\" v" << r.version;
        break;
      case Kind::SeqCreate:
        os << " " << r.path;
        break;
      case Kind::SeqList:
        os << " " << r.children.size() << " children";
        break;
      default:
        break;
    }
  }
  if (r.kind == Kind::WatchDone) {
    os << " reached=" << (r.reached ? "true" : "false") << " v" << r.version << " final v"
       << r.final_version;
  }
  os << " [" << r.call_ns << ", ";
  if (r.ret_ns) {
    os << *r.ret_ns;
  } else {
    os << "never";
  }
  os << "]";
  if (!r.server.empty()) os << " on " << r.server;
  if (!r.session.empty()) os << " session 0x" << r.session;
  return os.str();
}

}  // namespace coord::faults
