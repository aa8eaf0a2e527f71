#include "coord/registry/service_instance.h"

#include <nlohmann/json.hpp>

namespace coord {

namespace {

using nlohmann::ordered_json;

// The payload class Curator's serializer records for a Map payload.
constexpr const char* kMapClass = "java.util.LinkedHashMap";

}  // namespace

std::string to_curator_json(const ServiceInstance& i) {
  ordered_json j;  // Curator's member order, for byte-level comparisons
  j["name"] = i.name;
  j["id"] = i.id;
  j["address"] = i.address;
  j["port"] = i.port ? ordered_json(*i.port) : ordered_json(nullptr);
  j["sslPort"] = i.ssl_port ? ordered_json(*i.ssl_port) : ordered_json(nullptr);
  if (!i.payload_json.empty()) {
    j["payload"] = ordered_json::parse(i.payload_json, nullptr, false);
    if (j["payload"].is_discarded()) j["payload"] = nullptr;
  } else if (i.metadata.empty()) {
    j["payload"] = nullptr;
  } else {
    ordered_json p;
    p["@class"] = i.payload_class.empty() ? std::string(kMapClass) : i.payload_class;
    for (const auto& [k, v] : i.metadata)
      p[k] = v;
    j["payload"] = std::move(p);
  }
  j["registrationTimeUTC"] = i.registration_time_utc_ms;
  j["serviceType"] = i.service_type;
  auto uri = ordered_json::parse(i.uri_spec_json, nullptr, false);
  j["uriSpec"] = uri.is_discarded() ? ordered_json(nullptr) : uri;
  return j.dump();
}

Result<ServiceInstance> parse_curator_json(std::string_view text) {
  auto j = ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status(ErrorCode::BadArguments, "service instance: not a JSON object");
  ServiceInstance i;
  auto str = [&](const char* key, std::string* out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      return required ? Status(ErrorCode::BadArguments, std::string("service instance: no ") + key)
                      : Status();
    }
    if (!it->is_string())
      return Status(ErrorCode::BadArguments,
                    std::string("service instance: ") + key + " not a string");
    *out = it->get<std::string>();
    return Status();
  };
  auto port = [&](const char* key, std::optional<std::int32_t>* out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status();
    if (!it->is_number_integer() || *it < 0 || *it > 65535)
      return Status(ErrorCode::BadArguments, std::string("service instance: bad ") + key);
    *out = it->get<std::int32_t>();
    return Status();
  };
  for (Status s :
       {str("name", &i.name, true), str("id", &i.id, true), str("address", &i.address, false),
        port("port", &i.port), port("sslPort", &i.ssl_port)}) {
    if (!s.ok()) return s;
  }
  if (Status s = str("serviceType", &i.service_type, false); !s.ok()) return s;
  if (auto it = j.find("registrationTimeUTC"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer())
      return Status(ErrorCode::BadArguments, "service instance: bad registrationTimeUTC");
    i.registration_time_utc_ms = it->get<std::int64_t>();
  }
  if (auto it = j.find("uriSpec"); it != j.end()) i.uri_spec_json = it->dump();
  if (auto it = j.find("payload"); it != j.end() && !it->is_null()) {
    bool strings = it->is_object();
    if (strings) {
      for (auto& [k, v] : it->items())
        if (k != "@class" && !v.is_string()) strings = false;
    }
    if (strings) {
      for (auto& [k, v] : it->items()) {
        if (k == "@class") {
          i.payload_class = v.get<std::string>();
        } else {
          i.metadata[k] = v.get<std::string>();
        }
      }
    } else {
      i.payload_json = it->dump();
    }
  }
  return i;
}

}  // namespace coord
