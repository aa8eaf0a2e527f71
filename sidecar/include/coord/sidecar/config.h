// coord-sidecar's settings: its flags, or the same names in a JSON file.
//
//   coord-sidecar -s SERVERS --service NAME --address HOST:PORT
//                 [--check http://... | --check tcp://host:port | --check-cmd 'CMD']
//                 [--interval-ms N --timeout-ms N --rise N --fall N]
//                 [--watch NAME...] [--listen 127.0.0.1:PORT]
//                 [--template SRC:DEST ... --reload-cmd 'CMD'] [--config FILE.json]
//
// A key of the JSON object is a flag without its dashes ("servers",
// "interval-ms", "watch": ["web", "db"]); a flag given on the command line
// wins over the file; an unknown key is an error, as is anything that does
// not fit (a missing value, a number out of range, both --check and
// --check-cmd). `-s` is also `--servers`.
// Thread safety: value types and pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/status.h"

namespace coord::sidecar {

enum class CheckKind : std::uint8_t { None, Http, Tcp, Command };

struct CheckSpec {
  CheckKind kind = CheckKind::None;  // None: the service counts as healthy
  std::string target;                // the URL, "host:port" or the shell command
  // Http: split from the URL.
  std::string host;
  std::uint16_t port = 0;
  std::string path = "/";
};

struct TemplateSpec {
  std::string source;       // a mustache template file
  std::string destination;  // the file written from it
};

struct Config {
  std::string servers;  // connection string
  std::string base_path = "/services";
  std::chrono::milliseconds session_timeout{10'000};

  // The instance this sidecar registers; empty service: discovery only.
  std::string service;
  std::string address;  // host of --address
  std::uint16_t port = 0;
  std::string id;  // default: "<address>-<port>"
  std::map<std::string, std::string> metadata;

  CheckSpec check;
  std::chrono::milliseconds interval{1'000};
  std::chrono::milliseconds timeout{800};
  int rise = 2;
  int fall = 3;

  std::vector<std::string> watch;  // services served and rendered
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 7070;  // 0: any free port

  std::vector<TemplateSpec> templates;
  std::string reload_cmd;  // run after a rendered file changed; empty: none
  std::chrono::milliseconds reload_timeout{30'000};
  std::chrono::milliseconds debounce{500};        // quiet time before a render
  std::chrono::milliseconds debounce_max{5'000};  // longest a burst holds it back
  std::chrono::milliseconds reload_retry_max{30'000};

  std::string log_level = "info";
};

// What parsing the command line decided.
struct ParsedArgs {
  Config config;
  // --help: print this and exit 0 instead of running.
  std::optional<std::string> help;
};

// Parses argv (argv[0] is the program's name). BadArguments with a message
// naming the flag or key for anything that does not fit.
Result<ParsedArgs> parse_args(const std::vector<std::string>& argv);

// Splits "host:port" ("[v6]:port" too); BadArguments when it is not one.
Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text);

// Splits a --check value: http://host:port/path or tcp://host:port.
Result<CheckSpec> parse_check(const std::string& text);

}  // namespace coord::sidecar
