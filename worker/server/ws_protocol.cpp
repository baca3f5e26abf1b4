#include "server/ws_protocol.h"

#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "server/handoff_server.h"
#include "server/kafka_bridge.h"
#include "base/c_boundary.h"
#include "base/log.h"
#include "server/server.h"
#include "sio/sio_codec.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-WS";

// Per-connection data that lws allocates (zeroed) for us: only a pointer.
struct Pss {
    Client *client;
};

WorkerContext *worker_of(struct lws *wsi) {
    return static_cast<WorkerContext *>(lws_context_user(lws_get_context(wsi)));
}

// Any path that ends in /socket.io/ (the prefix is the application's location).
bool is_socketio_path(std::string_view path) {
    constexpr std::string_view kSuffix = "/socket.io/";
    constexpr std::string_view kSuffixNoSlash = "/socket.io";
    auto ends_with = [&](std::string_view s) {
        return path.size() >= s.size() && path.substr(path.size() - s.size()) == s;
    };
    return ends_with(kSuffix) || ends_with(kSuffixNoSlash);
}

// The request's query string, re-joined from lws's fragments: "EIO=4&transport=websocket".
std::string query_of(struct lws *wsi) {
    std::string q;
    char buf[256];
    for (int i = 0; i < 16; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;
        if (!q.empty()) q += '&';
        q.append(buf, static_cast<size_t>(n));
    }
    return q;
}

std::string path_of(struct lws *wsi) {
    char buf[1024];
    int n = lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_GET_URI);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Answers a plain HTTP request with a small JSON error, as Engine.IO servers do
// ({"code":0,"message":"Transport unknown"} for polling). Returns the callback result.
int http_error(struct lws *wsi, unsigned status, int code, const char *message) {
    char body[256];
    int blen = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, message);
    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, status, "application/json", static_cast<lws_filepos_t>(blen), &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    std::memcpy(start, body, static_cast<size_t>(blen));
    if (lws_write(wsi, start, static_cast<size_t>(blen), LWS_WRITE_HTTP_FINAL) != blen) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

// Checks an upgrade before lws completes it. Returns 0 to accept.
int on_filter(struct lws *wsi) {
    WorkerContext *w = worker_of(wsi);
    std::string path = path_of(wsi);
    if (!is_socketio_path(path)) {
        PSDM_LOG_INFO(kTag, "refused upgrade: path '%s' does not end in /socket.io/", path.c_str());
        return -1;
    }
    HandshakeQuery hq = parse_handshake_query(query_of(wsi));
    if (!hq.ok) {
        PSDM_LOG_INFO(kTag, "refused upgrade at '%s': %s", path.c_str(), hq.error.c_str());
        return -1;
    }
    if (!w->server->has_capacity()) {
        PSDM_LOG_WARN(kTag, "refused upgrade: at capacity (%zu connections)", w->server->client_count());
        return -1;
    }
    return 0;
}

int on_http(struct lws *wsi, const char *uri) {
    std::string_view path(uri ? uri : "");
    if (!is_socketio_path(path)) return http_error(wsi, HTTP_STATUS_NOT_FOUND, 0, "Not found");
    HandshakeQuery hq = parse_handshake_query(query_of(wsi));
    if (!hq.ok) {
        PSDM_LOG_INFO(kTag, "refused HTTP request at '%.*s': %s", static_cast<int>(path.size()), path.data(),
                      hq.error.c_str());
        return http_error(wsi, HTTP_STATUS_BAD_REQUEST, hq.code, hq.error.c_str());
    }
    // A websocket query on a plain GET: the upgrade headers are missing.
    return http_error(wsi, HTTP_STATUS_BAD_REQUEST, 3, "Bad request");
}

// Connections on the handoff vhost were handed over by Apache and carry the identity
// it authenticated; connections on the direct `listen` vhost are anonymous. A
// client can never choose which: the vhost is decided by how its socket arrived.
int on_established(struct lws *wsi, Pss *pss) {
    WorkerContext *w = worker_of(wsi);
    Identity who;
    if (w->handoff && lws_get_vhost(wsi) == w->handoff_vhost) {
        std::optional<Identity> handed = w->handoff->take_identity(wsi);
        if (!handed) {
            PSDM_LOG_ERROR(kTag, "a handed-over connection has no identity; closing it");
            return -1;
        }
        who = std::move(*handed);
    }
    HandshakeQuery hq = parse_handshake_query(query_of(wsi));
    pss->client = w->server->on_established(wsi, hq.version, std::move(who));
    return 0;
}

// Every callback below is called by lws (C): its C++ work runs through the C boundary
// (base/c_boundary.h). An exception in a connection's callback closes that connection
// (-1); in the callbacks of the Kafka pipe, the handoff listener and the loop's wake-up
// it is logged and the worker carries on.
int socketio_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    auto *pss = static_cast<Pss *>(user);
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return guarded_or("lws psdm-socketio FILTER_PROTOCOL_CONNECTION", -1, [&] { return on_filter(wsi); });
    case LWS_CALLBACK_ESTABLISHED:
        return guarded_or("lws psdm-socketio ESTABLISHED", -1, [&] { return on_established(wsi, pss); });
    case LWS_CALLBACK_RECEIVE:
        if (!pss->client) return -1;
        return guarded_or("lws psdm-socketio RECEIVE", -1, [&] {
            return worker_of(wsi)->server->on_receive(pss->client, static_cast<const char *>(in), len,
                                                      lws_is_first_fragment(wsi), lws_is_final_fragment(wsi),
                                                      lws_frame_is_binary(wsi), lws_remaining_packet_payload(wsi));
        });
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!pss->client) return 0;
        return guarded_or("lws psdm-socketio SERVER_WRITEABLE", -1,
                          [&] { return worker_of(wsi)->server->on_writeable(pss->client); });
    case LWS_CALLBACK_CLOSED:
        if (pss->client) guarded("lws psdm-socketio CLOSED", [&] { worker_of(wsi)->server->on_closed(pss->client); });
        pss->client = nullptr;
        return 0;
    case LWS_CALLBACK_HTTP:
        return guarded_or("lws psdm-socketio HTTP", -1, [&] { return on_http(wsi, static_cast<const char *>(in)); });
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        // lws_cancel_service() woke the loop (authorizer answers from its thread, or a
        // signal); lws calls this once per vhost, and on_wake() is idempotent.
        guarded("lws EVENT_WAIT_CANCELLED", [&] { worker_of(wsi)->server->on_wake(); });
        return 0;
    case LWS_CALLBACK_WSI_DESTROY: {
        // lws tells protocols[0] of its vhost about every wsi it frees, whatever its
        // protocol: a handed-over connection that never took its identity drops it here.
        WorkerContext *w = worker_of(wsi);
        if (w->handoff && lws_get_vhost(wsi) == w->handoff_vhost) w->handoff->forget_identity(wsi);
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

// The raw protocols (Kafka pipe, handoff socket) share the vhosts' protocol list, so a
// client naming one in Sec-WebSocket-Protocol would have lws bind its upgrade to it: a
// websocket nobody serves, counts or times out (and, handed over, one that never takes
// its identity). Such upgrades are refused; everything else goes to lws's default.
int raw_protocol_default(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) {
        const struct lws_protocols *p = lws_get_protocol(wsi);
        PSDM_LOG_INFO(kTag, "refused upgrade: it asks for the internal protocol '%s'", p && p->name ? p->name : "?");
        return -1;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int handoff_listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {
        guarded("lws psdm-handoff RAW_RX_FILE", [&] { worker_of(wsi)->handoff->on_listener_readable(); });
        return 0;
    }
    return raw_protocol_default(wsi, reason, user, in, len);
}

int handoff_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    auto *hc = static_cast<HandoffConn *>(lws_get_opaque_user_data(wsi));
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!hc) return -1;
        return guarded_or("lws psdm-handoff-conn RAW_RX_FILE", -1,
                          [&] { return worker_of(wsi)->handoff->on_conn_readable(wsi, hc); });
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (hc) guarded("lws psdm-handoff-conn RAW_CLOSE_FILE", [&] { worker_of(wsi)->handoff->on_conn_closed(hc); });
        lws_set_opaque_user_data(wsi, nullptr);
        return 0;
    default: return raw_protocol_default(wsi, reason, user, in, len);
    }
}

int kafka_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        guarded("lws psdm-kafka RAW_RX_FILE", [&] { worker_of(wsi)->bridge->on_readable(); });
        return 0;
    default: return raw_protocol_default(wsi, reason, user, in, len);
    }
}

// rx_buffer_size is small on purpose: lws gives each connection a receive buffer of
// this size, and clients send only tiny packets (join, pong). Larger frames arrive in
// pieces and are reassembled by Server::on_receive.
const struct lws_protocols kProtocols[] = {
    {"psdm-socketio", socketio_callback, sizeof(Pss), 512, 0, nullptr, 0},
    {KafkaBridge::kKafkaProtocolName, kafka_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kListenerProtocol, handoff_listener_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kConnProtocol, handoff_conn_callback, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

const struct lws_protocols *worker_protocols() { return kProtocols; }

}  // namespace psdm
