#include "watches.h"

#include <algorithm>
#include <bit>
#include <tuple>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::znode::detail {

std::uint8_t WatchIndex::bits_of(WatchKind kind) {
  switch (kind) {
    case WatchKind::Data:
      return kData;
    case WatchKind::Exist:
      return kExist;
    case WatchKind::Child:
      return kChild;
    case WatchKind::Persistent:
      return kPersistentAny;
    case WatchKind::PersistentRecursive:
      return kRecursiveAny;
  }
  return 0;
}

std::uint8_t WatchIndex::bits_of(WatcherType type) {
  switch (type) {
    case WatcherType::Children:
      return kChild | kPersistentChild | kRecursiveChild;
    case WatcherType::Data:
      return kData | kExist | kPersistentData | kRecursiveData;
    case WatcherType::Any:
      return kAll;
    case WatcherType::Persistent:
      return kPersistentAny;
    case WatcherType::PersistentRecursive:
      return kRecursiveAny;
  }
  return 0;
}

std::size_t WatchIndex::kinds(std::uint8_t bits) {
  return static_cast<std::size_t>(std::popcount(static_cast<unsigned>(bits & 7u))) +
         ((bits & kPersistentAny) ? 1 : 0) + ((bits & kRecursiveAny) ? 1 : 0);
}

void WatchIndex::set_bits(PathMap::iterator it, std::size_t index, std::uint8_t bits) {
  const Reg reg = it->second.get(index);
  const std::uint8_t old = reg.bits;
  if (old == bits) return;
  const std::size_t before = kinds(old);
  const std::size_t after = kinds(bits);
  total_ = total_ - before + after;
  recursive_ = recursive_ - ((old & kRecursiveAny) ? 1 : 0) + ((bits & kRecursiveAny) ? 1 : 0);
  auto pw = by_watcher_.find(reg.watcher);
  COORD_ASSERT(pw != by_watcher_.end(), "watch index out of step");
  pw->second.count = pw->second.count - before + after;
  it->second.set_bits(index, bits);
  if (bits == 0) {
    const bool erased = pw->second.paths.erase(&it->first);
    COORD_ASSERT(erased, "watch index out of step");
    if (pw->second.paths.empty()) by_watcher_.erase(pw);
    it->second.erase(index);
  }
}

Status WatchIndex::add(WatcherId w, std::string_view path, WatchKind kind) {
  const std::uint8_t bits = bits_of(kind);
  COORD_ASSERT(bits != 0, "unknown watch kind");
  auto it = by_path_.find(path);
  std::uint8_t old = 0;
  if (it != by_path_.end()) {
    const std::size_t r = it->second.find(w);
    if (r < it->second.size()) old = it->second.get(r).bits;
  }
  if ((old | bits) == old) return Status();
  PerWatcher& pw = by_watcher_[w];
  if (kinds(old | bits) > kinds(old) && pw.count >= per_watcher_max_) {
    if (pw.paths.empty()) by_watcher_.erase(w);
    return Status(ErrorCode::Throttled, "too many watches on this connection");
  }
  if (it == by_path_.end()) it = by_path_.emplace(std::string(path), RegList{}).first;
  const std::size_t r = it->second.lower_bound(w);
  if (r == it->second.size() || it->second.get(r).watcher != w) {
    it->second.insert(r, Reg{w, 0});
    pw.paths.insert(&it->first);
  }
  set_bits(it, r, old | bits);
  return Status();
}

bool WatchIndex::has(WatcherId w, std::string_view path, std::uint8_t bits) const {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return false;
  const std::size_t r = it->second.find(w);
  return r < it->second.size() && (it->second.get(r).bits & bits) != 0;
}

bool WatchIndex::remove(WatcherId w, std::string_view path, std::uint8_t bits) {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return false;
  const std::size_t r = it->second.find(w);
  if (r == it->second.size()) return false;
  const std::uint8_t had = it->second.get(r).bits;
  if ((had & bits) == 0) return false;
  set_bits(it, r, static_cast<std::uint8_t>(had & ~bits));
  if (it->second.empty()) by_path_.erase(it);
  return true;
}

void WatchIndex::remove_watcher(WatcherId w) {
  auto pw = by_watcher_.find(w);
  if (pw == by_watcher_.end()) return;
  // Each remove() may free its own path's key, never another's.
  std::vector<const std::string*> paths;
  paths.reserve(pw->second.paths.size());
  pw->second.paths.visit([&](const std::string* p) {
    paths.push_back(p);
    return true;
  });
  for (const std::string* p : paths)
    remove(w, *p, kAll);
  COORD_ASSERT(by_watcher_.find(w) == by_watcher_.end(), "watcher not fully removed");
}

void WatchIndex::for_each(
    const std::function<void(WatcherId, std::string_view, WatchKind)>& fn) const {
  std::vector<std::tuple<WatcherId, std::string_view, WatchKind>> all;
  all.reserve(total_);
  for (const auto& [path, regs] : by_path_) {
    for (std::size_t i = 0; i < regs.size(); ++i) {
      const Reg r = regs.get(i);
      if (r.bits & kData) all.emplace_back(r.watcher, path, WatchKind::Data);
      if (r.bits & kExist) all.emplace_back(r.watcher, path, WatchKind::Exist);
      if (r.bits & kChild) all.emplace_back(r.watcher, path, WatchKind::Child);
      if (r.bits & kPersistentAny) all.emplace_back(r.watcher, path, WatchKind::Persistent);
      if (r.bits & kRecursiveAny) {
        all.emplace_back(r.watcher, path, WatchKind::PersistentRecursive);
      }
    }
  }
  std::sort(all.begin(), all.end());
  for (const auto& [w, p, k] : all)
    fn(w, p, k);
}

void WatchIndex::visit_by_path(const std::function<bool(std::string_view, WatcherId)>& fn) const {
  for (const auto& [path, regs] : by_path_) {
    for (std::size_t i = 0; i < regs.size(); ++i) {
      if (!fn(path, regs.get(i).watcher)) return;
    }
  }
}

void WatchIndex::visit_by_watcher(
    const std::function<bool(WatcherId, std::string_view)>& fn) const {
  for (const auto& [w, pw] : by_watcher_) {
    if (!pw.paths.visit([&](const std::string* p) { return fn(w, *p); })) return;
  }
}

void WatchIndex::emit(EventType type, std::string_view path, Zxid zxid,
                      std::vector<WatchEvent>& out) {
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  for (WatcherId w : scratch_)
    out.push_back(WatchEvent{w, type, std::string(path), zxid, std::nullopt});
}

void WatchIndex::trigger(std::string_view path, std::uint8_t match, std::uint8_t clear,
                         std::uint8_t ancestor_match, const std::vector<WatcherId>* suppress) {
  scratch_.clear();
  auto suppressed = [&](WatcherId w) {
    return suppress != nullptr &&
           std::find(suppress->begin(), suppress->end(), w) != suppress->end();
  };
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    for (std::size_t i = 0; i < it->second.size();) {
      const Reg r = it->second.get(i);
      if ((r.bits & match) && !suppressed(r.watcher)) scratch_.push_back(r.watcher);
      const std::size_t before = it->second.size();
      set_bits(it, i, static_cast<std::uint8_t>(r.bits & ~clear));
      if (it->second.size() == before) ++i;
    }
    if (it->second.empty()) by_path_.erase(it);
  }
  if (recursive_ > 0 && ancestor_match != 0) {
    // Ancestors of path, nearest first: "/a/b/c" -> "/a/b", "/a", "/".
    std::string_view p = path;
    while (p.size() > 1) {
      auto slash = p.rfind('/');
      if (slash == std::string_view::npos) break;
      p = slash == 0 ? std::string_view("/") : p.substr(0, slash);
      auto a = by_path_.find(p);
      if (a == by_path_.end()) continue;
      for (std::size_t i = 0; i < a->second.size(); ++i) {
        const Reg r = a->second.get(i);
        if ((r.bits & ancestor_match) && !suppressed(r.watcher)) scratch_.push_back(r.watcher);
      }
    }
  }
}

void WatchIndex::trigger_data(std::string_view path, EventType type, Zxid zxid,
                              std::vector<WatchEvent>& out, std::vector<WatcherId>* fired) {
  if (by_path_.empty()) return;
  trigger(path, kData | kExist | kPersistentData | kRecursiveData, kData | kExist, kRecursiveData,
          nullptr);
  if (scratch_.empty()) return;
  emit(type, path, zxid, out);
  if (fired) fired->insert(fired->end(), scratch_.begin(), scratch_.end());
}

void WatchIndex::trigger_child(std::string_view path, EventType type, Zxid zxid,
                               std::vector<WatchEvent>& out,
                               const std::vector<WatcherId>* suppress) {
  if (by_path_.empty()) return;
  // Recursive watchers sit on the child side too but never hear of a
  // children change.
  const std::uint8_t recursive =
      type == EventType::NodeChildrenChanged ? 0 : static_cast<std::uint8_t>(kRecursiveChild);
  trigger(path, static_cast<std::uint8_t>(kChild | kPersistentChild | recursive), kChild, recursive,
          suppress);
  if (!scratch_.empty()) emit(type, path, zxid, out);
}

}  // namespace coord::znode::detail
