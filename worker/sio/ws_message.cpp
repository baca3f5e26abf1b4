// WsMessage: see ws_message.h.
#include "sio/ws_message.h"

namespace psdm {

WsMessage::Status WsMessage::feed(std::string_view piece, bool first, bool last, std::string_view *message) {
    if (first && last && buf_.empty()) {  // the common case: one piece, no copy
        if (piece.size() > max_) return Status::too_big;
        *message = piece;
        return Status::complete;
    }
    if (piece.size() > max_ - buf_.size()) {
        release();
        return Status::too_big;
    }
    buf_.append(piece);
    if (!last) return Status::partial;
    *message = buf_;
    return Status::complete;
}

void WsMessage::release() { std::string().swap(buf_); }

}  // namespace psdm
