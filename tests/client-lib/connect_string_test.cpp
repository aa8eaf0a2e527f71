// Connect strings, path rules and chroot mapping.
#include <gtest/gtest.h>

#include "coord/client-lib/connect_string.h"

namespace coord {
namespace {

TEST(ConnectString, HostsPortsAndChroot) {
  auto cs = parse_connect_string("a:1,b:2, c ,[::1]:2182/app/x");
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->servers,
            (std::vector<ServerAddress>{{"a", 1}, {"b", 2}, {"c", 2181}, {"::1", 2182}}));
  EXPECT_EQ(cs->chroot, "/app/x");
}

TEST(ConnectString, RootChrootIsNone) {
  auto cs = parse_connect_string("h:2181/");
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->chroot, "");
  auto trailing = parse_connect_string("h:2181/app/");
  ASSERT_TRUE(trailing.ok());
  EXPECT_EQ(trailing->chroot, "/app");
}

TEST(ConnectString, Rejections) {
  for (const char* bad : {"", ",", "h:0", "h:65536", "h:x", ":2181", "h:2181/a//b", "[::1"}) {
    EXPECT_EQ(parse_connect_string(bad).code(), ErrorCode::BadArguments) << bad;
  }
}

TEST(Paths, ZooKeeperRules) {
  for (const char* ok : {"/", "/a", "/a/b", "/a.b", "/..a", "/a b"}) {
    EXPECT_TRUE(validate_path(ok).ok()) << ok;
  }
  for (const char* bad : {"", "a", "/a/", "//", "/a//b", "/.", "/a/..", "/a/./b"}) {
    EXPECT_EQ(validate_path(bad).code(), ErrorCode::BadArguments) << bad;
  }
  EXPECT_EQ(validate_path(std::string("/a\0b", 4)).code(), ErrorCode::BadArguments);
  EXPECT_TRUE(validate_path("/queue/", true).ok()) << "a sequential create may end with /";
}

TEST(Paths, Chroot) {
  EXPECT_EQ(chroot_path("", "/a"), "/a");
  EXPECT_EQ(chroot_path("/app", "/"), "/app");
  EXPECT_EQ(chroot_path("/app", "/a/b"), "/app/a/b");
  EXPECT_EQ(strip_chroot("/app", "/app"), "/");
  EXPECT_EQ(strip_chroot("/app", "/app/a"), "/a");
  EXPECT_EQ(strip_chroot("/app", "/apple"), "/apple") << "not inside the chroot";
  EXPECT_EQ(strip_chroot("", "/x"), "/x");
}

}  // namespace
}  // namespace coord
