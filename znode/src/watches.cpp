#include "watches.h"

#include <algorithm>
#include <bit>
#include <tuple>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::znode::detail {

std::uint8_t WatchIndex::bit_of(WatchKind kind) {
  switch (kind) {
    case WatchKind::Data:
      return kData;
    case WatchKind::Exist:
      return kExist;
    case WatchKind::Child:
      return kChild;
    case WatchKind::Persistent:
      return kPersistent;
    case WatchKind::PersistentRecursive:
      return kRecursive;
  }
  return 0;
}

std::uint8_t WatchIndex::bits_of(WatcherType type) {
  switch (type) {
    case WatcherType::Children:
      return kChild;
    case WatcherType::Data:
      return kData | kExist;
    case WatcherType::Any:
      return kData | kExist | kChild | kPersistent | kRecursive;
    case WatcherType::Persistent:
      return kPersistent;
    case WatcherType::PersistentRecursive:
      return kRecursive;
  }
  return 0;
}

namespace {
auto find_reg(std::vector<auto>& regs, WatcherId w) {
  return std::lower_bound(regs.begin(), regs.end(), w,
                          [](const auto& r, WatcherId x) { return r.watcher < x; });
}
}  // namespace

Status WatchIndex::add(WatcherId w, std::string_view path, WatchKind kind) {
  const std::uint8_t bit = bit_of(kind);
  COORD_ASSERT(bit != 0, "unknown watch kind");
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    auto r = find_reg(it->second, w);
    if (r != it->second.end() && r->watcher == w && (r->bits & bit)) return Status();
  }
  PerWatcher& pw = by_watcher_[w];
  if (pw.count >= limits::watches_per_connection_max) {
    return Status(ErrorCode::Throttled, "too many watches on this connection");
  }
  if (it == by_path_.end()) it = by_path_.emplace(std::string(path), Regs{}).first;
  auto r = find_reg(it->second, w);
  if (r == it->second.end() || r->watcher != w) {
    r = it->second.insert(r, Reg{w, 0});
    pw.paths.emplace(path);
  }
  r->bits |= bit;
  ++pw.count;
  ++total_;
  if (bit == kRecursive) ++recursive_;
  return Status();
}

bool WatchIndex::has(WatcherId w, std::string_view path, std::uint8_t bits) const {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return false;
  auto& regs = const_cast<Regs&>(it->second);
  auto r = find_reg(regs, w);
  return r != regs.end() && r->watcher == w && (r->bits & bits) != 0;
}

void WatchIndex::clear_bits(
    std::unordered_map<std::string, Regs, StringHash, std::equal_to<>>::iterator it,
    std::size_t index, std::uint8_t bits) {
  Reg& reg = it->second[index];
  const std::uint8_t cleared = reg.bits & bits;
  if (cleared == 0) return;
  const auto n = static_cast<std::size_t>(std::popcount(cleared));
  reg.bits &= static_cast<std::uint8_t>(~bits);
  total_ -= n;
  if (cleared & kRecursive) --recursive_;
  auto pw = by_watcher_.find(reg.watcher);
  COORD_ASSERT(pw != by_watcher_.end(), "watch index out of step");
  pw->second.count -= n;
  if (reg.bits == 0) {
    pw->second.paths.erase(it->first);
    if (pw->second.count == 0) by_watcher_.erase(pw);
    it->second.erase(it->second.begin() + static_cast<std::ptrdiff_t>(index));
  }
}

bool WatchIndex::remove(WatcherId w, std::string_view path, std::uint8_t bits) {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return false;
  auto r = find_reg(it->second, w);
  if (r == it->second.end() || r->watcher != w || (r->bits & bits) == 0) return false;
  clear_bits(it, static_cast<std::size_t>(r - it->second.begin()), bits);
  if (it->second.empty()) by_path_.erase(it);
  return true;
}

void WatchIndex::remove_watcher(WatcherId w) {
  auto pw = by_watcher_.find(w);
  if (pw == by_watcher_.end()) return;
  std::vector<std::string> paths(pw->second.paths.begin(), pw->second.paths.end());
  for (const auto& p : paths)
    remove(w, p, 0xff);
  COORD_ASSERT(by_watcher_.find(w) == by_watcher_.end(), "watcher not fully removed");
}

void WatchIndex::for_each(
    const std::function<void(WatcherId, std::string_view, WatchKind)>& fn) const {
  std::vector<std::tuple<WatcherId, std::string_view, WatchKind>> all;
  all.reserve(total_);
  static constexpr WatchKind kinds[] = {WatchKind::Data, WatchKind::Exist, WatchKind::Child,
                                        WatchKind::Persistent, WatchKind::PersistentRecursive};
  for (const auto& [path, regs] : by_path_) {
    for (const auto& r : regs) {
      for (WatchKind k : kinds) {
        if (r.bits & bit_of(k)) all.emplace_back(r.watcher, path, k);
      }
    }
  }
  std::sort(all.begin(), all.end());
  for (const auto& [w, p, k] : all)
    fn(w, p, k);
}

void WatchIndex::emit(EventType type, std::string_view path, Zxid zxid,
                      std::vector<WatchEvent>& out) {
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  for (WatcherId w : scratch_)
    out.push_back(WatchEvent{w, type, std::string(path), zxid});
}

void WatchIndex::trigger_data(std::string_view path, EventType type, Zxid zxid,
                              std::vector<WatchEvent>& out, std::vector<WatcherId>* fired) {
  if (by_path_.empty()) return;
  scratch_.clear();
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    for (std::size_t i = 0; i < it->second.size();) {
      const Reg r = it->second[i];
      if (r.bits & (kData | kExist | kPersistent | kRecursive)) scratch_.push_back(r.watcher);
      const std::size_t before = it->second.size();
      clear_bits(it, i, kData | kExist);
      if (it->second.size() == before) ++i;
    }
    if (it->second.empty()) by_path_.erase(it);
  }
  if (recursive_ > 0) {
    // Ancestors of path, nearest first: "/a/b/c" -> "/a/b", "/a", "/".
    std::string_view p = path;
    while (p.size() > 1) {
      auto slash = p.rfind('/');
      if (slash == std::string_view::npos) break;
      p = slash == 0 ? std::string_view("/") : p.substr(0, slash);
      auto a = by_path_.find(p);
      if (a == by_path_.end()) continue;
      for (const Reg& r : a->second) {
        if (r.bits & kRecursive) scratch_.push_back(r.watcher);
      }
    }
  }
  if (scratch_.empty()) return;
  emit(type, path, zxid, out);
  if (fired) fired->insert(fired->end(), scratch_.begin(), scratch_.end());
}

void WatchIndex::trigger_child(std::string_view path, EventType type, Zxid zxid,
                               std::vector<WatchEvent>& out,
                               const std::vector<WatcherId>* suppress) {
  if (by_path_.empty()) return;
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return;
  scratch_.clear();
  for (std::size_t i = 0; i < it->second.size();) {
    const Reg r = it->second[i];
    if ((r.bits & (kChild | kPersistent)) &&
        !(suppress &&
          std::find(suppress->begin(), suppress->end(), r.watcher) != suppress->end())) {
      scratch_.push_back(r.watcher);
    }
    const std::size_t before = it->second.size();
    clear_bits(it, i, kChild);
    if (it->second.size() == before) ++i;
  }
  if (it->second.empty()) by_path_.erase(it);
  if (!scratch_.empty()) emit(type, path, zxid, out);
}

}  // namespace coord::znode::detail
