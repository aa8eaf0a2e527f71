// The cluster commands: coordd's HTTP admin API (/v1/cluster/...), rendered
// as tables or passed through as JSON.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "coord/agent/http_client.h"
#include "coord/cli/format.h"
#include "coord/cli/shell.h"

namespace coord::cli {

using agent::http_request;
using agent::split_host_port;
using nlohmann::json;

namespace {

constexpr std::uint16_t kDefaultHttpPort = 8080;

std::optional<ErrorCode> code_by_name(std::string_view name) {
  for (std::int32_t v = -130; v <= 0; ++v) {
    auto c = error_from_int(v);
    if (c && error_name(*c) == name) return c;
  }
  return std::nullopt;
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string member_table(const json& members) {
  std::string t = pad("ID", 6) + pad("ROLE", 11) + pad("VOTER", 7) + pad("CLIENT", 24) +
                  pad("PEER", 24) + pad("MATCH", 12) + "LAG\n";
  for (const json& m : members) {
    auto num = [&](const char* k) {
      return m.contains(k) && m[k].is_number() ? std::to_string(m[k].get<std::int64_t>())
                                               : std::string("-");
    };
    auto str = [&](const char* k) {
      return m.contains(k) && m[k].is_string() && !m[k].get<std::string>().empty()
                 ? m[k].get<std::string>()
                 : std::string("-");
    };
    bool voter = m.contains("voter") && m["voter"].is_boolean() && m["voter"].get<bool>();
    t += pad(num("id"), 6) + pad(str("role"), 11) + pad(voter ? "yes" : "no", 7) +
         pad(str("client_address"), 24) + pad(str("peer_address"), 24) +
         pad(num("match_index"), 12) + num("lag") + "\n";
  }
  return t;
}

}  // namespace

std::string Shell::http_endpoint() const {
  if (!options_.http.empty()) return options_.http;
  std::string first = options_.servers.substr(0, options_.servers.find(','));
  first = first.substr(0, first.find('/'));
  std::size_t colon = first.rfind(':');
  std::string host = colon == std::string::npos ? first : first.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  return host + ":" + std::to_string(kDefaultHttpPort);
}

namespace {

struct ApiCall {
  int exit = 0;
  json body;
};

}  // namespace

// Sends one admin request; prints the failure itself and returns its exit
// code, or 0 with the decoded body.
static ApiCall api_call(const std::string& endpoint, std::string_view method,
                        std::string_view target, const json& body,
                        std::chrono::milliseconds timeout, bool json_mode, Console& console,
                        const std::string& user = {}) {
  ApiCall out;
  auto report = [&](std::string error, std::optional<int> code, std::string message, int exit) {
    if (json_mode) {
      json j{{"error", error}, {"message", message}, {"exit_code", exit}};
      if (code) j["code"] = *code;
      console.out(j.dump() + "\n");
    } else {
      console.err(message + "\n");
    }
    out.exit = exit;
    return out;
  };
  auto hp = split_host_port(endpoint);
  if (!hp)
    return report("Usage", std::nullopt, "--http: " + hp.status().message(), exit_code::usage);
  // Credentials go with every call that has them: the server reads them
  // only where they matter (the changes).
  const std::string authorization = user.empty() ? "" : "Basic " + base64_encode(user);
  auto r = http_request(hp->first, hp->second, method, target, body.is_null() ? "" : body.dump(),
                        timeout, authorization);
  if (!r) {
    return report("ConnectionLoss", to_int(ErrorCode::ConnectionLoss),
                  "admin API at " + r.status().message(), exit_code::connection);
  }
  json parsed = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (r->status < 200 || r->status > 299) {
    if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
      std::string name = parsed["error"].get<std::string>();
      std::string message = parsed.value("message", std::string());
      if (r->status == 401) message += " (coordctl: --user user:password or $COORDCTL_USER)";
      auto code = code_by_name(name);
      int exit = code ? exit_code_for(*code) : exit_code::other;
      if (exit == exit_code::ok) exit = exit_code::other;
      std::optional<int> num;
      if (parsed.contains("code") && parsed["code"].is_number_integer()) {
        num = parsed["code"].get<int>();
      }
      return report(name, num, name + ": " + (message.empty() ? name : message), exit);
    }
    return report("HttpError", std::nullopt,
                  "admin API at " + endpoint + " answered " + std::to_string(r->status) + " to " +
                      std::string(method) + " " + std::string(target) +
                      (r->status == 404 ? " (this coordd has no cluster admin API)" : ""),
                  exit_code::other);
  }
  if (parsed.is_discarded()) {
    return report("BadResponse", std::nullopt,
                  "admin API at " + endpoint + " answered " + std::string(method) + " " +
                      std::string(target) + " with a body that is not JSON",
                  exit_code::other);
  }
  out.body = std::move(parsed);
  return out;
}

int Shell::cmd_members(const Parsed&) {
  auto r = api_call(http_endpoint(), "GET", "/v1/cluster/members", nullptr,
                    options_.request_timeout, options_.json, console_);
  if (r.exit) return r.exit;
  if (options_.json) {
    print_json(r.body.dump());
    return exit_code::ok;
  }
  if (!r.body.contains("members") || !r.body["members"].is_array()) {
    console_.err("admin API answered without a members list\n");
    return exit_code::other;
  }
  print(member_table(r.body["members"]));
  return exit_code::ok;
}

int Shell::cmd_status(const Parsed&) {
  auto r = api_call(http_endpoint(), "GET", "/v1/cluster/status", nullptr, options_.request_timeout,
                    options_.json, console_);
  if (r.exit) return r.exit;
  if (options_.json) {
    print_json(r.body.dump());
    return exit_code::ok;
  }
  const json& b = r.body;
  auto num = [&](const char* k) {
    return b.contains(k) && b[k].is_number() ? std::to_string(b[k].get<std::int64_t>())
                                             : std::string("-");
  };
  std::string leader = num("leader_id");
  if (leader == "0") leader = "none";
  std::string text = "node " + num("node_id") + ": leader " + leader + ", term " + num("term") +
                     ", commit index " + num("commit_index") + ", applied index " +
                     num("applied_index") + "\n";
  if (b.contains("members") && b["members"].is_array()) text += member_table(b["members"]);
  print(text);
  return exit_code::ok;
}

int Shell::cmd_add_server(const Parsed& p) {
  auto id = std::strtoll(p.args[0].c_str(), nullptr, 10);
  if (id <= 0 || std::to_string(id) != p.args[0]) {
    return usage_error(*p.info, "id must be a positive number");
  }
  if (!split_host_port(p.args[1])) return usage_error(*p.info, "expected host:peerport");
  // ZooKeeper's rule for a joiner: it names where its clients connect. A
  // port alone means every address, as in a server spec.
  const std::string& client = p.args[2];
  const bool port_alone = client.find(':') == std::string::npos &&
                          std::strtoll(client.c_str(), nullptr, 10) > 0 &&
                          std::to_string(std::strtoll(client.c_str(), nullptr, 10)) == client;
  if (!port_alone && !split_host_port(client)) {
    return usage_error(*p.info, "expected [host:]clientport");
  }
  const std::string role = p.has('l') ? "observer" : "participant";
  json body{{"id", id},
            {"peer_address", p.args[1]},
            {"client_address", port_alone ? "0.0.0.0:" + client : client},
            {"role", role}};
  auto r = api_call(http_endpoint(), "POST", "/v1/cluster/members", body, options_.request_timeout,
                    options_.json, console_, options_.http_user);
  if (r.exit) return r.exit;
  if (options_.json) {
    print_json(r.body.dump());
  } else {
    print("Added server " + p.args[0] + " (" + p.args[1] + ") as a" +
          (p.has('l') ? "n observer" : " participant") + "\n");
  }
  return exit_code::ok;
}

int Shell::cmd_remove_server(const Parsed& p) {
  auto id = std::strtoll(p.args[0].c_str(), nullptr, 10);
  if (id <= 0 || std::to_string(id) != p.args[0]) {
    return usage_error(*p.info, "id must be a positive number");
  }
  auto r = api_call(http_endpoint(), "DELETE", "/v1/cluster/members/" + p.args[0], nullptr,
                    options_.request_timeout, options_.json, console_, options_.http_user);
  if (r.exit) return r.exit;
  if (options_.json) {
    print_json(r.body.dump());
  } else {
    print("Removed server " + p.args[0] + "\n");
  }
  return exit_code::ok;
}

int Shell::cmd_transfer_leader(const Parsed& p) {
  auto id = std::strtoll(p.args[0].c_str(), nullptr, 10);
  if (id <= 0 || std::to_string(id) != p.args[0]) {
    return usage_error(*p.info, "id must be a positive number");
  }
  auto r = api_call(http_endpoint(), "POST", "/v1/cluster/transfer-leader", json{{"id", id}},
                    options_.request_timeout, options_.json, console_, options_.http_user);
  if (r.exit) return r.exit;
  if (options_.json) {
    print_json(r.body.dump());
  } else {
    print("Leadership transferred to server " + p.args[0] + "\n");
  }
  return exit_code::ok;
}

}  // namespace coord::cli
