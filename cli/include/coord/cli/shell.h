// The shell behind coordctl: zkCli's commands, flags and output habits on
// top of libcoord, plus the cluster commands of coordd's HTTP admin API.
//
// One Shell holds at most one Client (the `connect` and `close` commands
// replace or drop it). run() executes one command given as words and
// returns the exit code of one-shot mode (format.h, exit_code); run_line()
// tokenizes a line, records it in the history and runs it. The command
// table (commands()) is the single source of dispatch, usage lines and
// help; a command that issues ZooKeeper ops names them through the
// protocol's op table (op_table.h, shell_verb), so help and the server
// never disagree about which op a verb sends.
//
// Thread safety: run(), run_line() and the accessors are called from one
// thread (the shell's); watchers run on the client's event thread and only
// write through Console::async().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coord/base/status.h"
#include "coord/cli/console.h"
#include "coord/client-lib/client.h"

namespace coord {
class Client;
struct WatchEvent;
}  // namespace coord

namespace coord::cli {

struct ShellOptions {
  // "host:port[,host:port...][/chroot]".
  std::string servers = "127.0.0.1:2181";
  // host:port of coordd's admin API; "" = the first server's host, port 8080.
  std::string http;
  // "user:password" sent as HTTP Basic credentials to the admin API (the
  // super user, or a user with ADMIN on /zookeeper/config); "": none.
  std::string http_user;
  bool json = false;
  // Interactive sessions print connection state changes as events.
  bool interactive = false;
  std::chrono::milliseconds session_timeout{30'000};
  // How long connect waits for a session before giving up.
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{10'000};
  // Where data given as "-" is read from (one-shot mode: stdin); nullptr
  // when stdin carries the script itself.
  std::istream* data_in = nullptr;
  // TLS to the servers (their secure client port), when enabled.
  ClientTls tls;
};

class Shell;

struct CommandInfo {
  std::string_view name;
  // Flags without a value ("swR") and flags taking one ("v").
  std::string_view flags;
  std::string_view value_flags;
  std::size_t positional_min = 0;
  std::size_t positional_max = 0;
  std::string_view usage;  // "get [-s] [-w] [-b|-x] path"
  std::string_view summary;
  // Talks to a ZooKeeper server (the shell connects on first use); false
  // for local and admin-API commands. Listed by `help` in --json mode.
  bool needs_session = false;
};

// Words of a command line: split at blanks; '...' and "..." group words
// (quotes dropped; a backslash escapes the next character inside "...").
// Error text for an unterminated quote.
Result<std::vector<std::string>> tokenize(std::string_view line);

// The op-table names of the ops a shell verb issues ("get" -> {"getData"}),
// in opcode order; empty for verbs that issue none.
std::vector<std::string_view> ops_of_verb(std::string_view verb);

class Shell {
 public:
  Shell(ShellOptions options, Console& console);
  ~Shell();
  Shell(const Shell&) = delete;
  Shell& operator=(const Shell&) = delete;

  static const std::vector<CommandInfo>& commands();
  static const CommandInfo* find_command(std::string_view name);

  // Opens a session with options().servers, waiting at most the connect
  // timeout. On failure the shell has no session; the error is returned
  // (and not printed).
  Status connect();
  bool connected() const;

  // Runs one command; returns its exit code.
  int run(const std::vector<std::string>& words);
  // Tokenizes `line`, records it in the history, runs it. Blank lines and
  // lines starting with '#' are skipped (exit code 0).
  int run_line(std::string_view line);
  bool quit_requested() const { return quit_; }

  // "[coordctl: 127.0.0.1:2181(CONNECTED) 3] ".
  std::string prompt() const;
  // Candidates for the word being typed: command names for the first word,
  // znode paths (children of the typed parent) for a word starting with '/'.
  std::vector<std::string> complete(std::string_view line_before_cursor);

  std::vector<std::string>& history() { return history_; }
  const ShellOptions& options() const { return options_; }

 private:
  // One parsed command line: the flags seen (with their values) and the
  // positional words.
  struct Parsed {
    const CommandInfo* info = nullptr;
    std::vector<std::pair<char, std::string>> flags;
    std::vector<std::string> args;
    bool has(char f) const;
    std::optional<std::string> value(char f) const;
  };
  using Handler = int (Shell::*)(const Parsed&);
  struct Command;
  static const std::vector<Command>& table();

  int dispatch(const std::vector<std::string>& words);
  int usage_error(const CommandInfo& c, std::string_view problem);
  int fail(const Status& s, std::string_view path);
  int not_connected();
  // Ok when there is a session; otherwise connects once (see auto_connect_)
  // and prints why that failed.
  int need_session();
  // Prints why connecting failed; the exit code.
  int connect_failed(const Status& s);
  // The -v flag's version into `version` (-1 when absent); a usage error
  // when it is not a version.
  int version_flag(const Parsed& p, std::int32_t& version);
  void print(std::string_view text);
  void print_json(const std::string& doc);
  void event(std::string text, std::string json_doc);
  std::function<void(const coord::WatchEvent&)> make_watcher();
  Result<std::string> read_data(const Parsed& p, std::size_t data_index);

  int cmd_help(const Parsed& p);
  int cmd_ls(const Parsed& p);
  int cmd_create(const Parsed& p);
  int cmd_get(const Parsed& p);
  int cmd_set(const Parsed& p);
  int cmd_stat(const Parsed& p);
  int cmd_delete(const Parsed& p);
  int cmd_deleteall(const Parsed& p);
  int cmd_sync(const Parsed& p);
  int cmd_get_acl(const Parsed& p);
  int cmd_set_acl(const Parsed& p);
  int cmd_addauth(const Parsed& p);
  int cmd_whoami(const Parsed& p);
  int cmd_get_ephemerals(const Parsed& p);
  int cmd_get_all_children_number(const Parsed& p);
  int cmd_add_watch(const Parsed& p);
  int cmd_remove_watches(const Parsed& p);
  int cmd_printwatches(const Parsed& p);
  int cmd_config(const Parsed& p);
  int cmd_connect(const Parsed& p);
  int cmd_close(const Parsed& p);
  int cmd_version(const Parsed& p);
  int cmd_history(const Parsed& p);
  int cmd_redo(const Parsed& p);
  int cmd_quit(const Parsed& p);
  int cmd_members(const Parsed& p);
  int cmd_status(const Parsed& p);
  int cmd_add_server(const Parsed& p);
  int cmd_remove_server(const Parsed& p);
  int cmd_transfer_leader(const Parsed& p);

  std::string http_endpoint() const;

  ShellOptions options_;
  Console& console_;
  std::unique_ptr<Client> client_;
  std::shared_ptr<std::atomic<bool>> print_watches_;
  std::vector<std::string> history_;
  std::size_t redo_depth_ = 0;
  bool quit_ = false;
  // A command that needs a session connects first, once: after a failed
  // attempt or `close`, commands answer "Not connected" until `connect`.
  bool auto_connect_ = true;
};

}  // namespace coord::cli
