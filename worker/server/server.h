// Server: the glue on the event loop between libwebsockets and the pure units. It owns
// the connected clients (Client: a Session, an Outbox, an identity), Membership (rooms and
// their authorization), and two timers, and it wires them: received frames go to the
// Session, the Session's actions to Membership and the Outbox, routed Kafka records to the
// members of their room, and Membership's answers back to the client as acks.
//
// Thread: everything here runs on the lws service thread only. The lws callback
// (ws_protocol.cpp) is a thin dispatcher into these methods.
//
// Ownership: a Client is created by on_established() and destroyed by on_closed();
// lws's per-session data holds only the Client pointer. Membership names members by
// Client pointer (no lookup on the fan-out path) and forgets one in on_closed.
//
// Authorization policy (who may join, re-checks on reload and expiry) is Membership's
// (fanout/membership.h); this file starts its re-check timer (every quarter TTL) and
// writes its log lines.
//
// Heartbeats: one timer for the whole server, not one per connection. Each client's
// next heartbeat deadline (Session::next_deadline_ms) is kept in a TimerWheel; one lws
// sul ticks every kHeartbeatTickMs, advances the wheel and runs Session::on_tick for the
// clients whose deadline came. A client is re-armed only when its deadline changed;
// the wheel's stale entries (re-armed, or gone) are recognised by Client::armed_deadline
// and by_id_ and ignored. O(1) per arm, O(due) per tick, whatever the number of clients
// (lws 4.1 keeps its per-wsi timers in one sorted list: O(clients) per arm).
// Heartbeats are up to one tick late: Engine.IO intervals are seconds.
//
// Exceptions: the timer callbacks here catch at the C boundary (base/c_boundary.h); the
// lws callbacks in ws_protocol.cpp do the same for the methods they call.
#pragma once

#include <libwebsockets.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"
#include "base/clock.h"
#include "base/config.h"
#include "fanout/membership.h"
#include "fanout/outbox.h"
#include "server/send_batch.h"
#include "fanout/replay_window.h"
#include "kafka/kafka_consumer.h"
#include "kafka/position.h"
#include "kafka/routing.h"
#include "metrics/prometheus.h"
#include "sio/session.h"
#include "sio/ws_handshake.h"
#include "sio/ws_reader.h"
#include "base/timer_wheel.h"

struct lws;

namespace psdm {

// How a connection came: handed over by Apache (with an identity), or on the worker's own
// `listen` port (anonymous).
enum class Via { handoff, direct };
const char *via_name(Via v);

// Why a connection ended, for its close log line and the metrics.
enum class CloseKind {
    client_gone,       // EOF or reset without a close frame
    client_close,      // the client's close frame, or Engine.IO close packet
    ping_timeout,      // no pong within ping_timeout_ms
    protocol_error,    // 1002
    unsupported_data,  // 1003: binary
    invalid_payload,   // 1007: not UTF-8
    too_big,           // 1009
    slow_consumer,     // 1013
    server_stopping,   // 1001: SIGTERM's drain
    internal_error,    // 1011
    write_failed,      // the socket refused a write
    count
};
const char *close_kind_name(CloseKind k);

struct Client {
    Client(uint64_t client_id, struct lws *w, EioVersion v, const SessionLimits &limits, std::string sid,
           Identity identity, size_t backlog, int64_t now_ms, std::string peer_addr, Via via_)
        : id(client_id),
          wsi(w),
          fd(lws_get_socket_fd(w)),
          session(v, limits, std::move(sid), now_ms),
          rx(limits.max_payload),
          outbox(backlog),
          who(std::move(identity)),
          peer(std::move(peer_addr)),
          via(via_),
          eio(v),
          opened_ms(now_ms) {}

    uint64_t id;  // unique for the life of the process; names it in logs and async answers
    struct lws *wsi;
    int fd;                     // wsi's socket: Server::push_frame writes to it directly
    bool write_failed = false;  // a direct write failed: on_writeable closes
    Session session;
    WsReader rx;  // the client's frames, as they arrive
    Outbox outbox;
    Identity who;
    // The heartbeat deadline this client has in the server's wheel (INT64_MAX: none).
    // Wheel entries with another deadline are stale and ignored.
    int64_t armed_deadline = INT64_MAX;
    // Closing (RFC 6455 section 7): once requested, nothing more is read or queued; what is
    // queued is written, then the close frame; once that has left, the connection closes.
    bool closing = false;
    bool close_sent = false;
    int close_code = 0;
    std::string close_reason;
    CloseKind close_kind = CloseKind::client_gone;  // until a close is started
    // For its log lines and the metrics.
    std::string peer;  // the client's address: as Apache saw it (handoff), or the socket's peer
    Via via;
    EioVersion eio;
    int64_t opened_ms;
    uint64_t bytes_in = 0, bytes_out = 0;
    size_t rooms_joined = 0;  // joins granted over its life
    // Resumes (Server::answer_resume): while any of its resumes waits for Kafka, the records
    // published to its rooms are held here, not queued, so that they follow what is replayed.
    struct Held {
        std::string room;
        size_t partition;  // its PartitionTable index
        int64_t offset;
        FrameRef frame;
    };
    unsigned resuming = 0;
    std::vector<Held> held;
    size_t held_bytes = 0;
    // (room, partition) -> the offset a resume's replay reached: held records below it were
    // replayed (or the client had them) and are dropped.
    std::map<std::pair<std::string, size_t>, int64_t> replayed_to;
};

struct ServerStats {
    uint64_t connections_total = 0;
    uint64_t records_routed = 0;
    uint64_t deliveries = 0;  // frames queued for a client
    uint64_t slow_consumers_closed = 0;
    uint64_t memberships_revoked = 0;  // removed by a re-check (reload, expiry)
    uint64_t bytes_written = 0, bytes_read = 0;
    // Frames written at once to a client with nothing queued: through io_uring (a record's
    // fan-out, SendBatch) or a send() of their own; and the io_uring submissions.
    uint64_t writes_uring = 0, writes_send = 0, uring_submits = 0;
    // Open connections by how they came and Engine.IO version ([via][v3, v4]).
    std::array<std::array<uint64_t, 2>, 2> open{};
    std::array<uint64_t, static_cast<size_t>(CloseKind::count)> closed{};  // by why
    size_t backlog_bytes = 0;  // queued for all clients (stats() adds it up)
};

class Server : private Membership::Events {
 public:
    Server(const Config &cfg, std::unique_ptr<Authorizer> authz, size_t max_connections);
    ~Server() override;

    // True if one more client may connect (max_connections, fd limit).
    bool has_capacity() const { return by_id_.size() < max_connections_; }

    // The verdict on an upgrade request, however it arrived: check_upgrade's rules
    // (sio/ws_handshake.h), then capacity (503).
    HttpAnswer admit(const UpgradeRequest &r) const;

    // A websocket was established on `wsi` (its 101 written), from `peer`, arrived `via`.
    // Returns the new Client (owned by the server until on_closed). Queues the Engine.IO open
    // packet; logs one line.
    Client *on_established(struct lws *wsi, EioVersion v, Identity who, std::string peer, Via via);

    // Bytes the client sent (WebSocket frames, in any pieces): read with the client's
    // WsReader, messages to the Session, pings answered, a close or a protocol error closes.
    void on_receive(Client *c, std::string_view bytes);

    // The socket can take a write. Returns -1 to close the connection (after its close frame).
    int on_writeable(Client *c);

    // The connection is gone: leave every room, log its close line, free the Client.
    void on_closed(Client *c);

    // Emits a routed Kafka record to its room and/or the global room. The frame is
    // encoded once and shared by every recipient. Returns the number of deliveries.
    // `origin_ms`: the record's timestamp (wall clock), -1 if none; the time from it to the
    // frame's first write is the delivery latency the metrics report. `partition`, `offset`:
    // where the record stands (partition: its index in the consumer's PartitionTable;
    // kNoPartition: nowhere), for the replay window.
    static constexpr size_t kNoPartition = PartitionTable::kNone;
    size_t publish(const Route &route, int64_t origin_ms = -1, size_t partition = kNoPartition, int64_t offset = -1);

    // Resumes (issue 12): a join whose second argument gives positions (kafka/position.h) is
    // acknowledged with the worker's positions and whether what the client missed was sent
    // ("recovered"), and, when allowed, gets the room's records after its positions from the
    // replay window, before any live record. See answer_resume.
    const ReplayWindow &replay_window() const { return window_; }
    // The Kafka bridge's consumer: the partitions it served records of (their positions, and
    // the indexes publish is given), and where it stands on every assigned partition (acks name
    // the partitions that had no record yet too). Null: none / only those that had.
    void set_partitions(const PartitionTable *served, std::function<std::vector<KafkaPartitionState>()> states) {
        partitions_ = served;
        partition_states_ = std::move(states);
    }
    struct ResumeStats {
        uint64_t recovered = 0, not_recovered = 0, refused = 0, records_replayed = 0;
        uint64_t kafka_reads = 0, records_read = 0;  // reads started, records they fetched
    };
    // Where resumes read what the window does not hold: Kafka, through the bridge's
    // ReplayReader (kafka/replay_reader.h). Null (or recovery_max_records = 0): nowhere, such
    // resumes are not recovered.
    struct ReplaySource {
        virtual ~ReplaySource() = default;
        // Reads `p` from `from` to `until` (exclusive); the answers come back through
        // on_replay_record and on_replay_ended. Returns the read's id.
        virtual uint64_t read(const PartitionKey &p, int64_t from, int64_t until) = 0;
        virtual void cancel(uint64_t id) = 0;
    };
    void set_replay_source(ReplaySource *source) { replay_source_ = source; }
    // A record the reads `reads` wanted, routed (`route`); `origin_ms` as for publish.
    void on_replay_record(const std::vector<uint64_t> &reads, const Route &route, int64_t origin_ms);
    // A read ended: complete, or failed (`why`).
    void on_replay_ended(uint64_t read, bool ok, const std::string &why);
    size_t resumes_in_progress() const { return resumes_.size(); }
    const ResumeStats &resume_stats() const { return resume_stats_; }

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

    // SIGTERM's drain: from now on upgrades are refused (503), every client is closed with
    // 1001 "going away" (a WebSocket close only: socket.io-client reconnects after it, where a
    // Socket.IO disconnect would tell it not to), and `done` runs once, on the loop, when the
    // last client has gone or after `timeout_ms`, whichever comes first.
    void start_drain(unsigned timeout_ms, std::function<void()> done);
    bool draining() const { return draining_; }

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

    ServerStats stats() const;
    size_t client_count() const { return by_id_.size(); }
    const Rooms &rooms() const { return membership_.rooms(); }
    // Seconds from a record's Kafka timestamp to the first write of its frame to a client.
    const Histogram &delivery_latency() const { return latency_; }
    const Config &config() const { return cfg_; }

 private:
    void apply(Client *c, std::vector<SessionAction> &actions);
    // Membership::Events: acks and log lines for its answers.
    void answered(MemberId m, const std::string &room, std::optional<uint64_t> ack_id, const AuthzDecision &d) override;
    void revoked(MemberId m, const std::string &room, const AuthzDecision &d) override;
    void kept(MemberId m, const std::string &room, const AuthzDecision &d) override;
    void log_denial(const Client *c, const std::string &room, const AuthzDecision &d, const char *what);
    static void on_revalidate_timer(lws_sorted_usec_list_t *sul);
    int64_t revalidate_period_ms() const;
    void schedule_revalidate();
    // How a frame goes out: written at once if the client's queue is empty (one message), or
    // queued behind others for on_writeable's coalesced writes (a batch: a replay).
    enum class Send { now_if_idle, queued };
    void enqueue(Client *c, FrameRef frame, Send how = Send::now_if_idle);
    // The ack of an allowed or refused join that asked to resume, and the replay.
    void answer_resume(Client *c, const std::string &room, uint64_t ack_id, bool allowed, const std::string &positions);
    Positions positions_now(std::string *unknown = nullptr) const;
    // A resume between its join's answer and its ack. See answer_resume.
    struct Resume {
        uint64_t client_id = 0, ack_id = 0;
        std::string room;
        Positions from;        // what the client holds
        Positions at;          // the worker's positions when the replay was planned: the ack's
        bool planned = false;  // false: waiting for the worker to learn a partition's position
        std::map<PartitionKey, std::vector<FrameRef>> frames;  // to replay, by partition
        std::map<uint64_t, PartitionKey> reads;                // Kafka reads outstanding
        size_t bytes = 0;
        int64_t deadline_ms = 0;
        std::string waiting_for;  // the partition whose position is not known yet
        std::string refusal;      // positions refused (malformed, foreign): why
    };
    // Plans (or re-plans, until planned) resume `id`: from the window, or Kafka reads. May
    // finish it.
    void plan_resume(uint64_t id);
    // Sends the ack and, if recovered, the replay; releases the client's held records.
    void finish_resume(uint64_t id, bool recovered, std::string why);
    void release_held(Client *c);
    void drop_reads(const Resume &r);
    void tick_resumes(int64_t now_ms);
    size_t partition_of(const PartitionKey &k) const;  // its PartitionTable index, kNoPartition
    void note_first_write(const Frame &f);             // the delivery latency of a record's frame, once
    bool push_frame(Client *c, FrameRef frame, Send how = Send::now_if_idle);  // false: over client_backlog
    bool idle(const Client *c) const;  // nothing queued or buffered: a frame may be written at once
    bool sent(Client *c, const FrameRef &frame, ssize_t n);  // after writing frame at once; false: over backlog
    bool queue_frame(Client *c, FrameRef frame);             // behind what is queued; false: over backlog
    void flush_batch(const FrameRef &frame, std::vector<Client *> &slow);
    void close_slow_consumer(Client *c, size_t incoming_bytes);
    void send_text(Client *c, std::string_view text);
    // Closes `c` with `code`: one log line, then start_close. Idempotent.
    void request_close(Client *c, int code, std::string reason);
    // The close itself, without a log line (the client's own close is not news).
    void start_close(Client *c, int code, std::string reason, CloseKind kind);
    static constexpr int kCloseSecs = 5;
    // Puts the client's next heartbeat deadline into the wheel if it changed.
    void arm_timer(Client *c);
    // A client's heartbeat deadline came: Session::on_tick, then re-arm.
    void on_timer(Client *c);
    static void on_heartbeat_timer(lws_sorted_usec_list_t *sul);
    static void on_drain_timer(lws_sorted_usec_list_t *sul);
    void finish_drain();
    size_t deliver_to_room(const std::string &room, const FrameRef &frame, size_t partition, int64_t offset);

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
    bool draining_ = false;
    std::function<void()> drained_;  // set while a drain waits
    struct DrainTimer {
        lws_sorted_usec_list_t sul;
        Server *self;
    } drain_timer_{};
    std::function<void()> wake_hook_;
    Membership membership_;
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
    SendBatch batch_;  // fan-out sends, when io_uring is there
    const PartitionTable *partitions_ = nullptr;
    ReplayWindow window_;
    std::function<std::vector<KafkaPartitionState>()> partition_states_;
    // Joins waiting for the authorizer that asked to resume: (client id, ack id) -> positions text.
    std::map<std::pair<uint64_t, uint64_t>, std::string> resume_asks_;
    std::map<uint64_t, Resume> resumes_;  // by resume id
    // Each Kafka read's resume, and where its records go (resumes_ is a map: its nodes, and
    // Resume::frames' entries, do not move): no lookup by key per record and read.
    struct ReadOwner {
        uint64_t resume_id;
        Resume *resume;
        std::vector<FrameRef> *frames;
    };
    std::unordered_map<uint64_t, ReadOwner> resume_of_read_;
    uint64_t next_resume_id_ = 0;
    ReplaySource *replay_source_ = nullptr;
    ResumeStats resume_stats_;
    Histogram latency_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
};

}  // namespace psdm
