// Server: the worker's state on the event loop: connected clients, rooms, the
// authorizer, and fan-out of routed Kafka records.
//
// Thread: everything here runs on the lws service thread only. The lws callback
// (ws_protocol.cpp) is a thin dispatcher into these methods.
//
// Ownership: a Client is created by on_established() and destroyed by on_closed();
// lws's per-session data holds only the Client pointer. Rooms hold Client pointers
// as member ids and never outlive them (on_closed leaves every room first).
//
// Authorization: a client enters a room only after the authorizer said yes. When the
// rules change (SIGHUP: reload_authz) every membership is asked again, and those now
// refused are removed. When answers expire (the http provider's allow TTL), a timer
// re-asks every membership older than the TTL, every quarter TTL: a revoked user stops
// receiving within 1.25 x authz_allow_ttl_ms (plus the request time). A re-check that
// gets no answer keeps the membership until it is two TTLs old, then removes it.
//
// Heartbeats: one timer for the whole server, not one per connection. Each client's
// next heartbeat deadline (Session::next_deadline_ms) is kept in a TimerWheel; one lws
// sul ticks every kHeartbeatTickMs, advances the wheel and runs Session::on_tick for the
// clients whose deadline came. A client is re-armed only when its deadline changed;
// the wheel's stale entries (re-armed, or gone) are recognised by Client::armed_deadline
// and by_id_ and ignored. O(1) per arm, O(due) per tick, whatever the number of clients
// (lws 4.1 keeps its per-wsi timers in one sorted list: O(clients) per arm).
// Heartbeats are up to one tick late: Engine.IO intervals are seconds.
#pragma once

#include <libwebsockets.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"
#include "base/clock.h"
#include "base/config.h"
#include "fanout/outbox.h"
#include "fanout/rooms.h"
#include "kafka/routing.h"
#include "sio/session.h"
#include "base/timer_wheel.h"

struct lws;

namespace psdm {

struct Client {
    Client(uint64_t client_id, struct lws *w, EioVersion v, const SessionLimits &limits, std::string sid, Identity identity, size_t backlog,
           int64_t now_ms)
        : id(client_id), wsi(w), session(v, limits, std::move(sid), now_ms), outbox(backlog), who(std::move(identity)) {}

    uint64_t id;              // unique for the life of the process; names it in logs and async answers
    struct lws *wsi;
    Session session;
    Outbox outbox;
    Identity who;
    // Rooms whose membership expires (authorizer's revalidate_after_ms() > 0): room ->
    // when the authorizer last allowed it. Empty otherwise.
    std::unordered_map<std::string, int64_t> allowed_at;
    std::string rx_partial;   // a received message that arrived in several pieces
    // The heartbeat deadline this client has in the server's wheel (INT64_MAX: none).
    // Wheel entries with another deadline are stale and ignored.
    int64_t armed_deadline = INT64_MAX;
    bool closing = false;     // close requested: the next WRITEABLE closes it
    int close_code = 0;
    std::string close_reason;
};

struct ServerStats {
    uint64_t connections_total = 0;
    uint64_t refused_over_capacity = 0;
    uint64_t records_routed = 0;
    uint64_t deliveries = 0;
    uint64_t slow_consumers_closed = 0;
    uint64_t memberships_revoked = 0;  // removed by a re-check (reload, expiry)
};

class Server {
 public:
    Server(const Config &cfg, std::unique_ptr<Authorizer> authz, size_t max_connections);
    ~Server();

    // True if one more client may connect (max_connections, fd limit).
    bool has_capacity() const { return by_id_.size() < max_connections_; }

    // A websocket was established on `wsi`. Returns the new Client (owned by the
    // server until on_closed). Sends the Engine.IO open packet.
    Client *on_established(struct lws *wsi, EioVersion v, Identity who);

    // One piece of a received message. Returns -1 if the connection must close now.
    int on_receive(Client *c, const char *data, size_t len, bool first, bool final, bool binary,
                   size_t remaining_in_frame);

    // The socket can take one frame. Returns -1 to close the connection.
    int on_writeable(Client *c);

    // The connection is gone: leave every room, free the Client.
    void on_closed(Client *c);

    // Emits a routed Kafka record to its room and/or the global room. The frame is
    // encoded once and shared by every recipient. Returns the number of deliveries.
    size_t publish(const Route &route);

    // Bytes the Kafka bridge may publish per loop turn before it lets the clients'
    // writes run: a quarter of client_backlog (at most kCoalesceBytes, what one
    // write drains), so a client that keeps up never nears its backlog in a burst.
    size_t publish_budget_per_turn() const;

    // Starts the heartbeat timer on the loop of `context`. Before serving.
    void start_heartbeats(struct lws_context *context);
    // Before the lws context is destroyed: cancels it.
    void stop_heartbeats();
    // Clients whose heartbeat is armed in the wheel, and wheel entries (stale included).
    size_t heartbeat_entries() const { return wheel_.size(); }

    // Called from the loop whenever it is woken (after on_wake's own work): the worker's
    // main sets it to act on signals (stop, reload) on the loop thread.
    void set_wake_hook(std::function<void()> hook) { wake_hook_ = std::move(hook); }

    // Starts the authorizer (wakes the loop with lws_cancel_service) and, if its answers
    // expire, the re-check timer. Before serving. Returns false and sets *err.
    bool start_authz(struct lws_context *context, std::string *err);
    // The loop was woken (LWS_CALLBACK_EVENT_WAIT_CANCELLED): deliver authz answers.
    void on_wake();
    // SIGHUP: reload the rules, then re-check every membership. On a reload error the
    // old rules stay and nothing is re-checked (logged).
    void reload_authz();
    // Before the lws context is destroyed: stops the authorizer's threads and the timer.
    void stop_authz();
    const Authorizer &authorizer() const { return *authz_; }

    const ServerStats &stats() const { return stats_; }
    size_t client_count() const { return by_id_.size(); }
    const Config &config() const { return cfg_; }

 private:
    void apply(Client *c, std::vector<SessionAction> &actions);
    void on_join(Client *c, const std::string &room, std::optional<uint64_t> ack_id);
    void log_denial(const Client *c, const std::string &room, const AuthzDecision &d, const char *what);
    void recheck(uint64_t client_id, const std::string &room);
    void revoke(Client *c, const std::string &room, const AuthzDecision &d);
    void revalidate_due();
    static void on_revalidate_timer(lws_sorted_usec_list_t *sul);
    void enqueue(Client *c, FrameRef frame);
    bool push_frame(Client *c, FrameRef frame);  // false: over the client's backlog, not queued
    void close_slow_consumer(Client *c, size_t incoming_bytes);
    void send_text(Client *c, std::string_view text);
    void request_close(Client *c, int code, std::string reason);
    // Puts the client's next heartbeat deadline into the wheel if it changed.
    void arm_timer(Client *c);
    // A client's heartbeat deadline came: Session::on_tick, then re-arm.
    void on_timer(Client *c);
    static void on_heartbeat_timer(lws_sorted_usec_list_t *sul);
    size_t deliver_to_room(std::string_view room, const FrameRef &frame);

    const Config &cfg_;
    SessionLimits limits_;
    std::unique_ptr<Authorizer> authz_;
    struct lws_context *context_ = nullptr;
    int64_t revalidate_ms_ = 0;  // authz_->revalidate_after_ms(), 0 = no timer
    // lws timers hand back only the sul pointer: first member of a struct pointing back.
    struct RevalidateTimer {
        lws_sorted_usec_list_t sul;
        Server *self;
    } revalidate_timer_{};
    // Heartbeats: 100 ms ticks, 1024 slots (a 102.4 s horizon: ping interval + timeout
    // fit in one turn; longer deadlines wait for later turns).
    static constexpr int64_t kHeartbeatTickMs = 100;
    static constexpr size_t kHeartbeatSlots = 1024;
    TimerWheel wheel_;
    struct HeartbeatTimer {
        lws_sorted_usec_list_t sul;
        Server *self;
    } heartbeat_timer_{};
    bool heartbeats_running_ = false;
    std::function<void()> wake_hook_;
    Rooms rooms_;
    size_t max_connections_;
    uint64_t next_id_ = 0;
    ServerStats stats_;
    // Live clients by id: asynchronous answers (authorization) find their client here,
    // or learn that it has gone.
    std::unordered_map<uint64_t, Client *> by_id_;
    // Most bytes written to one client per WRITEABLE; the scratch buffer they are
    // gathered in (with LWS_PRE headroom) is shared by all clients (one thread).
    static constexpr size_t kCoalesceBytes = 64 * 1024;
    std::vector<unsigned char> write_scratch_;
};

}  // namespace psdm
