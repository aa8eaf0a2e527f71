#include "connection.h"

#include <algorithm>

#include "coord/base/bytes.h"

namespace coord::core {

void Conn::reset_counters() {
  received = sent = 0;
  last_cxid = last_zxid = -1;
  last_response = TimeMs(0);
  last_latency_ms = latency_ms_min = latency_ms_max = latency_ms_sum = replies = 0;
}

Item* Conn::find(std::uint64_t seq) {
  for (Item& item : queue) {
    if (item.seq == seq) return &item;
    if (item.seq > seq) break;  // in arrival order
  }
  return nullptr;
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
