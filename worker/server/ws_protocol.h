// The libwebsockets protocols of the worker: a thin dispatcher from lws callbacks to
// Server (websocket clients), KafkaBridge (the Kafka wake-up fd), HandoffServer (Apache's
// handoff socket) and DirectAcceptor (the `listen` port until the handshake). Every upgrade
// lws parses is checked against sio/ws_handshake.h in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE and
// refused there with an HTTP status.
//
// The lws context's user pointer must be a WorkerContext for these callbacks.
#pragma once

#include <libwebsockets.h>

namespace psdm {

class Server;
class KafkaBridge;
class HandoffServer;
class DirectAcceptor;

struct WorkerContext {
    Server *server = nullptr;
    KafkaBridge *bridge = nullptr;
    HandoffServer *handoff = nullptr;           // null without handoff_socket
    struct lws_vhost *handoff_vhost = nullptr;  // where handed-over connections live
    DirectAcceptor *direct = nullptr;           // null without listen
};

// Protocol list for the worker's vhost, terminated; [0] is the Socket.IO protocol,
// which lws uses for every upgrade that names no subprotocol.
const struct lws_protocols *worker_protocols();

}  // namespace psdm
