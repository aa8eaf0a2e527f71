// Golden-file scripts for the data tree (tests/znode/testdata/*.txt).
//
// Each script starts from a fresh tree. Writes get zxid = last + 1 and the
// current time, which starts at 1000 and advances by 1 after each write
// (`advance ms=N` moves it further). Callers are sessions: `s=N` picks one
// (default 1); every session holds ip:127.0.0.1 unless `ip` changes it, and
// `auth` adds identities. Commands:
//
//   create PATH [data=X|hex=..|size=N|null]
//   [mode=persistent|ephemeral|pseq|eseq|container|ttl|seqttl]
//          [ttl=MS] [acl=SPEC] [s=N]          SPEC: perms:scheme:id[,...], perms from rwcda or all
//   set PATH [data=..] [version=V] [s=N]      delete PATH [version=V] [s=N]
//   check PATH [version=V] [s=N]              setacl PATH acl=SPEC [version=V] [s=N]
//   multi [s=N]  (input: one create/delete/set/check per line, same arguments)
//   close s=N                                  reap PATH
//   get|exists|ls|getacl|count PATH [s=N] [watch=W]
//   multiread [s=N]  (input: get PATH / ls PATH lines)
//   ephemerals s=N [prefix=P]   sessions   reap-candidates   info
//   addwatch PATH w=W kind=data|exist|child|persistent|recursive
//   checkwatch|removewatch PATH w=W type=children|data|any|persistent|recursive
//   setwatches w=W rel=ZXID (input: data|exist|child|persistent|recursive PATH lines)
//   dropwatcher w=W   watches
//   auth s=N SCHEME ID    ip s=N ADDR    advance ms=N
//   snapshot (round trip, compares digest and listing)   digest-save NAME   digest-check NAME
//   config enforce_quota=0|1  (continues in a tree with that config, loaded
//                              from a snapshot of this one)
// A write's quota notices are printed after its result as `quota: ...`.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "coord/testing/golden.h"
#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string perms_str(std::int32_t p) {
  if (p == perm::all) return "all";
  std::string s;
  if (p & perm::read) s += 'r';
  if (p & perm::write) s += 'w';
  if (p & perm::create) s += 'c';
  if (p & perm::remove) s += 'd';
  if (p & perm::admin) s += 'a';
  if (p & ~perm::all) s += "+" + std::to_string(p & ~perm::all);
  return s.empty() ? "none" : s;
}

std::int32_t parse_perms(std::string_view s) {
  if (s == "all") return perm::all;
  if (s == "none") return 0;
  auto p = perm::from_letters(s);
  if (!p) ADD_FAILURE() << "bad perms " << s;
  return p.value_or(0);
}

AclList parse_acl(std::string_view spec) {
  AclList acl;
  if (spec.empty()) return acl;  // acl= : an empty list
  std::size_t start = 0;
  while (start <= spec.size()) {
    auto comma = spec.find(',', start);
    std::string_view e =
        spec.substr(start, comma == std::string_view::npos ? spec.npos : comma - start);
    auto c1 = e.find(':');
    auto c2 = e.find(':', c1 + 1);
    Acl a;
    a.perms = parse_perms(e.substr(0, c1));
    if (c2 == std::string_view::npos) {
      a.id.scheme = std::string(e.substr(c1 + 1));
    } else {
      a.id.scheme = std::string(e.substr(c1 + 1, c2 - c1 - 1));
      a.id.id = std::string(e.substr(c2 + 1));
    }
    acl.push_back(std::move(a));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return acl;
}

std::string acl_str(const AclList& acl) {
  std::string s;
  for (const auto& a : acl) {
    if (!s.empty()) s += ",";
    s += perms_str(a.perms) + ":" + a.id.scheme + ":" + a.id.id;
  }
  return s.empty() ? "(empty)" : s;
}

std::string stat_str(const Stat& s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

CreateMode parse_mode(std::string_view m) {
  if (m == "persistent") return CreateMode::Persistent;
  if (m == "ephemeral") return CreateMode::Ephemeral;
  if (m == "pseq") return CreateMode::PersistentSequential;
  if (m == "eseq") return CreateMode::EphemeralSequential;
  if (m == "container") return CreateMode::Container;
  if (m == "ttl") return CreateMode::PersistentWithTtl;
  if (m == "seqttl") return CreateMode::PersistentSequentialWithTtl;
  if (m.starts_with("raw")) return static_cast<CreateMode>(std::stoi(std::string(m.substr(3))));
  ADD_FAILURE() << "bad mode " << m;
  return CreateMode::Persistent;
}

std::string event_str(const WatchEvent& e) {
  return "event w=" + std::to_string(e.watcher) + " " + std::string(event_type_name(e.type)) + " " +
         e.path + " zxid=" + std::to_string(e.zxid.value());
}

// A parsed command: its words, for sub-lines of multi and friends too.
struct Args {
  std::string command;
  std::vector<std::string> words;
  std::optional<std::string> get(std::string_view key) const {
    for (const auto& w : words) {
      auto eq = w.find('=');
      if (eq != std::string::npos && std::string_view(w).substr(0, eq) == key)
        return w.substr(eq + 1);
    }
    return std::nullopt;
  }
  std::string get_or(std::string_view key, std::string_view d) const {
    auto v = get(key);
    return v ? *v : std::string(d);
  }
  bool flag(std::string_view w) const {
    return std::find(words.begin(), words.end(), w) != words.end();
  }
  std::vector<std::string> positional() const {
    std::vector<std::string> out;
    for (const auto& w : words) {
      if (w.find('=') == std::string::npos) out.push_back(w);
    }
    return out;
  }
  std::string path() const {
    auto p = positional();
    return p.empty() ? std::string() : p[0];
  }
};

Data parse_data(const Args& a) {
  if (a.flag("null")) return std::nullopt;
  if (auto h = a.get("hex")) {
    std::string out;
    for (std::size_t i = 0; i + 1 < h->size(); i += 2)
      out += static_cast<char>(std::stoi(h->substr(i, 2), nullptr, 16));
    return out;
  }
  if (auto n = a.get("size")) return std::string(std::stoul(*n), 'x');
  return a.get_or("data", "");
}

class Runner {
 public:
  std::string run(const coord::testing::GoldenCase& c) {
    Args a{c.command, c.args};
    std::ostringstream out;
    const std::string& cmd = c.command;
    if (cmd == "create" || cmd == "set" || cmd == "delete" || cmd == "check" || cmd == "setacl") {
      auto txn = write_txn(a);
      if (!txn) return "bad command";
      ApplyResult r = apply(*txn, caller(a));
      print_result(out, r);
    } else if (cmd == "multi") {
      MultiOp m;
      std::istringstream in(c.input);
      for (std::string line; std::getline(in, line);) {
        auto words = coord::testing::split_words(line);
        if (words.empty()) continue;
        Args sub{words[0], {words.begin() + 1, words.end()}};
        auto txn = write_txn(sub);
        if (!txn) return "bad multi line: " + line;
        std::visit(
            [&](auto& op) {
              using T = std::decay_t<decltype(op)>;
              if constexpr (std::is_same_v<T, CreateOp> || std::is_same_v<T, DeleteOp> ||
                            std::is_same_v<T, SetDataOp> || std::is_same_v<T, CheckOp>) {
                m.ops.emplace_back(op);
              } else {
                ADD_FAILURE() << "not a multi op: " << line;
              }
            },
            *txn);
      }
      ApplyResult r = apply(m, caller(a));
      print_result(out, r);
    } else if (cmd == "close") {
      print_result(out,
                   apply(CloseSessionOp{SessionId(std::stoll(a.get_or("s", "1")))}, caller(a)));
    } else if (cmd == "reap") {
      print_result(out, apply(ReapOp{a.path()}, caller(a)));
    } else if (cmd == "get") {
      auto r = tree_.get_data(a.path(), caller(a));
      if (!r.ok()) {
        out << "error " << r.code() << "\n";
      } else {
        out << "data=" << (r->data ? quote(*r->data) : "null") << "\n" << stat_str(r->stat) << "\n";
        if (auto w = a.get("watch")) add_watch(out, std::stoull(*w), a.path(), WatchKind::Data);
      }
    } else if (cmd == "exists") {
      auto r = tree_.exists(a.path());
      if (!r.ok()) {
        out << "error " << r.code() << "\n";
      } else {
        out << stat_str(*r) << "\n";
      }
      if (auto w = a.get("watch")) {
        add_watch(out, std::stoull(*w), a.path(), r.ok() ? WatchKind::Data : WatchKind::Exist);
      }
    } else if (cmd == "ls") {
      auto r = tree_.get_children(a.path(), caller(a));
      if (!r.ok()) {
        out << "error " << r.code() << "\n";
      } else {
        std::vector<std::string> names(r->children.begin(), r->children.end());
        std::sort(names.begin(), names.end());
        out << "children:";
        for (const auto& n : names)
          out << " " << n;
        out << "\n" << stat_str(r->stat) << "\n";
        if (auto w = a.get("watch")) add_watch(out, std::stoull(*w), a.path(), WatchKind::Child);
      }
    } else if (cmd == "getacl") {
      auto r = tree_.get_acl(a.path(), caller(a));
      if (!r.ok()) {
        out << "error " << r.code() << "\n";
      } else {
        out << "acl " << acl_str(r->acl) << "\n" << stat_str(r->stat) << "\n";
      }
    } else if (cmd == "count") {
      auto r = tree_.get_all_children_number(a.path(), caller(a));
      if (!r.ok()) {
        out << "error " << r.code() << "\n";
      } else {
        out << "count " << *r << "\n";
      }
    } else if (cmd == "multiread") {
      std::vector<ReadOp> ops;
      std::istringstream in(c.input);
      for (std::string line; std::getline(in, line);) {
        auto words = coord::testing::split_words(line);
        if (words.size() < 2) continue;
        ops.push_back(
            ReadOp{words[0] == "ls" ? ReadOp::Kind::GetChildren : ReadOp::Kind::GetData, words[1]});
      }
      for (const auto& r : tree_.multi_read(ops, caller(a))) {
        if (r.err != ErrorCode::Ok) {
          out << "error " << r.err << "\n";
        } else if (r.data) {
          out << "data=" << (r.data->data ? quote(*r.data->data) : "null")
              << " version=" << r.data->stat.version << "\n";
        } else {
          std::vector<std::string> names(r.children.begin(), r.children.end());
          std::sort(names.begin(), names.end());
          out << "children:";
          for (const auto& n : names)
            out << " " << n;
          out << "\n";
        }
      }
    } else if (cmd == "ephemerals") {
      auto v =
          tree_.get_ephemerals(SessionId(std::stoll(a.get_or("s", "1"))), a.get_or("prefix", ""));
      out << "ephemerals:";
      for (const auto& p : v)
        out << " " << p;
      out << "\n";
    } else if (cmd == "sessions") {
      out << "sessions:";
      for (auto s : tree_.sessions_with_ephemerals())
        out << " " << s;
      out << "\n";
    } else if (cmd == "reap-candidates") {
      out << "candidates:";
      for (const auto& p : tree_.reap_candidates(TimeMs(now_)))
        out << " " << p;
      out << "\n";
    } else if (cmd == "info") {
      out << "nodes=" << tree_.node_count() << " ephemerals=" << tree_.ephemeral_count()
          << " watches=" << tree_.watch_count() << " last_zxid=" << tree_.last_zxid()
          << " data_bytes=" << tree_.approximate_data_bytes() << "\n";
    } else if (cmd == "addwatch") {
      add_watch(out, std::stoull(a.get_or("w", "1")), a.path(), parse_kind(a.get_or("kind", "")));
    } else if (cmd == "checkwatch" || cmd == "removewatch") {
      WatcherType type = parse_type(a.get_or("type", "any"));
      WatcherId w = std::stoull(a.get_or("w", "1"));
      Status s = cmd == "checkwatch" ? tree_.check_watches(w, a.path(), type)
                                     : tree_.remove_watches(w, a.path(), type);
      out << (s.ok() ? std::string("ok") : "error " + std::string(error_name(s.code()))) << "\n";
    } else if (cmd == "setwatches") {
      SetWatchesRequest req;
      req.relative_zxid = Zxid(std::stoll(a.get_or("rel", "0")));
      std::istringstream in(c.input);
      for (std::string line; std::getline(in, line);) {
        auto words = coord::testing::split_words(line);
        if (words.size() < 2) continue;
        const auto& k = words[0];
        auto& list = k == "data"         ? req.data
                     : k == "exist"      ? req.exist
                     : k == "child"      ? req.child
                     : k == "persistent" ? req.persistent
                                         : req.persistent_recursive;
        list.push_back(words[1]);
      }
      auto events = tree_.set_watches(std::stoull(a.get_or("w", "1")), req);
      out << "ok\n";
      for (const auto& e : events)
        out << event_str(e) << "\n";
    } else if (cmd == "dropwatcher") {
      tree_.remove_watcher(std::stoull(a.get_or("w", "1")));
      out << "ok\n";
    } else if (cmd == "watches") {
      static constexpr const char* names[] = {"data", "exist", "child", "persistent", "recursive"};
      tree_.for_each_watch([&](WatcherId w, std::string_view p, WatchKind k) {
        out << "w=" << w << " " << p << " " << names[static_cast<int>(k)] << "\n";
      });
      out << "total " << tree_.watch_count() << "\n";
    } else if (cmd == "auth") {
      auto pos = a.positional();
      identities(a).push_back(Id{pos.at(0), pos.size() > 1 ? pos[1] : ""});
      out << "ok\n";
    } else if (cmd == "ip") {
      auto& ids = identities(a);
      for (auto& id : ids) {
        if (id.scheme == "ip") id.id = a.positional().at(0);
      }
      out << "ok\n";
    } else if (cmd == "advance") {
      now_ += std::stoll(a.get_or("ms", "0"));
      out << "now=" << now_ << "\n";
    } else if (cmd == "snapshot") {
      std::string bytes = tree_.write_snapshot();
      auto back = DataTree::read_snapshot(bytes, config_);
      if (!back.ok()) {
        out << "error " << back.status().to_string() << "\n";
      } else {
        out << (back->digest() == tree_.digest() ? "digest equal" : "digest DIFFERS") << "\n";
        out << (listing(*back) == listing(tree_) ? "contents equal" : "contents DIFFER") << "\n";
        out << "nodes=" << back->node_count() << " last_zxid=" << back->last_zxid() << "\n";
        // Continue from the loaded tree (watches are not in a snapshot).
        tree_ = std::move(back).value();
      }
    } else if (cmd == "config") {
      config_.enforce_quota = a.get_or("enforce_quota", "0") == "1";
      auto back = DataTree::read_snapshot(tree_.write_snapshot(), config_);
      if (!back.ok()) return "error " + back.status().to_string();
      tree_ = std::move(back).value();
      out << "enforce_quota=" << tree_.config().enforce_quota << "\n";
    } else if (cmd == "digest-save") {
      saved_[a.path()] = tree_.digest();
      out << "ok\n";
    } else if (cmd == "digest-check") {
      out << (saved_.at(a.path()) == tree_.digest() ? "same" : "different") << "\n";
    } else {
      return "unknown command " + cmd;
    }
    return out.str();
  }

 private:
  std::vector<Id>& identities(const Args& a) {
    SessionId s(std::stoll(a.get_or("s", "1")));
    auto it = ids_.find(s);
    if (it == ids_.end()) it = ids_.emplace(s, std::vector<Id>{Id{"ip", "127.0.0.1"}}).first;
    return it->second;
  }

  Caller caller(const Args& a) {
    Caller c;
    c.session = SessionId(std::stoll(a.get_or("s", "1")));
    c.identities = identities(a);
    return c;
  }

  static WatchKind parse_kind(std::string_view k) {
    if (k == "data") return WatchKind::Data;
    if (k == "exist") return WatchKind::Exist;
    if (k == "child") return WatchKind::Child;
    if (k == "persistent") return WatchKind::Persistent;
    if (k == "recursive") return WatchKind::PersistentRecursive;
    ADD_FAILURE() << "bad watch kind " << k;
    return WatchKind::Data;
  }

  static WatcherType parse_type(std::string_view t) {
    if (t == "children") return WatcherType::Children;
    if (t == "data") return WatcherType::Data;
    if (t == "persistent") return WatcherType::Persistent;
    if (t == "recursive") return WatcherType::PersistentRecursive;
    return WatcherType::Any;
  }

  void add_watch(std::ostream& out, WatcherId w, const std::string& path, WatchKind k) {
    Status s = tree_.add_watch(w, path, k);
    if (!s.ok()) out << "watch error " << s.code() << "\n";
  }

  std::optional<Txn> write_txn(const Args& a) {
    const std::string path = a.path();
    const std::int32_t version = std::stoi(a.get_or("version", "-1"));
    if (a.command == "create") {
      CreateOp op;
      op.path = path;
      op.data = parse_data(a);
      op.mode = parse_mode(a.get_or("mode", "persistent"));
      op.ttl_ms = std::stoll(a.get_or("ttl", "0"));
      op.acl = a.get("acl") ? parse_acl(*a.get("acl")) : open_acl_unsafe();
      return op;
    }
    if (a.command == "set") return SetDataOp{path, parse_data(a), version};
    if (a.command == "delete") return DeleteOp{path, version};
    if (a.command == "check") return CheckOp{path, version};
    if (a.command == "setacl") return SetAclOp{path, parse_acl(a.get_or("acl", "")), version};
    return std::nullopt;
  }

  ApplyResult apply(const Txn& txn, const Caller& c) {
    ApplyResult r = tree_.apply(txn, c, tree_.last_zxid().next(), TimeMs(now_));
    ++now_;
    return r;
  }

  static void print_result(std::ostream& out, const ApplyResult& r) {
    if (r.err != ErrorCode::Ok) {
      out << "error " << r.err << "\n";
    } else if (r.multi) {
      out << (r.multi->ok() ? "multi ok" : "multi failed") << "\n";
      for (const auto& op : r.multi->results) {
        if (op.err != ErrorCode::Ok) {
          out << "  error " << op.err << "\n";
        } else if (op.create) {
          out << "  ok " << op.create->path << " " << stat_str(op.create->stat) << "\n";
        } else if (op.stat) {
          out << "  ok " << stat_str(*op.stat) << "\n";
        } else {
          out << "  ok\n";
        }
      }
    } else if (r.create) {
      out << "ok " << r.create->path << "\n" << stat_str(r.create->stat) << "\n";
    } else if (r.stat) {
      out << "ok\n" << stat_str(*r.stat) << "\n";
    } else {
      out << "ok\n";
    }
    for (const auto& e : r.events)
      out << event_str(e) << "\n";
    for (const auto& q : r.quota)
      out << "quota: " << describe(q) << "\n";
  }

  // Every node with its data, Stat and ACL, as the super user sees them.
  static std::string listing(const DataTree& t) {
    Caller su{SessionId(0), {Id{"super", ""}}};
    std::vector<std::string> lines;
    std::vector<std::string> stack{"/"};
    while (!stack.empty()) {
      std::string p = stack.back();
      stack.pop_back();
      auto d = t.get_data(p, su);
      auto acl = t.get_acl(p, su);
      lines.push_back(p + " " + (d->data ? quote(*d->data) : "null") + " " + stat_str(d->stat) +
                      " " + acl_str(acl->acl));
      auto kids = t.get_children(p, su);
      for (auto c : kids->children)
        stack.push_back((p == "/" ? "" : p) + "/" + std::string(c));
    }
    std::sort(lines.begin(), lines.end());
    std::string all;
    for (const auto& l : lines)
      all += l + "\n";
    return all;
  }

  TreeConfig config_;
  DataTree tree_;
  std::int64_t now_ = 1000;
  std::map<SessionId, std::vector<Id>> ids_;
  std::map<std::string, std::uint64_t> saved_;
};

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, Script) {
  Runner runner;
  coord::testing::run_golden_file(
      GetParam(), [&](const coord::testing::GoldenCase& c) { return runner.run(c); });
}

std::vector<std::string> scripts() {
  return coord::testing::golden_files(std::string(COORD_TEST_SOURCE_DIR) + "/testdata");
}

std::string script_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(info.param.rfind('/') + 1);
  name = name.substr(0, name.rfind('.'));
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Znode, GoldenTest, ::testing::ValuesIn(scripts()), script_name);

}  // namespace
}  // namespace coord::znode
