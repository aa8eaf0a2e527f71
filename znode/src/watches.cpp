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

void WatchIndex::set_bits(WatchedPath* e, std::size_t index, std::uint8_t bits) {
  const Reg reg = e->regs.get(index);
  const std::uint8_t old = reg.bits;
  if (old == bits) return;
  const std::size_t before = kinds(old);
  const std::size_t after = kinds(bits);
  total_ = total_ - before + after;
  recursive_ = recursive_ - ((old & kRecursiveAny) ? 1 : 0) + ((bits & kRecursiveAny) ? 1 : 0);
  auto pw = by_watcher_.find(reg.watcher);
  COORD_ASSERT(pw != by_watcher_.end(), "watch index out of step");
  pw->second.count = pw->second.count - before + after;
  e->regs.set_bits(index, bits);
  if (bits == 0) {
    const bool erased = pw->second.paths.erase(e);
    COORD_ASSERT(erased, "watch index out of step");
    if (pw->second.paths.empty()) by_watcher_.erase(pw);
    e->regs.erase(index);
  }
}

Status WatchIndex::add(WatcherId w, std::string_view path, WatchKind kind) {
  const std::uint8_t bits = bits_of(kind);
  COORD_ASSERT(bits != 0, "unknown watch kind");
  WatchedPath* e = by_path_.find(path);
  std::uint8_t old = 0;
  if (e != nullptr) {
    const std::size_t r = e->regs.find(w);
    if (r < e->regs.size()) old = e->regs.get(r).bits;
  }
  if ((old | bits) == old) return Status();
  PerWatcher& pw = by_watcher_[w];
  if (kinds(old | bits) > kinds(old) && pw.count >= per_watcher_max_) {
    if (pw.paths.empty()) by_watcher_.erase(w);
    return Status(ErrorCode::Throttled, "too many watches on this connection");
  }
  if (e == nullptr) e = by_path_.insert(path);
  const std::size_t r = e->regs.lower_bound(w);
  if (r == e->regs.size() || e->regs.get(r).watcher != w) {
    e->regs.insert(r, Reg{w, 0});
    pw.paths.insert(e);
  }
  set_bits(e, r, old | bits);
  return Status();
}

bool WatchIndex::has(WatcherId w, std::string_view path, std::uint8_t bits) const {
  const WatchedPath* e = by_path_.find(path);
  if (e == nullptr) return false;
  const std::size_t r = e->regs.find(w);
  return r < e->regs.size() && (e->regs.get(r).bits & bits) != 0;
}

bool WatchIndex::remove(WatcherId w, std::string_view path, std::uint8_t bits) {
  WatchedPath* e = by_path_.find(path);
  return e != nullptr && remove(w, e, bits);
}

bool WatchIndex::remove(WatcherId w, WatchedPath* e, std::uint8_t bits) {
  const std::size_t r = e->regs.find(w);
  if (r == e->regs.size()) return false;
  const std::uint8_t had = e->regs.get(r).bits;
  if ((had & bits) == 0) return false;
  set_bits(e, r, static_cast<std::uint8_t>(had & ~bits));
  if (e->regs.empty()) by_path_.erase(e);
  return true;
}

void WatchIndex::remove_watcher(WatcherId w) {
  auto pw = by_watcher_.find(w);
  if (pw == by_watcher_.end()) return;
  // Each remove() may free its own path's entry, never another's.
  std::vector<WatchedPath*> paths;
  paths.reserve(pw->second.paths.size());
  pw->second.paths.visit([&](WatchedPath* e) {
    paths.push_back(e);
    return true;
  });
  for (WatchedPath* e : paths)
    remove(w, e, kAll);
  COORD_ASSERT(by_watcher_.find(w) == by_watcher_.end(), "watcher not fully removed");
}

void WatchIndex::for_each(
    const std::function<void(WatcherId, std::string_view, WatchKind)>& fn) const {
  std::vector<std::tuple<WatcherId, std::string_view, WatchKind>> all;
  all.reserve(total_);
  by_path_.visit([&](const WatchedPath* e) {
    const std::string_view path = e->path();
    for (std::size_t i = 0; i < e->regs.size(); ++i) {
      const Reg r = e->regs.get(i);
      if (r.bits & kData) all.emplace_back(r.watcher, path, WatchKind::Data);
      if (r.bits & kExist) all.emplace_back(r.watcher, path, WatchKind::Exist);
      if (r.bits & kChild) all.emplace_back(r.watcher, path, WatchKind::Child);
      if (r.bits & kPersistentAny) all.emplace_back(r.watcher, path, WatchKind::Persistent);
      if (r.bits & kRecursiveAny) {
        all.emplace_back(r.watcher, path, WatchKind::PersistentRecursive);
      }
    }
    return true;
  });
  std::sort(all.begin(), all.end());
  for (const auto& [w, p, k] : all)
    fn(w, p, k);
}

void WatchIndex::visit_by_path(const std::function<bool(std::string_view, WatcherId)>& fn) const {
  by_path_.visit([&](const WatchedPath* e) {
    for (std::size_t i = 0; i < e->regs.size(); ++i) {
      if (!fn(e->path(), e->regs.get(i).watcher)) return false;
    }
    return true;
  });
}

void WatchIndex::visit_by_watcher(
    const std::function<bool(WatcherId, std::string_view)>& fn) const {
  for (const auto& [w, pw] : by_watcher_) {
    if (!pw.paths.visit([&](WatchedPath* e) { return fn(w, e->path()); })) return;
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
  if (WatchedPath* e = by_path_.find(path)) {
    for (std::size_t i = 0; i < e->regs.size();) {
      const Reg r = e->regs.get(i);
      if ((r.bits & match) && !suppressed(r.watcher)) scratch_.push_back(r.watcher);
      const std::size_t before = e->regs.size();
      set_bits(e, i, static_cast<std::uint8_t>(r.bits & ~clear));
      if (e->regs.size() == before) ++i;
    }
    if (e->regs.empty()) by_path_.erase(e);
  }
  if (recursive_ > 0 && ancestor_match != 0) {
    // Ancestors of path, nearest first: "/a/b/c" -> "/a/b", "/a", "/".
    std::string_view p = path;
    while (p.size() > 1) {
      auto slash = p.rfind('/');
      if (slash == std::string_view::npos) break;
      p = slash == 0 ? std::string_view("/") : p.substr(0, slash);
      const WatchedPath* a = by_path_.find(p);
      if (a == nullptr) continue;
      for (std::size_t i = 0; i < a->regs.size(); ++i) {
        const Reg r = a->regs.get(i);
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
