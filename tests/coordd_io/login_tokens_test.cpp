// The HTTP API's login tokens: what a token stands for, idle expiry and
// the bound on the table, with time as an input.

#include "coord/io/login_tokens.h"

#include <gtest/gtest.h>

#include <set>

namespace coord::io {
namespace {

BasicCredentials alice() {
  return BasicCredentials{"alice", "alice-pw"};
}

TEST(LoginTokens, ATokenStandsForTheCredentialsItWasMadeWith) {
  LoginTokens t(4, 1000);
  t.add("tok-a", alice(), TimeMs(0));
  t.add("tok-anon", std::nullopt, TimeMs(0));
  const Login* a = t.find("tok-a", TimeMs(10));
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->credentials.has_value());
  EXPECT_EQ(a->credentials->auth(), "alice:alice-pw");
  const Login* anon = t.find("tok-anon", TimeMs(10));
  ASSERT_NE(anon, nullptr);
  EXPECT_FALSE(anon->credentials.has_value());
  EXPECT_EQ(t.find("tok-unknown", TimeMs(10)), nullptr);
  EXPECT_EQ(t.find("", TimeMs(10)), nullptr);
}

TEST(LoginTokens, AnIdleTokenExpiresAndUseRenewsIt) {
  LoginTokens t(4, 1000);
  t.add("used", alice(), TimeMs(0));
  t.add("idle", alice(), TimeMs(0));
  // Used at 900 and at 1800: never idle for more than 1000 ms.
  ASSERT_NE(t.find("used", TimeMs(900)), nullptr);
  ASSERT_NE(t.find("used", TimeMs(1800)), nullptr);
  EXPECT_EQ(t.find("idle", TimeMs(1001)), nullptr);
  EXPECT_EQ(t.size(), 1u) << "an expired token found is forgotten";
  // expire() forgets the idle ones without a lookup.
  t.add("other", std::nullopt, TimeMs(1800));
  t.expire(TimeMs(2799));
  EXPECT_EQ(t.size(), 2u);
  t.expire(TimeMs(2801));
  EXPECT_EQ(t.size(), 0u);
}

TEST(LoginTokens, LogoutForgetsTheToken) {
  LoginTokens t(4, 1000);
  t.add("tok", alice(), TimeMs(0));
  EXPECT_TRUE(t.remove("tok"));
  EXPECT_FALSE(t.remove("tok"));
  EXPECT_EQ(t.find("tok", TimeMs(1)), nullptr);
}

TEST(LoginTokens, TheTableIsBoundedAndGivesUpTheTokenUnusedLongest) {
  LoginTokens t(3, 1'000'000);
  t.add("t0", alice(), TimeMs(0));
  t.add("t1", alice(), TimeMs(1));
  t.add("t2", alice(), TimeMs(2));
  ASSERT_NE(t.find("t0", TimeMs(3)), nullptr);  // t1 is now the one unused longest
  t.add("t3", alice(), TimeMs(4));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.find("t1", TimeMs(5)), nullptr);
  EXPECT_NE(t.find("t0", TimeMs(5)), nullptr);
  EXPECT_NE(t.find("t2", TimeMs(5)), nullptr);
  EXPECT_NE(t.find("t3", TimeMs(5)), nullptr);
  // Expired ones go first, before any live one.
  LoginTokens u(2, 10);
  u.add("old", alice(), TimeMs(0));
  u.add("live", alice(), TimeMs(15));
  u.add("new", alice(), TimeMs(20));
  EXPECT_NE(u.find("live", TimeMs(21)), nullptr);
  EXPECT_NE(u.find("new", TimeMs(21)), nullptr);
}

TEST(LoginTokens, RandomTokensAre32LowercaseHexDigitsAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string tok = random_login_token();
    ASSERT_EQ(tok.size(), 32u);
    for (char c : tok)
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << tok;
    seen.insert(tok);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace coord::io
