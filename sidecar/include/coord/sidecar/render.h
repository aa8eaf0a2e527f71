// Files rendered from mustache templates (kainjow::mustache, Debian's
// libkainjow-mustache-dev) with the instances of the watched services, and
// written atomically.
//
// What a template sees (sidecar/README.md has examples):
//
//   stale                 true when some service's list may be behind
//   services              one entry per watched service, by name:
//     name, stale, count (number of instances), has_instances, instances
//   service.NAME          the same entry, looked up by the service's name
//   instances[]           ordered by id:
//     id, name, address, port, ssl_port (when set), index (0, 1, ...),
//     first, last (booleans, for separators), payload.KEY (the metadata),
//     payload_list[] (key, value pairs in key order)
//
// {{name}} writes the value without HTML escaping (these are config files,
// not pages) but with control characters dropped, so a value read from the
// registry cannot start a new line of the file; {{{name}}} writes it raw.
// Thread safety: Template is immutable after parse; functions are pure
// except the file writes.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"
#include "coord/registry/service_instance.h"

namespace coord::sidecar {

// One watched service as the sidecar knows it.
struct ServiceView {
  std::string name;
  bool stale = true;                       // never loaded, or the servers are unreachable
  std::vector<ServiceInstance> instances;  // ordered by id

  friend bool operator==(const ServiceView&, const ServiceView&) = default;
};

class Template {
 public:
  // BadArguments naming `origin` (the file) and the mustache error.
  static Result<Template> parse(std::string text, std::string origin);
  // Reads and parses a file (at most limits::sidecar_template_bytes_max).
  static Result<Template> load(const std::string& path);

  // The text for these services (ordered by name by the caller or not:
  // they are sorted here). BadArguments when rendering fails.
  Result<std::string> render(const std::vector<ServiceView>& services) const;

  const std::string& origin() const { return origin_; }

 private:
  Template(std::string text, std::string origin)
      : text_(std::move(text)), origin_(std::move(origin)) {}
  std::string text_;
  std::string origin_;
};

// Replaces `path` with `content` so that a reader sees the old file or the
// new one, never a part: a temporary file in the same directory, written
// and fsynced, renamed over `path`, then the directory fsynced so the
// rename survives a crash. The file gets mode 0644.
Status write_file_atomically(const std::string& path, std::string_view content);

// write_file_atomically unless `path` already holds exactly `content`.
// True when it wrote.
Result<bool> write_if_changed(const std::string& path, std::string_view content);

}  // namespace coord::sidecar
