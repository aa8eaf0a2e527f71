#include "coord/sidecar/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "coord/base/limits.h"

namespace coord::sidecar {

namespace {

using std::chrono::milliseconds;

// Reads the --config file as one JSON object whose keys are the flags'
// long names. CLI11 then applies the items as it does for its own formats,
// so the command line wins and every flag's checks run on file values too.
class JsonConfig : public CLI::Config {
 public:
  explicit JsonConfig(const CLI::App* app) : app_(app) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override {
    return {};  // never written
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw CLI::ConfigError(std::string("--config: not JSON: ") + e.what());
    }
    if (!doc.is_object()) throw CLI::ConfigError("--config: the file must hold one JSON object");
    std::vector<CLI::ConfigItem> items;
    for (const auto& [key, value] : doc.items()) {
      const CLI::Option* opt = app_->get_option_no_throw("--" + key);
      if (opt == nullptr || key == "config" || key == "help")
        throw CLI::ConfigError("--config: unknown key \"" + key + "\"");
      CLI::ConfigItem item;
      item.name = key;
      if (value.is_array()) {
        for (const auto& v : value)
          item.inputs.push_back(scalar(key, v));
      } else if (value.is_object()) {
        // {"zone": "eu-1"}: the same as --metadata zone=eu-1.
        for (const auto& [k, v] : value.items())
          item.inputs.push_back(k + "=" + scalar(key + "." + k, v));
      } else {
        item.inputs.push_back(scalar(key, value));
      }
      if (item.inputs.empty()) continue;  // [] or {}: nothing given
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  static std::string scalar(const std::string& key, const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
    throw CLI::ConfigError("--config: \"" + key + "\" must be a string, an integer or a list");
  }

  const CLI::App* app_;
};

Status bad(std::string message) {
  return Status(ErrorCode::BadArguments, std::move(message));
}

}  // namespace

Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text) {
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("not [v6-address]:port: \"" + text + "\"");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      return bad("not host:port: \"" + text + "\"");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || port_text.empty() || ec != std::errc() ||
      end != port_text.data() + port_text.size() || port > 65535)
    return bad("not host:port (port 0-65535): \"" + text + "\"");
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

Result<CheckSpec> parse_check(const std::string& text) {
  CheckSpec c;
  c.target = text;
  std::string rest;
  if (text.rfind("http://", 0) == 0) {
    c.kind = CheckKind::Http;
    rest = text.substr(7);
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
      c.path = rest.substr(slash);
      rest.resize(slash);
    }
    if (rest.find(':') == std::string::npos) rest += ":80";
  } else if (text.rfind("tcp://", 0) == 0) {
    c.kind = CheckKind::Tcp;
    rest = text.substr(6);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
  } else {
    return bad(
        "--check must be http://host[:port][/path] or tcp://host:port (or use --check-cmd): \"" +
        text + "\"");
  }
  auto hp = parse_host_port(rest);
  if (!hp.ok()) return bad("--check: " + hp.status().message());
  if (hp->second == 0) return bad("--check: port 0 cannot be checked: \"" + text + "\"");
  c.host = hp->first;
  c.port = hp->second;
  for (char ch : c.path) {
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
      return bad("--check: the URL's path has a space or a control character");
  }
  return c;
}

Result<ParsedArgs> parse_args(const std::vector<std::string>& argv) {
  ParsedArgs out;
  Config& c = out.config;
  std::string address;
  std::string check;
  std::string check_cmd;
  std::string listen = c.listen_host + ":" + std::to_string(c.listen_port);
  std::vector<std::string> metadata;
  std::vector<std::string> templates;
  std::int64_t session_timeout_ms = c.session_timeout.count();
  std::int64_t interval_ms = c.interval.count();
  std::int64_t timeout_ms = c.timeout.count();
  std::int64_t reload_timeout_ms = c.reload_timeout.count();
  std::int64_t debounce_ms = c.debounce.count();
  std::int64_t debounce_max_ms = c.debounce_max.count();
  std::int64_t reload_retry_max_ms = c.reload_retry_max.count();

  CLI::App app{
      "coord-sidecar: registers a local service while its health check passes, serves "
      "discovery of the services it watches over HTTP, renders files from templates"};
  app.name("coord-sidecar");
  app.set_config("--config", "", "Read flags from this JSON file: {\"flag-name\": value, ...}");
  app.config_formatter(std::make_shared<JsonConfig>(&app));
  app.add_option("-s,--servers", c.servers, "The coordination servers: host:port,host:port")
      ->required();
  app.add_option("--base-path", c.base_path, "Where services are registered (Curator's layout)")
      ->capture_default_str();
  app.add_option("--session-timeout-ms", session_timeout_ms, "Session timeout asked for")
      ->check(CLI::Range(std::int64_t{1'000}, std::int64_t{600'000}))
      ->capture_default_str();
  app.add_option("--service", c.service, "The service this instance belongs to");
  app.add_option("--address", address, "HOST:PORT of this instance, as others should reach it");
  app.add_option("--id", c.id, "This instance's id (default: HOST-PORT of --address)");
  app.add_option("--metadata", metadata, "KEY=VALUE published in the instance's payload");
  app.add_option("--check", check,
                 "http://host:port/path (passes on 2xx or 3xx) or tcp://host:port");
  app.add_option("--check-cmd", check_cmd, "A shell command: passes when it exits 0");
  app.add_option("--interval-ms", interval_ms, "Time between two checks")
      ->check(CLI::Range(limits::sidecar_interval_ms_min, limits::sidecar_interval_ms_max))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "A check taking longer fails")
      ->check(
          CLI::Range(limits::sidecar_check_timeout_ms_min, limits::sidecar_check_timeout_ms_max))
      ->capture_default_str();
  app.add_option("--rise", c.rise, "Passes in a row that register the instance")
      ->check(CLI::Range(std::int64_t{1}, limits::sidecar_threshold_max))
      ->capture_default_str();
  app.add_option("--fall", c.fall, "Failures in a row that remove it")
      ->check(CLI::Range(std::int64_t{1}, limits::sidecar_threshold_max))
      ->capture_default_str();
  app.add_option("--watch", c.watch, "Services to serve on /v1/services and to render");
  app.add_option("--listen", listen, "HOST:PORT of the HTTP endpoint (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--template", templates,
                 "SRC:DEST: render the mustache template SRC to DEST when a watched service "
                 "changes");
  app.add_option("--reload-cmd", c.reload_cmd, "Shell command run after a rendered file changed");
  app.add_option("--reload-timeout-ms", reload_timeout_ms, "A reload running longer is killed")
      ->check(CLI::Range(std::int64_t{1}, limits::sidecar_reload_timeout_ms_max))
      ->capture_default_str();
  app.add_option("--debounce-ms", debounce_ms, "Quiet time after a change before rendering")
      ->check(CLI::Range(std::int64_t{0}, limits::sidecar_debounce_ms_max))
      ->capture_default_str();
  app.add_option("--debounce-max-ms", debounce_max_ms,
                 "The longest a burst of changes holds a render back")
      ->check(CLI::Range(std::int64_t{0}, limits::sidecar_debounce_ms_max))
      ->capture_default_str();
  app.add_option("--reload-retry-max-ms", reload_retry_max_ms,
                 "A failed reload is retried after 1 s, then twice as long each time, up to this")
      ->check(CLI::Range(limits::sidecar_reload_retry_ms_min, limits::sidecar_reload_retry_ms_max))
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  std::vector<std::string> args(argv.size() > 1 ? argv.begin() + 1 : argv.end(), argv.end());
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out.help = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    return bad(e.what());
  }

  c.session_timeout = milliseconds(session_timeout_ms);
  c.interval = milliseconds(interval_ms);
  c.timeout = milliseconds(timeout_ms);
  c.reload_timeout = milliseconds(reload_timeout_ms);
  c.debounce = milliseconds(debounce_ms);
  c.debounce_max = milliseconds(debounce_max_ms);
  c.reload_retry_max = milliseconds(reload_retry_max_ms);

  if (c.base_path.empty() || c.base_path.front() != '/' ||
      (c.base_path.size() > 1 && c.base_path.back() == '/'))
    return bad("--base-path must be an absolute path: \"" + c.base_path + "\"");
  auto valid_name = [](const std::string& n) {
    return !n.empty() && n.find('/') == std::string::npos && n != "." && n != "..";
  };
  if (!c.service.empty()) {
    if (!valid_name(c.service)) return bad("--service: not a service name: \"" + c.service + "\"");
    if (address.empty()) return bad("--service needs --address HOST:PORT");
    auto hp = parse_host_port(address);
    if (!hp.ok()) return bad("--address: " + hp.status().message());
    c.address = hp->first;
    c.port = hp->second;
    if (c.id.empty()) c.id = c.address + "-" + std::to_string(c.port);
    if (!valid_name(c.id)) return bad("--id: not an instance id (no '/'): \"" + c.id + "\"");
  } else {
    if (!address.empty() || !check.empty() || !check_cmd.empty() || !c.id.empty() ||
        !metadata.empty())
      return bad("--address, --id, --metadata and checks need --service");
    if (c.watch.empty()) return bad("nothing to do: give --service, --watch or both");
  }
  for (const auto& m : metadata) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0) return bad("--metadata needs KEY=VALUE: \"" + m + "\"");
    c.metadata[m.substr(0, eq)] = m.substr(eq + 1);
  }
  if (!check.empty() && !check_cmd.empty()) return bad("give --check or --check-cmd, not both");
  if (!check.empty()) {
    auto spec = parse_check(check);
    if (!spec.ok()) return spec.status();
    c.check = std::move(*spec);
  } else if (!check_cmd.empty()) {
    c.check.kind = CheckKind::Command;
    c.check.target = check_cmd;
  }
  if (c.watch.size() > limits::sidecar_watches_max)
    return bad("--watch: more than " + std::to_string(limits::sidecar_watches_max) + " services");
  std::sort(c.watch.begin(), c.watch.end());
  c.watch.erase(std::unique(c.watch.begin(), c.watch.end()), c.watch.end());
  for (const auto& w : c.watch) {
    if (!valid_name(w)) return bad("--watch: not a service name: \"" + w + "\"");
  }
  {
    auto hp = parse_host_port(listen);
    if (!hp.ok()) return bad("--listen: " + hp.status().message());
    c.listen_host = hp->first;
    c.listen_port = hp->second;
  }
  if (templates.size() > limits::sidecar_templates_max)
    return bad("--template: more than " + std::to_string(limits::sidecar_templates_max));
  for (const auto& t : templates) {
    const auto colon = t.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == t.size())
      return bad("--template needs SRC:DEST: \"" + t + "\"");
    c.templates.push_back({t.substr(0, colon), t.substr(colon + 1)});
  }
  if (!c.templates.empty() && c.watch.empty())
    return bad("--template renders watched services: give --watch");
  if (!c.reload_cmd.empty() && c.templates.empty())
    return bad("--reload-cmd runs after a template is rendered: give --template");
  if (c.debounce_max < c.debounce) return bad("--debounce-max-ms is below --debounce-ms");
  return out;
}

}  // namespace coord::sidecar
