// coordctl's output vocabulary: how the shell prints what the server
// answered. Text follows zkCli.sh's habits (stat lines, ACL lines, error
// sentences) so that people who know ZooKeeper read it at once; JSON is one
// document per command for scripts. Also the exit code of each error kind,
// the ACL syntax parser and the path rules the shell checks before sending.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "coord/base/error.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"

namespace coord::cli {

// Exit codes of one-shot mode (also in cli/README.md and --help).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int usage = 1;
inline constexpr int no_node = 2;
inline constexpr int node_exists = 3;
inline constexpr int bad_version = 4;
inline constexpr int not_empty = 5;
inline constexpr int auth = 6;
inline constexpr int connection = 7;
inline constexpr int other = 8;
}  // namespace exit_code

// The exit code for a failed operation's code (Ok -> 0).
int exit_code_for(ErrorCode code);

// zkCli's sentence for an error on `path`: "Node does not exist: /x",
// "version No is not valid : /x", "KeeperErrorCode = ConnectionLoss for /x".
std::string error_sentence(ErrorCode code, std::string_view path);

// The stat block of zkCli ("cZxid = 0x2\nctime = ...\n...numChildren = 3\n").
// Times in the local time zone, as Java's Date.toString prints them.
std::string format_stat(const Stat& s);
std::string format_time_ms(std::int64_t ms_since_epoch);
std::string hex(std::int64_t v);  // "0x1a"; negative values as two's complement

// "'world,'anyone\n: cdrwa\n" per entry.
std::string format_acl(const AclList& acl);
// "scheme:id:perms[,scheme:id:perms...]"; the id may itself contain ':'
// (digest user:hash, ip with a port-less IPv6 is not supported). Error text
// on failure.
Result<AclList> parse_acl(std::string_view text);

// The client-side path rules of ZooKeeper's PathUtils.validatePath, with
// its sentences ("Path must start with / character"). `sequential` allows a
// trailing '/' (the server appends the counter).
Status validate_path(std::string_view path, bool sequential = false);

bool is_valid_utf8(std::string_view s);
std::string base64_encode(std::string_view bytes);
std::string hex_dump(std::string_view bytes);  // "68 69 0a" style, 16 per line

// JSON pieces. Stat fields carry zkCli's names.
nlohmann::json stat_json(const Stat& s);
// {"data": "..."} or {"data": "<base64>", "data_base64": true}; null data
// -> "data": null.
void put_data_json(nlohmann::json& j, const Data& data);
nlohmann::json acl_json(const AclList& acl);

}  // namespace coord::cli
