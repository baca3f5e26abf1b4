// WsReader: the client-to-server half of RFC 6455 (section 5), pure: bytes as they come off
// the socket in, one event at a time out. No lws, no logging, no I/O.
//
//   WsReader rx(max_payload);
//   while (!in.empty()) {
//       WsEvent ev;
//       in.remove_prefix(rx.read(in, &ev));
//       switch (ev.kind) { ... }          // none: every byte was taken, wait for more
//   }
//
// What a server must refuse is refused here, with the close code to send and a one-line
// reason (WsEvent::Kind::error):
//   1002  an unmasked frame (5.1), reserved bits set (no extension is negotiated), an unknown
//         opcode, a fragmented or longer than 125 bytes control frame (5.5), a continuation
//         without a message to continue or a new message before the last one ended (5.4), a
//         64-bit length with its top bit set, a close frame with a 1-byte payload or a code
//         an endpoint may not send (7.4)
//   1007  a close reason that is not UTF-8 (text messages are checked by the Session)
//   1009  a message (all its fragments together) longer than max_payload
// After an error or a close frame the reader takes no more events: read() consumes every byte
// and reports none.
//
// Control frames may arrive between the fragments of a message (5.4): they are reported at
// once and the message goes on. A message is reported when its last fragment is complete.
//
// Memory: a message is gathered (unmasked) in one buffer bounded by max_payload; release()
// frees it, so an idle connection holds none. Control payloads use a fixed 125-byte buffer.
//
// Thread: one connection's, on its event loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace psdm {

struct WsEvent {
    enum class Kind {
        none,    // all input taken, no event completed
        text,    // payload: a whole text message (not yet checked for UTF-8)
        binary,  // payload: a whole binary message
        ping,    // payload: the ping's application data, to echo in a pong
        pong,    // payload: the pong's data
        close,   // the client's close: code (kWsCloseNoStatus if it sent none), payload: reason
        error,   // code: the close code to send, reason: why (one line)
    } kind = Kind::none;
    std::string_view payload;  // valid until the next read() or release()
    int code = 0;
    std::string reason;
};

class WsReader {
 public:
    explicit WsReader(size_t max_message) : max_(max_message) {}

    // Takes bytes from the start of `in` up to the end of the next event (or all of them) and
    // returns how many it took; *ev is that event, or Kind::none.
    size_t read(std::string_view in, WsEvent *ev);

    // Frees the message buffer (call after handling a text or binary event).
    void release() { std::string().swap(message_); }

    // An error or a close frame was read: nothing more will be.
    bool done() const { return done_; }

 private:
    // The frame header read so far: it is complete once its length is header_length().
    size_t header_length() const;
    bool start_frame(WsEvent *ev);                           // the header is complete; false: *ev is an error
    bool check_first_bytes(WsEvent *ev);                     // the first two bytes are in; false: *ev is an error
    bool end_frame(WsEvent *ev);                             // the payload is complete; true: *ev is set
    void refuse(WsEvent *ev, int code, std::string reason);  // sets *ev to the error, done

    size_t max_;
    bool done_ = false;
    std::array<unsigned char, 14> header_{};  // at most 2 + 8 (length) + 4 (mask key)
    size_t header_len_ = 0;
    bool in_payload_ = false;
    unsigned opcode_ = 0;  // of the frame being read
    bool fin_ = false;
    uint64_t remaining_ = 0;  // payload bytes of the frame still to read
    std::array<unsigned char, 4> mask_{};
    size_t mask_at_ = 0;           // payload bytes unmasked so far in this frame
    unsigned message_opcode_ = 0;  // text or binary while a message is unfinished, else 0
    std::string message_;          // the unfinished (or last reported) message, unmasked
    bool message_reported_ = false;
    std::array<char, 125> control_{};
    size_t control_len_ = 0;
};

}  // namespace psdm
