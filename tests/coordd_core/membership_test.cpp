// Membership as ZooKeeper 3.8 names and changes it: server specs, the text
// of /zookeeper/config, reconfig requests turned into configuration
// changes, and membership rebuilt from committed changes.
//
// The vectors come from a real ZooKeeper 3.8.0 ensemble: three servers
// started with reconfigEnabled=true and standaloneEnabled=false, reads of
// /zookeeper/config and reconfig requests through kazoo. What it showed:
//  - a fresh ensemble configured with `server.N=host:peer:election;host:client`
//    lines shows them with the role spelled out
//    (`server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315`), then
//    `version=100000000`, the zxid that started the epoch, in lower-case hex
//    without a newline after it; configured with `server.N=host:peer:election`
//    and clientPort in zoo.cfg instead, the lines have no `;client` part;
//  - after adding server 4 as a participant the text gains its line and
//    the version becomes the reconfig's own zxid (100000003), which is the
//    znode's mzxid; the znode's Stat version stays -1;
//  - IPv6 literals are printed uncompressed in brackets
//    (`[::1]` → `[0:0:0:0:0:0:0:1]`), an IPv4-mapped one as its IPv4
//    address, one with a zone as typed; an empty host as `localhost`; a
//    client given as a port alone as `0.0.0.0:port`; names as typed;
//  - lines come in the order of the server's hash map: `server.17` between
//    `server.1` and `server.2` (coord prints id order);
//  - a spec with nothing before ';', or nothing after it but ':', is
//    MarshallingError; a joiner `server.8=|;port` (no address at all)
//    changes nothing and the client that sent it loses its connection;
//    a properties key may end at ':' as well as '=';
//  - a stale curConfigId is BadVersion; a joiner without a client port,
//    with equal peer and election ports, an unknown role, too few parts,
//    no '=', a port that is no number, too many ';' or client parts, a '['
//    without ']', several '|' addresses, or leaving no participant is
//    BadArguments; a leaving id or a joiner id that is no number, or a
//    port out of range (negative, 70000) is MarshallingError; adding four
//    participants that are not running to three is NewConfigNoQuorum;
//  - a leaving id that is no member, and a request with nothing in it,
//    succeed and write a new version of the same members (coord changes
//    nothing: no entry, no new version);
//  - loopback addresses may repeat across members; negative ids and
//    group/weight keys are taken (coord refuses both);
//  - newMembers is read as a properties text with ',' for line breaks:
//    comments and `version=` are ignored, members need no client port,
//    an unknown key or a bad spec is BadArguments, a bad version, a key
//    `server.1.2` or observers without a participant MarshallingError.

#include "coord/core/membership.h"

#include <gtest/gtest.h>

#include "coord/base/limits.h"

namespace coord::core {
namespace {

using consensus::ConfChange;
using consensus::ConfChangeType;

Member spec(std::uint64_t id, std::string_view s) {
  auto m = parse_server_spec(NodeId(id), s);
  EXPECT_TRUE(m.ok()) << s << ": " << m.status();
  return m.ok() ? *m : Member{};
}

ErrorCode spec_error(std::string_view s) {
  auto m = parse_server_spec(NodeId(8), s);
  EXPECT_FALSE(m.ok()) << s << " parsed as " << (m.ok() ? m->spec() : "");
  return m.status().code();
}

Membership config(std::string_view text) {
  auto m = Membership::parse_config(text);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : Membership{};
}

protocol::ReconfigRequest incremental(std::string joining, std::string leaving,
                                      std::int64_t from = -1) {
  return protocol::ReconfigRequest{std::move(joining), std::move(leaving), "", from};
}

protocol::ReconfigRequest replace_all(std::string members) {
  return protocol::ReconfigRequest{"", "", std::move(members), -1};
}

// Every participant of `m` connected and caught up.
std::vector<NodeId> all_synced(const Membership& m) {
  std::vector<NodeId> out;
  for (const Member& x : m.members)
    out.push_back(x.id);
  return out;
}

// The membership a plan leads to once its entries commit, the last at
// `version`; checks that it is the plan's target.
Membership commit(const Membership& before, const ReconfigPlan& plan, std::int64_t version) {
  std::vector<ConfChange> all;
  for (const auto& step : plan.steps)
    all.insert(all.end(), step.begin(), step.end());
  auto after = membership_after(before, all, version);
  EXPECT_TRUE(after.ok()) << after.status();
  if (!after.ok()) return before;
  Membership want = plan.target;
  want.version = plan.steps.empty() ? before.version : version;
  EXPECT_EQ(*after, want);
  return *after;
}

ErrorCode plan_error(const Membership& current, const protocol::ReconfigRequest& r) {
  auto plan = plan_reconfig(current, r, all_synced(current));
  EXPECT_FALSE(plan.ok()) << r.joining_servers << " / " << r.leaving_servers << " / "
                          << r.new_members;
  return plan.status().code();
}

const std::string kInitial =
    "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
    "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
    "server.3=127.0.0.1:37859:36917:participant;127.0.0.1:38339\n"
    "version=100000000";

// ---- server specs ----------------------------------------------------------

TEST(ServerSpec, PrintsAs38Does) {
  EXPECT_EQ(spec(1, "127.0.0.1:44861:44339:participant;127.0.0.1:33315").spec(),
            "127.0.0.1:44861:44339:participant;127.0.0.1:33315");
  // The static form: no role, no client.
  const Member bare = spec(1, "127.0.0.1:53379:51319");
  EXPECT_EQ(bare.spec(), "127.0.0.1:53379:51319:participant");
  EXPECT_FALSE(bare.client);
  EXPECT_EQ(spec(5, "[::1]:60177:46327:observer;36781").spec(),
            "[0:0:0:0:0:0:0:1]:60177:46327:observer;0.0.0.0:36781");
  EXPECT_EQ(spec(17, "localhost:41811:58511: Observer ;[0:0::1]:58471").spec(),
            "localhost:41811:58511:observer;[0:0:0:0:0:0:0:1]:58471");
  EXPECT_EQ(spec(5, ":48241:36315:observer;:43985").spec(),
            "localhost:48241:36315:observer;localhost:43985");
  EXPECT_EQ(spec(6, "[::ffff:127.0.0.1]:37147:38037:observer;[fe80::1%lo]:43979").spec(),
            "127.0.0.1:37147:38037:observer;[fe80::1%lo]:43979");
  // 3.8 skips the character after ']' whatever it is.
  EXPECT_EQ(spec(7, "127.0.0.1:50275:44165:observer;[::1]x52647").spec(),
            "127.0.0.1:50275:44165:observer;[0:0:0:0:0:0:0:1]:52647");
  // Java's split drops trailing empty pieces: "...:;" has no role.
  EXPECT_EQ(spec(8, "127.0.0.1:56145:49045:;37849").spec(),
            "127.0.0.1:56145:49045:participant;0.0.0.0:37849");
  EXPECT_EQ(spec(4, "127.0.0.1:+58021:49373:observer;+41927").spec(),
            "127.0.0.1:58021:49373:observer;0.0.0.0:41927");
  EXPECT_EQ(spec(9, "[2001:DB8::a]:1:2;[2001:db8::a]:3").spec(),
            "[2001:db8:0:0:0:0:0:a]:1:2:participant;[2001:db8:0:0:0:0:0:a]:3");
  EXPECT_EQ(spec(9, "Zk-1.example:2888:3888:participant;zk-1.example:2181").spec(),
            "Zk-1.example:2888:3888:participant;zk-1.example:2181");
  // A name in brackets loses them; ports 0 and 65535 are ports.
  EXPECT_EQ(spec(9, "[zk]:0:65535").spec(), "zk:0:65535:participant");

  const Member m = spec(3, "10.0.0.3:2888:3888:observer;10.0.0.3:2181");
  EXPECT_EQ(m.id, NodeId(3));
  EXPECT_EQ(m.peer, (HostPort{"10.0.0.3", 2888}));
  EXPECT_EQ(m.election_port, 3888);
  EXPECT_EQ(m.role, MemberRole::Observer);
  EXPECT_EQ(m.client, (HostPort{"10.0.0.3", 2181}));
  EXPECT_EQ(m.line(), "server.3=10.0.0.3:2888:3888:observer;10.0.0.3:2181");
}

TEST(ServerSpec, PrintedSpecsReadBackUnchanged) {
  for (std::string_view s :
       {"127.0.0.1:44861:44339:participant;127.0.0.1:33315", "[::1]:1:2:observer;3", ":1:2;:3",
        "[::ffff:10.1.2.3]:1:2", "[fe80::1%lo]:1:2;[fe80::1%lo]:3", "[a:b]:1:2", "h:1:2;h:0"}) {
    const Member m = spec(2, s);
    EXPECT_EQ(spec(2, m.spec()), m) << s;
    EXPECT_EQ(parse_server_line(m.line()).value(), m) << s;
  }
}

TEST(ServerSpec, RefusesWhat38Refuses) {
  // ConfigException in 3.8: BadArguments.
  EXPECT_EQ(spec_error("127.0.0.1:1:2:observer|127.0.0.2:1:2:observer;3"),
            ErrorCode::BadArguments);                                           // several addresses
  EXPECT_EQ(spec_error("127.0.0.1:99999999999:2;3"), ErrorCode::BadArguments);  // not an int
  EXPECT_EQ(spec_error("127.0.0.1:x:2;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("127.0.0.1:1:x;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("127.0.0.1: 1:2;3"), ErrorCode::BadArguments);  // no trimming inside
  EXPECT_EQ(spec_error("127.0.0.1::2;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("127.0.0.1:1:2;x"), ErrorCode::BadArguments);  // client port
  EXPECT_EQ(spec_error("127.0.0.1:1:2;h:"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("127.0.0.1:7:7;3"), ErrorCode::BadArguments);  // peer = election
  EXPECT_EQ(spec_error("127.0.0.1:1:2:voter;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("127.0.0.1:1;3"), ErrorCode::BadArguments);  // too few parts
  EXPECT_EQ(spec_error("127.0.0.1"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error(""), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("h:1:2:observer:x;3"), ErrorCode::BadArguments);  // too many
  EXPECT_EQ(spec_error("::1:1:2;3"), ErrorCode::BadArguments);           // IPv6 needs brackets
  EXPECT_EQ(spec_error("h:1:2:observer;3;1"), ErrorCode::BadArguments);  // three ';' parts
  EXPECT_EQ(spec_error("h:1:2;a:b:3"), ErrorCode::BadArguments);         // client in 3 parts
  EXPECT_EQ(spec_error("[::1:1:2;3"), ErrorCode::BadArguments);          // '[' without ']'
  EXPECT_EQ(spec_error("h:1:2;[::1"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("[::1]:;3"), ErrorCode::BadArguments);  // no port after the colon
  EXPECT_EQ(spec_error("[::1];3"), ErrorCode::BadArguments);   // a host alone
  EXPECT_EQ(spec_error("h:1:2;[::1]"), ErrorCode::BadArguments);
  // Unchecked exceptions in 3.8: MarshallingError.
  EXPECT_EQ(spec_error("127.0.0.1:-5:2;3"), ErrorCode::MarshallingError);
  EXPECT_EQ(spec_error("127.0.0.1:1:70000;3"), ErrorCode::MarshallingError);
  EXPECT_EQ(spec_error("h:1:2;65536"), ErrorCode::MarshallingError);
  EXPECT_EQ(spec_error(";"), ErrorCode::MarshallingError);        // no server part at all
  EXPECT_EQ(spec_error("h:1:2;:"), ErrorCode::MarshallingError);  // nor a client part
  // Coord's own refusals: for "|" (no address at all) 3.8 drops the asking
  // client's connection; it keeps the others as names it cannot resolve.
  EXPECT_EQ(spec_error("|;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("a b:1:2;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("[[x]:1:2;3"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("h\x01:1:2"), ErrorCode::BadArguments);
  EXPECT_EQ(spec_error("h\xc3\xa9:1:2"), ErrorCode::BadArguments);
}

TEST(ServerLine, ReadsAJoinerAs38Does) {
  EXPECT_EQ(parse_server_line(" server.17 = localhost:41811:58511: Observer ;[0:0::1]:58471")
                .value()
                .line(),
            "server.17=localhost:41811:58511:observer;[0:0:0:0:0:0:0:1]:58471");
  // Empty pieces between '=' are dropped; the id follows the last '.'; a
  // sign is allowed.
  EXPECT_EQ(parse_server_line("server.+4==127.0.0.1:+58021:49373:observer;+41927").value().line(),
            "server.4=127.0.0.1:58021:49373:observer;0.0.0.0:41927");
  EXPECT_EQ(parse_server_line("8=127.0.0.1:41943:41535:observer;49133").value().id, NodeId(8));
  EXPECT_EQ(parse_server_line("foo.bar.9=h:1:2;3").value().id, NodeId(9));

  EXPECT_EQ(parse_server_line("server.8").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("server.4=").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("=h:1:2;3").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("server.4=h:1:2=x").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("server.x=h:1:2;3").status().code(), ErrorCode::MarshallingError);
  EXPECT_EQ(parse_server_line("server.99999999999999999999=h:1:2;3").status().code(),
            ErrorCode::MarshallingError);
  // 3.8 takes any long; coord's ids are positive.
  EXPECT_EQ(parse_server_line("server.-3=h:1:2;3").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("server.0=h:1:2;3").status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_server_line("server.4=127.0.0.1:1:70000;3").status().code(),
            ErrorCode::MarshallingError);
}

// ---- /zookeeper/config -----------------------------------------------------

TEST(DynamicConfig, TextIsThatOfA38Ensemble) {
  const Membership m = config(kInitial);
  ASSERT_EQ(m.members.size(), 3u);
  EXPECT_EQ(m.version, 0x100000000);
  EXPECT_EQ(m.config_text(), kInitial);
  EXPECT_EQ(m.conf_state(), (consensus::ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}}));

  // Observers are learners; the lines come in id order, whatever order
  // they were read in (3.8 printed server.17 second).
  const std::string shuffled =
      "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
      "server.17=localhost:41811:58511:observer;[0:0:0:0:0:0:0:1]:58471\n"
      "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
      "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
      "server.5=[0:0:0:0:0:0:0:1]:60177:46327:observer;0.0.0.0:36781\n"
      "version=200000004";
  const Membership s = config(shuffled);
  EXPECT_EQ(s.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
            "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
            "server.5=[0:0:0:0:0:0:0:1]:60177:46327:observer;0.0.0.0:36781\n"
            "server.17=localhost:41811:58511:observer;[0:0:0:0:0:0:0:1]:58471\n"
            "version=200000004");
  EXPECT_EQ(s.conf_state(),
            (consensus::ConfState{{NodeId(1), NodeId(2), NodeId(4)}, {NodeId(5), NodeId(17)}}));
  EXPECT_EQ(s.find(NodeId(17))->role, MemberRole::Observer);
  EXPECT_EQ(s.find(NodeId(3)), nullptr);

  // The static form has no client parts.
  EXPECT_EQ(config("server.1=127.0.0.1:53379:51319:participant\nversion=100000000").config_text(),
            "server.1=127.0.0.1:53379:51319:participant\nversion=100000000");
  EXPECT_EQ((Membership{{}, 0}).config_text(), "version=0");
}

TEST(DynamicConfig, RefusesWhatItCannotHaveWritten) {
  for (std::string_view bad :
       {"", "server.1=h:1:2", "version=1\nversion=2", "version=xyz",
        "version=", "server.1=h:1:2\nserver.1=h:3:4\nversion=1", "group.1=1:2\nversion=1",
        "server.1=h:1\nversion=1", "server.x=h:1:2\nversion=1", " server.1=h:1:2\nversion=1",
        "version=-1", "version=ffffffffffffffff"}) {
    auto m = Membership::parse_config(bad);
    EXPECT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.status().code(), ErrorCode::BadArguments) << bad;
  }
}

// ---- reconfig ----------------------------------------------------------------

TEST(Reconfig, IncrementalChangesAs38MadeThem) {
  Membership m = config(kInitial);
  // A stale curConfigId.
  EXPECT_EQ(plan_error(m, incremental("server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479",
                                      "", 0x100000000 + 12345)),
            ErrorCode::BadVersion);

  // Add 4 as a participant, naming the version.
  auto add4 = plan_reconfig(
      m, incremental("server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479", "", 0x100000000),
      all_synced(m));
  ASSERT_TRUE(add4.ok()) << add4.status();
  ASSERT_EQ(add4->steps.size(), 1u);
  EXPECT_EQ(
      add4->steps[0],
      (std::vector<ConfChange>{{ConfChangeType::AddVoter, NodeId(4),
                                "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479"}}));
  m = commit(m, *add4, 0x100000003);
  EXPECT_EQ(m.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
            "server.3=127.0.0.1:37859:36917:participant;127.0.0.1:38339\n"
            "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
            "version=100000003");

  // Remove 3.
  auto rm3 = plan_reconfig(m, incremental("", "3"), all_synced(m));
  ASSERT_TRUE(rm3.ok()) << rm3.status();
  EXPECT_EQ(rm3->steps,
            (std::vector<std::vector<ConfChange>>{{{ConfChangeType::RemoveVoter, NodeId(3)}}}));
  m = commit(m, *rm3, 0x100000004);
  EXPECT_EQ(m.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
            "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
            "version=100000004");

  EXPECT_EQ(plan_error(m, incremental("", "abc")), ErrorCode::MarshallingError);
  // Not a member, or nothing asked: no change at all.
  for (const auto& r : {incremental("", "99"), incremental("", ""), incremental(" , ", " ,")}) {
    auto none = plan_reconfig(m, r, all_synced(m));
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_TRUE(none->steps.empty());
    EXPECT_EQ(none->target, m);
  }

  // An observer at an IPv6 address with a client port alone, then one with
  // a name, spaces and a trailing comma.
  auto add5 =
      plan_reconfig(m, incremental("server.5=[::1]:60177:46327:observer;36781", ""), all_synced(m));
  ASSERT_TRUE(add5.ok()) << add5.status();
  EXPECT_EQ(
      add5->steps[0],
      (std::vector<ConfChange>{{ConfChangeType::AddLearner, NodeId(5),
                                "server.5=[0:0:0:0:0:0:0:1]:60177:46327:observer;0.0.0.0:36781"}}));
  m = commit(m, *add5, 0x200000003);
  auto add17 = plan_reconfig(
      m, incremental(" server.17 = localhost:41811:58511: Observer ;[0:0::1]:58471 , ", ""),
      all_synced(m));
  ASSERT_TRUE(add17.ok()) << add17.status();
  m = commit(m, *add17, 0x200000004);
  EXPECT_EQ(m.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
            "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
            "server.5=[0:0:0:0:0:0:0:1]:60177:46327:observer;0.0.0.0:36781\n"
            "server.17=localhost:41811:58511:observer;[0:0:0:0:0:0:0:1]:58471\n"
            "version=200000004");

  // Refused joiners.
  const auto join = [&](std::string j) { return plan_error(m, incremental(std::move(j), "")); };
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41535:observer"), ErrorCode::BadArguments);  // client
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41943:observer;49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41535:voter;49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943;49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943:x:observer;49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41535:observer;49133;1"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41535:observer;a:b:49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=[::1:41943:41535:observer;49133"), ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:1:2:observer|127.0.0.2:1:2:observer;3"),
            ErrorCode::BadArguments);
  EXPECT_EQ(join("server.8=127.0.0.1:41943:70000:observer;49133"), ErrorCode::MarshallingError);
  EXPECT_EQ(join("server.8=127.0.0.1:-5:41535:observer;49133"), ErrorCode::MarshallingError);
  EXPECT_EQ(join("server.x=127.0.0.1:41943:41535:observer;49133"), ErrorCode::MarshallingError);
  // A bad joiner spoils the whole request, wherever it stands.
  EXPECT_EQ(join("server.8=127.0.0.1:41943:41535:observer;49133,server.9"),
            ErrorCode::BadArguments);
  // Leaving ids are read before joiners.
  EXPECT_EQ(plan_error(m, incremental("server.9", "x")), ErrorCode::MarshallingError);

  // No participant left.
  EXPECT_EQ(plan_error(m, incremental("", "1,2,4")), ErrorCode::BadArguments);
}

TEST(Reconfig, LoopbackAddressesMayRepeatOthersMayNot) {
  Membership m = config(
      "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
      "server.2=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"
      "version=5");
  const auto try_join = [&](std::string j) {
    return plan_reconfig(m, incremental(std::move(j), ""), all_synced(m));
  };
  // 3.8 let a joiner reuse 127.0.0.1:44861 of server 1.
  EXPECT_TRUE(try_join("server.8=127.0.0.1:2888:3888:observer;2181").ok());
  EXPECT_TRUE(try_join("server.8=localhost:2888:3888:observer;0.0.0.0:2181").ok());
  EXPECT_TRUE(try_join("server.8=127.1.2.3:2888:3888:observer;[::]:2181").ok());
  // Peer, client and election addresses are all compared, each with each.
  EXPECT_EQ(try_join("server.8=10.0.0.1:2888:3999:observer;2181").status().code(),
            ErrorCode::BadArguments);
  EXPECT_EQ(try_join("server.8=10.0.0.1:2181:3999:observer;2182").status().code(),
            ErrorCode::BadArguments);
  EXPECT_EQ(try_join("server.8=10.0.0.1:3888:3999:observer;2182").status().code(),
            ErrorCode::BadArguments);
  EXPECT_EQ(try_join("server.8=10.0.0.8:2888:3888:observer;10.0.0.1:2181").status().code(),
            ErrorCode::BadArguments);
  EXPECT_EQ(try_join("server.8=10.0.0.8:2888:3888:observer;10.0.0.8:2181,"
                     "server.9=10.0.0.8:2181:3889:observer;10.0.0.9:2181")
                .status()
                .code(),
            ErrorCode::BadArguments);
  // A member may keep its own addresses when it is replaced.
  auto same = try_join("server.1=10.0.0.1:2888:3888:observer;10.0.0.1:2181");
  ASSERT_TRUE(same.ok()) << same.status();
  // A member that leaves frees its addresses.
  EXPECT_TRUE(
      plan_reconfig(m, incremental("server.8=10.0.0.1:2888:3888:observer;2181", "1"), all_synced(m))
          .ok());
  // A name that merely starts like a loopback address is no loopback.
  m = config(
      "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"
      "server.2=127.example:2888:3888:participant;0.0.0.0:2181\n"
      "version=5");
  EXPECT_EQ(try_join("server.8=127.example:2888:3999:observer;2182").status().code(),
            ErrorCode::BadArguments);
  EXPECT_TRUE(try_join("server.8=127.0.0.1:2888:3888:observer;2181").ok());
}

TEST(Reconfig, NoQuorumOfSyncedParticipants) {
  const Membership m = config(kInitial);
  std::string joiners;
  for (int i = 4; i <= 7; ++i) {
    joiners += (joiners.empty() ? "" : ",") + std::string("server.") + std::to_string(i) +
               "=127.0.0.1:" + std::to_string(3000 + i) + ":" + std::to_string(4000 + i) +
               ":participant;127.0.0.1:" + std::to_string(5000 + i);
  }
  // Four more participants that are not running: 3 of 7 synced.
  EXPECT_EQ(plan_reconfig(m, incremental(joiners, ""), all_synced(m)).status().code(),
            ErrorCode::NewConfigNoQuorum);
  // One more is fine (3 of 4); so are observers, which do not count.
  EXPECT_TRUE(
      plan_reconfig(m, incremental(joiners.substr(0, joiners.find(',')), ""), all_synced(m)).ok());
  // Exactly half is no majority: 2 of 4.
  EXPECT_EQ(plan_reconfig(m, incremental(joiners.substr(0, joiners.find(',')), ""),
                          {NodeId(1), NodeId(2)})
                .status()
                .code(),
            ErrorCode::NewConfigNoQuorum);
  // Only the leader in contact: removing the others leaves it a quorum.
  EXPECT_EQ(plan_reconfig(m, incremental("", ""), {NodeId(1)}).status().code(),
            ErrorCode::NewConfigNoQuorum);
  EXPECT_TRUE(plan_reconfig(m, incremental("", "2,3"), {NodeId(1)}).ok());
}

TEST(Reconfig, RoleChangesFollowTheRaftRules) {
  Membership m = config(
      "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
      "server.2=10.0.0.2:2888:3888:participant;10.0.0.2:2181\n"
      "server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2181\n"
      "server.4=10.0.0.4:2888:3888:participant;10.0.0.4:2181\n"
      "version=7");
  // Participant to observer: removed in one entry, added back as a learner
  // in the next.
  auto demote = plan_reconfig(
      m, incremental("server.4=10.0.0.4:2888:3888:observer;10.0.0.4:2181", ""), all_synced(m));
  ASSERT_TRUE(demote.ok()) << demote.status();
  EXPECT_EQ(demote->steps, (std::vector<std::vector<ConfChange>>{
                               {{ConfChangeType::RemoveVoter, NodeId(4)}},
                               {{ConfChangeType::AddLearner, NodeId(4),
                                 "server.4=10.0.0.4:2888:3888:observer;10.0.0.4:2181"}}}));
  m = commit(m, *demote, 9);
  EXPECT_EQ(m.find(NodeId(4))->role, MemberRole::Observer);
  // And back: one promotion.
  auto promote =
      plan_reconfig(m, incremental("server.4=10.0.0.4:2888:3888;10.0.0.4:2181", ""), all_synced(m));
  ASSERT_TRUE(promote.ok()) << promote.status();
  EXPECT_EQ(promote->steps, (std::vector<std::vector<ConfChange>>{
                                {{ConfChangeType::PromoteLearner, NodeId(4),
                                  "server.4=10.0.0.4:2888:3888:participant;10.0.0.4:2181"}}}));
  m = commit(m, *promote, 10);
  // A new address: removed and added in the same entry.
  auto move = plan_reconfig(m, incremental("server.2=10.0.0.12:2888:3888:participant;2181", ""),
                            all_synced(m));
  ASSERT_TRUE(move.ok()) << move.status();
  EXPECT_EQ(move->steps, (std::vector<std::vector<ConfChange>>{
                             {{ConfChangeType::RemoveVoter, NodeId(2)},
                              {ConfChangeType::AddVoter, NodeId(2),
                               "server.2=10.0.0.12:2888:3888:participant;0.0.0.0:2181"}}}));
  m = commit(m, *move, 11);
  // The same line again changes nothing.
  auto same = plan_reconfig(m, incremental(m.find(NodeId(2))->line(), ""), all_synced(m));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->steps.empty());
  // Adds first, then moves, then removals, in one entry.
  auto mixed = plan_reconfig(m,
                             incremental("server.3=10.0.0.3:2888:3888:observer;10.0.0.3:2181,"
                                         "server.9=10.0.0.9:2888:3888:participant;10.0.0.9:2181",
                                         "1"),
                             all_synced(m));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  ASSERT_EQ(mixed->steps.size(), 2u);
  EXPECT_EQ(mixed->steps[0],
            (std::vector<ConfChange>{{ConfChangeType::AddVoter, NodeId(9),
                                      "server.9=10.0.0.9:2888:3888:participant;10.0.0.9:2181"},
                                     {ConfChangeType::RemoveVoter, NodeId(3)},
                                     {ConfChangeType::RemoveVoter, NodeId(1)}}));
  EXPECT_EQ(mixed->steps[1],
            (std::vector<ConfChange>{{ConfChangeType::AddLearner, NodeId(3),
                                      "server.3=10.0.0.3:2888:3888:observer;10.0.0.3:2181"}}));
  commit(m, *mixed, 14);
}

TEST(Reconfig, WhatRaftCannotDoIsBadArguments) {
  // The only voter cannot move in place.
  const Membership one = config("server.1=10.0.0.1:2888:3888:participant;2181\nversion=1");
  EXPECT_EQ(plan_error(one, incremental("server.1=10.0.0.2:2888:3888:participant;2181", "")),
            ErrorCode::BadArguments);
  // More members than a cluster holds.
  Membership full;
  for (std::uint64_t i = 1; i <= limits::cluster_members_max; ++i) {
    full.members.push_back(spec(i, "h" + std::to_string(i) + ":1:2:" +
                                       std::string(i <= 3 ? "participant" : "observer") + ";3"));
  }
  EXPECT_EQ(plan_error(full, incremental("server.100=h100:1:2:observer;3", "")),
            ErrorCode::BadArguments);
  EXPECT_TRUE(
      plan_reconfig(full, incremental("server.100=h100:1:2:observer;3", "64"), all_synced(full))
          .ok());
  // A line longer than a conf change's context may be.
  const std::string long_name(limits::conf_change_context_bytes_max, 'a');
  EXPECT_EQ(plan_error(one, incremental("server.2=" + long_name + ":1:2:observer;3", "")),
            ErrorCode::BadArguments);
  // A request naming a great many members is refused without reading them
  // all (each joiner is compared with every member).
  std::string many, props;
  for (int i = 1; i <= 20'000; ++i) {
    const std::string line = "server." + std::to_string(i) + "=h" + std::to_string(i) + ":1:2;3";
    many += line + ",";
    props += line + "\n";
  }
  EXPECT_EQ(plan_error(one, incremental(many, "")), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(one, replace_all(props)), ErrorCode::BadArguments);
}

TEST(Reconfig, NonIncrementalReplacesEveryone) {
  Membership m = config(
      "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
      "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
      "server.3=127.0.0.1:37859:36917:participant;127.0.0.1:38339\n"
      "server.4=127.0.0.1:50215:42105:observer;127.0.0.1:48479\n"
      "server.5=127.0.0.1:60177:46327:participant;127.0.0.1:36781\n"
      "server.8=127.0.0.1:41943:41535:observer;0.0.0.0:49133\n"
      "version=200000014");
  const std::string members =
      "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315,"
      "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077,"
      "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479";
  // joining and leaving are ignored when newMembers is given.
  auto plan = plan_reconfig(m, protocol::ReconfigRequest{"junk", "junk", members, 0x200000014},
                            all_synced(m));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->steps, (std::vector<std::vector<ConfChange>>{
                             {{ConfChangeType::RemoveVoter, NodeId(8)},
                              {ConfChangeType::PromoteLearner, NodeId(4),
                               "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479"},
                              {ConfChangeType::RemoveVoter, NodeId(3)},
                              {ConfChangeType::RemoveVoter, NodeId(5)}}}));
  m = commit(m, *plan, 0x200000015);
  EXPECT_EQ(m.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077\n"
            "server.4=127.0.0.1:50215:42105:participant;127.0.0.1:48479\n"
            "version=200000015");

  // Properties syntax: comments, blanks around '=' or ':', a version that
  // is read and dropped, members without a client port, the last of a
  // repeated key.
  auto props = plan_reconfig(
      m,
      replace_all("# a comment,  server.1 = 127.0.0.1:44861:44339:participant;127.0.0.1:33315,"
                  "server.2:127.0.0.1:57149:37847,version=ff,"
                  "! another\n\tserver.4 127.0.0.1:1:2,server.4=127.0.0.1:50215:42105"),
      all_synced(m));
  ASSERT_TRUE(props.ok()) << props.status();
  m = commit(m, *props, 0x20000001f);
  EXPECT_EQ(m.config_text(),
            "server.1=127.0.0.1:44861:44339:participant;127.0.0.1:33315\n"
            "server.2=127.0.0.1:57149:37847:participant\n"
            "server.4=127.0.0.1:50215:42105:participant\n"
            "version=20000001f");

  const std::string rest = ",server.2=127.0.0.1:57149:37847:participant;127.0.0.1:37077";
  EXPECT_EQ(plan_error(m, replace_all("foo=bar" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("Server.1=h:1:2" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("server.1=127.0.0.1:44861" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("server.1=h:1:2:observer")), ErrorCode::MarshallingError);
  EXPECT_EQ(plan_error(m, replace_all("version=zz" + rest)), ErrorCode::MarshallingError);
  EXPECT_EQ(plan_error(m, replace_all("server.1.2=h:1:2" + rest)), ErrorCode::MarshallingError);
  EXPECT_EQ(plan_error(m, replace_all("server.1=h:-1:2" + rest)), ErrorCode::MarshallingError);
  EXPECT_EQ(plan_error(m, replace_all("# only a comment")), ErrorCode::MarshallingError);
  // Taken by 3.8, refused by coord: hierarchical quorums, escapes, ids
  // that are not positive.
  EXPECT_EQ(plan_error(m, replace_all("group.1=1:2" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("weight.1=1" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("server.1=h\\:1:2:3" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, replace_all("server.-1=h:1:2" + rest)), ErrorCode::BadArguments);
  EXPECT_EQ(plan_error(m, protocol::ReconfigRequest{"", "", rest, 3}), ErrorCode::BadVersion);
}

// ---- membership from committed changes ----------------------------------------

TEST(MembershipAfter, AppliesContextsAndRefusesWhatDoesNotFit) {
  const Membership m = config(kInitial);
  const std::string line4 = "server.4=10.0.0.4:2888:3888:observer;10.0.0.4:2181";
  auto after = membership_after(m, {{ConfChangeType::AddLearner, NodeId(4), line4}}, 12);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version, 12);
  EXPECT_EQ(after->find(NodeId(4))->line(), line4);
  // A promotion without a context keeps the addresses.
  auto promoted = membership_after(*after, {{ConfChangeType::PromoteLearner, NodeId(4)}}, 13);
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(promoted->find(NodeId(4))->line(),
            "server.4=10.0.0.4:2888:3888:participant;10.0.0.4:2181");
  // A leave entry changes nothing, not even the version.
  EXPECT_EQ(membership_after(*after, {}, 99).value(), *after);
  // An add without a context: the member, without an address.
  auto bare = membership_after(m, {{ConfChangeType::AddVoter, NodeId(6)}}, 14);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->find(NodeId(6))->role, MemberRole::Participant);
  EXPECT_TRUE(bare->find(NodeId(6))->peer.host.empty());

  const auto refused = [&](std::vector<ConfChange> changes) {
    auto r = membership_after(m, changes, 15);
    EXPECT_FALSE(r.ok());
    return r.status().code();
  };
  EXPECT_EQ(refused({{ConfChangeType::AddVoter, NodeId(1)}}), ErrorCode::DataInconsistency);
  EXPECT_EQ(refused({{ConfChangeType::RemoveVoter, NodeId(9)}}), ErrorCode::DataInconsistency);
  EXPECT_EQ(refused({{ConfChangeType::PromoteLearner, NodeId(1)}}), ErrorCode::DataInconsistency);
  EXPECT_EQ(refused({{ConfChangeType::AddVoter, NodeId(4), line4}}),
            ErrorCode::DataInconsistency);  // an observer's line for a voter
  EXPECT_EQ(refused({{ConfChangeType::AddLearner, NodeId(5), line4}}),
            ErrorCode::DataInconsistency);  // another server's line
  EXPECT_EQ(refused({{ConfChangeType::AddLearner, NodeId(4), "junk"}}),
            ErrorCode::DataInconsistency);
}

TEST(MembershipAfter, FoundingChangesRebuildTheFoundingMembership) {
  const Membership m = config(
      "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
      "server.2=10.0.0.2:2888:3888:observer;10.0.0.2:2181\n"
      "server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2181\n"
      "version=3");
  const auto changes = founding_changes(m);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].type, ConfChangeType::AddVoter);
  EXPECT_EQ(changes[1].node, NodeId(3));
  EXPECT_EQ(changes[2], (ConfChange{ConfChangeType::AddLearner, NodeId(2),
                                    "server.2=10.0.0.2:2888:3888:observer;10.0.0.2:2181"}));
  EXPECT_EQ(membership_after(Membership{}, changes, 3).value(), m);
}

// ---- the admin API's form ------------------------------------------------------

TEST(MemberJson, WritesAndReadsTheAdminForm) {
  const Member m = spec(4, "[::1]:2888:3888:observer;10.0.0.4:2181");
  EXPECT_EQ(member_json(m),
            R"({"id":4,"peer_address":"[0:0:0:0:0:0:0:1]:2888","client_address":"10.0.0.4:2181",)"
            R"("role":"observer"})");
  EXPECT_EQ(member_json(spec(5, "h:1:2")),
            R"({"id":5,"peer_address":"h:1","client_address":"","role":"participant"})");

  auto back = member_from_json(member_json(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->peer, m.peer);
  EXPECT_EQ(back->client, m.client);
  EXPECT_EQ(back->role, m.role);
  EXPECT_EQ(back->election_port, 0);
  EXPECT_EQ(back->line(), "server.4=[0:0:0:0:0:0:0:1]:2888:0:observer;10.0.0.4:2181");
  // The admin API's earlier form, with "voter".
  auto old = member_from_json(R"({"id":5,"peer_address":"10.0.0.5:2888","voter":false})");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->role, MemberRole::Observer);
  EXPECT_FALSE(old->client);

  for (std::string_view bad :
       {"", "[]", "{}", R"({"id":0,"peer_address":"h:1"})", R"({"id":"4","peer_address":"h:1"})",
        R"({"id":4})", R"({"id":4,"peer_address":"h"})", R"({"id":4,"peer_address":"h:0"})",
        R"({"id":4,"peer_address":"h:1:2"})", R"({"id":4,"peer_address":"h:70000"})",
        R"({"id":4,"peer_address":"a b:1"})", R"({"id":4,"peer_address":"h:1","role":"voter"})",
        R"({"id":4,"peer_address":"h:1","client_address":"h"})",
        R"({"id":4,"peer_address":"h:1","client_address":7})",
        R"({"id":4,"peer_address":"h:1","voter":"yes"})",
        R"({"id":4,"peer_address":"h:1","voter":true,"role":"observer"})"}) {
    auto r = member_from_json(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::BadArguments) << bad;
  }
}

}  // namespace
}  // namespace coord::core
