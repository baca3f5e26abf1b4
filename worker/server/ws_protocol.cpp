#include "server/ws_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

WorkerContext *worker_of(struct lws *wsi) {
    return static_cast<WorkerContext *>(lws_context_user(lws_get_context(wsi)));
}

Client *client_of(struct lws *wsi) { return static_cast<Client *>(lws_get_opaque_user_data(wsi)); }

// Every callback below is called by lws (C): its C++ work runs through the C boundary
// (base/c_boundary.h). An exception in a connection's callback closes that connection
// (-1); in the callbacks of the Kafka pipe, the handoff listener and the loop's wake-up
// it is logged and the worker carries on.
//
// The Socket.IO connections are raw sockets to lws: the worker wrote their 101 itself
// (accept_websocket) and reads and writes their frames itself (Server). A connection whose
// Client is not set yet (inside the adopt call) or no more has nothing to do.
int socketio_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT: return 0;  // accept_websocket creates the Client after this
    case LWS_CALLBACK_RAW_RX: {
        Client *c = client_of(wsi);
        if (!c) return -1;
        return guarded_or("lws psdm-socketio RAW_RX", -1, [&] {
            worker_of(wsi)->server->on_receive(c, std::string_view(static_cast<const char *>(in), len));
            return 0;
        });
    }
    case LWS_CALLBACK_RAW_WRITEABLE: {
        Client *c = client_of(wsi);
        if (!c) return 0;
        return guarded_or("lws psdm-socketio RAW_WRITEABLE", -1,
                          [&] { return worker_of(wsi)->server->on_writeable(c); });
    }
    case LWS_CALLBACK_RAW_CLOSE: {
        Client *c = client_of(wsi);
        lws_set_opaque_user_data(wsi, nullptr);
        if (c) guarded("lws psdm-socketio RAW_CLOSE", [&] { worker_of(wsi)->server->on_closed(c); });
        return 0;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        // lws_cancel_service() woke the loop (authorizer answers from its thread, or a
        // signal); lws calls this once per vhost, and on_wake() is idempotent.
        guarded("lws EVENT_WAIT_CANCELLED", [&] { worker_of(wsi)->server->on_wake(); });
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

int handoff_listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {
        guarded("lws psdm-handoff RAW_RX_FILE", [&] { worker_of(wsi)->handoff->on_listener_readable(); });
        return 0;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
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
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
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
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
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

// rx_buffer_size is small on purpose: clients send only tiny packets (join, pong); larger
// frames arrive in pieces and are reassembled by the client's WsReader.
const struct lws_protocols kProtocols[] = {
    {kSocketIoProtocol, socketio_callback, 0, 512, 0, nullptr, 0},
    {KafkaBridge::kKafkaProtocolName, kafka_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kListenerProtocol, handoff_listener_callback, 0, 0, 0, nullptr, 0},
    {HandoffServer::kConnProtocol, handoff_conn_callback, 0, 0, 0, nullptr, 0},
    {DirectAcceptor::kProtocol, direct_callback, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

const struct lws_protocols *worker_protocols() { return kProtocols; }

bool accept_websocket(WorkerContext &w, struct lws_vhost *vh, int fd, const UpgradeRequest &request, EioVersion v,
                      std::string_view early_data, Identity who, std::string peer, Via via) {
    // A fresh connection's send buffer takes the ~150 bytes at once; one that does not is
    // already gone.
    const std::string answer = ws_accept_answer_bytes(request);
    if (send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(answer.size())) {
        PSDM_LOG_DEBUG(kTag, "a client went away before its 101: %s", strerror(errno));
        ::close(fd);
        return false;
    }
    lws_adopt_desc_t desc{};
    desc.vh = vh;
    desc.type = LWS_ADOPT_SOCKET;  // without LWS_ADOPT_HTTP: a raw socket, lws parses nothing
    desc.fd.sockfd = fd;
    desc.vh_prot_name = kSocketIoProtocol;
    struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&desc);
    if (!wsi) {  // lws closed fd
        PSDM_LOG_WARN(kTag, "lws could not take a websocket connection");
        return false;
    }
    Client *c = w.server->on_established(wsi, v, std::move(who), std::move(peer), via);
    lws_set_opaque_user_data(wsi, c);
    if (!early_data.empty()) w.server->on_receive(c, early_data);
    return true;
}

}  // namespace psdm
