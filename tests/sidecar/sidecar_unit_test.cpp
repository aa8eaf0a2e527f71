// coord-sidecar's pure pieces: flags and the JSON config, the rise/fall
// machine, template rendering and the atomic write, and the debounce and
// reload-retry schedule with time driven by the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "coord/sidecar/checker.h"
#include "coord/sidecar/config.h"
#include "coord/sidecar/health.h"
#include "coord/sidecar/render.h"
#include "coord/sidecar/schedule.h"

namespace coord::sidecar {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "coord-sidecar-unit-XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<ParsedArgs> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "coord-sidecar");
  return parse_args(args);
}

// ------------------------------------------------------------------ config

TEST(SidecarConfig, FlagsOfTheCommandLine) {
  auto p = parse({"-s",
                  "10.0.0.1:2181,10.0.0.2:2181",
                  "--service",
                  "web",
                  "--address",
                  "10.0.0.7:8080",
                  "--check",
                  "http://127.0.0.1:8080/health",
                  "--interval-ms",
                  "250",
                  "--timeout-ms",
                  "100",
                  "--rise",
                  "1",
                  "--fall",
                  "2",
                  "--watch",
                  "web",
                  "db",
                  "--listen",
                  "127.0.0.1:0",
                  "--metadata",
                  "zone=eu-1"});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const Config& c = p->config;
  EXPECT_FALSE(p->help);
  EXPECT_EQ(c.servers, "10.0.0.1:2181,10.0.0.2:2181");
  EXPECT_EQ(c.service, "web");
  EXPECT_EQ(c.address, "10.0.0.7");
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.id, "10.0.0.7-8080");
  EXPECT_EQ(c.check.kind, CheckKind::Http);
  EXPECT_EQ(c.check.host, "127.0.0.1");
  EXPECT_EQ(c.check.port, 8080);
  EXPECT_EQ(c.check.path, "/health");
  EXPECT_EQ(c.interval, milliseconds(250));
  EXPECT_EQ(c.timeout, milliseconds(100));
  EXPECT_EQ(c.rise, 1);
  EXPECT_EQ(c.fall, 2);
  EXPECT_EQ(c.watch, (std::vector<std::string>{"db", "web"}));
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 0);
  EXPECT_EQ(c.metadata.at("zone"), "eu-1");
}

TEST(SidecarConfig, Defaults) {
  auto p = parse({"-s", "h:1", "--service", "web", "--address", "h:80"});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const Config& c = p->config;
  EXPECT_EQ(c.check.kind, CheckKind::None);
  EXPECT_EQ(c.rise, 2);
  EXPECT_EQ(c.fall, 3);
  EXPECT_EQ(c.interval, milliseconds(1000));
  EXPECT_EQ(c.base_path, "/services");
  EXPECT_EQ(c.listen_port, 7070);
  EXPECT_TRUE(c.watch.empty());
}

TEST(SidecarConfig, TcpCheckAndCommandCheck) {
  auto tcp = parse(
      {"-s", "h:1", "--service", "db", "--address", "h:5432", "--check", "tcp://127.0.0.1:5432"});
  ASSERT_TRUE(tcp.ok()) << tcp.status().to_string();
  EXPECT_EQ(tcp->config.check.kind, CheckKind::Tcp);
  EXPECT_EQ(tcp->config.check.port, 5432);
  auto cmd = parse(
      {"-s", "h:1", "--service", "db", "--address", "h:5432", "--check-cmd", "pg_isready -q"});
  ASSERT_TRUE(cmd.ok()) << cmd.status().to_string();
  EXPECT_EQ(cmd->config.check.kind, CheckKind::Command);
  EXPECT_EQ(cmd->config.check.target, "pg_isready -q");
  auto http = parse_check("http://localhost");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->port, 80);
  EXPECT_EQ(http->path, "/");
}

TEST(SidecarConfig, JsonFileWithTheSameNames) {
  TempDir d;
  const std::string f = d.file("sidecar.json", R"({
    "servers": "127.0.0.1:2181",
    "service": "web",
    "address": "127.0.0.1:8080",
    "check": "tcp://127.0.0.1:8080",
    "interval-ms": 500,
    "rise": 3,
    "watch": ["web", "api"],
    "metadata": {"zone": "eu-1", "weight": "10"},
    "template": ["/etc/sidecar/haproxy.mustache:/etc/haproxy/haproxy.cfg"],
    "reload-cmd": "systemctl reload haproxy"
  })");
  auto p = parse({"--config", f});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const Config& c = p->config;
  EXPECT_EQ(c.servers, "127.0.0.1:2181");
  EXPECT_EQ(c.check.kind, CheckKind::Tcp);
  EXPECT_EQ(c.interval, milliseconds(500));
  EXPECT_EQ(c.rise, 3);
  EXPECT_EQ(c.watch, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(c.metadata.size(), 2u);
  EXPECT_EQ(c.metadata.at("weight"), "10");
  ASSERT_EQ(c.templates.size(), 1u);
  EXPECT_EQ(c.templates[0].source, "/etc/sidecar/haproxy.mustache");
  EXPECT_EQ(c.templates[0].destination, "/etc/haproxy/haproxy.cfg");
  EXPECT_EQ(c.reload_cmd, "systemctl reload haproxy");

  // The command line wins over the file.
  auto q = parse({"--config", f, "--rise", "5", "--servers", "10.0.0.9:2181"});
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->config.rise, 5);
  EXPECT_EQ(q->config.servers, "10.0.0.9:2181");
  EXPECT_EQ(q->config.interval, milliseconds(500));
}

// Every error names what is wrong.
TEST(SidecarConfig, Errors) {
  TempDir d;
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--service", "web", "--address", "h:80"}, "servers"},
      {{"-s", "h:1"}, "nothing to do"},
      {{"-s", "h:1", "--service", "web"}, "--address"},
      {{"-s", "h:1", "--service", "web", "--address", "h"}, "host:port"},
      {{"-s", "h:1", "--service", "web", "--address", "h:99999"}, "host:port"},
      {{"-s", "h:1", "--service", "a/b", "--address", "h:1"}, "service name"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--check", "ftp://x:1"}, "--check"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--check", "tcp://x:1", "--check-cmd",
        "true"},
       "not both"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--rise", "0"}, "rise"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--interval-ms", "5"}, "interval"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--bogus", "1"}, "bogus"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--metadata", "novalue"}, "KEY=VALUE"},
      {{"-s", "h:1", "--watch", "web", "--template", "only-a-source"}, "SRC:DEST"},
      {{"-s", "h:1", "--watch", "web", "--reload-cmd", "true"}, "--template"},
      {{"-s", "h:1", "--service", "web", "--address", "h:1", "--template", "a:b"}, "--watch"},
      {{"-s", "h:1", "--watch", "web", "--debounce-ms", "900", "--debounce-max-ms", "100"},
       "debounce"},
      {{"-s", "h:1", "--watch", "web", "--config", d.file("bad.json", "{\"servers\": ")},
       "not JSON"},
      {{"-s", "h:1", "--watch", "web", "--config", d.file("arr.json", "[1]")}, "one JSON object"},
      {{"-s", "h:1", "--watch", "web", "--config", d.file("unknown.json", "{\"chek\": \"x\"}")},
       "unknown key \"chek\""},
      {{"-s", "h:1", "--watch", "web", "--config", d.file("float.json", "{\"rise\": 1.5}")},
       "\"rise\""},
      {{"-s", "h:1", "--watch", "web", "--config", d.path() + "/missing.json"}, "missing.json"},
  };
  for (const auto& c : cases) {
    auto p = parse(c.args);
    ASSERT_FALSE(p.ok()) << "accepted: " << ::testing::PrintToString(c.args);
    EXPECT_EQ(p.code(), ErrorCode::BadArguments);
    EXPECT_NE(p.status().message().find(c.says), std::string::npos)
        << "for " << ::testing::PrintToString(c.args) << ": " << p.status().message();
  }
}

TEST(SidecarConfig, Help) {
  auto p = parse({"--help"});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->help);
  EXPECT_NE(p->help->find("--check-cmd"), std::string::npos);
  EXPECT_NE(p->help->find("--watch"), std::string::npos);
}

TEST(SidecarConfig, HostPort) {
  auto v6 = parse_host_port("[::1]:7070");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 7070);
  EXPECT_FALSE(parse_host_port("::1:7070").ok());
  EXPECT_FALSE(parse_host_port(":80").ok());
  EXPECT_FALSE(parse_host_port("h:").ok());
  EXPECT_FALSE(parse_host_port("h:8x").ok());
}

// ------------------------------------------------------------- rise / fall

TEST(SidecarHealth, StartsDownAndRisesAfterRisePasses) {
  HealthMachine h(2, 3);
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.observe(true), Change::None);
  EXPECT_EQ(h.streak(), 1);
  EXPECT_EQ(h.observe(true), Change::Up);
  EXPECT_TRUE(h.up());
  EXPECT_EQ(h.observe(true), Change::None);
}

TEST(SidecarHealth, FallsAfterFallFailuresInARow) {
  HealthMachine h(1, 3);
  EXPECT_EQ(h.observe(true), Change::Up);
  EXPECT_EQ(h.observe(false), Change::None);
  EXPECT_EQ(h.observe(false), Change::None);
  EXPECT_EQ(h.observe(false), Change::Down);
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.observe(false), Change::None);
}

TEST(SidecarHealth, AnInterruptedStreakStartsOver) {
  HealthMachine h(1, 3);
  ASSERT_EQ(h.observe(true), Change::Up);
  // Flapping below the threshold never takes it down.
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(h.observe(false), Change::None);
    EXPECT_EQ(h.observe(false), Change::None);
    EXPECT_EQ(h.observe(true), Change::None);
    EXPECT_EQ(h.streak(), 0);
  }
  EXPECT_TRUE(h.up());
  // And while down, one failure among passes restarts the rise.
  HealthMachine d(3, 1);
  EXPECT_EQ(d.observe(true), Change::None);
  EXPECT_EQ(d.observe(true), Change::None);
  EXPECT_EQ(d.observe(false), Change::None);
  EXPECT_EQ(d.observe(true), Change::None);
  EXPECT_EQ(d.observe(true), Change::None);
  EXPECT_EQ(d.observe(true), Change::Up);
}

TEST(SidecarHealth, OneAndOneFollowsEveryResult) {
  HealthMachine h(1, 1);
  EXPECT_EQ(h.observe(true), Change::Up);
  EXPECT_EQ(h.observe(false), Change::Down);
  EXPECT_EQ(h.observe(true), Change::Up);
}

// --------------------------------------------------------------- templates

ServiceInstance inst(const std::string& svc, const std::string& id, const std::string& addr,
                     int port, std::map<std::string, std::string> md = {}) {
  ServiceInstance i;
  i.name = svc;
  i.id = id;
  i.address = addr;
  i.port = port;
  i.metadata = std::move(md);
  return i;
}

TEST(SidecarTemplate, HaproxyBackend) {
  auto t = Template::parse(
      "backend web\n"
      "{{#service.web.instances}}"
      "  server {{id}} {{address}}:{{port}} check{{#payload.weight}} weight {{payload.weight}}"
      "{{/payload.weight}}\n"
      "{{/service.web.instances}}"
      "{{^service.web.has_instances}}  # no instance\n{{/service.web.has_instances}}",
      "haproxy");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  std::vector<ServiceView> s = {
      {"web",
       false,
       {inst("web", "a", "10.0.0.1", 80, {{"weight", "5"}}), inst("web", "b", "10.0.0.2", 81)}}};
  auto out = t->render(s);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out,
            "backend web\n"
            "  server a 10.0.0.1:80 check weight 5\n"
            "  server b 10.0.0.2:81 check\n");
  s[0].instances.clear();
  EXPECT_EQ(*t->render(s), "backend web\n  # no instance\n");
}

TEST(SidecarTemplate, NginxUpstreamsOverEveryService) {
  auto t = Template::parse(
      "{{#services}}upstream {{name}} {\n"
      "{{#instances}}  server {{address}}:{{port}};\n{{/instances}}"
      "}\n{{/services}}",
      "nginx");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  // Given out of order: rendered by name.
  std::vector<ServiceView> s = {{"web", false, {inst("web", "w1", "10.0.0.3", 80)}},
                                {"api", false, {inst("api", "a1", "10.0.0.4", 9000)}}};
  EXPECT_EQ(*t->render(s),
            "upstream api {\n  server 10.0.0.4:9000;\n}\n"
            "upstream web {\n  server 10.0.0.3:80;\n}\n");
}

// sidecar/README.md's nginx example, exactly: a section tag alone on its
// line leaves nothing when the section renders, but kainjow::mustache 4.1
// leaves an empty line for a section that renders nothing (the README
// says so; config files ignore empty lines).
TEST(SidecarTemplate, ReadmeNginxExample) {
  auto t = Template::parse(
      "{{#services}}\n"
      "upstream {{name}} {\n"
      "{{#instances}}\n"
      "    server {{address}}:{{port}};\n"
      "{{/instances}}\n"
      "{{^has_instances}}\n"
      "    server 127.0.0.1:1 down;\n"
      "{{/has_instances}}\n"
      "}\n"
      "{{/services}}\n",
      "nginx");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  std::vector<ServiceView> s = {
      {"api", false, {}},
      {"web", false, {inst("web", "a", "10.0.0.1", 80), inst("web", "b", "10.0.0.2", 80)}}};
  EXPECT_EQ(*t->render(s),
            "upstream api {\n"
            "\n"  // {{#instances}} of none
            "    server 127.0.0.1:1 down;\n"
            "}\n"
            "upstream web {\n"
            "    server 10.0.0.1:80;\n"
            "    server 10.0.0.2:80;\n"
            "\n"  // {{^has_instances}} when there are some
            "}\n");
}

TEST(SidecarTemplate, SeparatorsCountAndStale) {
  auto t = Template::parse(
      "{{service.web.count}}:{{#service.web.instances}}{{address}}{{^last}},{{/last}}"
      "{{/service.web.instances}}{{#stale}} (stale){{/stale}}",
      "list");
  ASSERT_TRUE(t.ok());
  std::vector<ServiceView> s = {
      {"web",
       false,
       {inst("web", "a", "h1", 1), inst("web", "b", "h2", 2), inst("web", "c", "h3", 3)}}};
  EXPECT_EQ(*t->render(s), "3:h1,h2,h3");
  s[0].stale = true;
  EXPECT_EQ(*t->render(s), "3:h1,h2,h3 (stale)");
}

// Values are written as they are (no HTML escaping) but cannot break a
// line; the triple mustache writes them raw.
TEST(SidecarTemplate, NoHtmlEscapingAndNoNewLines) {
  auto t = Template::parse(
      "{{#service.web.instances}}[{{payload.note}}]|[{{{payload.note}}}]"
      "{{/service.web.instances}}",
      "esc");
  ASSERT_TRUE(t.ok());
  std::vector<ServiceView> s = {
      {"web", false, {inst("web", "a", "h", 1, {{"note", "a&b<c>\n  server evil 1.2.3.4:1"}})}}};
  EXPECT_EQ(*t->render(s), "[a&b<c>  server evil 1.2.3.4:1]|[a&b<c>\n  server evil 1.2.3.4:1]");
}

TEST(SidecarTemplate, ParseErrorsNameTheFile) {
  auto t = Template::parse("{{#services}}no end", "/etc/x.mustache");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.code(), ErrorCode::BadArguments);
  EXPECT_NE(t.status().message().find("/etc/x.mustache"), std::string::npos);
  auto missing = Template::load("/nonexistent/template.mustache");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/template.mustache"), std::string::npos);
}

TEST(SidecarAtomicWrite, ReplacesWholeAndLeavesNoTemporaryFile) {
  TempDir d;
  const std::string p = d.path() + "/out.cfg";
  auto w = write_if_changed(p, "one\n");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_TRUE(*w);
  EXPECT_EQ(read(p), "one\n");
  auto same = write_if_changed(p, "one\n");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(*same);
  struct stat before {};
  ASSERT_EQ(::stat(p.c_str(), &before), 0);
  ASSERT_TRUE(write_file_atomically(p, "two\n").ok());
  EXPECT_EQ(read(p), "two\n");
  struct stat after {};
  ASSERT_EQ(::stat(p.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);  // a new file renamed over the old
  EXPECT_EQ(after.st_mode & 0777, 0644u);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.path()))
    ++files;
  EXPECT_EQ(files, 1);
  // A directory that does not exist: an error naming the path, nothing written.
  auto bad = write_file_atomically(d.path() + "/no/such/dir/x.cfg", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("x.cfg"), std::string::npos);
}

// ---------------------------------------------------------------- commands

TEST(SidecarCommand, ExitStatusOutputAndTimeout) {
  auto ok = run_command("echo hello", milliseconds(10'000));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.output, "hello\n");
  auto bad = run_command("echo nope >&2; exit 3", milliseconds(10'000));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.status, 3);
  EXPECT_EQ(bad.describe(), "exit 3: nope");
  // A command that would run for a minute is killed at its timeout, with
  // what it started.
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = run_command("sleep 60 & sleep 60", milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_FALSE(slow.ok);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.describe(), "timed out, killed");
  CheckSpec cmd;
  cmd.kind = CheckKind::Command;
  cmd.target = "exit 0";
  EXPECT_TRUE(run_check(cmd, milliseconds(10'000)).passed);
  cmd.target = "exit 1";
  EXPECT_FALSE(run_check(cmd, milliseconds(10'000)).passed);
}

// A command (and a daemon it starts) inherits none of the sidecar's
// descriptors beyond stdin, stdout and stderr, even one without
// close-on-exec.
TEST(SidecarCommand, InheritsNoDescriptor) {
  const int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(fd, 3);
  const std::string probe = "test -e /proc/$$/fd/" + std::to_string(fd);
  auto r = run_command(probe, milliseconds(10'000));
  ::close(fd);
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(run_command("test -e /proc/$$/fd/2", milliseconds(10'000)).status, 0);
}

// ---------------------------------------------------------------- schedule

using Time = RenderSchedule::Time;
using Kind = RenderSchedule::Kind;
Time at(int ms) {
  return Time{} + milliseconds(ms);
}

TEST(SidecarSchedule, IdleUntilAChange) {
  RenderSchedule s(milliseconds(500), milliseconds(5000), milliseconds(1000), milliseconds(30000));
  EXPECT_EQ(s.next(at(0)).kind, Kind::Idle);
}

TEST(SidecarSchedule, ABurstRendersOnceAfterTheQuietTime) {
  RenderSchedule s(milliseconds(500), milliseconds(5000), milliseconds(1000), milliseconds(30000));
  // Changes every 100 ms for 1 s: the render waits for 500 ms of quiet.
  for (int t = 0; t <= 1000; t += 100) {
    s.changed(at(t));
    auto a = s.next(at(t));
    EXPECT_EQ(a.kind, Kind::Wait);
    EXPECT_EQ(a.at, at(t + 500));
  }
  EXPECT_EQ(s.next(at(1499)).kind, Kind::Wait);
  EXPECT_EQ(s.next(at(1500)).kind, Kind::Render);
  s.rendered(at(1500), true);
  // One reload for the burst, then nothing.
  EXPECT_EQ(s.next(at(1500)).kind, Kind::Reload);
  s.reloaded(at(1510), true);
  EXPECT_EQ(s.next(at(1510)).kind, Kind::Idle);
  EXPECT_EQ(s.next(at(99'999)).kind, Kind::Idle);
}

TEST(SidecarSchedule, AnEndlessTrickleRendersAtTheLatestAfterDebounceMax) {
  RenderSchedule s(milliseconds(500), milliseconds(2000), milliseconds(1000), milliseconds(30000));
  int renders = 0;
  for (int t = 0; t < 10'000; t += 100) {
    s.changed(at(t));
    if (s.next(at(t)).kind == Kind::Render) {
      ++renders;
      s.rendered(at(t), false);
    }
  }
  // A render every 2 s of the 10 s, never one per change.
  EXPECT_EQ(renders, 4);
}

TEST(SidecarSchedule, UnchangedFilesNeedNoReload) {
  RenderSchedule s(milliseconds(0), milliseconds(0), milliseconds(1000), milliseconds(30000));
  s.changed(at(0));
  EXPECT_EQ(s.next(at(0)).kind, Kind::Render);
  s.rendered(at(0), false);
  EXPECT_EQ(s.next(at(0)).kind, Kind::Idle);
}

TEST(SidecarSchedule, AFailedReloadIsRetriedWithBackoff) {
  RenderSchedule s(milliseconds(100), milliseconds(1000), milliseconds(1000), milliseconds(8000));
  s.changed(at(0));
  ASSERT_EQ(s.next(at(100)).kind, Kind::Render);
  s.rendered(at(100), true);
  ASSERT_EQ(s.next(at(100)).kind, Kind::Reload);
  // Fails four times: retried after 1, 2, 4, then 8 s (the cap).
  int t = 100;
  for (int pause : {1000, 2000, 4000, 8000, 8000}) {
    s.reloaded(at(t), false);
    auto a = s.next(at(t));
    ASSERT_EQ(a.kind, Kind::Wait);
    EXPECT_EQ(a.at, at(t + pause));
    EXPECT_EQ(s.next(at(t + pause - 1)).kind, Kind::Wait);
    t += pause;
    EXPECT_EQ(s.next(at(t)).kind, Kind::Reload);
  }
  EXPECT_EQ(s.reload_failures(), 5);
  s.reloaded(at(t), true);
  EXPECT_EQ(s.reload_failures(), 0);
  EXPECT_EQ(s.next(at(t)).kind, Kind::Idle);
}

TEST(SidecarSchedule, ANewRenderReplacesAPendingRetry) {
  RenderSchedule s(milliseconds(100), milliseconds(1000), milliseconds(1000), milliseconds(8000));
  s.changed(at(0));
  s.rendered(at(100), true);
  s.reloaded(at(100), false);
  s.reloaded(at(1100), false);  // next retry at 3100
  // A change meanwhile: render first (the reload waits for it), then reload at once.
  s.changed(at(1200));
  auto a = s.next(at(1200));
  ASSERT_EQ(a.kind, Kind::Wait);
  EXPECT_EQ(a.at, at(1300));
  ASSERT_EQ(s.next(at(1300)).kind, Kind::Render);
  s.rendered(at(1300), true);
  EXPECT_EQ(s.next(at(1300)).kind, Kind::Reload);
  EXPECT_EQ(s.reload_failures(), 0);
}

TEST(SidecarSchedule, ARetryDueDuringABurstWaitsForTheRender) {
  RenderSchedule s(milliseconds(500), milliseconds(5000), milliseconds(1000), milliseconds(8000));
  s.changed(at(0));
  s.rendered(at(500), true);
  s.reloaded(at(500), false);  // retry due at 1500
  s.changed(at(1400));         // render due at 1900
  auto a = s.next(at(1600));
  ASSERT_EQ(a.kind, Kind::Wait);
  EXPECT_EQ(a.at, at(1900));
  EXPECT_EQ(s.next(at(1900)).kind, Kind::Render);
}

}  // namespace
}  // namespace coord::sidecar
