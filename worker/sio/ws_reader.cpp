// WsReader: see ws_reader.h.
#include "sio/ws_reader.h"

#include <algorithm>

#include "base/json.h"
#include "sio/ws_frame.h"

namespace psdm {

namespace {

bool is_control(unsigned opcode) { return (opcode & 0x8) != 0; }

// The codes a close frame may carry (RFC 6455 7.4.1 and the IANA registry): the defined
// ones an endpoint may send, and the ranges for libraries (3000-3999) and applications
// (4000-4999). 1005, 1006 and 1015 are for reporting only, never sent.
bool close_code_ok(int code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

}  // namespace

void WsReader::refuse(WsEvent *ev, int code, std::string reason) {
    done_ = true;
    ev->kind = WsEvent::Kind::error;
    ev->code = code;
    ev->reason = std::move(reason);
}

size_t WsReader::header_length() const {
    if (header_len_ < 2) return 2;
    const unsigned len7 = header_[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

bool WsReader::check_first_bytes(WsEvent *ev) {
    const unsigned b0 = header_[0], b1 = header_[1];
    opcode_ = b0 & 0x0f;
    fin_ = (b0 & 0x80) != 0;
    if (b0 & 0x70) {
        refuse(ev, kWsCloseProtocolError, "reserved bits set in a frame header");
        return false;
    }
    if (!(b1 & 0x80)) {
        refuse(ev, kWsCloseProtocolError, "unmasked client frame");
        return false;
    }
    switch (opcode_) {
    case kWsOpContinuation:
        if (message_opcode_ == 0) {
            refuse(ev, kWsCloseProtocolError, "continuation frame without a message to continue");
            return false;
        }
        break;
    case kWsOpText:
    case kWsOpBinary:
        if (message_opcode_ != 0) {
            refuse(ev, kWsCloseProtocolError, "new message before the previous one ended");
            return false;
        }
        break;
    case kWsOpClose:
    case kWsOpPing:
    case kWsOpPong:
        if (!fin_) {
            refuse(ev, kWsCloseProtocolError, "fragmented control frame");
            return false;
        }
        if ((b1 & 0x7f) > kWsMaxControlPayload) {
            refuse(ev, kWsCloseProtocolError, "control frame longer than 125 bytes");
            return false;
        }
        break;
    default: refuse(ev, kWsCloseProtocolError, "unknown opcode " + std::to_string(opcode_)); return false;
    }
    return true;
}

bool WsReader::start_frame(WsEvent *ev) {
    const unsigned len7 = header_[1] & 0x7f;
    size_t at = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t{header_[2]} << 8) | header_[3];
        at = 4;
    } else if (len7 == 127) {
        if (header_[2] & 0x80) {
            refuse(ev, kWsCloseProtocolError, "frame length with its most significant bit set");
            return false;
        }
        len = 0;
        for (size_t i = 0; i < 8; i++) len = (len << 8) | header_[2 + i];
        at = 10;
    }
    std::copy_n(header_.begin() + static_cast<std::ptrdiff_t>(at), 4, mask_.begin());
    if (is_control(opcode_)) {
        if (opcode_ == kWsOpClose && len == 1) {
            refuse(ev, kWsCloseProtocolError, "close frame with a 1-byte payload");
            return false;
        }
        control_len_ = 0;
    } else {
        if (opcode_ != kWsOpContinuation) {
            message_opcode_ = opcode_;
            if (message_reported_) message_.clear();  // the last message was handled (not released)
            message_reported_ = false;
        }
        if (len > max_ - message_.size()) {
            release();
            refuse(ev, kWsCloseTooBig, "message longer than max_payload (" + std::to_string(max_) + " bytes)");
            return false;
        }
        message_.reserve(message_.size() + static_cast<size_t>(len));
    }
    remaining_ = len;
    mask_at_ = 0;
    return true;
}

bool WsReader::end_frame(WsEvent *ev) {
    switch (opcode_) {
    case kWsOpPing:
    case kWsOpPong:
        ev->kind = opcode_ == kWsOpPing ? WsEvent::Kind::ping : WsEvent::Kind::pong;
        ev->payload = std::string_view(control_.data(), control_len_);
        return true;
    case kWsOpClose: {
        int code = kWsCloseNoStatus;
        std::string_view reason;
        if (control_len_ >= 2) {
            code = (static_cast<unsigned char>(control_[0]) << 8) | static_cast<unsigned char>(control_[1]);
            reason = std::string_view(control_.data() + 2, control_len_ - 2);
            if (!close_code_ok(code)) {
                refuse(ev, kWsCloseProtocolError, "close frame with code " + std::to_string(code));
                return true;
            }
            if (!utf8_valid(reason)) {
                refuse(ev, kWsCloseInvalidPayload, "close reason is not valid UTF-8");
                return true;
            }
        }
        done_ = true;
        ev->kind = WsEvent::Kind::close;
        ev->code = code;
        ev->payload = reason;
        return true;
    }
    default:
        if (!fin_) return false;
        ev->kind = message_opcode_ == kWsOpText ? WsEvent::Kind::text : WsEvent::Kind::binary;
        ev->payload = message_;
        message_opcode_ = 0;
        message_reported_ = true;
        return true;
    }
}

size_t WsReader::read(std::string_view in, WsEvent *ev) {
    ev->kind = WsEvent::Kind::none;
    if (done_) return in.size();
    size_t used = 0;
    while (used < in.size()) {
        if (!in_payload_) {
            header_[header_len_++] = static_cast<unsigned char>(in[used++]);
            if (header_len_ == 2 && !check_first_bytes(ev)) return in.size();
            if (header_len_ < header_length()) continue;
            header_len_ = 0;
            if (!start_frame(ev)) return in.size();
            in_payload_ = remaining_ > 0;
            if (!in_payload_ && end_frame(ev)) return done_ ? in.size() : used;
            continue;
        }
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - used));
        char *to;
        if (is_control(opcode_)) {
            to = control_.data() + control_len_;
            control_len_ += n;
        } else {
            const size_t old = message_.size();
            message_.resize(old + n);
            to = &message_[old];
        }
        for (size_t i = 0; i < n; i++, mask_at_++) to[i] = static_cast<char>(in[used + i] ^ mask_[mask_at_ & 3]);
        used += n;
        remaining_ -= n;
        if (remaining_ > 0) break;
        in_payload_ = false;
        if (end_frame(ev)) return done_ ? in.size() : used;
    }
    return used;
}

}  // namespace psdm
