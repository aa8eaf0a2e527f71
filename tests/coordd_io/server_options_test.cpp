// The cluster options of a server: the --peers list (peer and client
// addresses), the founding membership it stands for, and the peer set
// that follows the membership the replica applies.

#include <gtest/gtest.h>

#include "coord/core/membership.h"
#include "coord/io/server.h"

namespace coord::io {
namespace {

TEST(ParsePeers, TakesTheOldForm) {
  auto p = parse_peers("1=10.0.0.1:2888, 2=[::1]:2889,3=host-c:2890");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->peers, (PeerSet{{NodeId(1), {"10.0.0.1", 2888}},
                               {NodeId(2), {"::1", 2889}},
                               {NodeId(3), {"host-c", 2890}}}));
  EXPECT_TRUE(p->clients.empty());
}

TEST(ParsePeers, TakesClientAddressesAsZooKeepersSpec) {
  auto p =
      parse_peers("1=10.0.0.1:2888;10.0.0.1:2181,2=10.0.0.2:2888;2182,3=[::1]:2889;[::1]:2183");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->peers.at(NodeId(2)), (PeerAddress{"10.0.0.2", 2888}));
  EXPECT_EQ(p->clients, (std::map<NodeId, PeerAddress>{{NodeId(1), {"10.0.0.1", 2181}},
                                                       {NodeId(2), {"0.0.0.0", 2182}},
                                                       {NodeId(3), {"::1", 2183}}}));
}

TEST(ParsePeers, RefusesBadEntriesNamingThem) {
  for (const char* bad :
       {"", "1=h:1,1=h:2", "0=h:1", "256=h:1", "1=h", "1=h:0", "1=h:70000", "1=::1:2888",
        "1=[::1:2888", "1=h:1;", "1=h:1;h:", "1=h:1;x", "1=h:1;[::1]:0", "1=h:1,,2=h:2"}) {
    auto p = parse_peers(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.code(), ErrorCode::BadArguments) << bad;
    }
  }
  auto p = parse_peers("1=h:1,2=h:2;h:x");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("'2=h:2;h:x'"), std::string::npos) << p.status();
}

TEST(FoundingMembership, ShowsEveryServerAsZooKeeperPrintsIt) {
  auto p = parse_peers("1=127.0.0.1:7001;127.0.0.1:2181,2=127.0.0.1:7002;2182,3=[::1]:7003");
  ASSERT_TRUE(p.ok());
  auto m = founding_membership(p->peers, p->clients);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config_text(),
            "server.1=127.0.0.1:7001:0:participant;127.0.0.1:2181\n"
            "server.2=127.0.0.1:7002:0:participant;0.0.0.0:2182\n"
            "server.3=[0:0:0:0:0:0:0:1]:7003:0:participant\n"
            "version=0");
  // What every founding server writes first, identical on each.
  const auto changes = core::founding_changes(*m);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].context, "server.1=127.0.0.1:7001:0:participant;127.0.0.1:2181");
  auto again = core::Membership::parse_config(m->config_text());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *m);
}

TEST(FoundingMembership, RefusesAHostTheConfigCannotShow) {
  auto m = founding_membership(PeerSet{{NodeId(1), {"a|b", 7001}}}, {});
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(m.code(), ErrorCode::BadArguments);
}

TEST(PeersOf, FollowsTheMembershipAndFallsBackToPeers) {
  const PeerSet configured{{NodeId(1), {"10.0.0.1", 2888}}, {NodeId(2), {"10.0.0.2", 2888}}};
  // Nothing applied yet: --peers as given.
  EXPECT_EQ(peers_of(core::Membership{}, configured), configured);
  core::Membership m;
  m.version = 7;
  // A member recorded without an address (a founding entry of an older
  // server) keeps its --peers address; a new member brings its own; a
  // server --peers names that is no member any more is left out.
  auto member = [](std::uint64_t id, std::string host, std::uint16_t port) {
    core::Member x;
    x.id = NodeId(id);
    x.peer = core::HostPort{std::move(host), port};
    return x;
  };
  m.members.push_back(member(1, "", 0));
  m.members.push_back(member(3, "0:0:0:0:0:0:0:1", 2890));
  m.members.push_back(member(4, "", 0));  // unknown everywhere
  EXPECT_EQ(peers_of(m, configured),
            (PeerSet{{NodeId(1), {"10.0.0.1", 2888}}, {NodeId(3), {"0:0:0:0:0:0:0:1", 2890}}}));
}

// A restarted server has applied only part of its log until a leader tells
// it the commit index: a member its log added back (2) is in the
// configuration in force but not yet in the applied membership, and must
// still be a peer, or its links (it dials, being the lower id) are
// refused. A server --peers names that neither knows (5) stays out.
TEST(PeersOf, AddsTheMembersOfTheConfigurationInForceThatPeersGiveAnAddress) {
  const PeerSet configured{{NodeId(1), {"10.0.0.1", 2888}},
                           {NodeId(2), {"10.0.0.2", 2888}},
                           {NodeId(4), {"10.0.0.4", 2888}},
                           {NodeId(5), {"10.0.0.5", 2888}}};
  core::Membership applied;
  applied.version = 112;
  for (std::uint64_t id : {1, 4}) {
    core::Member x;
    x.id = NodeId(id);
    applied.members.push_back(x);
  }
  const consensus::ConfState in_force{{NodeId(1), NodeId(2), NodeId(4)}, {}};
  EXPECT_EQ(peers_of(applied, configured, &in_force), (PeerSet{{NodeId(1), {"10.0.0.1", 2888}},
                                                               {NodeId(2), {"10.0.0.2", 2888}},
                                                               {NodeId(4), {"10.0.0.4", 2888}}}));
  EXPECT_EQ(peers_of(applied, configured),
            (PeerSet{{NodeId(1), {"10.0.0.1", 2888}}, {NodeId(4), {"10.0.0.4", 2888}}}));
}

}  // namespace
}  // namespace coord::io
