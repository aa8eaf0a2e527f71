// Fuzz target: the handshake decoders and the frame splitter, the first code
// that touches bytes from a new connection.
#include <cstdint>

#include "coord/base/assert.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "fuzz_seeds.h"

using namespace coord::protocol;

namespace {

std::vector<Bytes> handshake_seeds() {
  ConnectRequest req;
  req.timeout_ms = 30000;
  req.session_id = coord::SessionId(0x1234);
  ConnectResponse resp;
  resp.timeout_ms = 4000;
  Bytes a, b, c;
  append_connect_request_frame(a, req);
  append_connect_response_frame(b, resp);
  req.has_read_only = false;
  append_connect_request_frame(c, req);
  return {a, b, c};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<Bytes> seeds = handshake_seeds();
  const Bytes input = fuzz::shape_input(seeds, data, size);

  (void)four_letter_word(input);
  FrameBuffer fb(64);
  fb.append(input);
  for (int i = 0; i < 100; ++i) {
    const FrameCut cut = fb.next();
    if (cut.state != FrameState::Frame) break;
    COORD_ASSERT(cut.payload.size() <= 64);
  }

  const ByteSpan payload = input.size() >= 4 ? ByteSpan(input).subspan(4) : ByteSpan(input);
  if (auto req = decode_connect_request(payload); req.ok()) {
    Bytes frame;
    append_connect_request_frame(frame, *req);
    auto again = decode_connect_request(ByteSpan(frame).subspan(4));
    COORD_ASSERT(again.ok() && *again == *req, "re-encoded ConnectRequest differs");
  }
  if (auto resp = decode_connect_response(payload); resp.ok()) {
    if (resp->password.size() == 16) {
      Bytes frame;
      append_connect_response_frame(frame, *resp);
      COORD_ASSERT(frame.size() == (resp->has_read_only ? 41u : 40u));
      auto again = decode_connect_response(ByteSpan(frame).subspan(4));
      COORD_ASSERT(again.ok() && *again == *resp, "re-encoded ConnectResponse differs");
    }
  }
  return 0;
}
