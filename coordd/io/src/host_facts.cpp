#include "coord/io/host_facts.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace coord::io {
namespace {

constexpr std::uint64_t bytes_per_mb = std::uint64_t{1} << 20;

// Java's os.arch names the common machines differently from uname.
std::string java_arch(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "i686" || machine == "i386") return "x86";
  return machine;
}

// This process's resident set, from /proc (Linux); nullopt elsewhere.
std::optional<std::uint64_t> resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return std::nullopt;
  unsigned long long pages_total = 0;
  unsigned long long pages_resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return std::nullopt;
  return static_cast<std::uint64_t>(pages_resident) *
         static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> host_environment() {
  std::vector<std::pair<std::string, std::string>> out;
  std::array<char, HOST_NAME_MAX + 1> host{};
  if (::gethostname(host.data(), host.size() - 1) == 0) out.emplace_back("host.name", host.data());
  struct utsname u {};
  if (::uname(&u) == 0) {
    out.emplace_back("os.name", u.sysname);
    out.emplace_back("os.arch", java_arch(u.machine));
    out.emplace_back("os.version", u.release);
  }
  // getpwuid_r with a fixed buffer: enough for any sane passwd entry.
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::array<char, 4096> buf{};
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    out.emplace_back("user.name", pw.pw_name);
    out.emplace_back("user.home", pw.pw_dir);
  }
  std::array<char, PATH_MAX> cwd{};
  if (::getcwd(cwd.data(), cwd.size()) != nullptr) out.emplace_back("user.dir", cwd.data());
  struct sysinfo si {};
  if (::sysinfo(&si) == 0) {
    const std::uint64_t unit = si.mem_unit == 0 ? 1 : si.mem_unit;
    out.emplace_back(
        "os.memory.free",
        std::to_string(static_cast<std::uint64_t>(si.freeram) * unit / bytes_per_mb) + "MB");
    out.emplace_back(
        "os.memory.max",
        std::to_string(static_cast<std::uint64_t>(si.totalram) * unit / bytes_per_mb) + "MB");
  }
  if (auto rss = resident_bytes()) {
    out.emplace_back("os.memory.total", std::to_string(*rss / bytes_per_mb) + "MB");
  }
  return out;
}

std::optional<std::uint64_t> open_fd_count() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return std::nullopt;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  // The directory handle itself was one of them.
  return n > 0 ? n - 1 : 0;
}

std::optional<std::uint64_t> max_fd_count() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<std::uint64_t>(rl.rlim_cur);
}

}  // namespace coord::io
