// libFuzzer target for the Engine.IO / Socket.IO codec and the session state machine.
// Not part of the CMake build; build and run by hand:
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iworker \
//       tests/fuzz/fuzz_sio.cpp worker/sio/sio_codec.cpp worker/sio/session.cpp -lcjson -o /tmp/fuzz_sio
//   /tmp/fuzz_sio -max_len=4096
//
// Input layout: byte 0 selects the protocol version and a room cap; the rest is split on '\n'
// into text frames fed to one Session (each frame also goes through the bare decoders). Frames
// advance a fake clock so heartbeat paths run too.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "sio/session.h"
#include "sio/sio_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char *>(data), size);
  const psdm::EioVersion version = (data[0] & 1) ? psdm::EioVersion::v3 : psdm::EioVersion::v4;
  psdm::SessionLimits limits;
  limits.max_rooms = static_cast<size_t>(data[0] >> 4);
  limits.max_payload = 2048;
  limits.ping_interval_ms = 100;
  limits.ping_timeout_ms = 50;

  int64_t now = 0;
  psdm::Session session(version, limits, "fuzz-sid", now);
  std::vector<psdm::SessionAction> out;
  session.on_open(out);

  std::string_view rest = input.substr(1);
  do {
    const size_t nl = rest.find('\n');
    const std::string_view frame = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);

    (void)psdm::parse_handshake_query(frame);
    if (const auto eio = psdm::eio_decode(frame)) {
      psdm::SioPacket p;
      (void)psdm::sio_decode(eio->data, &p);
    }
    (void)psdm::json_escape_string(frame);

    now += 37;
    session.on_text(frame, now, out);
    session.on_tick(now, out);
    for (const psdm::SessionAction &a : out) {
      if (a.ack_id) (void)session.join_ack(*a.ack_id, (a.text.size() & 1) != 0, a.text);
      if (a.kind == psdm::SessionAction::Kind::join && (a.text.size() & 2) != 0) session.join_refused(a.text);
    }
    out.clear();
  } while (!rest.empty());
  return 0;
}
