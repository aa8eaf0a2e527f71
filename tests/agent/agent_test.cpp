// agent/: the daemons' HTTP server, HTTP client and Prometheus text, over
// real loopback sockets.
#include <utility>

#include <gtest/gtest.h>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "coord/agent/http_client.h"
#include "coord/agent/http_server.h"
#include "coord/agent/prometheus.h"
#include "coord/base/limits.h"

namespace coord::agent {
namespace {

using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;

TEST(AgentHttpClient, HostPortSplitting) {
  auto hp = split_host_port("10.0.0.1:8080");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "10.0.0.1");
  EXPECT_EQ(hp->second, 8080);
  EXPECT_EQ(split_host_port("[::1]:80")->first, "::1");
  EXPECT_FALSE(split_host_port("host").ok());
  EXPECT_FALSE(split_host_port(":80").ok());
  EXPECT_FALSE(split_host_port("host:0").ok());
  EXPECT_FALSE(split_host_port("host:70000").ok());
  EXPECT_FALSE(split_host_port("host:8x").ok());
}

TEST(AgentHttpClient, UnreachableServerNamesTheStep) {
  auto r = http_request("127.0.0.1", 1, "GET", "/", "", 1000ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::ConnectionLoss);
  EXPECT_NE(r.status().message().find("127.0.0.1:1: connect"), std::string::npos)
      << r.status().message();
}

TEST(AgentPercentDecode, DecodesAndRefusesBadEscapes) {
  EXPECT_EQ(*percent_decode("/v1/services/a%2Fb%20c"), "/v1/services/a/b c");
  EXPECT_EQ(*percent_decode("/plain+path"), "/plain+path");
  EXPECT_EQ(*percent_decode("%41%62"), "Ab");
  EXPECT_FALSE(percent_decode("/x%").ok());
  EXPECT_FALSE(percent_decode("/x%4").ok());
  EXPECT_FALSE(percent_decode("/x%zz").ok());
}

TEST(AgentPromText, WritesHelpAndTypeOnceAndEscapes) {
  PromText p;
  p.counter("checks_total", "Checks run.", 3, {{"result", "pass"}});
  p.counter("checks_total", "Checks run.", 1, {{"result", "fail"}});
  p.gauge("stale", "1 while \\ stale\nsecond line.", 0.25);
  p.gauge("odd_label", "Quotes.", 1, {{"a", "x\"y\\z\n"}, {"b", ""}});
  p.gauge("inf", "Infinity.", HUGE_VAL);
  p.gauge("nan", "Not a number.", std::nan(""));
  p.counter("big", "Large whole number.", 1e15);
  EXPECT_EQ(p.str(),
            "# HELP checks_total Checks run.\n"
            "# TYPE checks_total counter\n"
            "checks_total{result=\"pass\"} 3\n"
            "checks_total{result=\"fail\"} 1\n"
            "# HELP stale 1 while \\\\ stale\\nsecond line.\n"
            "# TYPE stale gauge\n"
            "stale 0.25\n"
            "# HELP odd_label Quotes.\n"
            "# TYPE odd_label gauge\n"
            "odd_label{a=\"x\\\"y\\\\z\\n\",b=\"\"} 1\n"
            "# HELP inf Infinity.\n"
            "# TYPE inf gauge\n"
            "inf +Inf\n"
            "# HELP nan Not a number.\n"
            "# TYPE nan gauge\n"
            "nan NaN\n"
            "# HELP big Large whole number.\n"
            "# TYPE big counter\n"
            "big 1000000000000000\n");
}

// Reads one whole response (Content-Length framed) from a blocking socket;
// "" when the server closed the connection first.
std::string read_response(tcp::socket& s) {
  std::string got;
  char buf[4096];
  for (int reads = 0; reads < 1000; ++reads) {
    std::size_t head_end = got.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::size_t cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) {
        std::size_t len = std::stoul(got.substr(cl + 16));
        if (got.size() >= head_end + 4 + len) return got;
      }
    }
    boost::system::error_code ec;
    std::size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) return got;
    got.append(buf, n);
  }
  return got;
}

tcp::socket connect_to(boost::asio::io_context& io, std::uint16_t port) {
  tcp::socket s(io);
  s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  return s;
}

TEST(AgentHttpServer, AnswersWithTheHandlersReply) {
  // The handler runs on the server's thread.
  std::mutex mu;
  std::vector<HttpRequest> seen;
  auto seen_copy = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  };
  auto server = HttpServer::start("127.0.0.1", 0, [&](const HttpRequest& r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(r);
    }
    if (r.path == "/boom") throw std::runtime_error("handler failed");
    return HttpAnswer{201, "application/json", "{\"path\":\"" + r.path + "\"}"};
  });
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);

  auto r = http_request("127.0.0.1", port, "POST", "/v1/services/a%2Fb?x=1&y", "{}", 5000ms);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "{\"path\":\"/v1/services/a/b\"}");
  auto first = seen_copy();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].method, "POST");
  EXPECT_EQ(first[0].query, "x=1&y");
  EXPECT_EQ(first[0].body, "{}");
  EXPECT_EQ(first[0].peer_ip, "127.0.0.1");

  auto boom = http_request("127.0.0.1", port, "GET", "/boom", "", 5000ms);
  ASSERT_TRUE(boom.ok());
  EXPECT_EQ(boom->status, 500);
  EXPECT_NE(boom->body.find("handler failed"), std::string::npos);

  auto bad = http_request("127.0.0.1", port, "GET", "/x%zz", "", 5000ms);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(seen_copy().size(), 2u);  // the bad escape never reached the handler
}

TEST(AgentHttpServer, RefusesAnOversizedBody) {
  auto server = HttpServer::start("127.0.0.1", 0, [](const HttpRequest&) { return HttpAnswer{}; });
  ASSERT_TRUE(server.ok());
  std::string big(limits::agent_http_body_bytes_max + 1, 'x');
  auto r = http_request("127.0.0.1", (*server)->port(), "POST", "/", big, 5000ms);
  // The server answers 413 and closes; the client may see the answer or,
  // when the close overtakes its writing, a broken connection. Never 200.
  if (r.ok()) {
    EXPECT_EQ(r->status, 413);
  } else {
    EXPECT_EQ(r.status().code(), ErrorCode::ConnectionLoss);
  }
}

TEST(AgentHttpServer, KeepsAConnectionAliveAcrossRequests) {
  std::atomic<int> calls{0};
  auto server = HttpServer::start("127.0.0.1", 0, [&](const HttpRequest& r) {
    ++calls;
    return HttpAnswer{200, "text/plain", r.path};
  });
  ASSERT_TRUE(server.ok());
  boost::asio::io_context io;
  tcp::socket s = connect_to(io, (*server)->port());
  for (std::string path : {"/one", "/two"}) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(req));
    std::string got = read_response(s);
    EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
    EXPECT_EQ(got.substr(got.size() - path.size()), path);
  }
  EXPECT_EQ(calls.load(), 2);
}

TEST(AgentHttpServer, CapsOpenConnectionsAndStopsWithConnectionsOpen) {
  auto server = HttpServer::start("127.0.0.1", 0, [](const HttpRequest&) {
    return HttpAnswer{200, "text/plain", "ok"};
  });
  ASSERT_TRUE(server.ok());
  std::uint16_t port = (*server)->port();
  boost::asio::io_context io;
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<tcp::socket> held;
  // Each connection is answered once, so the server has counted it, and
  // stays open (keep-alive).
  for (std::size_t i = 0; i < limits::agent_http_connections_max; ++i) {
    held.push_back(connect_to(io, port));
    boost::asio::write(held.back(), boost::asio::buffer(req));
    ASSERT_NE(read_response(held.back()).find("200"), std::string::npos) << i;
  }
  tcp::socket extra = connect_to(io, port);
  boost::system::error_code ec;
  boost::asio::write(extra, boost::asio::buffer(req), ec);
  EXPECT_EQ(read_response(extra), "");  // closed at accept

  // A freed place is taken again: the server hears of the close before the
  // next connection, though it may handle the two in either order, so the
  // first attempt may still be refused.
  held.pop_back();
  bool answered = false;
  for (int attempt = 0; attempt < 50 && !answered; ++attempt) {
    tcp::socket again = connect_to(io, port);
    boost::asio::write(again, boost::asio::buffer(req), ec);
    answered = read_response(again).find("200") != std::string::npos;
  }
  EXPECT_TRUE(answered);
  server->reset();  // joins with connections still open
}

TEST(AgentHttpServer, ReportsAnAddressThatCannotBeBound) {
  auto first = HttpServer::start("127.0.0.1", 0, [](const HttpRequest&) { return HttpAnswer{}; });
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::start("127.0.0.1", (*first)->port(),
                                  [](const HttpRequest&) { return HttpAnswer{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("bind"), std::string::npos) << second.status().message();
  EXPECT_FALSE(HttpServer::start("no-such-host.invalid", 0, [](const HttpRequest&) {
                 return HttpAnswer{};
               }).ok());
}

}  // namespace
}  // namespace coord::agent
