// WebSocket framing (RFC 6455 section 5): the opcodes and close codes the worker uses, and
// the server-to-client frames it writes. Pure.
//
// The worker frames each outgoing message itself, once, so that the same bytes can go
// to every recipient and several queued messages can leave in one write (see
// Server::on_writeable). Server frames are never masked, so the header depends only
// on the opcode and the payload length. What clients send is read by sio/ws_reader.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace psdm {

// Opcodes (section 5.2).
constexpr unsigned kWsOpContinuation = 0x0;
constexpr unsigned kWsOpText = 0x1;
constexpr unsigned kWsOpBinary = 0x2;
constexpr unsigned kWsOpClose = 0x8;
constexpr unsigned kWsOpPing = 0x9;
constexpr unsigned kWsOpPong = 0xA;

// Close codes (section 7.4.1) the worker sends or reads.
constexpr int kWsCloseNormal = 1000;           // client asked to close; ping timeout
constexpr int kWsCloseGoingAway = 1001;        // the worker stops
constexpr int kWsCloseProtocolError = 1002;    // a frame or packet that breaks the protocol
constexpr int kWsCloseUnsupportedData = 1003;  // binary messages
constexpr int kWsCloseNoStatus = 1005;         // never sent: a close frame without a code
constexpr int kWsCloseInvalidPayload = 1007;   // a text message that is not valid UTF-8
constexpr int kWsCloseTooBig = 1009;           // a message longer than max_payload
constexpr int kWsCloseInternalError = 1011;    // the server failed (an exception at the C boundary)

// Longest payload of a control frame (section 5.5), and of a close frame's reason.
constexpr size_t kWsMaxControlPayload = 125;
constexpr size_t kWsMaxCloseReason = kWsMaxControlPayload - 2;

constexpr size_t kWsMaxHeader = 10;

// Writes the header of one final, unmasked frame of `opcode` carrying `payload_len` bytes
// into out[0..9]; returns its length: 2, 4 or 10 bytes.
inline size_t ws_frame_header(unsigned opcode, uint64_t payload_len, unsigned char out[kWsMaxHeader]) {
    out[0] = static_cast<unsigned char>(0x80 | (opcode & 0x0f));  // FIN | opcode
    if (payload_len < 126) {
        out[1] = static_cast<unsigned char>(payload_len);
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = static_cast<unsigned char>(payload_len >> 8);
        out[3] = static_cast<unsigned char>(payload_len);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = static_cast<unsigned char>(payload_len >> (56 - 8 * i));
    return 10;
}

// The header of one final text frame.
inline size_t ws_text_frame_header(uint64_t payload_len, unsigned char out[kWsMaxHeader]) {
    return ws_frame_header(kWsOpText, payload_len, out);
}

// A complete frame: header followed by the payload.
inline std::string ws_frame(unsigned opcode, std::string_view payload) {
    unsigned char hdr[kWsMaxHeader];
    size_t n = ws_frame_header(opcode, payload.size(), hdr);
    std::string out;
    out.reserve(n + payload.size());
    out.append(reinterpret_cast<const char *>(hdr), n);
    out.append(payload);
    return out;
}

inline std::string ws_text_frame(std::string_view payload) { return ws_frame(kWsOpText, payload); }

// A close frame with `code` and as much of `reason` as fits (kWsMaxCloseReason bytes, cut
// at a UTF-8 character boundary).
inline std::string ws_close_frame(int code, std::string_view reason) {
    if (reason.size() > kWsMaxCloseReason) {
        size_t n = kWsMaxCloseReason;
        while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xc0) == 0x80) n--;  // not inside a character
        reason = reason.substr(0, n);
    }
    std::string payload;
    payload += static_cast<char>((code >> 8) & 0xff);
    payload += static_cast<char>(code & 0xff);
    payload.append(reason);
    return ws_frame(kWsOpClose, payload);
}

}  // namespace psdm
