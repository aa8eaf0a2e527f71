// Unit tests of coordctl's pieces that need no server: word splitting, the
// zkCli output formats, exit codes, ACL and path parsing, the editor's
// buffer, the command table's link to the op table, and the shell's answers
// to bad input (which never reach a server).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <set>
#include <sstream>

#include <unistd.h>

#include "coord/cli/format.h"
#include "coord/cli/line_editor.h"
#include "coord/cli/shell.h"
#include "coord/protocol/op_table.h"

namespace coord::cli {
namespace {

class CapturingConsole : public Console {
 public:
  void out(std::string_view t) override { out_ += t; }
  void err(std::string_view t) override { err_ += t; }
  void async(std::string_view t) override { out_ += t; }
  std::string out_, err_;
};

TEST(CliTokenize, SplitsAtBlanksAndKeepsQuotedWords) {
  auto w = tokenize("  create  /a 'hello world' \"x\\\"y\"  ");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, (std::vector<std::string>{"create", "/a", "hello world", "x\"y"}));
  EXPECT_EQ(tokenize("set /a ''")->size(), 3u);
  EXPECT_EQ(tokenize("set /a ''")->back(), "");
  EXPECT_FALSE(tokenize("set /a 'open").ok());
}

TEST(CliExitCodes, EachErrorKindHasItsCode) {
  EXPECT_EQ(exit_code_for(ErrorCode::Ok), 0);
  EXPECT_EQ(exit_code_for(ErrorCode::NoNode), 2);
  EXPECT_EQ(exit_code_for(ErrorCode::NodeExists), 3);
  EXPECT_EQ(exit_code_for(ErrorCode::BadVersion), 4);
  EXPECT_EQ(exit_code_for(ErrorCode::NotEmpty), 5);
  EXPECT_EQ(exit_code_for(ErrorCode::NoAuth), 6);
  EXPECT_EQ(exit_code_for(ErrorCode::AuthFailed), 6);
  EXPECT_EQ(exit_code_for(ErrorCode::InvalidAcl), 6);
  EXPECT_EQ(exit_code_for(ErrorCode::ConnectionLoss), 7);
  EXPECT_EQ(exit_code_for(ErrorCode::OperationTimeout), 7);
  EXPECT_EQ(exit_code_for(ErrorCode::SessionExpired), 7);
  EXPECT_EQ(exit_code_for(ErrorCode::NoChildrenForEphemerals), 8);
  EXPECT_EQ(exit_code_for(ErrorCode::Unimplemented), 8);
}

TEST(CliErrorSentences, ReadLikeZkCli) {
  EXPECT_EQ(error_sentence(ErrorCode::NoNode, "/x"), "Node does not exist: /x");
  EXPECT_EQ(error_sentence(ErrorCode::NodeExists, "/x"), "Node already exists: /x");
  EXPECT_EQ(error_sentence(ErrorCode::BadVersion, "/x"), "version No is not valid : /x");
  EXPECT_EQ(error_sentence(ErrorCode::NoAuth, "/x"), "Insufficient permission : /x");
  EXPECT_EQ(error_sentence(ErrorCode::NotEmpty, "/x"), "Node not empty: /x");
  EXPECT_EQ(error_sentence(ErrorCode::NoChildrenForEphemerals, "/e/c"),
            "Ephemerals cannot have children: /e/c");
  EXPECT_EQ(error_sentence(ErrorCode::NoWatcher, "/q"), "KeeperErrorCode = No such watcher for /q");
  EXPECT_EQ(error_sentence(ErrorCode::ConnectionLoss, "/q"),
            "KeeperErrorCode = ConnectionLoss for /q");
}

TEST(CliStatFormat, MatchesZkCliLineForLine) {
  setenv("TZ", "UTC", 1);
  tzset();
  Stat s;
  s.czxid = 2;
  s.mzxid = 0xa;
  s.ctime = 1795316851000;  // Sun Nov 22 03:07:31 UTC 2026
  s.mtime = 1795316852000;
  s.pzxid = 6;
  s.cversion = 3;
  s.version = 2;
  s.ephemeral_owner = 0x10000980e840001;
  s.data_length = 2;
  s.num_children = 3;
  EXPECT_EQ(format_stat(s),
            "cZxid = 0x2\n"
            "ctime = Sun Nov 22 03:07:31 UTC 2026\n"
            "mZxid = 0xa\n"
            "mtime = Sun Nov 22 03:07:32 UTC 2026\n"
            "pZxid = 0x6\n"
            "cversion = 3\n"
            "dataVersion = 2\n"
            "aclVersion = 0\n"
            "ephemeralOwner = 0x10000980e840001\n"
            "dataLength = 2\n"
            "numChildren = 3\n");
  EXPECT_EQ(hex(-1), "0xffffffffffffffff");
}

TEST(CliAcl, ParsesZkCliSyntaxAndPrintsItBack) {
  auto a = parse_acl("world:anyone:r,digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa,auth::rw");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[1].id.scheme, "digest");
  EXPECT_EQ((*a)[1].id.id, "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=");
  EXPECT_EQ((*a)[1].perms, perm::all);
  EXPECT_EQ((*a)[2].id.id, "");
  EXPECT_EQ(
      format_acl(*a),
      "'world,'anyone\n: r\n'digest,'u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=\n: cdrwa\n'auth,'\n: rw\n");
  EXPECT_FALSE(parse_acl("world:anyone").ok());
  EXPECT_FALSE(parse_acl("world:anyone:rz").ok());
  EXPECT_FALSE(parse_acl("").ok());
}

TEST(CliPaths, ClientSideRulesGiveZooKeepersSentences) {
  EXPECT_TRUE(validate_path("/").ok());
  EXPECT_TRUE(validate_path("/a/b").ok());
  EXPECT_EQ(validate_path("a").message(), "Path must start with / character");
  EXPECT_EQ(validate_path("/a/").message(), "Path must not end with / character");
  EXPECT_TRUE(validate_path("/a/", /*sequential=*/true).ok());
  EXPECT_EQ(validate_path("/a//b").message(), "empty node name specified @3");
  EXPECT_EQ(validate_path("/a/../b").message(), "relative paths not allowed @3");
  EXPECT_TRUE(validate_path("/a/..b").ok());
}

TEST(CliData, Utf8CheckAndEncodings) {
  EXPECT_TRUE(is_valid_utf8("hello ✓"));
  EXPECT_FALSE(is_valid_utf8(std::string("\xff\x00", 2)));
  EXPECT_FALSE(is_valid_utf8("\xe2\x9c"));      // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(hex_dump("hi\n"), "68 69 0a\n");
}

TEST(CliEditBuffer, EditsLikeAShellLine) {
  EditBuffer b;
  b.insert("get /a");
  b.home();
  b.right();
  b.right();
  b.right();
  b.insert(" -s");
  EXPECT_EQ(b.text(), "get -s /a");
  b.end();
  b.backspace();
  EXPECT_EQ(b.text(), "get -s /");
  b.kill_word_back();
  EXPECT_EQ(b.text(), "get -s ");
  b.home();
  b.erase();
  EXPECT_EQ(b.text(), "et -s ");
  b.right();
  b.kill_to_end();
  EXPECT_EQ(b.text(), "e");
  b.set("x ✓y");
  b.left();
  b.left();
  EXPECT_EQ(b.columns_before(), 2u);
  EXPECT_EQ(b.columns_after(), 2u);
  b.erase();  // the whole ✓, not one byte of it
  EXPECT_EQ(b.text(), "x y");
  b.set("ls /zoo");
  b.replace_word("/zookeeper");
  EXPECT_EQ(b.text(), "ls /zookeeper");
  b.kill_to_start();
  EXPECT_EQ(b.text(), "");
}

TEST(CliEditBuffer, CommonPrefixOfCandidates) {
  EXPECT_EQ(common_prefix({"/app/a1", "/app/a2", "/app/b"}), "/app/");
  EXPECT_EQ(common_prefix({"getAcl", "getAllChildrenNumber"}), "getA");
  EXPECT_EQ(common_prefix({}), "");
}

TEST(CliCommandTable, EveryOpTableVerbIsAShellCommand) {
  // reconfig has no shell verb here: membership changes go through the
  // admin API (add-server, remove-server), which coordd implements.
  std::set<std::string_view> verbs;
  for (const auto& op : protocol::op_table()) {
    if (op.shell_verb.empty() || op.shell_verb == "reconfig") continue;
    verbs.insert(op.shell_verb);
    EXPECT_NE(Shell::find_command(op.shell_verb), nullptr)
        << "op " << op.name << " names the shell verb " << op.shell_verb
        << " but coordctl has no such command";
  }
  EXPECT_EQ(ops_of_verb("get"), (std::vector<std::string_view>{"getData"}));
  EXPECT_EQ(ops_of_verb("ls"), (std::vector<std::string_view>{"getChildren", "getChildren2"}));
  EXPECT_EQ(ops_of_verb("create").size(), 4u);  // create, create2, createContainer, createTTL
  EXPECT_TRUE(ops_of_verb("deleteall").empty());
}

TEST(CliCommandTable, HelpNamesTheOpsEachCommandSends) {
  CapturingConsole c;
  Shell shell(ShellOptions{}, c);
  EXPECT_EQ(shell.run({"help"}), 0);
  EXPECT_NE(c.out_.find("get [-s] [-w] [-b|-x] path"), std::string::npos);
  EXPECT_NE(c.out_.find("[getData]"), std::string::npos);
  EXPECT_NE(c.out_.find("[exists]"), std::string::npos);
  for (const CommandInfo& info : Shell::commands()) {
    EXPECT_NE(c.out_.find(std::string(info.usage)), std::string::npos) << info.name;
  }
}

// Bad input is answered before anything is sent; no server is needed.
struct BadInput {
  std::vector<std::string> words;
  std::string message;
};

TEST(CliBadInput, UsageErrorsExitOneWithAClearMessage) {
  const std::vector<BadInput> cases = {
      {{"bogus"}, "Command not found: bogus"},
      {{"get"}, "usage: get [-s] [-w] [-b|-x] path"},
      {{"get", "-z", "/a"}, "Unrecognized option: -z"},
      {{"ls", "/a", "/b"}, "too many arguments"},
      {{"set", "-v"}, "Missing argument for option: v"},
      {{"create", "-c", "-e", "/a"}, "-c cannot be combined with -s or -e"},
      {{"create", "-t", "x", "/a"}, "ttl must be a positive number of ms"},
      {{"addWatch", "-m", "bogus", "/a"}, "mode must be persistent or persistent_recursive"},
      {{"printwatches", "maybe"}, "expected on or off"},
      {{"redo", "5"}, "Command index out of range"},
      {{"remove-server", "x"}, "id must be a positive number"},
      {{"add-server", "4", "nohostport", "2181"}, "expected host:peerport"},
      {{"add-server", "4", "h:2888", "h:x"}, "expected [host:]clientport"},
  };
  for (const auto& bad : cases) {
    CapturingConsole c;
    ShellOptions o;
    o.servers = "127.0.0.1:1";  // never contacted
    Shell shell(o, c);
    EXPECT_EQ(shell.run(bad.words), exit_code::usage) << bad.words[0];
    EXPECT_NE(c.err_.find(bad.message), std::string::npos)
        << "for '" << bad.words[0] << "' got: " << c.err_;
  }
}

TEST(CliBadInput, UnreachableServerIsExitSevenWithinTheConnectTimeout) {
  CapturingConsole c;
  ShellOptions o;
  o.servers = "127.0.0.1:1";
  o.connect_timeout = std::chrono::milliseconds(500);
  Shell shell(o, c);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(shell.run({"get", "/a"}), exit_code::connection);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(c.err_.find("Could not connect to 127.0.0.1:1"), std::string::npos) << c.err_;
  // Later commands do not wait again.
  c.err_.clear();
  EXPECT_EQ(shell.run({"ls", "/"}), exit_code::connection);
  EXPECT_NE(c.err_.find("Not connected"), std::string::npos) << c.err_;
}

TEST(CliBadInput, JsonModeReportsErrorsAsJson) {
  CapturingConsole c;
  ShellOptions o;
  o.json = true;
  Shell shell(o, c);
  EXPECT_EQ(shell.run({"get", "-q", "/a"}), exit_code::usage);
  EXPECT_EQ(c.out_,
            "{\"error\":\"Usage\",\"exit_code\":1,\"message\":\"Unrecognized option: "
            "-q\",\"usage\":\"get [-s] [-w] [-b|-x] path\"}\n");
}

TEST(CliCluster, UnreachableAdminApiIsExitSeven) {
  CapturingConsole c;
  ShellOptions o;
  o.http = "127.0.0.1:1";
  o.request_timeout = std::chrono::milliseconds(1000);
  Shell shell(o, c);
  EXPECT_EQ(shell.run({"status"}), exit_code::connection);
  EXPECT_NE(c.err_.find("admin API at 127.0.0.1:1"), std::string::npos) << c.err_;
}

}  // namespace
}  // namespace coord::cli

namespace coord::cli {
namespace {

// The editor on a pipe (not a terminal: raw mode is skipped, keys are read
// as they come), fed a byte script.
class CliEditorOnPipe : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe(in_), 0);
    ASSERT_EQ(pipe(out_), 0);
  }
  void TearDown() override {
    for (int fd : {in_[0], in_[1], out_[0], out_[1]}) {
      if (fd >= 0) close(fd);
    }
  }
  void type(std::string_view keys) {
    ASSERT_EQ(write(in_[1], keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  void end_input() {
    close(in_[1]);
    in_[1] = -1;
  }
  int in_[2] = {-1, -1};
  int out_[2] = {-1, -1};
};

TEST_F(CliEditorOnPipe, KeysEditTheLine) {
  std::vector<std::string> history = {"ls /old", "get /older"};
  LineEditor::Hooks hooks;
  hooks.prompt = [] { return std::string("> "); };
  LineEditor editor(in_[0], out_[1], hooks, &history);
  // backspace, ctrl-a + insert, ctrl-e, left arrow + delete key, enter
  type("lx /a\x7f\x7f\x7f\x7f\x01s\x05\x1b[D\x1b[3~/b\r");
  auto line = editor.read_line();
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, "s/b");
  // up twice reaches the older entry; down once comes back; ctrl-u clears
  type("\x1b[A\x1b[A\x1b[B\r");
  EXPECT_EQ(editor.read_line().value_or("<eof>"), "get /older");
  type("typed\x15kept\r");
  EXPECT_EQ(editor.read_line().value_or("<eof>"), "kept");
  // ctrl-w drops the last word; ctrl-k drops the rest of the line
  type("get -s /x\x17/y\x01\x06\x06\x06\x0b\r");
  EXPECT_EQ(editor.read_line().value_or("<eof>"), "get");
  // ctrl-c drops a line; ctrl-d on an empty line is the end of input
  type("junk\x03\x04");
  EXPECT_FALSE(editor.read_line().has_value());
}

TEST_F(CliEditorOnPipe, TabCompletesFromTheHook) {
  LineEditor::Hooks hooks;
  std::string asked;
  hooks.complete = [&asked](std::string_view before) {
    asked = std::string(before);
    if (before == "getAllCh") return std::vector<std::string>{"getAllChildrenNumber"};
    return std::vector<std::string>{"/app/a1", "/app/a2"};
  };
  LineEditor editor(in_[0], out_[1], hooks, nullptr);
  type("getAllCh\t/ap\t1\r");
  EXPECT_EQ(editor.read_line().value_or("<eof>"), "getAllChildrenNumber /app/a1");
  EXPECT_EQ(asked, "getAllChildrenNumber /ap");
  end_input();
  EXPECT_FALSE(editor.read_line().has_value());
}

}  // namespace
}  // namespace coord::cli
