#include "coord/testing/zk_ensemble.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "coord/testing/zk_server.h"
#include "launch_util.h"

namespace coord::testing {

namespace {

constexpr const char* kClassPath =
    "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:"
    "/usr/share/java/slf4j-api.jar";

}  // namespace

std::unique_ptr<ZkEnsemble> ZkEnsemble::start(const ZkEnsembleOptions& options,
                                              std::string* error) {
  std::unique_ptr<ZkEnsemble> e(new ZkEnsemble);
  e->options_ = options;
  e->dir_ = launch::make_temp_dir("coord-zk-ensemble-");
  if (e->dir_.empty()) {
    *error = "cannot create a temporary directory";
    return nullptr;
  }
  // Nine distinct ports, each free when chosen. The JVMs bind them later,
  // so another process may take one first: the start then times out and
  // the caller sees the member logs in the error.
  std::set<std::uint16_t> taken;
  for (auto& m : e->members_) {
    for (std::uint16_t* p : {&m.client_port, &m.quorum_port, &m.election_port}) {
      do {
        *p = launch::free_port();
      } while (*p != 0 && taken.count(*p) > 0);
      if (*p == 0) {
        *error = "no free port";
        return nullptr;
      }
      taken.insert(*p);
    }
  }
  if (!e->write_config(error)) return nullptr;
  for (int i = 0; i < kMembers; ++i) {
    if (!e->spawn(i, error)) return nullptr;
  }
  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (int i = 0; i < kMembers && all; ++i) {
      if (launch::exited(e->members_[i].pid)) {
        e->members_[i].pid = -1;
        *error = "ensemble member " + std::to_string(i + 1) + " exited; see " + e->dir_;
        return nullptr;
      }
      all = e->serving(i);
    }
    if (all && e->leader() >= 0) return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *error = "the ensemble elected no leader within the start timeout";
  return nullptr;
}

bool ZkEnsemble::write_config(std::string* error) {
  for (int i = 0; i < kMembers; ++i) {
    const std::string mdir = dir_ + "/" + std::to_string(i + 1);
    std::error_code ec;
    std::filesystem::create_directories(mdir + "/data", ec);
    if (ec) {
      *error = "cannot create " + mdir;
      return false;
    }
    std::ofstream(mdir + "/data/myid") << (i + 1) << "\n";
    std::ofstream cfg(mdir + "/zoo.cfg");
    cfg << "tickTime=" << options_.tick_ms << "\n"
        << "initLimit=20\n"
        << "syncLimit=10\n"
        << "dataDir=" << mdir << "/data\n"
        << "clientPort=" << members_[i].client_port << "\n"
        << "clientPortAddress=127.0.0.1\n"
        << "4lw.commands.whitelist=*\n"
        << "admin.enableServer=false\n"
        << "maxClientCnxns=0\n";
    for (int j = 0; j < kMembers; ++j) {
      cfg << "server." << (j + 1) << "=127.0.0.1:" << members_[j].quorum_port << ":"
          << members_[j].election_port << "\n";
    }
    if (!cfg) {
      *error = "cannot write " + mdir + "/zoo.cfg";
      return false;
    }
  }
  return true;
}

bool ZkEnsemble::spawn(int member, std::string* error) {
  const std::string mdir = dir_ + "/" + std::to_string(member + 1);
  const std::vector<std::string> args = {ZkServer::java_path(),
                                         "-cp",
                                         kClassPath,
                                         "-Dzookeeper.extendedTypesEnabled=true",
                                         "-Xmx192m",
                                         "-XX:+UseSerialGC",
                                         "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                                         mdir + "/zoo.cfg"};
  members_[member].pid = launch::spawn(args, mdir + "/server.log");
  if (members_[member].pid < 0) {
    *error = "fork failed";
    return false;
  }
  return true;
}

bool ZkEnsemble::serving(int member) const {
  if (members_[member].pid <= 0) return false;
  if (four_letter(member, "ruok") != "imok") return false;
  const std::string srvr = four_letter(member, "srvr");
  return srvr.find("Mode: leader") != std::string::npos ||
         srvr.find("Mode: follower") != std::string::npos;
}

std::string ZkEnsemble::connect_string() const {
  std::string out;
  for (int i = 0; i < kMembers; ++i) {
    if (i > 0) out += ",";
    out += address(i);
  }
  return out;
}

std::string ZkEnsemble::address(int member) const {
  return "127.0.0.1:" + std::to_string(members_[member].client_port);
}

int ZkEnsemble::member_of(const std::string& addr) const {
  for (int i = 0; i < kMembers; ++i) {
    if (address(i) == addr) return i;
  }
  return -1;
}

int ZkEnsemble::leader() const {
  for (int i = 0; i < kMembers; ++i) {
    if (members_[i].pid > 0 && four_letter(i, "srvr").find("Mode: leader") != std::string::npos) {
      return i;
    }
  }
  return -1;
}

void ZkEnsemble::kill(int member) {
  launch::kill_and_wait(members_[member].pid);
  members_[member].pid = -1;
}

void ZkEnsemble::kill_all() {
  for (const auto& m : members_)
    if (m.pid > 0) ::kill(m.pid, SIGKILL);
  for (int i = 0; i < kMembers; ++i)
    kill(i);
}

bool ZkEnsemble::restart(int member, std::string* error) {
  kill(member);
  if (!spawn(member, error)) return false;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (launch::exited(members_[member].pid)) {
      members_[member].pid = -1;
      *error = "ensemble member " + std::to_string(member + 1) + " exited during restart";
      return false;
    }
    if (serving(member)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *error = "ensemble member " + std::to_string(member + 1) + " did not rejoin in time";
  return false;
}

std::string ZkEnsemble::four_letter(int member, const std::string& word) const {
  return launch::four_letter(members_[member].client_port, word);
}

ZkEnsemble::~ZkEnsemble() {
  for (int i = 0; i < kMembers; ++i)
    kill(i);
  launch::remove_tree(dir_);
}

}  // namespace coord::testing
