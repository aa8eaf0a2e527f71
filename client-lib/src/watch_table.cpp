#include "coord/client-lib/watch_table.h"

namespace coord {

void WatchTable::add(WatchKind kind, const std::string& path, Watcher w) {
  switch (kind) {
    case WatchKind::Data:
      data_[path].push_back(std::move(w));
      break;
    case WatchKind::Exist:
      exist_[path].push_back(std::move(w));
      break;
    case WatchKind::Child:
      child_[path].push_back(std::move(w));
      break;
    case WatchKind::Persistent:
      persistent_[path].push_back(std::move(w));
      break;
    case WatchKind::PersistentRecursive:
      recursive_[path].push_back(std::move(w));
      break;
    case WatchKind::None:
      break;
  }
}

void WatchTable::take(Map& m, const std::string& path, std::vector<Watcher>& out) {
  auto it = m.find(path);
  if (it == m.end()) return;
  for (auto& w : it->second)
    out.push_back(std::move(w));
  m.erase(it);
}

std::vector<Watcher> WatchTable::trigger(EventType type, const std::string& path) {
  std::vector<Watcher> out;
  switch (type) {
    case EventType::NodeCreated:
    case EventType::NodeDataChanged:
      take(data_, path, out);
      take(exist_, path, out);
      break;
    case EventType::NodeChildrenChanged:
      take(child_, path, out);
      break;
    case EventType::NodeDeleted:
      take(data_, path, out);
      take(exist_, path, out);
      take(child_, path, out);
      break;
    default:
      return out;
  }
  if (auto it = persistent_.find(path); it != persistent_.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  if (type != EventType::NodeChildrenChanged && !recursive_.empty()) {
    // The path itself and every ancestor up to "/".
    std::string p = path;
    while (true) {
      if (auto it = recursive_.find(p); it != recursive_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
      }
      if (p == "/" || p.empty()) break;
      const auto slash = p.rfind('/');
      p = slash == 0 ? std::string("/") : p.substr(0, slash);
    }
  }
  return out;
}

std::vector<std::pair<Watcher, EventType>> WatchTable::remove(const std::string& path,
                                                              WatcherType type) {
  std::vector<std::pair<Watcher, EventType>> out;
  auto drain = [&](Map& m, EventType ev) {
    std::vector<Watcher> ws;
    take(m, path, ws);
    for (auto& w : ws)
      out.emplace_back(std::move(w), ev);
  };
  const bool any = type == WatcherType::Any;
  if (any || type == WatcherType::Data) {
    drain(data_, EventType::DataWatchRemoved);
    drain(exist_, EventType::DataWatchRemoved);
  }
  if (any || type == WatcherType::Children) drain(child_, EventType::ChildWatchRemoved);
  if (any || type == WatcherType::Persistent) {
    drain(persistent_, EventType::PersistentWatchRemoved);
  }
  if (any || type == WatcherType::PersistentRecursive) {
    drain(recursive_, EventType::PersistentWatchRemoved);
  }
  return out;
}

bool WatchTable::contains(const std::string& path, WatcherType type) const {
  const bool any = type == WatcherType::Any;
  if ((any || type == WatcherType::Data) && (data_.count(path) || exist_.count(path))) {
    return true;
  }
  if ((any || type == WatcherType::Children) && child_.count(path)) return true;
  if ((any || type == WatcherType::Persistent) && persistent_.count(path)) return true;
  if ((any || type == WatcherType::PersistentRecursive) && recursive_.count(path)) return true;
  return false;
}

WatchTable::Paths WatchTable::paths() const {
  Paths p;
  for (const auto& [k, v] : data_)
    p.data.push_back(k);
  for (const auto& [k, v] : exist_)
    p.exist.push_back(k);
  for (const auto& [k, v] : child_)
    p.child.push_back(k);
  for (const auto& [k, v] : persistent_)
    p.persistent.push_back(k);
  for (const auto& [k, v] : recursive_)
    p.persistent_recursive.push_back(k);
  return p;
}

std::size_t WatchTable::size() const {
  std::size_t n = 0;
  for (const Map* m : {&data_, &exist_, &child_, &persistent_, &recursive_}) {
    for (const auto& [k, v] : *m)
      n += v.size();
  }
  return n;
}

void WatchTable::clear() {
  data_.clear();
  exist_.clear();
  child_.clear();
  persistent_.clear();
  recursive_.clear();
}

}  // namespace coord
