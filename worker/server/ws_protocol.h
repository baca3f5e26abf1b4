// The libwebsockets protocols of the worker: a thin dispatcher from lws callbacks to
// Server (websocket clients), KafkaBridge (the Kafka wake-up fd), HandoffServer (Apache's
// handoff socket) and DirectAcceptor (the `listen` port until the handshake).
//
// lws is the event loop and carries sockets; it parses no HTTP and no WebSocket frame here.
// Every connection is a raw socket or raw file of lws: HandoffServer and DirectAcceptor read
// the upgrade request, Server::admit judges it, accept_websocket writes the 101 and gives the
// socket to lws, and the Client's WsReader (sio/ws_reader.h) reads its frames.
// Why not lws's own HTTP and WebSocket server (lws 4.1.6, checked in its source): it accepts
// unmasked client frames (lws_ws_rx_sm records the MASK bit and never refuses a frame
// without it); it builds its 101 in the buffer that still holds the bytes a client sent after
// its head, so frames sent with the upgrade were parsed as garbage (handshake_0405,
// lib/roles/ws/server-ws.c); and it fails a head it cannot parse with a bare close, not an
// HTTP status (lws_parse, lib/roles/http/parsers.c).
//
// The lws context's user pointer must be a WorkerContext for these callbacks.
#pragma once

#include <libwebsockets.h>

#include <string_view>

#include "authz/authz.h"
#include "server/server.h"
#include "sio/sio_codec.h"
#include "sio/ws_handshake.h"

namespace psdm {

class Server;
class KafkaBridge;
class HandoffServer;
class DirectAcceptor;

struct WorkerContext {
    Server *server = nullptr;
    KafkaBridge *bridge = nullptr;
    HandoffServer *handoff = nullptr;  // null without handoff_socket
    DirectAcceptor *direct = nullptr;  // null without listen
};

// The lws protocol of the websocket connections (raw sockets).
constexpr const char *kSocketIoProtocol = "psdm-socketio";

// Protocol list for the worker's vhosts, terminated.
const struct lws_protocols *worker_protocols();

// Takes over a client connection whose upgrade Server::admit accepted (`request` views its
// head, `v` is the verdict's Engine.IO version, `early_data` what the client sent after its
// head): writes the 101, has lws carry the socket on `vh` as a raw socket of
// kSocketIoProtocol, creates its Client with `who` (empty: anonymous), `peer` (the client's
// address, for logs) and `via`, and reads the early data as its first frames. Returns false
// when the client was gone before its 101 or lws could not take it. Either way `fd` is no
// longer the caller's.
bool accept_websocket(WorkerContext &w, struct lws_vhost *vh, int fd, const UpgradeRequest &request, EioVersion v,
                      std::string_view early_data, Identity who, std::string peer, Via via);

}  // namespace psdm
