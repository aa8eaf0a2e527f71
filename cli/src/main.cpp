// coordctl: the shell of coord (and of any ZooKeeper 3.8 ensemble).
//
//   coordctl [options]                 interactive shell (stdin a terminal)
//   coordctl [options] < script        one command per line, no prompt
//   coordctl [options] cmd args...     one command; the exit code says how it went
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "coord/base/limits.h"
#include "coord/cli/format.h"
#include "coord/cli/line_editor.h"
#include "coord/cli/shell.h"

namespace {

using coord::cli::Shell;
using coord::cli::ShellOptions;
namespace exit_code = coord::cli::exit_code;

constexpr const char* kUsage = R"(usage: coordctl [options] [command [args...]]

With a command, runs it and exits; without one, reads commands from stdin
(an interactive shell with line editing, history and tab completion when
stdin is a terminal). Type `help` in the shell for the commands.

options:
  -s, --server, -server HOSTS  host:port[,host:port...][/chroot] (default 127.0.0.1:2181)
  --http HOST:PORT             coordd's admin API for the cluster commands
                               (default: the first server's host, port 8080)
  --user USER:PASSWORD         credentials for the admin API's changes
                               (add-server, remove-server, transfer-leader),
                               sent as HTTP Basic (default: $COORDCTL_USER)
  --json                       one JSON document per command on stdout
  --timeout MS                 per-request timeout (default 10000)
  --connect-timeout MS         how long to wait for a session (default 5000)
  --session-timeout MS         session timeout asked for (default 30000)
  --history-file PATH          interactive history (default ~/.coordctl_history,
                               or $COORDCTL_HISTORY)
  --tls                        connect with TLS (the servers' secure client port),
                               verifying their certificates against the system's CAs
  --tls-ca-file PEM            ... against these CAs instead (implies --tls)
  --tls-cert-file PEM          a client certificate (implies --tls; with --tls-key-file):
                               the session gets the identity x509:<its subject>
  --tls-key-file PEM           the client certificate's private key
  --tls-no-name-check          accept a server certificate that does not name the
                               host given in -s (its chain is still verified)
  -h, --help                   this text
  --version                    coordctl's version

exit codes (one-shot mode; a script exits with its last failure's code):
  0  ok
  1  usage error: unknown command, bad flags, missing arguments, bad path
  2  the node does not exist (NoNode)
  3  the node exists (NodeExists)
  4  bad version (BadVersion)
  5  the node has children (NotEmpty)
  6  no permission, authentication failed or invalid ACL
  7  connection loss, server unreachable, timeout, session expired
  8  any other server error (and admin API errors without a kind above)
)";

bool parse_ms(const std::string& text, std::chrono::milliseconds& out) {
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v <= 0 || v > coord::limits::cli_timeout_ms_max) return false;
  out = std::chrono::milliseconds(v);
  return true;
}

std::string default_history_file() {
  if (const char* env = std::getenv("COORDCTL_HISTORY"); env && *env) return env;
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.coordctl_history";
  }
  return "";
}

void load_history(const std::string& path, std::vector<std::string>& history) {
  if (path.empty()) return;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.size() > coord::limits::cli_line_bytes_max) continue;
    history.push_back(line);
  }
  if (history.size() > coord::limits::cli_history_entries_max) {
    history.erase(history.begin(), history.end() - static_cast<std::ptrdiff_t>(
                                                       coord::limits::cli_history_entries_max));
  }
}

void save_history(const std::string& path, const std::vector<std::string>& history) {
  if (path.empty()) return;
  // Written whole to a temporary file and renamed, so a crash mid-write
  // never leaves a torn history.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    std::size_t from = history.size() > coord::limits::cli_history_entries_max
                           ? history.size() - coord::limits::cli_history_entries_max
                           : 0;
    for (std::size_t i = from; i < history.size(); ++i)
      out << history[i] << '\n';
    if (!out) return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

// std::getline without its unbounded memory: a line past the limit is read
// to its end and dropped, and `too_long` says so.
bool read_line_bounded(std::istream& in, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  int c;
  bool any = false;
  while ((c = in.get()) != std::char_traits<char>::eof()) {
    any = true;
    if (c == '\n') return true;
    if (line.size() >= coord::limits::cli_line_bytes_max) {
      too_long = true;
      line.clear();
      continue;
    }
    if (!too_long) line += static_cast<char>(c);
  }
  return any;
}

int interactive(ShellOptions options, const std::string& history_file) {
  options.interactive = true;
  std::vector<std::string> loaded;
  load_history(history_file, loaded);
  Shell* shell_ptr = nullptr;
  coord::cli::LineEditor::Hooks hooks;
  hooks.prompt = [&shell_ptr] { return shell_ptr ? shell_ptr->prompt() : std::string("> "); };
  hooks.complete = [&shell_ptr](std::string_view before) {
    return shell_ptr ? shell_ptr->complete(before) : std::vector<std::string>{};
  };
  // The shell prints through the editor, and the editor browses the
  // shell's history.
  coord::cli::LineEditor editor(STDIN_FILENO, STDOUT_FILENO, hooks, nullptr);
  Shell shell(options, editor);
  shell_ptr = &shell;
  std::vector<std::string>* history = &shell.history();
  *history = std::move(loaded);
  editor.set_history(history);
  editor.out("Connecting to " + options.servers + "\n");
  if (coord::Status s = shell.connect(); !s.ok()) {
    editor.err(s.message() + " (use `connect host:port`)\n");
  } else {
    editor.out("Welcome to coord!\n");
  }
  while (!shell.quit_requested()) {
    auto line = editor.read_line();
    if (!line) break;
    shell.run_line(*line);
    save_history(history_file, *history);
  }
  return exit_code::ok;
}

}  // namespace

int main(int argc, char** argv) {
  ShellOptions options;
  if (const char* user = std::getenv("COORDCTL_USER"); user && *user) options.http_user = user;
  std::string history_file = default_history_file();
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "coordctl: " << a << " needs a value\n" << kUsage;
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (!command.empty()) {
      command.push_back(a);
    } else if (a == "-s" || a == "--server" || a == "-server") {
      if (!value(options.servers)) return exit_code::usage;
    } else if (a == "--http") {
      if (!value(options.http)) return exit_code::usage;
    } else if (a == "--user") {
      if (!value(options.http_user)) return exit_code::usage;
    } else if (a == "--json") {
      options.json = true;
    } else if (a == "--timeout" || a == "--connect-timeout" || a == "--session-timeout") {
      std::string v;
      if (!value(v)) return exit_code::usage;
      auto& target = a == "--timeout"           ? options.request_timeout
                     : a == "--connect-timeout" ? options.connect_timeout
                                                : options.session_timeout;
      if (!parse_ms(v, target)) {
        std::cerr << "coordctl: " << a << " takes milliseconds (1.."
                  << coord::limits::cli_timeout_ms_max << "), not '" << v << "'\n";
        return exit_code::usage;
      }
    } else if (a == "--tls") {
      options.tls.enabled = true;
    } else if (a == "--tls-ca-file" || a == "--tls-cert-file" || a == "--tls-key-file") {
      auto& target = a == "--tls-ca-file"     ? options.tls.ca_file
                     : a == "--tls-cert-file" ? options.tls.cert_file
                                              : options.tls.key_file;
      if (!value(target)) return exit_code::usage;
      options.tls.enabled = true;
    } else if (a == "--tls-no-name-check") {
      options.tls.verify_server_name = false;
    } else if (a == "--history-file") {
      if (!value(history_file)) return exit_code::usage;
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return exit_code::ok;
    } else if (a == "--version") {
      std::cout << "coordctl version 0.1.0 (ZooKeeper 3.8 client protocol)\n";
      return exit_code::ok;
    } else if (a.size() > 1 && a[0] == '-') {
      std::cerr << "coordctl: unknown option " << a << "\n" << kUsage;
      return exit_code::usage;
    } else {
      command.push_back(a);
    }
  }

  if (!command.empty()) {
    options.data_in = &std::cin;
    coord::cli::StreamConsole console(std::cout, std::cerr);
    Shell shell(options, console);
    return shell.run(command);
  }
  if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) return interactive(options, history_file);

  // Script mode: each line a command, no prompt; stop at `quit`.
  coord::cli::StreamConsole console(std::cout, std::cerr);
  Shell shell(options, console);
  int last_failure = exit_code::ok;
  std::string line;
  bool too_long = false;
  while (!shell.quit_requested() && read_line_bounded(std::cin, line, too_long)) {
    int rc;
    if (too_long) {
      console.err("line longer than " + std::to_string(coord::limits::cli_line_bytes_max) +
                  " bytes skipped\n");
      rc = exit_code::usage;
    } else {
      rc = shell.run_line(line);
    }
    if (rc != exit_code::ok) last_failure = rc;
  }
  return last_failure;
}
