// Fuzz target: a server's request decoder (header + any op record by opcode)
// and a client's reply decoder. Any input must yield a value or a Status;
// whatever decodes must re-encode to bytes that decode to the same value.
#include <cstdint>

#include "coord/base/assert.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "fuzz_seeds.h"

using namespace coord::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<Bytes> seeds = fuzz::request_payloads();
  const Bytes input = fuzz::shape_input(seeds, data, size);

  auto req = decode_request(input);
  if (req.ok()) {
    Bytes frame;
    append_request_frame(frame, req->header, req->body);
    const FrameCut cut = cut_frame(frame, frame.size());
    COORD_ASSERT(cut.state == FrameState::Frame);
    auto again = decode_request(cut.payload);
    COORD_ASSERT(again.ok(), again.status().to_string());
    COORD_ASSERT(*again == *req, "re-encoded request decodes differently");
  }

  // The same bytes as the body of each reply record a client may receive.
  if (!input.empty()) {
    const auto ops = op_table();
    const OpInfo& op = ops[input[0] % ops.size()];
    auto body = decode_response_body(op.code, ByteSpan(input).subspan(1));
    if (body.ok()) {
      Bytes frame;
      append_reply_frame(frame, ReplyHeader{1, coord::Zxid(1), coord::ErrorCode::Ok}, *body);
      auto again = decode_response_body(op.code, ByteSpan(frame).subspan(4 + 16));
      COORD_ASSERT(again.ok() && *again == *body, "re-encoded reply decodes differently");
    }
    (void)decode_watcher_event(input);
  }
  return 0;
}
