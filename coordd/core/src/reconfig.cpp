#include "reconfig.h"

#include <limits>

namespace coord::core {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads little-endian fields from a body; any shortfall sets `bad`.
struct Reader {
  std::string_view in;
  bool bad = false;

  std::uint64_t u(int bytes) {
    if (in.size() < static_cast<std::size_t>(bytes)) {
      bad = true;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(static_cast<std::size_t>(bytes));
    return v;
  }
  std::string str() {
    const auto n = static_cast<std::size_t>(u(4));
    if (bad || in.size() < n) {
      bad = true;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
  Status done(std::string_view what) const {
    if (bad || !in.empty()) {
      return Status(ErrorCode::MarshallingError, "malformed reconfig " + std::string(what));
    }
    return Status();
  }
};

void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

}  // namespace

std::string ReconfigAsk::encode() const {
  std::string out;
  put_u64(out, id);
  put_u64(out, static_cast<std::uint64_t>(request.cur_config_id));
  put_str(out, request.joining_servers);
  put_str(out, request.leaving_servers);
  put_str(out, request.new_members);
  return out;
}

Result<ReconfigAsk> ReconfigAsk::decode(std::string_view bytes) {
  Reader r{bytes};
  ReconfigAsk a;
  a.id = r.u(8);
  a.request.cur_config_id = static_cast<std::int64_t>(r.u(8));
  a.request.joining_servers = r.str();
  a.request.leaving_servers = r.str();
  a.request.new_members = r.str();
  COORD_RETURN_IF_ERROR(r.done("ask"));
  return a;
}

std::string ReconfigAnswer::encode() const {
  std::string out;
  put_u64(out, id);
  put_u32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(err)));
  put_u64(out, index.value());
  return out;
}

Result<ReconfigAnswer> ReconfigAnswer::decode(std::string_view bytes) {
  Reader r{bytes};
  ReconfigAnswer a;
  a.id = r.u(8);
  a.err = static_cast<ErrorCode>(static_cast<std::int32_t>(static_cast<std::uint32_t>(r.u(4))));
  a.index = LogIndex(r.u(8));
  COORD_RETURN_IF_ERROR(r.done("answer"));
  return a;
}

}  // namespace coord::core
