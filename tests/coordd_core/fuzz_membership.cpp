// Fuzz target for what a server reads as membership: server specs and
// lines (from reconfig requests and from conf change contexts in the log),
// the text of /zookeeper/config, whole reconfig requests and the admin
// API's member JSON. Any input is refused with one of the codes 3.8 would
// answer, or read into something that prints back to itself: a spec to the
// same member, a config text to the same membership, a reconfig to a plan
// whose committed changes give exactly its target.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/core/membership.h"

namespace {

using namespace coord;
using namespace coord::core;

void require(bool ok) {
  if (!ok) std::abort();
}

bool expected_refusal(const Status& s) {
  const ErrorCode c = s.code();
  return c == ErrorCode::BadArguments || c == ErrorCode::MarshallingError ||
         c == ErrorCode::BadVersion || c == ErrorCode::NewConfigNoQuorum;
}

void check_spec(std::string_view in) {
  auto m = parse_server_spec(NodeId(7), in);
  if (!m.ok()) return require(expected_refusal(m.status()));
  auto again = parse_server_spec(NodeId(7), m->spec());
  require(again.ok() && *again == *m);
  auto line = parse_server_line(m->line());
  require(line.ok() && *line == *m);
}

void check_line(std::string_view in) {
  auto m = parse_server_line(in);
  if (!m.ok()) return require(expected_refusal(m.status()));
  auto again = parse_server_line(m->line());
  require(again.ok() && *again == *m);
}

void check_config(std::string_view in) {
  auto m = Membership::parse_config(in);
  if (!m.ok()) return require(m.status().code() == ErrorCode::BadArguments);
  auto again = Membership::parse_config(m->config_text());
  require(again.ok() && *again == *m);
}

void check_json(std::string_view in) {
  auto m = member_from_json(in);
  if (!m.ok()) return require(m.status().code() == ErrorCode::BadArguments);
  auto again = member_from_json(member_json(*m));
  require(again.ok() && *again == *m);
}

// The input split at NUL bytes into joining, leaving and newMembers.
void check_reconfig(std::string_view in) {
  static const Membership current = [] {
    auto m = Membership::parse_config(
        "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
        "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n"
        "server.3=[0:0:0:0:0:0:0:1]:2890:3890:participant;0.0.0.0:2183\n"
        "server.4=zk4:2891:3891:observer;zk4:2184\n"
        "version=100000007");
    require(m.ok());
    return *m;
  }();
  std::string_view field[3];
  for (int i = 0; i < 3 && !in.empty(); ++i) {
    const std::size_t nul = i < 2 ? in.find('\0') : std::string_view::npos;
    field[i] = in.substr(0, nul);
    in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  }
  const protocol::ReconfigRequest r{std::string(field[0]), std::string(field[1]),
                                    std::string(field[2]), -1};
  auto plan = plan_reconfig(current, r, {NodeId(1), NodeId(2), NodeId(3)});
  if (!plan.ok()) return require(expected_refusal(plan.status()));
  std::vector<consensus::ConfChange> all;
  for (const auto& step : plan->steps) {
    require(!step.empty());
    all.insert(all.end(), step.begin(), step.end());
  }
  auto after = membership_after(current, all, 100);
  require(after.ok());
  Membership want = plan->target;
  want.version = plan->steps.empty() ? current.version : 100;
  require(*after == want);
  auto text = Membership::parse_config(after->config_text());
  require(text.ok() && *text == *after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_spec(in);
  check_line(in);
  check_config(in);
  check_json(in);
  check_reconfig(in);
  return 0;
}
