// The libwebsockets protocols of the worker: a thin dispatcher from lws callbacks to
// Server (websocket clients) and KafkaBridge (the Kafka wake-up fd).
//
// The lws context's user pointer must be a WorkerContext for these callbacks.
#pragma once

#include <libwebsockets.h>

namespace psdm {

class Server;
class KafkaBridge;
class HandoffServer;

struct WorkerContext {
    Server *server = nullptr;
    KafkaBridge *bridge = nullptr;
    HandoffServer *handoff = nullptr;           // null without handoff_socket
    struct lws_vhost *handoff_vhost = nullptr;  // where handed-over connections live
};

// Protocol list for the worker's vhost, terminated; [0] is the Socket.IO protocol,
// which lws uses for every upgrade that names no subprotocol.
const struct lws_protocols *worker_protocols();

}  // namespace psdm
