// WebSocket framing of server-to-client text messages (RFC 6455 section 5.2), pure.
//
// The worker frames each outgoing message itself, once, so that the same bytes can go
// to every recipient and several queued messages can leave in one write (see
// Server::on_writeable). Server frames are never masked, so the header depends only
// on the payload length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace psdm {

constexpr size_t kWsMaxHeader = 10;

// Writes the header of one final text frame (FIN=1, opcode 1, unmasked) carrying
// `payload_len` bytes into out[0..9]; returns its length: 2, 4 or 10 bytes.
inline size_t ws_text_frame_header(uint64_t payload_len, unsigned char out[kWsMaxHeader]) {
    out[0] = 0x81;  // FIN | text
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

// The complete frame: header followed by the payload.
inline std::string ws_text_frame(std::string_view payload) {
    unsigned char hdr[kWsMaxHeader];
    size_t n = ws_text_frame_header(payload.size(), hdr);
    std::string out;
    out.reserve(n + payload.size());
    out.append(reinterpret_cast<const char *>(hdr), n);
    out.append(payload);
    return out;
}

}  // namespace psdm
