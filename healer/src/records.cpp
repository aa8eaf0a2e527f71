#include "coord/healer/records.h"

#include <nlohmann/json.hpp>

#include "coord/base/limits.h"

namespace coord::healer {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::size_t at = 0;
  while ((at = s.find(from, at)) != std::string::npos) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
}

}  // namespace

std::string encode_worker(const WorkerRecord& w) {
  nlohmann::json j = {{"id", w.id}, {"pid", w.pid}, {"host", w.host}};
  if (w.index) j["index"] = *w.index;
  return j.dump();
}

WorkerRecord decode_worker(std::string_view id, std::string_view data) {
  WorkerRecord w;
  w.id = std::string(id);
  const auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return w;
  if (auto it = j.find("index"); it != j.end() && it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v >= 0 && v <= 1'000'000) w.index = static_cast<int>(v);
  }
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer())
    w.pid = it->get<std::int64_t>();
  if (auto it = j.find("host"); it != j.end() && it->is_string()) w.host = it->get<std::string>();
  return w;
}

std::string encode_launch(const LaunchRecord& l) {
  return nlohmann::json{{"id", l.id},
                        {"index", l.index},
                        {"launched_ms", l.launched_ms},
                        {"deadline_ms", l.deadline_ms},
                        {"healer", l.healer}}
      .dump();
}

Result<LaunchRecord> decode_launch(std::string_view id, std::string_view data) {
  const auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const char* why) {
    return Status(ErrorCode::BadArguments, "launch record " + std::string(id) + ": " + why);
  };
  if (!j.is_object()) return bad("not a JSON object");
  LaunchRecord l;
  l.id = std::string(id);
  const auto index = j.find("index");
  const auto launched = j.find("launched_ms");
  const auto deadline = j.find("deadline_ms");
  if (index == j.end() || !index->is_number_integer()) return bad("no integer \"index\"");
  if (deadline == j.end() || !deadline->is_number_integer())
    return bad("no integer \"deadline_ms\"");
  const auto i = index->get<std::int64_t>();
  if (i < 0 || i > 1'000'000) return bad("\"index\" out of range");
  l.index = static_cast<int>(i);
  l.deadline_ms = deadline->get<std::int64_t>();
  if (launched != j.end() && launched->is_number_integer())
    l.launched_ms = launched->get<std::int64_t>();
  if (auto it = j.find("healer"); it != j.end() && it->is_string())
    l.healer = it->get<std::string>();
  return l;
}

std::vector<std::string> expand_command(const std::vector<std::string>& command_template, int index,
                                        std::string_view id) {
  std::vector<std::string> out;
  out.reserve(command_template.size());
  const std::string index_text = std::to_string(index);
  for (std::string arg : command_template) {
    replace_all(arg, "{index}", index_text);
    replace_all(arg, "{id}", id);
    out.push_back(std::move(arg));
  }
  return out;
}

Status check_worker_id(std::string_view id) {
  if (id.empty() || id.size() > limits::healer_worker_id_bytes_max)
    return Status(ErrorCode::BadArguments, "a worker id has 1 to 200 bytes");
  if (id == "." || id == "..")
    return Status(ErrorCode::BadArguments, "a worker id cannot be . or ..");
  for (char c : id) {
    if (c == '/' || c < 0x21 || c > 0x7e)
      return Status(ErrorCode::BadArguments,
                    "a worker id is printable ASCII without '/' or spaces");
  }
  return Status();
}

}  // namespace coord::healer
