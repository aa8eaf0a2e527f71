#include "connection.h"

#include <algorithm>

#include "coord/base/bytes.h"

namespace coord::core {

void ItemQueue::push_back(Item item) {
  if (size_ == capacity_) {
    // Doubling from a few slots: a pipelining client grows it once.
    std::size_t grown = capacity_ == 0 ? 4 : capacity_ * 2;
    auto slots = std::make_unique<Item[]>(grown);
    for (std::size_t i = 0; i < size_; ++i)
      slots[i] = std::move(at(i));
    slots_ = std::move(slots);
    capacity_ = grown;
    head_ = 0;
  }
  slots_[(head_ + size_) % capacity_] = std::move(item);
  ++size_;
}

void ItemQueue::pop_front() {
  COORD_ASSERT(size_ > 0);
  slots_[head_] = Item{};
  head_ = (head_ + 1) % capacity_;
  --size_;
}

void ItemQueue::clear() {
  while (size_ > 0)
    pop_front();
  head_ = 0;
}

void ItemQueue::release_if_empty() {
  if (size_ != 0) return;
  slots_.reset();
  capacity_ = 0;
  head_ = 0;
}

void Conn::reset_counters() {
  received = sent = 0;
  last_cxid = last_zxid = -1;
  last_response = TimeMs(0);
  last_latency_ms = latency_ms_min = latency_ms_max = latency_ms_sum = replies = 0;
}

Item* Conn::find(std::uint64_t seq) {
  // Items are queued in arrival order, so their numbers rise along the
  // queue: search it by halves.
  std::size_t lo = 0;
  std::size_t hi = queue.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (queue.at(mid).seq < seq) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < queue.size() && queue.at(lo).seq == seq ? &queue.at(lo) : nullptr;
}

std::int32_t Conn::note_reply(const Item& item, TimeMs now, std::uint64_t latency_ms) {
  // The reply frame is length(4) xid(4) zxid(8) err(4) ...
  std::int32_t err = 0;
  if (item.reply.size() >= 20) {
    err = static_cast<std::int32_t>(get_be32(item.reply.data() + 16));
    last_cxid = static_cast<std::int32_t>(get_be32(item.reply.data() + 4));
    last_zxid = static_cast<std::int64_t>(get_be64(item.reply.data() + 8));
  }
  last_response = now;
  last_latency_ms = latency_ms;
  latency_ms_min = replies == 0 ? latency_ms : std::min(latency_ms_min, latency_ms);
  latency_ms_max = std::max(latency_ms_max, latency_ms);
  latency_ms_sum += latency_ms;
  ++replies;
  return err;
}

}  // namespace coord::core
