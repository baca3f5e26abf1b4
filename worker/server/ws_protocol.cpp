#include "server/ws_protocol.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/c_boundary.h"
#include "base/log.h"
#include "server/direct_acceptor.h"
#include "server/handoff_server.h"
#include "server/kafka_bridge.h"
#include "server/server.h"
#include "sio/sio_codec.h"
#include "sio/ws_handshake.h"

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

// The value of a header lws parsed, or nullopt when absent or empty.
std::optional<std::string> header(struct lws *wsi, enum lws_token_indexes token) {
    const int n = lws_hdr_total_length(wsi, token);
    if (n <= 0) return std::nullopt;
    std::string v(static_cast<size_t>(n) + 1, '\0');
    const int got = lws_hdr_copy(wsi, &v[0], n + 1, token);
    if (got < 0) return std::nullopt;
    v.resize(static_cast<size_t>(got));
    return v;
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

// lws's view of a request (URI decoded and normalized by lws), for the rules of
// sio/ws_handshake.h; `view` points into the strings here.
struct LwsRequest {
    std::string method, path, query, http_version;
    std::optional<std::string> host, upgrade, connection, key, version, protocol;
    UpgradeRequest view;

    explicit LwsRequest(struct lws *wsi) {
        static const struct {
            enum lws_token_indexes token;
            const char *name;
        } kMethods[] = {{WSI_TOKEN_GET_URI, "GET"},         {WSI_TOKEN_POST_URI, "POST"},
                        {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}, {WSI_TOKEN_PUT_URI, "PUT"},
                        {WSI_TOKEN_PATCH_URI, "PATCH"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
                        {WSI_TOKEN_HEAD_URI, "HEAD"},       {WSI_TOKEN_CONNECT, "CONNECT"}};
        method = "?";
        for (const auto &m : kMethods) {
            if (std::optional<std::string> uri = header(wsi, m.token)) {
                method = m.name;
                path = std::move(*uri);
                break;
            }
        }
        query = query_of(wsi);
        http_version = header(wsi, WSI_TOKEN_HTTP).value_or("");
        host = header(wsi, WSI_TOKEN_HOST);
        upgrade = header(wsi, WSI_TOKEN_UPGRADE);
        connection = header(wsi, WSI_TOKEN_CONNECTION);
        key = header(wsi, WSI_TOKEN_KEY);
        version = header(wsi, WSI_TOKEN_VERSION);
        protocol = header(wsi, WSI_TOKEN_PROTOCOL);
        view.method = method;
        view.http_version = http_version;
        view.path = path;
        view.query = query;
        for (auto [from, to] : {std::pair{&host, &view.host}, std::pair{&upgrade, &view.upgrade},
                                std::pair{&connection, &view.connection}, std::pair{&key, &view.key},
                                std::pair{&version, &view.version}, std::pair{&protocol, &view.protocol}})
            if (*from) *to = std::string_view(**from);
    }
    LwsRequest(const LwsRequest &) = delete;
    LwsRequest &operator=(const LwsRequest &) = delete;
};

// Writes a refusal on an HTTP connection of lws, with one log line; returns -1 for the
// callback, so that lws closes the connection (after a lingering close: it shuts down its
// side and drops what the client still sends, lib/core-net/close.c).
int refuse(struct lws *wsi, const HttpAnswer &a) {
    char peer[64];
    const char *client = lws_get_peer_simple(wsi, peer, sizeof peer);
    const bool handed = worker_of(wsi)->handoff && lws_get_vhost(wsi) == worker_of(wsi)->handoff_vhost;
    log_refused_upgrade(a, client ? client : "?", handed);
    const std::string bytes = http_answer_bytes(a);
    std::string buf(LWS_PRE, '\0');
    buf += bytes;
    auto *start = reinterpret_cast<unsigned char *>(&buf[LWS_PRE]);
    if (lws_write(wsi, start, bytes.size(), LWS_WRITE_HTTP_HEADERS) != static_cast<int>(bytes.size()))
        PSDM_LOG_DEBUG(kTag, "the refusal could not be written whole");
    return -1;
}

// Every upgrade lws parses (handed over by Apache, or replayed by the DirectAcceptor) is
// checked here, before lws answers it: refused with a status, never with a bare close.
int on_confirm_upgrade(struct lws *wsi) {
    Server &server = *worker_of(wsi)->server;
    const LwsRequest r(wsi);
    HttpAnswer verdict = check_upgrade(r.view);
    if (verdict.accepted() && !server.has_capacity()) verdict = http_refusal_at_capacity(server.client_count());
    return verdict.accepted() ? 0 : refuse(wsi, verdict);
}

// A plain HTTP request (no upgrade): what Engine.IO answers for what is not served here,
// {"code":0,"message":"transport unknown"} for polling, 404 off the Socket.IO path, else
// {"code":3,"message":"Bad request"} (check_upgrade refuses any request without Upgrade).
int on_http(struct lws *wsi) {
    const LwsRequest r(wsi);
    return refuse(wsi, check_upgrade(r.view));
}

// Connections on the handoff vhost were handed over by Apache and carry the identity
// it authenticated; connections on the direct `listen` vhost are anonymous. A
// client can never choose which: the vhost is decided by how its socket arrived (and
// the two vhosts have different port values, so that lws never moves a connection from
// one to the other by its Host header: main.cpp).
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
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return guarded_or("lws psdm-socketio HTTP_CONFIRM_UPGRADE", -1, [&] { return on_confirm_upgrade(wsi); });
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return 0;  // checked in HTTP_CONFIRM_UPGRADE
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
    case LWS_CALLBACK_HTTP: return guarded_or("lws psdm-socketio HTTP", -1, [&] { return on_http(wsi); });
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

// The raw protocols (Kafka pipe, handoff socket, direct port) share the vhosts' protocol
// list, so a client naming one in Sec-WebSocket-Protocol would have lws bind its upgrade to
// it: a websocket nobody serves, counts or times out (and, handed over, one that never takes
// its identity). check_upgrade refuses such upgrades with a 400 (HTTP_CONFIRM_UPGRADE comes
// first); this refusal stays as the last line. Everything else goes to lws's default.
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

// The callback of a raw file the worker watches (the Kafka wake-up pipe, the direct port's
// epoll set): `readable` runs at the C boundary when it is readable, `closed` (if any) when
// lws closes it.
int raw_file(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len, const char *what,
             void (*readable)(WorkerContext &), void (*closed)(WorkerContext &)) {
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: guarded(what, [&] { readable(*worker_of(wsi)); }); return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (closed) closed(*worker_of(wsi));
        return 0;
    default: return raw_protocol_default(wsi, reason, user, in, len);
    }
}

int direct_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    return raw_file(
        wsi, reason, user, in, len, "lws psdm-direct RAW_RX_FILE", [](WorkerContext &w) { w.direct->on_readable(); },
        [](WorkerContext &w) { w.direct->on_closed(); });
}

int kafka_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    return raw_file(
        wsi, reason, user, in, len, "lws psdm-kafka RAW_RX_FILE", [](WorkerContext &w) { w.bridge->on_readable(); },
        nullptr);
}

// rx_buffer_size is small on purpose: lws gives each connection a receive buffer of
// this size, and clients send only tiny packets (join, pong). Larger frames arrive in
// pieces and are reassembled by Server::on_receive.
const struct lws_protocols kProtocols[] = {
    {kSocketIoSubprotocol.data(), socketio_callback, sizeof(Pss), 512, 0, nullptr, 0},
    {KafkaBridge::kKafkaProtocolName, kafka_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kListenerProtocol, handoff_listener_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kConnProtocol, handoff_conn_callback, 0, 0, 0, nullptr, 0},
    {DirectAcceptor::kProtocol, direct_callback, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

// check_upgrade refuses a Sec-WebSocket-Protocol that asks for a protocol name starting with
// kInternalProtocolPrefix other than the Socket.IO one: every internal name must start so.
constexpr bool internal_name(std::string_view name) {
    return name.substr(0, kInternalProtocolPrefix.size()) == kInternalProtocolPrefix;
}
static_assert(internal_name(KafkaBridge::kKafkaProtocolName) && internal_name(HandoffServer::kListenerProtocol) &&
                  internal_name(HandoffServer::kConnProtocol) && internal_name(DirectAcceptor::kProtocol),
              "an lws protocol name of the worker that check_upgrade would not refuse");

}  // namespace

const struct lws_protocols *worker_protocols() { return kProtocols; }

}  // namespace psdm
