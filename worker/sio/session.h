// One websocket connection's Engine.IO / Socket.IO state machine, transport-free.
//
// The caller (the lws event loop) feeds it received text frames and clock ticks; the Session
// answers with actions to perform, in order: frames to send, room joins/leaves to request, or a
// close. It never touches sockets, rooms or Kafka, and it never logs. It keeps no list of
// rooms: which rooms a connection is in, and whether it may be, is fanout/membership.h's.
//
//   Session s(version, limits, sid, now);
//   s.on_open(out);                      // once, right after the websocket is established
//   s.on_text(frame, now, out);          // each received text message
//   s.on_tick(now, out);                 // whenever now >= s.next_deadline_ms()
//
// After a close action has been emitted the Session is inert: further calls emit nothing and
// next_deadline_ms() returns INT64_MAX. The caller closes the websocket with the given code and
// reason, and removes the connection from all rooms when the connection goes away (a close
// action does not come with a leave_all).
//
// Thread: a Session belongs to the thread of its connection; no internal locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"  // defaults::
#include "sio/sio_codec.h"
#include "sio/ws_frame.h"  // the close codes a close action carries

namespace psdm {

// Longest room name a client may join, in bytes.
constexpr size_t kMaxRoomBytes = 256;

// The room-name rule, the one check of every join and leave whatever the authorizer: 1 to
// kMaxRoomBytes bytes; no control character (C0 bytes, DEL, and the C1 code points U+0080 to
// U+009F); no '/'; not "." nor "..". UTF-8 validity is the JSON decoder's (json.h). Rooms go
// into logs, ACL matching and the http provider's URL path, where a '/' or a dot segment
// would change which path is asked (authz_http.h).
bool room_name_ok(std::string_view room);

struct SessionLimits {
    std::string ns = defaults::kNamespace;  // the namespace that carries room events
    unsigned ping_interval_ms = defaults::kPingIntervalMs;
    unsigned ping_timeout_ms = defaults::kPingTimeoutMs;
    size_t max_payload = defaults::kMaxPayload;  // longest accepted received frame, bytes
};

struct SessionAction {
    enum class Kind { send, join, leave, leave_all, close } kind = Kind::send;
    std::string text;                // send: the complete frame; join/leave: the room name
    std::optional<uint64_t> ack_id;  // join/leave: the ack id the client asked for, answered
                                     // later by the caller with join_ack()/leave_ack()
    // join: the JSON text of the event's second argument, the positions the client resumes
    // from (kafka/position.h), when it gave one; read by the caller, not here.
    std::optional<std::string> resume;
    int close_code = 0;  // close: websocket close code (kWsClose*)
    std::string reason;  // close: short reason (< 123 bytes) for log and close frame
};

class Session {
 public:
    // `sid` is the Engine.IO session id chosen by the caller (also used as the Socket.IO socket id
    // in v4 connect acks). `now_ms` starts the heartbeat clock (any monotonic millisecond clock).
    Session(EioVersion v, const SessionLimits &limits, std::string sid, int64_t now_ms);

    // Appends the Engine.IO open packet; for v3 also "40", the automatic connection to "/" that
    // Socket.IO v2 servers perform. Call once, before any on_text.
    void on_open(std::vector<SessionAction> &out);

    // Handles one received websocket text message (its frames reassembled); appends the
    // resulting actions. A message that is not valid UTF-8 (RFC 6455 section 8.1) closes with
    // kWsCloseInvalidPayload, one longer than max_payload with kWsCloseTooBig.
    void on_text(std::string_view frame, int64_t now_ms, std::vector<SessionAction> &out);

    // Heartbeat timers. v4: sends ping "2" every ping_interval and closes with "ping timeout" if
    // no pong "3" arrives within ping_timeout. v3: closes with "ping timeout" if no client ping
    // arrived for ping_interval + ping_timeout. Calling it early is harmless.
    void on_tick(int64_t now_ms, std::vector<SessionAction> &out);

    // The time at which on_tick must be called next (INT64_MAX once closed).
    int64_t next_deadline_ms() const;

    // The caller's answer to a join action with an ack id, on the configured namespace
    // (pure encoders, no state change):
    //   allowed: 43/ns,ID[]      refused: 43/ns,ID[{"error":"forbidden","room":"..."}]
    std::string join_ack(uint64_t ack_id, bool allowed, std::string_view room) const;
    //   43/ns,ID[{"error":"<error>"}]   e.g. "too many rooms", decided by the caller
    std::string error_ack(uint64_t ack_id, std::string_view error) const;
    // 43/ns,ID[]
    std::string leave_ack(uint64_t ack_id) const;
    // Any acknowledgement on the configured namespace: 43/ns,ID<json_args_array>.
    std::string ack(uint64_t ack_id, std::string_view json_args_array) const;

    // True while connected to the configured namespace (only then may it receive room events).
    bool in_namespace() const { return ns_connected_; }
    EioVersion version() const { return version_; }
    bool closed() const { return closed_; }
    const std::string &sid() const { return sid_; }

 private:
    void close(int code, std::string reason, std::vector<SessionAction> &out);
    void send(std::string frame, std::vector<SessionAction> &out);
    void on_ping(std::string_view data, int64_t now_ms, std::vector<SessionAction> &out);
    void on_pong(int64_t now_ms, std::vector<SessionAction> &out);
    void on_message(std::string_view payload, std::vector<SessionAction> &out);
    void on_connect(const SioPacket &p, std::vector<SessionAction> &out);
    void on_disconnect(const SioPacket &p, std::vector<SessionAction> &out);
    void on_event(const SioPacket &p, std::vector<SessionAction> &out);
    void on_room_request(bool join, const SioPacket &p, std::string_view room, bool room_valid,
                         std::vector<SessionAction> &out);
    void send_ack_error(const SioPacket &p, std::string_view error, std::vector<SessionAction> &out);

    EioVersion version_;
    SessionLimits limits_;
    std::string sid_;
    bool closed_ = false;
    bool root_connected_ = false;  // connected to "/"
    bool ns_connected_ = false;    // connected to limits_.ns

    // v4 heartbeat: the server pings.
    int64_t next_ping_at_ms_ = 0;
    bool awaiting_pong_ = false;
    int64_t pong_deadline_ms_ = 0;
    // v3 heartbeat: the client pings.
    int64_t ping_deadline_ms_ = 0;
};

}  // namespace psdm
