// WsMessage: reassembles one received WebSocket message from the pieces libwebsockets
// hands over (a message may come as several fragments, and a large frame in several
// reads), with a bound on its size. Pure: no lws, no logging.
//
//   WsMessage rx(max_payload);
//   std::string_view msg;
//   switch (rx.feed(piece, first, last, &msg)) {
//   case WsMessage::Status::complete:  handle(msg); rx.release(); break;
//   case WsMessage::Status::too_big:   close with 1009; break;
//   case WsMessage::Status::partial:   wait for more; break;
//   }
//
// A message that arrives in one piece is not copied: *message views the piece itself.
// An idle connection holds no buffer (release() frees it after each reassembled message).
//
// Thread: one connection's, on its event loop.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace psdm {

class WsMessage {
 public:
    enum class Status {
        partial,   // more pieces to come
        complete,  // *message is the whole message
        too_big,   // the message would exceed max_bytes: what was gathered is dropped
    };

    explicit WsMessage(size_t max_bytes) : max_(max_bytes) {}

    // One piece. `first`: it starts a message; `last`: it ends one (final fragment, and
    // nothing of its frame remains to be read). Pieces are gathered until `last`. On
    // complete, *message (else untouched) is valid until the next feed or release(), and
    // as long as `piece`. After too_big the caller closes the connection.
    Status feed(std::string_view piece, bool first, bool last, std::string_view *message);

    // Frees the reassembly buffer (call after handling a complete message).
    void release();

 private:
    size_t max_;
    std::string buf_;  // pieces of an unfinished message
};

}  // namespace psdm
