// The HTTP port's guards as pure functions: Basic credentials, the Host a
// request names, the Origin and Content-Type of a change.

#include "coord/io/http_guard.h"

#include <gtest/gtest.h>

#include "coord/base/limits.h"

namespace coord::io {
namespace {

TEST(BasicCredentials, DecodesUserAndPasswordWhosePasswordMayHoldColons) {
  // base64("alice:s3cr:et") and base64("bob:") (an empty password is one).
  auto c = parse_basic_authorization("Basic YWxpY2U6czNjcjpldA==");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "s3cr:et");
  EXPECT_EQ(c->auth(), "alice:s3cr:et");
  auto empty = parse_basic_authorization("  basic   Ym9iOg==  ");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->user, "bob");
  EXPECT_EQ(empty->password, "");
}

TEST(BasicCredentials, RefusesWhatIsNotBasicUserColonPassword) {
  for (const char* bad : {
           "",                        // nothing
           "Basic",                   // no credentials
           "Bearer YWxpY2U6cHc=",     // another scheme
           "Basic YWxpY2U6cHc",       // padding missing
           "Basic YWxp!2U6cHc=",      // not base64
           "Basic YWxpY2U=",          // "alice": no colon
           "Basic OnB3",              // ":pw": no user
           "Basic YWxpY2UKOnB3",      // "alice\n:pw": a control character
           "Basic YWxpY2U6cHc=YWxp",  // data after the padding
       }) {
    auto c = parse_basic_authorization(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_EQ(c.code(), ErrorCode::BadArguments) << bad;
    }
  }
  const std::string huge(4 * (limits::http_credentials_bytes_max / 3 + 2), 'Q');
  EXPECT_FALSE(parse_basic_authorization("Basic " + huge).ok());
}

TEST(UrlDecode, PathsKeepPlusQueriesMakeItASpace) {
  std::string out;
  ASSERT_TRUE(url_decode("/a%20b+c%2Fd%e2%82%AC", out));
  EXPECT_EQ(out, "/a b+c/d\xe2\x82\xac");
  ASSERT_TRUE(url_decode("x+y%2B", out, /*query=*/true));
  EXPECT_EQ(out, "x y+");
  for (std::string_view bad : {"%", "%2", "%zz", "a%g1"}) {
    EXPECT_FALSE(url_decode(bad, out)) << bad;
    EXPECT_FALSE(url_decode(bad, out, true)) << bad;
  }
}

TEST(HostName, DropsPortBracketsAndCase) {
  EXPECT_EQ(host_name_of("LocalHost:8080"), "localhost");
  EXPECT_EQ(host_name_of("[::1]:8080"), "::1");
  EXPECT_EQ(host_name_of("[::1]"), "::1");
  EXPECT_EQ(host_name_of("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(host_name_of("coord.example.com."), "coord.example.com");
  EXPECT_FALSE(host_name_of(""));
  EXPECT_FALSE(host_name_of(":8080"));
  EXPECT_FALSE(host_name_of("a:b"));
  EXPECT_FALSE(host_name_of("[::1"));
  EXPECT_FALSE(host_name_of("evil.com/x"));
  EXPECT_FALSE(host_name_of("a b"));
}

TEST(HostCheck, LoopbackNamesTheListenAddressAndMembersPass) {
  const HttpGuardConfig g = make_http_guard("10.1.2.3", "", "", /*tls=*/false);
  const std::vector<std::string> members{"10.1.2.4", "coord-3.internal", "0:0:0:0:0:0:0:1"};
  for (const char* ok : {"localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                         "10.1.2.3:8080", "10.1.2.4", "COORD-3.internal:8080", ""}) {
    EXPECT_TRUE(host_allowed(g, ok, members)) << ok;
  }
  // A rebinding page sends its own name; an address not this server's.
  for (const char* refused : {"evil.example", "evil.example:8080", "10.9.9.9", "127.0.0.1.nip.io",
                              "localhost.evil.example", "[::1"}) {
    EXPECT_FALSE(host_allowed(g, refused, members)) << refused;
  }
}

TEST(HostCheck, ConfiguredNamesWildcardBindAndStar) {
  const HttpGuardConfig listed =
      make_http_guard("127.0.0.1", " coord.example.com , [fd00::5]:8080", "", false);
  EXPECT_TRUE(host_allowed(listed, "coord.example.com:8080", {}));
  EXPECT_TRUE(host_allowed(listed, "[fd00::5]", {}));
  EXPECT_FALSE(host_allowed(listed, "10.0.0.1", {}));
  // Bound to every address: any address is the server's own; names are not.
  const HttpGuardConfig wildcard = make_http_guard("0.0.0.0", "", "", false);
  EXPECT_TRUE(host_allowed(wildcard, "10.0.0.1:8080", {}));
  EXPECT_TRUE(host_allowed(wildcard, "[fd00::1]:8080", {}));
  EXPECT_FALSE(host_allowed(wildcard, "evil.example", {}));
  const HttpGuardConfig any = make_http_guard("127.0.0.1", "*", "", false);
  EXPECT_TRUE(host_allowed(any, "evil.example", {}));
}

TEST(OriginCheck, TheRequestsOwnOriginOrAListedOne) {
  const HttpGuardConfig g = make_http_guard("127.0.0.1", "", "https://console.example:8443", false);
  EXPECT_TRUE(origin_allowed(g, "http://127.0.0.1:8080", "127.0.0.1:8080", false));
  EXPECT_TRUE(origin_allowed(g, "http://LOCALHOST", "localhost:80", false));
  EXPECT_TRUE(origin_allowed(g, "https://localhost:8080", "localhost:8080", true));
  EXPECT_TRUE(origin_allowed(g, "https://console.example:8443", "127.0.0.1:8080", false));
  // Another port, scheme or host is another origin.
  EXPECT_FALSE(origin_allowed(g, "http://127.0.0.1:9999", "127.0.0.1:8080", false));
  EXPECT_FALSE(origin_allowed(g, "https://127.0.0.1:8080", "127.0.0.1:8080", false));
  EXPECT_FALSE(origin_allowed(g, "http://evil.example", "127.0.0.1:8080", false));
  EXPECT_FALSE(origin_allowed(g, "http://console.example:8443", "127.0.0.1:8080", false));
  // Opaque origins (sandboxed frames, file:) never match.
  EXPECT_FALSE(origin_allowed(g, "null", "127.0.0.1:8080", false));
  EXPECT_FALSE(origin_allowed(g, "http://evil.example", "", false));
  EXPECT_TRUE(origin_allowed(make_http_guard("127.0.0.1", "", "*", false), "null", "", false));
}

TEST(ContentTypes, TheThreeABrowserSendsWithoutPreflightAndJson) {
  for (const char* simple :
       {"text/plain", "Text/Plain; charset=UTF-8", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x", " text/plain "}) {
    EXPECT_TRUE(is_cors_simple_content_type(simple)) << simple;
  }
  for (const char* other : {"", "application/json", "application/octet-stream", "text/html"}) {
    EXPECT_FALSE(is_cors_simple_content_type(other)) << other;
  }
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type(""));
}

TEST(CredentialsInClear, OnlyPlainHttpOffLoopback) {
  EXPECT_FALSE(make_http_guard("127.0.0.1", "", "", false).credentials_in_clear);
  EXPECT_FALSE(make_http_guard("::1", "", "", false).credentials_in_clear);
  EXPECT_FALSE(make_http_guard("localhost", "", "", false).credentials_in_clear);
  EXPECT_TRUE(make_http_guard("0.0.0.0", "", "", false).credentials_in_clear);
  EXPECT_TRUE(make_http_guard("10.0.0.1", "", "", false).credentials_in_clear);
  EXPECT_FALSE(make_http_guard("10.0.0.1", "", "", true).credentials_in_clear);
}

}  // namespace
}  // namespace coord::io
