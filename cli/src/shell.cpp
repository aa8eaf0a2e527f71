#include "coord/cli/shell.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "coord/base/limits.h"
#include "coord/cli/format.h"
#include "coord/client-lib/client.h"
#include "coord/protocol/op_table.h"

namespace coord::cli {

using nlohmann::json;

namespace {

constexpr std::string_view kVersion = "0.1.0";

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string join_list(const std::vector<std::string>& items) {
  // Java's List.toString, which zkCli prints: "[a, b]".
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) s += ", ";
    s += items[i];
  }
  return s + "]";
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

std::string state_word(SessionState s) {
  switch (s) {
    case SessionState::Connecting:
      return "CONNECTING";
    case SessionState::Connected:
      return "CONNECTED";
    case SessionState::Disconnected:
      return "DISCONNECTED";
    case SessionState::Expired:
      return "EXPIRED";
    case SessionState::Closed:
      return "CLOSED";
    case SessionState::AuthFailed:
      return "AUTH_FAILED";
  }
  return "UNKNOWN";
}

// The keeper state zkCli prints for a client state change.
std::string_view keeper_state_of(SessionState s) {
  switch (s) {
    case SessionState::Connected:
      return "SyncConnected";
    case SessionState::Disconnected:
    case SessionState::Connecting:
      return "Disconnected";
    case SessionState::Expired:
      return "Expired";
    case SessionState::Closed:
      return "Closed";
    case SessionState::AuthFailed:
      return "AuthFailed";
  }
  return "Unknown";
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::int64_t v = 0;
  bool neg = false;
  std::size_t i = 0;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return std::nullopt;
  }
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

}  // namespace

void StreamConsole::out(std::string_view text) {
  std::lock_guard lock(mu_);
  out_ << text;
  out_.flush();
}

void StreamConsole::err(std::string_view text) {
  std::lock_guard lock(mu_);
  out_.flush();
  err_ << text;
  err_.flush();
}

Result<std::vector<std::string>> tokenize(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i]))
      ++i;
    if (i >= line.size()) break;
    std::string word;
    while (i < line.size() && !is_blank(line[i])) {
      char c = line[i];
      if (c == '\'' || c == '"') {
        std::size_t j = i + 1;
        while (j < line.size() && line[j] != c) {
          if (c == '"' && line[j] == '\\' && j + 1 < line.size()) ++j;
          word += line[j];
          ++j;
        }
        if (j >= line.size()) {
          return Status(ErrorCode::BadArguments, std::string("unterminated ") + c + " quote");
        }
        i = j + 1;
      } else {
        word += c;
        ++i;
      }
    }
    words.push_back(std::move(word));
  }
  return words;
}

std::vector<std::string_view> ops_of_verb(std::string_view verb) {
  std::vector<std::string_view> out;
  for (const protocol::OpInfo& op : protocol::op_table()) {
    if (!verb.empty() && op.shell_verb == verb) out.push_back(op.name);
  }
  return out;
}

bool Shell::Parsed::has(char f) const {
  return std::any_of(flags.begin(), flags.end(), [f](const auto& p) { return p.first == f; });
}

std::optional<std::string> Shell::Parsed::value(char f) const {
  for (const auto& p : flags) {
    if (p.first == f) return p.second;
  }
  return std::nullopt;
}

struct Shell::Command {
  CommandInfo info;
  Handler handler;
};

const std::vector<Shell::Command>& Shell::table() {
  // One row per command: dispatch, usage and help all come from here.
  static const std::vector<Command> kTable = {
      {{"help", "", "", 0, 0, "help", "print this list", false}, &Shell::cmd_help},
      {{"ls", "swR", "", 1, 1, "ls [-s] [-w] [-R] path",
        "children of path (-s with its stat, -w watch, -R the whole subtree)", true},
       &Shell::cmd_ls},
      {{"create", "sec", "tf", 1, 3, "create [-s] [-e] [-c] [-t ttl] [-f file] path [data] [acl]",
        "create a znode (-s sequential, -e ephemeral, -c container, -t ttl ms; data '-' = stdin)",
        true},
       &Shell::cmd_create},
      {{"get", "swbx", "", 1, 1, "get [-s] [-w] [-b|-x] path",
        "data of path (-s with stat, -w watch, -b base64, -x hex)", true},
       &Shell::cmd_get},
      {{"set", "s", "vf", 1, 2, "set [-s] [-v version] [-f file] path [data]",
        "set data (-s print stat, -v expected version; data '-' = stdin)", true},
       &Shell::cmd_set},
      {{"stat", "w", "", 1, 1, "stat [-w] path", "stat of path (-w exist watch)", true},
       &Shell::cmd_stat},
      {{"delete", "", "v", 1, 1, "delete [-v version] path", "delete a childless znode", true},
       &Shell::cmd_delete},
      {{"deleteall", "", "", 1, 1, "deleteall path", "delete path and its whole subtree", true},
       &Shell::cmd_deleteall},
      {{"sync", "", "", 1, 1, "sync path", "wait until this server has caught up", true},
       &Shell::cmd_sync},
      {{"getAcl", "s", "", 1, 1, "getAcl [-s] path", "ACL of path (-s with stat)", true},
       &Shell::cmd_get_acl},
      {{"setAcl", "sR", "v", 2, 2, "setAcl [-s] [-v version] [-R] path acl",
        "set the ACL (scheme:id:perms,...; -R the whole subtree)", true},
       &Shell::cmd_set_acl},
      {{"addauth", "", "", 2, 2, "addauth scheme auth", "add credentials (digest user:password)",
        true},
       &Shell::cmd_addauth},
      {{"whoami", "", "", 0, 0, "whoami", "identities of this session", true}, &Shell::cmd_whoami},
      {{"getEphemerals", "", "", 0, 1, "getEphemerals [path]",
        "this session's ephemerals under path", true},
       &Shell::cmd_get_ephemerals},
      {{"getAllChildrenNumber", "", "", 1, 1, "getAllChildrenNumber path",
        "number of descendants of path", true},
       &Shell::cmd_get_all_children_number},
      {{"addWatch", "", "m", 1, 1, "addWatch [-m mode] path",
        "persistent watch; mode persistent or persistent_recursive (default)", true},
       &Shell::cmd_add_watch},
      {{"removewatches", "cda", "", 1, 1, "removewatches path [-c|-d|-a]",
        "remove this session's watches (-c child, -d data, -a any)", true},
       &Shell::cmd_remove_watches},
      {{"printwatches", "", "", 1, 1, "printwatches on|off", "print watch events or not", false},
       &Shell::cmd_printwatches},
      {{"config", "s", "", 0, 0, "config [-s]", "the ensemble configuration (/zookeeper/config)",
        true},
       &Shell::cmd_config},
      {{"connect", "", "", 1, 1, "connect host:port", "close this session and open one there",
        false},
       &Shell::cmd_connect},
      {{"close", "", "", 0, 0, "close", "close this session", false}, &Shell::cmd_close},
      {{"version", "", "", 0, 0, "version", "coordctl's version", false}, &Shell::cmd_version},
      {{"history", "", "", 0, 0, "history", "the last 10 commands", false}, &Shell::cmd_history},
      {{"redo", "", "", 1, 1, "redo cmdno", "run history entry cmdno again", false},
       &Shell::cmd_redo},
      {{"quit", "", "", 0, 0, "quit", "leave the shell", false}, &Shell::cmd_quit},
      {{"members", "", "", 0, 0, "members", "cluster members (admin API)", false},
       &Shell::cmd_members},
      {{"status", "", "", 0, 0, "status", "leader, term and lag per member (admin API)", false},
       &Shell::cmd_status},
      {{"add-server", "l", "", 3, 3, "add-server [-l] id host:peerport [host:]clientport",
        "add a participant (-l: an observer) (admin API)", false},
       &Shell::cmd_add_server},
      {{"remove-server", "", "", 1, 1, "remove-server id", "remove a member (admin API)", false},
       &Shell::cmd_remove_server},
      {{"transfer-leader", "", "", 1, 1, "transfer-leader id",
        "hand leadership to member id (admin API)", false},
       &Shell::cmd_transfer_leader},
  };
  return kTable;
}

const std::vector<CommandInfo>& Shell::commands() {
  static const std::vector<CommandInfo> kInfos = [] {
    std::vector<CommandInfo> v;
    for (const Command& c : table())
      v.push_back(c.info);
    return v;
  }();
  return kInfos;
}

const CommandInfo* Shell::find_command(std::string_view name) {
  for (const CommandInfo& c : commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Shell::Shell(ShellOptions options, Console& console)
    : options_(std::move(options)),
      console_(console),
      print_watches_(std::make_shared<std::atomic<bool>>(true)) {}

Shell::~Shell() {
  if (client_) (void)client_->close(std::chrono::milliseconds(limits::cli_close_ms_max));
  client_.reset();
}

Status Shell::connect() {
  auto_connect_ = false;
  if (client_) {
    (void)client_->close(std::chrono::milliseconds(limits::cli_close_ms_max));
    client_.reset();
  }
  ClientOptions o;
  o.servers = options_.servers;
  o.tls = options_.tls;
  o.session_timeout = options_.session_timeout;
  o.request_timeout = options_.request_timeout;
  o.connect_timeout = std::min(options_.connect_timeout,
                               std::chrono::milliseconds(limits::cli_connect_attempt_ms_max));
  if (options_.interactive) {
    // State changes after the first connection are shown like zkCli's
    // default watcher shows them; the prompt carries the state too.
    Console* console = &console_;
    auto printing = print_watches_;
    bool json_mode = options_.json;
    auto first = std::make_shared<bool>(true);
    o.on_state = [console, printing, json_mode, first](SessionState s) {
      if (*first && s == SessionState::Connected) {
        *first = false;
        return;
      }
      if (s == SessionState::Connecting || !printing->load()) return;
      if (json_mode) {
        console->async(
            json{{"event", {{"type", "None"}, {"state", keeper_state_of(s)}, {"path", nullptr}}}}
                .dump() +
            "\n");
      } else {
        console->async("\nWATCHER::\n\nWatchedEvent state:" + std::string(keeper_state_of(s)) +
                       " type:None path:null\n");
      }
    };
  }
  auto started = Client::start(std::move(o));
  if (!started) return started.status();
  std::unique_ptr<Client> client = std::move(started).value();
  Status s = client->wait_connected(options_.connect_timeout);
  if (!s.ok()) {
    (void)client->close(std::chrono::milliseconds(0));
    std::string why = s.code() == ErrorCode::ConnectionLoss
                          ? "no server answered within " +
                                std::to_string(options_.connect_timeout.count()) + " ms"
                          : std::string(error_name(s.code()));
    // A server that answered but failed TLS verification: say why, or the
    // message would blame the network.
    if (const auto at = s.message().find("TLS handshake: "); at != std::string::npos) {
      why += " (" + s.message().substr(at) + ")";
    }
    return Status(s.code(), "Could not connect to " + options_.servers + ": " + why);
  }
  client_ = std::move(client);
  return Status();
}

bool Shell::connected() const {
  return client_ && client_->state() == SessionState::Connected;
}

std::string Shell::prompt() const {
  std::string state = client_ ? state_word(client_->state()) : "CLOSED";
  std::string where = client_ && !client_->connected_server().empty() ? client_->connected_server()
                                                                      : options_.servers;
  return "[coordctl: " + where + "(" + state + ") " + std::to_string(history_.size()) + "] ";
}

void Shell::print(std::string_view text) {
  if (!options_.json) console_.out(text);
}

void Shell::print_json(const std::string& doc) {
  console_.out(doc + "\n");
}

int Shell::usage_error(const CommandInfo& c, std::string_view problem) {
  if (options_.json) {
    print_json(json{{"error", "Usage"},
                    {"message", std::string(problem)},
                    {"usage", std::string(c.usage)},
                    {"exit_code", exit_code::usage}}
                   .dump());
  } else {
    std::string text;
    if (!problem.empty()) text += std::string(problem) + "\n";
    text += "usage: " + std::string(c.usage) + "\n";
    console_.err(text);
  }
  return exit_code::usage;
}

int Shell::fail(const Status& s, std::string_view path) {
  std::string sentence = error_sentence(s.code(), path);
  int code = exit_code_for(s.code());
  if (options_.json) {
    print_json(json{
        {"error", std::string(error_name(s.code()))},
        {"code", to_int(s.code())},
        {"path", std::string(path)},
        {"message", sentence},
        {"exit_code",
         code}}.dump());
  } else {
    console_.err(sentence + "\n");
  }
  return code;
}

int Shell::not_connected() {
  if (options_.json) {
    print_json(json{{"error", "ConnectionLoss"},
                    {"code", to_int(ErrorCode::ConnectionLoss)},
                    {"message", "Not connected"},
                    {"exit_code", exit_code::connection}}
                   .dump());
  } else {
    console_.err("Not connected\n");
  }
  return exit_code::connection;
}

std::function<void(const WatchEvent&)> Shell::make_watcher() {
  Console* console = &console_;
  auto printing = print_watches_;
  bool json_mode = options_.json;
  return [console, printing, json_mode](const WatchEvent& ev) {
    if (!printing->load()) return;
    if (json_mode) {
      console->async(json{{"event",
                           {{"type", std::string(event_type_name(ev.type))},
                            {"state", std::string(keeper_state_name(ev.state))},
                            {"path", ev.path}}}}
                         .dump() +
                     "\n");
    } else {
      console->async(
          "\nWATCHER::\n\nWatchedEvent state:" + std::string(keeper_state_name(ev.state)) +
          " type:" + std::string(event_type_name(ev.type)) +
          " path:" + (ev.path.empty() ? std::string("null") : ev.path) + "\n");
    }
  };
}

int Shell::run_line(std::string_view line) {
  std::size_t first = 0;
  while (first < line.size() && is_blank(line[first]))
    ++first;
  if (first == line.size() || line[first] == '#') return exit_code::ok;
  if (line.size() > limits::cli_line_bytes_max) {
    console_.err("line longer than " + std::to_string(limits::cli_line_bytes_max) + " bytes\n");
    return exit_code::usage;
  }
  std::string text(line);
  while (!text.empty() && is_blank(text.back()))
    text.pop_back();
  auto words = tokenize(text);
  history_.push_back(text.substr(first));
  if (history_.size() > limits::cli_history_entries_max) history_.erase(history_.begin());
  if (!words) {
    console_.err(words.status().message() + "\n");
    return exit_code::usage;
  }
  return run(*words);
}

int Shell::run(const std::vector<std::string>& words) {
  if (words.empty()) return exit_code::ok;
  return dispatch(words);
}

int Shell::dispatch(const std::vector<std::string>& words) {
  const Command* cmd = nullptr;
  for (const Command& c : table()) {
    if (c.info.name == words[0]) cmd = &c;
  }
  if (!cmd) {
    if (options_.json) {
      print_json(json{{"error", "Usage"},
                      {"message", "Command not found: " + words[0]},
                      {"exit_code", exit_code::usage}}
                     .dump());
    } else {
      console_.err("Command not found: " + words[0] + " (type help for the list)\n");
    }
    return exit_code::usage;
  }
  Parsed p;
  p.info = &cmd->info;
  bool flags_done = false;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!flags_done && w == "--") {
      flags_done = true;
      continue;
    }
    if (!flags_done && w.size() >= 2 && w[0] == '-') {
      char f = w[1];
      bool takes_value = cmd->info.value_flags.find(f) != std::string_view::npos;
      bool plain = cmd->info.flags.find(f) != std::string_view::npos;
      if (w.size() == 2 && takes_value) {
        if (i + 1 >= words.size()) {
          return usage_error(cmd->info, "Missing argument for option: " + std::string(1, f));
        }
        p.flags.emplace_back(f, words[++i]);
        continue;
      }
      if (w.size() == 2 && plain) {
        p.flags.emplace_back(f, "");
        continue;
      }
      // A negative number is data or a version, not a flag.
      if (!parse_int(w)) return usage_error(cmd->info, "Unrecognized option: " + w);
    }
    p.args.push_back(w);
  }
  if (p.args.size() < cmd->info.positional_min) {
    return usage_error(cmd->info, p.args.empty() ? "missing arguments" : "missing an argument");
  }
  if (p.args.size() > cmd->info.positional_max) {
    return usage_error(cmd->info, "too many arguments");
  }
  return (this->*(cmd->handler))(p);
}

int Shell::version_flag(const Parsed& p, std::int32_t& version) {
  version = -1;
  if (auto v = p.value('v')) {
    auto n = parse_int(*v);
    if (!n || *n < -1 || *n > INT32_MAX) return usage_error(*p.info, "bad version: " + *v);
    version = static_cast<std::int32_t>(*n);
  }
  return exit_code::ok;
}

int Shell::need_session() {
  if (client_) return exit_code::ok;
  if (!auto_connect_) return not_connected();
  auto_connect_ = false;
  Status s = connect();
  if (s.ok()) return exit_code::ok;
  return connect_failed(s);
}

int Shell::connect_failed(const Status& s) {
  // A malformed server list is the caller's mistake, not the server's.
  const int rc = s.code() == ErrorCode::BadArguments ? exit_code::usage : exit_code_for(s.code());
  if (options_.json) {
    print_json(json{
        {"error", std::string(error_name(s.code()))},
        {"code", to_int(s.code())},
        {"message", s.message()},
        {"exit_code",
         rc}}.dump());
  } else {
    console_.err(s.message() + "\n");
  }
  return rc;
}

Result<std::string> Shell::read_data(const Parsed& p, std::size_t data_index) {
  auto file = p.value('f');
  bool has_arg = p.args.size() > data_index;
  if (file && has_arg && p.args[data_index] != "") {
    return Status(ErrorCode::BadArguments, "give the data either inline or with -f, not both");
  }
  auto read_stream = [](std::istream& in, const std::string& what) -> Result<std::string> {
    std::string data;
    char buf[8192];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      data.append(buf, static_cast<std::size_t>(in.gcount()));
      if (data.size() > limits::znode_data_bytes_max) {
        return Status(ErrorCode::BadArguments, what + " holds more than " +
                                                   std::to_string(limits::znode_data_bytes_max) +
                                                   " bytes, the most a znode holds");
      }
    }
    return data;
  };
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) return Status(ErrorCode::BadArguments, "cannot read file " + *file);
    return read_stream(in, "file " + *file);
  }
  if (has_arg && p.args[data_index] == "-") {
    if (!options_.data_in) {
      return Status(ErrorCode::BadArguments,
                    "data '-' reads stdin, which only one-shot mode has free (use -f file)");
    }
    return read_stream(*options_.data_in, "stdin");
  }
  return has_arg ? p.args[data_index] : std::string();
}

// ---------------------------------------------------------------------------
// ZooKeeper commands
// ---------------------------------------------------------------------------

int Shell::cmd_help(const Parsed&) {
  std::string text =
      "coordctl -s host:port[,host:port...] [--json] [--http host:port] [cmd args]\n";
  json cmds = json::array();
  for (const CommandInfo& c : commands()) {
    auto ops = ops_of_verb(c.name);
    std::string op_text;
    for (std::size_t i = 0; i < ops.size(); ++i)
      op_text += (i ? ", " : "") + std::string(ops[i]);
    std::string line = "\t" + std::string(c.usage);
    if (line.size() < 64) line.append(64 - line.size(), ' ');
    text += line + " " + std::string(c.summary);
    if (!op_text.empty()) text += " [" + op_text + "]";
    text += "\n";
    json ops_json = json::array();
    for (auto o : ops)
      ops_json.push_back(std::string(o));
    cmds.push_back({{"name", std::string(c.name)},
                    {"usage", std::string(c.usage)},
                    {"summary", std::string(c.summary)},
                    {"needs_session", c.needs_session},
                    {"ops", ops_json}});
  }
  if (options_.json) {
    print_json(json{{"commands", cmds}}.dump());
  } else {
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_ls(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  if (p.has('R')) {
    // Depth first, children sorted, as zkCli's ls -R visits the subtree.
    std::vector<std::string> out;
    std::vector<std::string> stack{path};
    while (!stack.empty()) {
      std::string node = std::move(stack.back());
      stack.pop_back();
      auto r = client_->run(ops::GetChildren{node, p.has('w') ? make_watcher() : Watcher{}});
      if (!r) {
        if (r.code() == ErrorCode::NoNode && node != path) continue;  // deleted meanwhile
        return fail(r.status(), node);
      }
      out.push_back(node);
      if (out.size() >= limits::cli_tree_nodes_max) {
        console_.err("stopped after " + std::to_string(limits::cli_tree_nodes_max) + " nodes\n");
        break;
      }
      std::vector<std::string> kids = std::move(*r);
      std::sort(kids.begin(), kids.end());
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) {
        stack.push_back(child_path(node, *it));
      }
    }
    if (options_.json) {
      print_json(json{{"path", path}, {"nodes", out}}.dump());
    } else {
      std::string text;
      for (const auto& n : out)
        text += n + "\n";
      print(text);
    }
    return exit_code::ok;
  }
  auto r = client_->run(ops::GetChildren2{path, p.has('w') ? make_watcher() : Watcher{}});
  if (!r) return fail(r.status(), path);
  std::vector<std::string> kids = r->children;
  std::sort(kids.begin(), kids.end());
  if (options_.json) {
    json j{{"path", path}, {"children", kids}};
    if (p.has('s')) j["stat"] = stat_json(r->stat);
    print_json(j.dump());
  } else {
    std::string text = join_list(kids) + "\n";
    if (p.has('s')) text += format_stat(r->stat);
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_create(const Parsed& p) {
  const std::string& path = p.args[0];
  bool seq = p.has('s'), eph = p.has('e'), container = p.has('c');
  auto ttl_text = p.value('t');
  if (container && (seq || eph)) return usage_error(*p.info, "-c cannot be combined with -s or -e");
  if (ttl_text && (eph || container)) {
    return usage_error(*p.info, "-t cannot be combined with -e or -c");
  }
  std::int64_t ttl = 0;
  if (ttl_text) {
    auto v = parse_int(*ttl_text);
    if (!v || *v <= 0) return usage_error(*p.info, "ttl must be a positive number of ms");
    ttl = *v;
  }
  if (Status s = validate_path(path, seq); !s.ok()) return usage_error(*p.info, s.message());
  ops::Create op;
  op.path = path;
  if (container) {
    op.mode = CreateMode::Container;
  } else if (ttl_text) {
    op.mode = seq ? CreateMode::PersistentSequentialWithTtl : CreateMode::PersistentWithTtl;
    op.ttl_ms = ttl;
  } else if (eph) {
    op.mode = seq ? CreateMode::EphemeralSequential : CreateMode::Ephemeral;
  } else {
    op.mode = seq ? CreateMode::PersistentSequential : CreateMode::Persistent;
  }
  // With -f the data comes from the file and the words are path [acl].
  bool from_file = p.value('f').has_value();
  std::size_t acl_index = from_file ? 1 : 2;
  if (from_file && p.args.size() > 2) {
    return usage_error(*p.info, "with -f file, give only path [acl]");
  }
  // zkCli stores no data (a null buffer) when none is given.
  if (from_file || p.args.size() > 1) {
    auto data = read_data(p, from_file ? p.args.size() : 1);
    if (!data) return usage_error(*p.info, data.status().message());
    op.data = std::move(*data);
  } else {
    op.data = std::nullopt;
  }
  if (p.args.size() > acl_index) {
    auto acl = parse_acl(p.args[acl_index]);
    if (!acl) return usage_error(*p.info, acl.status().message());
    op.acl = std::move(*acl);
  }
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(std::move(op));
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    print_json(json{{"path", r->path}, {"stat", stat_json(r->stat)}}.dump());
  } else {
    print("Created " + r->path + "\n");
  }
  return exit_code::ok;
}

int Shell::cmd_get(const Parsed& p) {
  const std::string& path = p.args[0];
  if (p.has('b') && p.has('x')) return usage_error(*p.info, "-b and -x exclude each other");
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::GetData{path, p.has('w') ? make_watcher() : Watcher{}});
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    json j{{"path", path}};
    if (p.has('b') && r->data) {
      j["data"] = base64_encode(*r->data);
      j["data_base64"] = true;
    } else {
      put_data_json(j, r->data);
    }
    j["stat"] = stat_json(r->stat);
    print_json(j.dump());
    return exit_code::ok;
  }
  std::string text;
  if (!r->data) {
    text = "null\n";
  } else if (p.has('b')) {
    text = base64_encode(*r->data) + "\n";
  } else if (p.has('x')) {
    text = r->data->empty() ? "\n" : hex_dump(*r->data);
  } else {
    text = *r->data + "\n";
  }
  if (p.has('s')) text += format_stat(r->stat);
  print(text);
  return exit_code::ok;
}

int Shell::cmd_set(const Parsed& p) {
  const std::string& path = p.args[0];
  if (p.args.size() < 2 && !p.value('f')) return usage_error(*p.info, "missing data");
  std::int32_t version = -1;
  if (int rc = version_flag(p, version); rc != exit_code::ok) return rc;
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  auto data = read_data(p, 1);
  if (!data) return usage_error(*p.info, data.status().message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::SetData{path, std::move(*data), version});
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    print_json(json{{"path", path}, {"stat", stat_json(*r)}}.dump());
  } else if (p.has('s')) {
    print(format_stat(*r));
  }
  return exit_code::ok;
}

int Shell::cmd_stat(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::Exists{path, p.has('w') ? make_watcher() : Watcher{}});
  if (!r) return fail(r.status(), path);
  if (!r->has_value()) return fail(Status(ErrorCode::NoNode), path);
  if (options_.json) {
    print_json(json{{"path", path}, {"stat", stat_json(**r)}}.dump());
  } else {
    print(format_stat(**r));
  }
  return exit_code::ok;
}

int Shell::cmd_delete(const Parsed& p) {
  const std::string& path = p.args[0];
  std::int32_t version = -1;
  if (int rc = version_flag(p, version); rc != exit_code::ok) return rc;
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::Delete{path, version});
  if (!r) return fail(r.status(), path);
  if (options_.json) print_json(json{{"path", path}, {"deleted", true}}.dump());
  return exit_code::ok;
}

int Shell::cmd_deleteall(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  // Breadth-first listing, then deletion deepest first (children before
  // their parent).
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  std::vector<std::string> nodes{path};
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto r = client_->run(ops::GetChildren{nodes[i]});
    if (!r) {
      if (r.code() == ErrorCode::NoNode && i > 0) continue;
      return fail(r.status(), nodes[i]);
    }
    for (const auto& k : *r)
      nodes.push_back(child_path(nodes[i], k));
    if (nodes.size() > limits::cli_tree_nodes_max) {
      console_.err("more than " + std::to_string(limits::cli_tree_nodes_max) + " nodes under " +
                   path + "; nothing deleted\n");
      return exit_code::other;
    }
  }
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    auto r = client_->run(ops::Delete{*it, -1});
    if (!r && r.code() != ErrorCode::NoNode) return fail(r.status(), *it);
  }
  if (options_.json) {
    print_json(json{{"path", path}, {"deleted", nodes.size()}}.dump());
  }
  return exit_code::ok;
}

int Shell::cmd_sync(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::Sync{path});
  if (!r) {
    if (options_.json) return fail(r.status(), path);
    console_.err("Sync returned " + std::to_string(to_int(r.code())) + "\n");
    return exit_code_for(r.code());
  }
  if (options_.json) {
    print_json(json{{"path", path}, {"synced", true}}.dump());
  } else {
    print("Sync is OK\n");
  }
  return exit_code::ok;
}

int Shell::cmd_get_acl(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::GetAcl{path});
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    json j{{"path", path}, {"acl", acl_json(r->acl)}};
    if (p.has('s')) j["stat"] = stat_json(r->stat);
    print_json(j.dump());
  } else {
    std::string text = format_acl(r->acl);
    if (p.has('s')) text += format_stat(r->stat);
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_set_acl(const Parsed& p) {
  const std::string& path = p.args[0];
  std::int32_t version = -1;
  if (int rc = version_flag(p, version); rc != exit_code::ok) return rc;
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  auto acl = parse_acl(p.args[1]);
  if (!acl) return usage_error(*p.info, acl.status().message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  std::vector<std::string> nodes{path};
  if (p.has('R')) {
    for (std::size_t i = 0; i < nodes.size() && nodes.size() < limits::cli_tree_nodes_max; ++i) {
      auto r = client_->run(ops::GetChildren{nodes[i]});
      if (!r) {
        if (r.code() == ErrorCode::NoNode && i > 0) continue;
        return fail(r.status(), nodes[i]);
      }
      for (const auto& k : *r)
        nodes.push_back(child_path(nodes[i], k));
    }
  }
  Stat last;
  for (const auto& n : nodes) {
    auto r = client_->run(ops::SetAcl{n, *acl, version});
    if (!r) return fail(r.status(), n);
    if (n == path) last = *r;
  }
  if (options_.json) {
    print_json(json{{"path", path}, {"stat", stat_json(last)}}.dump());
  } else if (p.has('s')) {
    print(format_stat(last));
  }
  return exit_code::ok;
}

int Shell::cmd_addauth(const Parsed& p) {
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::AddAuth{p.args[0], p.args[1]});
  if (!r) return fail(r.status(), "");
  if (options_.json) print_json(json{{"scheme", p.args[0]}, {"added", true}}.dump());
  return exit_code::ok;
}

int Shell::cmd_whoami(const Parsed&) {
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::WhoAmI{});
  if (!r) return fail(r.status(), "");
  // Servers keep identities in a hash set; sorted, the answer is stable.
  std::sort(r->begin(), r->end(), [](const auto& a, const auto& b) {
    return std::tie(a.auth_scheme, a.user) < std::tie(b.auth_scheme, b.user);
  });
  if (options_.json) {
    json a = json::array();
    for (const auto& c : *r)
      a.push_back({{"scheme", c.auth_scheme}, {"user", c.user}});
    print_json(json{{"client_info", a}}.dump());
  } else {
    std::string text = "Auth scheme: User\n";
    for (const auto& c : *r)
      text += c.auth_scheme + ": " + c.user + "\n";
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_get_ephemerals(const Parsed& p) {
  std::string path = p.args.empty() ? "/" : p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::GetEphemerals{path});
  if (!r) return fail(r.status(), path);
  std::vector<std::string> list = *r;
  std::sort(list.begin(), list.end());
  if (options_.json) {
    print_json(json{{"path", path}, {"ephemerals", list}}.dump());
  } else {
    print(join_list(list) + "\n");
  }
  return exit_code::ok;
}

int Shell::cmd_get_all_children_number(const Parsed& p) {
  const std::string& path = p.args[0];
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::GetAllChildrenNumber{path});
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    print_json(json{{"path", path}, {"count", *r}}.dump());
  } else {
    print(std::to_string(*r) + "\n");
  }
  return exit_code::ok;
}

int Shell::cmd_add_watch(const Parsed& p) {
  const std::string& path = p.args[0];
  AddWatchMode mode = AddWatchMode::PersistentRecursive;
  if (auto m = p.value('m')) {
    std::string lower;
    for (char c : *m)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "persistent") {
      mode = AddWatchMode::Persistent;
    } else if (lower == "persistent_recursive") {
      mode = AddWatchMode::PersistentRecursive;
    } else {
      return usage_error(*p.info, "mode must be persistent or persistent_recursive, not " + *m);
    }
  }
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::AddWatch{path, mode, make_watcher()});
  if (!r) return fail(r.status(), path);
  if (options_.json) print_json(json{{"path", path}, {"watching", true}}.dump());
  return exit_code::ok;
}

int Shell::cmd_remove_watches(const Parsed& p) {
  const std::string& path = p.args[0];
  int kinds = p.has('c') + p.has('d') + p.has('a');
  if (kinds > 1) return usage_error(*p.info, "give one of -c, -d, -a");
  WatcherType type = p.has('c')   ? WatcherType::Children
                     : p.has('d') ? WatcherType::Data
                                  : WatcherType::Any;
  if (Status s = validate_path(path); !s.ok()) return usage_error(*p.info, s.message());
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::RemoveWatches{path, type});
  if (!r) return fail(r.status(), path);
  if (options_.json) print_json(json{{"path", path}, {"removed", true}}.dump());
  return exit_code::ok;
}

int Shell::cmd_printwatches(const Parsed& p) {
  if (p.args[0] == "on") {
    print_watches_->store(true);
  } else if (p.args[0] == "off") {
    print_watches_->store(false);
  } else {
    return usage_error(*p.info, "expected on or off");
  }
  if (options_.json) print_json(json{{"printwatches", p.args[0] == "on"}}.dump());
  return exit_code::ok;
}

int Shell::cmd_config(const Parsed& p) {
  const std::string path = "/zookeeper/config";
  if (int rc = need_session(); rc != exit_code::ok) return rc;
  auto r = client_->run(ops::GetData{path});
  if (!r) return fail(r.status(), path);
  if (options_.json) {
    json j{{"path", path}};
    put_data_json(j, r->data);
    if (p.has('s')) j["stat"] = stat_json(r->stat);
    print_json(j.dump());
  } else {
    std::string text = r->data.value_or("") + "\n";
    if (p.has('s')) text += format_stat(r->stat);
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_connect(const Parsed& p) {
  options_.servers = p.args[0];
  Status s = connect();
  if (!s.ok()) return connect_failed(s);
  if (options_.json) print_json(json{{"connected", client_->connected_server()}}.dump());
  return exit_code::ok;
}

int Shell::cmd_close(const Parsed&) {
  auto_connect_ = false;
  if (client_) {
    (void)client_->close(options_.request_timeout);
    client_.reset();
    if (options_.interactive && print_watches_->load() && !options_.json) {
      console_.async("\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\n");
    }
  }
  if (options_.json) print_json(json{{"closed", true}}.dump());
  return exit_code::ok;
}

int Shell::cmd_version(const Parsed&) {
  if (options_.json) {
    print_json(json{{"coordctl", std::string(kVersion)}, {"protocol", "ZooKeeper 3.8"}}.dump());
  } else {
    print("coordctl version " + std::string(kVersion) + " (ZooKeeper 3.8 client protocol)\n");
  }
  return exit_code::ok;
}

int Shell::cmd_history(const Parsed&) {
  std::size_t from = history_.size() > 11 ? history_.size() - 11 : 0;
  std::string text;
  json a = json::array();
  for (std::size_t i = from; i < history_.size(); ++i) {
    text += std::to_string(i) + " - " + history_[i] + "\n";
    a.push_back({{"index", i}, {"command", history_[i]}});
  }
  if (options_.json) {
    print_json(json{{"history", a}}.dump());
  } else {
    print(text);
  }
  return exit_code::ok;
}

int Shell::cmd_redo(const Parsed& p) {
  auto n = parse_int(p.args[0]);
  // The redo line itself is the last entry; it cannot redo itself.
  if (!n || *n < 0 || static_cast<std::size_t>(*n) + 1 >= history_.size()) {
    return usage_error(*p.info, "Command index out of range");
  }
  if (redo_depth_ >= limits::cli_redo_depth_max) {
    return usage_error(*p.info, "redo nested too deeply");
  }
  std::string line = history_[static_cast<std::size_t>(*n)];
  history_.back() = line;  // as zkCli: the history shows what ran
  auto words = tokenize(line);
  if (!words) return usage_error(*p.info, words.status().message());
  ++redo_depth_;
  int rc = run(*words);
  --redo_depth_;
  return rc;
}

int Shell::cmd_quit(const Parsed&) {
  quit_ = true;
  return exit_code::ok;
}

// ---------------------------------------------------------------------------
// Completion
// ---------------------------------------------------------------------------

std::vector<std::string> Shell::complete(std::string_view line) {
  std::size_t start = line.size();
  while (start > 0 && !is_blank(line[start - 1]))
    --start;
  std::string_view word = line.substr(start);
  bool first_word = line.substr(0, start).find_first_not_of(" \t") == std::string_view::npos;
  std::vector<std::string> out;
  if (first_word) {
    for (const CommandInfo& c : commands()) {
      if (c.name.substr(0, word.size()) == word) out.emplace_back(c.name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  if (word.empty() || word[0] != '/' || !client_) return out;
  std::size_t slash = word.rfind('/');
  std::string parent(slash == 0 ? "/" : std::string(word.substr(0, slash)));
  std::string_view prefix = word.substr(slash + 1);
  auto r = client_->run(ops::GetChildren{parent},
                        std::chrono::milliseconds(limits::cli_completion_request_ms_max));
  if (!r) return out;
  std::vector<std::string> kids = *r;
  std::sort(kids.begin(), kids.end());
  for (const auto& k : kids) {
    if (std::string_view(k).substr(0, prefix.size()) == prefix) {
      out.push_back(child_path(parent, k));
      if (out.size() >= limits::cli_completion_candidates_max) break;
    }
  }
  return out;
}

}  // namespace coord::cli
