#include "coord/sidecar/render.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <kainjow/mustache.hpp>
#include <sstream>

#include "coord/base/limits.h"

namespace coord::sidecar {

namespace mst = kainjow::mustache;

namespace {

// Config files are not HTML: nothing is escaped but control characters,
// which are dropped so that a value cannot break out of its line.
std::string drop_controls(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) out.push_back(c);
  }
  return out;
}

mst::data instance_data(const ServiceInstance& i, std::size_t index, std::size_t count) {
  mst::data d;
  d.set("id", i.id);
  d.set("name", i.name);
  d.set("address", i.address);
  if (i.port) d.set("port", std::to_string(*i.port));
  if (i.ssl_port) d.set("ssl_port", std::to_string(*i.ssl_port));
  d.set("index", std::to_string(index));
  d.set("first", index == 0);
  d.set("last", index + 1 == count);
  mst::data payload;
  mst::data payload_list{mst::data::type::list};
  for (const auto& [k, v] : i.metadata) {
    payload.set(k, v);
    mst::data kv;
    kv.set("key", k);
    kv.set("value", v);
    payload_list.push_back(kv);
  }
  d.set("payload", payload);
  d.set("payload_list", payload_list);
  return d;
}

mst::data service_data(const ServiceView& s) {
  mst::data d;
  d.set("name", s.name);
  d.set("stale", s.stale);
  d.set("count", std::to_string(s.instances.size()));
  d.set("has_instances", !s.instances.empty());
  mst::data list{mst::data::type::list};
  for (std::size_t k = 0; k < s.instances.size(); ++k)
    list.push_back(instance_data(s.instances[k], k, s.instances.size()));
  d.set("instances", list);
  return d;
}

Status sys_error(const std::string& what, const std::string& path) {
  return Status(ErrorCode::SystemError, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<Template> Template::parse(std::string text, std::string origin) {
  mst::mustache m(text);
  if (!m.is_valid())
    return Status(ErrorCode::BadArguments, "template " + origin + ": " + m.error_message());
  return Template(std::move(text), std::move(origin));
}

Result<Template> Template::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::BadArguments, "cannot read template " + path);
  std::string text;
  text.resize(limits::sidecar_template_bytes_max + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > limits::sidecar_template_bytes_max)
    return Status(ErrorCode::BadArguments, "template " + path + " is larger than " +
                                               std::to_string(limits::sidecar_template_bytes_max) +
                                               " bytes");
  return parse(std::move(text), path);
}

Result<std::string> Template::render(const std::vector<ServiceView>& services) const {
  std::vector<const ServiceView*> sorted;
  for (const auto& s : services)
    sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](const ServiceView* a, const ServiceView* b) { return a->name < b->name; });
  mst::data root;
  mst::data list{mst::data::type::list};
  mst::data by_name;
  bool stale = false;
  for (const ServiceView* s : sorted) {
    mst::data d = service_data(*s);
    list.push_back(d);
    by_name.set(s->name, d);
    stale = stale || s->stale;
  }
  root.set("services", list);
  root.set("service", by_name);
  root.set("stale", stale);

  mst::mustache m(text_);
  m.set_custom_escape(drop_controls);
  std::string out = m.render(root);
  if (!m.is_valid())
    return Status(ErrorCode::BadArguments, "template " + origin_ + ": " + m.error_message());
  if (out.size() > limits::sidecar_rendered_bytes_max)
    return Status(ErrorCode::BadArguments, "template " + origin_ + " rendered more than " +
                                               std::to_string(limits::sidecar_rendered_bytes_max) +
                                               " bytes");
  return out;
}

Status write_file_atomically(const std::string& path, std::string_view content) {
  const auto slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = (dir == "/" ? "/" : dir + "/") + "." + base + ".tmp.XXXXXX";
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return sys_error("cannot create a temporary file for", path);
  auto fail = [&](const char* what) {
    Status s = sys_error(what, tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) return fail("cannot chmod");
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    Status s = sys_error("cannot close", tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = sys_error("cannot rename over", path);
    ::unlink(tmp.c_str());
    return s;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return sys_error("cannot open the directory of", path);
  const int r = ::fsync(dfd);
  ::close(dfd);
  if (r != 0) return sys_error("cannot fsync the directory of", path);
  return Status();
}

Result<bool> write_if_changed(const std::string& path, std::string_view content) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream old;
      old << in.rdbuf();
      if (old.str() == content) return false;
    }
  }
  if (Status s = write_file_atomically(path, content); !s.ok()) return s;
  return true;
}

}  // namespace coord::sidecar
