// coord::ServiceInstance: one registered instance of a service, stored as
// the JSON of Apache Curator x-discovery's ServiceInstance (Curator 5.4,
// JsonInstanceSerializer), so Java services using Curator's
// ServiceDiscovery and C++ services using coord find each other:
//
//   {"name":"web","id":"web-1","address":"10.0.0.7","port":8080,"sslPort":null,
//    "payload":{"@class":"java.util.LinkedHashMap","zone":"eu-1"},
//    "registrationTimeUTC":1733400000000,"serviceType":"DYNAMIC","uriSpec":null}
//
// `metadata` is the payload as a map of strings; it is written with the
// "@class" member Curator's serializer needs to read a Map payload back, and
// an empty map is written as a null payload. A payload that is not an
// object of strings, and a uriSpec, are kept as raw JSON so an instance
// read from a Curator peer is written back unchanged.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "coord/base/status.h"

namespace coord {

struct ServiceInstance {
  std::string name;
  std::string id;
  std::string address;
  std::optional<std::int32_t> port;
  std::optional<std::int32_t> ssl_port;
  std::map<std::string, std::string> metadata;
  // The Java class Curator records for the payload map.
  std::string payload_class = "java.util.LinkedHashMap";
  std::int64_t registration_time_utc_ms = 0;  // 0: set at registration
  std::string service_type = "DYNAMIC";       // DYNAMIC, STATIC, PERMANENT, DYNAMIC_SEQUENTIAL
  std::string uri_spec_json = "null";
  std::string payload_json;  // when set, written instead of `metadata`

  friend bool operator==(const ServiceInstance&, const ServiceInstance&) = default;
};

// Curator's JSON for `i`.
std::string to_curator_json(const ServiceInstance& i);
// Reads Curator's JSON; BadArguments (naming the field) when it is not.
Result<ServiceInstance> parse_curator_json(std::string_view json);

}  // namespace coord
