#include "server/server.h"

#include <libwebsockets.h>

#include <sys/socket.h>

#include <cerrno>
#include <cinttypes>
#include <algorithm>
#include <cstring>
#include <random>

#include "base/c_boundary.h"
#include "base/json.h"
#include "base/log.h"
#include "sio/ws_frame.h"

namespace psdm {

namespace {
constexpr const char *kTag = "PSDM-WS";
constexpr const char *kAuthzTag = "PSDM-AUTHZ";
}  // namespace

// Member ids in Membership are the Client pointers themselves: no lookup on the fan-out path.
static MemberId member_of(const Client *c) { return reinterpret_cast<uintptr_t>(c); }
static Client *client_of(MemberId m) { return reinterpret_cast<Client *>(static_cast<uintptr_t>(m)); }

// An Engine.IO session id: 20 characters of base64url, unique and unguessable enough
// (it grants nothing: identity comes from Apache, not from the sid).
static std::string make_sid(uint64_t counter) {
    static std::mt19937_64 rng{std::random_device{}()};
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t a = rng() ^ counter, b = rng();
    std::string sid(20, 'A');
    for (int i = 0; i < 10; i++) sid[static_cast<size_t>(i)] = kAlphabet[(a >> (6 * i)) & 63];
    for (int i = 0; i < 10; i++) sid[static_cast<size_t>(10 + i)] = kAlphabet[(b >> (6 * i)) & 63];
    return sid;
}

Server::Server(const Config &cfg, std::unique_ptr<Authorizer> authz, size_t max_connections)
    : cfg_(cfg),
      authz_(std::move(authz)),
      wheel_(kHeartbeatTickMs, kHeartbeatSlots, monotonic_ms()),
      membership_(*authz_, cfg.max_rooms_per_client, monotonic_ms, *this),
      max_connections_(max_connections),
      window_(cfg.recovery_window_ms, cfg.recovery_max_bytes) {
    revalidate_timer_.self = this;
    heartbeat_timer_.self = this;
    drain_timer_.self = this;
    limits_.ns = cfg.ns;
    limits_.ping_interval_ms = cfg.ping_interval_ms;
    limits_.ping_timeout_ms = cfg.ping_timeout_ms;
    limits_.max_payload = cfg.max_payload;
    std::string err;
    if (cfg.fanout_sends != "io_uring")
        PSDM_LOG_INFO(kTag, "fanout_sends = %s: a send() per client", cfg.fanout_sends.c_str());
    else if (batch_.start(&err))
        PSDM_LOG_INFO(kTag, "fanout_sends = io_uring: up to %u sends per system call", SendBatch::kEntries);
    else PSDM_LOG_WARN(kTag, "fanout_sends = io_uring, but %s: a send() per client instead", err.c_str());
}

Server::~Server() {
    if (drained_ && context_) lws_sul_cancel(&drain_timer_.sul);
    // lws closes every wsi (and so calls on_closed) before the context goes; whatever
    // is left here was never closed by lws.
    for (auto &kv : by_id_) delete kv.second;
}

HttpAnswer Server::admit(const UpgradeRequest &r) const {
    HttpAnswer verdict = check_upgrade(r);
    if (verdict.accepted() && draining_) {
        verdict = http_refusal_at_capacity(client_count());
        verdict.reason = "the worker is stopping";
    } else if (verdict.accepted() && !has_capacity()) {
        verdict = http_refusal_at_capacity(client_count());
    }
    return verdict;
}

void Server::start_drain(unsigned timeout_ms, std::function<void()> done) {
    if (draining_) return;
    draining_ = true;
    drained_ = std::move(done);
    PSDM_LOG_NOTICE(kTag, "stopping: closing %zu client(s) with 1001, waiting up to %u ms for them", by_id_.size(),
                    timeout_ms);
    for (auto &kv : by_id_) start_close(kv.second, kWsCloseGoingAway, "server stopping", CloseKind::server_stopping);
    if (by_id_.empty() || timeout_ms == 0 || !context_) {
        finish_drain();
        return;
    }
    lws_sul_schedule(context_, 0, &drain_timer_.sul, on_drain_timer,
                     static_cast<lws_usec_t>(timeout_ms) * LWS_US_PER_MS);
}

void Server::on_drain_timer(lws_sorted_usec_list_t *sul) {
    Server *self = reinterpret_cast<DrainTimer *>(sul)->self;
    PSDM_LOG_WARN(kTag, "stopping: %zu client(s) still open after the shutdown timeout", self->by_id_.size());
    guarded("drain timer", [self] { self->finish_drain(); });
}

void Server::finish_drain() {
    if (!drained_) return;
    if (context_) lws_sul_cancel(&drain_timer_.sul);
    std::function<void()> done = std::move(drained_);
    drained_ = nullptr;
    done();
}

const char *via_name(Via v) { return v == Via::handoff ? "handoff" : "direct"; }

const char *close_kind_name(CloseKind k) {
    switch (k) {
    case CloseKind::client_gone: return "client_gone";
    case CloseKind::client_close: return "client_close";
    case CloseKind::ping_timeout: return "ping_timeout";
    case CloseKind::protocol_error: return "protocol_error";
    case CloseKind::unsupported_data: return "unsupported_data";
    case CloseKind::invalid_payload: return "invalid_payload";
    case CloseKind::too_big: return "too_big";
    case CloseKind::slow_consumer: return "slow_consumer";
    case CloseKind::server_stopping: return "server_stopping";
    case CloseKind::internal_error: return "internal_error";
    case CloseKind::write_failed: return "write_failed";
    case CloseKind::count: break;
    }
    return "?";
}

// Why the worker closes with `code` (and the Session's reason for 1000).
static CloseKind close_kind_of(int code, std::string_view reason) {
    switch (code) {
    case kWsCloseNormal: return reason == "ping timeout" ? CloseKind::ping_timeout : CloseKind::client_close;
    case kWsCloseGoingAway: return CloseKind::server_stopping;
    case kWsCloseProtocolError: return CloseKind::protocol_error;
    case kWsCloseUnsupportedData: return CloseKind::unsupported_data;
    case kWsCloseInvalidPayload: return CloseKind::invalid_payload;
    case kWsCloseTooBig: return CloseKind::too_big;
    case kWsCloseInternalError: return CloseKind::internal_error;
    case kCloseTryAgainLater: return CloseKind::slow_consumer;
    default: return CloseKind::client_close;
    }
}

static size_t eio_index(EioVersion v) { return v == EioVersion::v3 ? 0 : 1; }

Client *Server::on_established(struct lws *wsi, EioVersion v, Identity who, std::string peer, Via via) {
    uint64_t id = ++next_id_;
    auto *c = new Client(id, wsi, v, limits_, make_sid(id), std::move(who), cfg_.client_backlog, monotonic_ms(),
                         std::move(peer), via);
    by_id_.emplace(id, c);
    membership_.add(member_of(c), c->who);
    stats_.connections_total++;
    stats_.open[static_cast<size_t>(via)][eio_index(v)]++;
    PSDM_LOG_INFO(kTag, "client %" PRIu64 " connected (user '%s', Engine.IO v%d) from %s via %s", id,
                  c->who.user.c_str(), static_cast<int>(v), c->peer.c_str(), via_name(via));
    std::vector<SessionAction> actions;
    c->session.on_open(actions);
    apply(c, actions);
    arm_timer(c);
    return c;
}

void Server::on_receive(Client *c, std::string_view bytes) {
    c->bytes_in += bytes.size();
    stats_.bytes_read += bytes.size();
    while (!bytes.empty() && !c->closing) {
        WsEvent ev;
        bytes.remove_prefix(c->rx.read(bytes, &ev));
        switch (ev.kind) {
        case WsEvent::Kind::none: break;
        case WsEvent::Kind::text: {
            std::vector<SessionAction> actions;
            c->session.on_text(ev.payload, monotonic_ms(), actions);
            c->rx.release();  // idle connections keep no buffer
            apply(c, actions);
            arm_timer(c);
            break;
        }
        case WsEvent::Kind::binary: request_close(c, kWsCloseUnsupportedData, "binary frames are not supported"); break;
        case WsEvent::Kind::ping: enqueue(c, Frame::make(ws_frame(kWsOpPong, ev.payload), LWS_PRE)); break;
        case WsEvent::Kind::pong: break;
        case WsEvent::Kind::close:  // echo its code (RFC 6455 5.5.1), quietly: the client ended it
            start_close(c, ev.code == kWsCloseNoStatus ? kWsCloseNormal : ev.code, "", CloseKind::client_close);
            break;
        case WsEvent::Kind::error: request_close(c, ev.code, ev.reason); break;
        }
    }
}

// Writes what is queued, several frames per call: every queued frame is a complete
// WebSocket frame (ws_frame.h), so consecutive frames are concatenated and written
// with LWS_WRITE_RAW, which lws sends as they are (and buffers itself if the socket
// takes only part: it calls WRITEABLE again only once that part has left). A client that
// fell behind catches up in a few writes instead of one write per message per loop turn.
// One lws_write per WRITEABLE, as lws requires. Closing, the close frame goes last; the
// WRITEABLE after it closes the connection.
int Server::on_writeable(Client *c) {
    if (c->close_sent) return -1;
    if (c->write_failed) {
        c->close_kind = CloseKind::write_failed;
        return -1;
    }
    const Frame *first = c->outbox.front();
    if (!first) {
        if (!c->closing) return 0;
        std::string buf(LWS_PRE, '\0');
        buf += ws_close_frame(c->close_code, c->close_reason);
        const size_t len = buf.size() - LWS_PRE;
        c->close_sent = true;
        if (lws_write(c->wsi, reinterpret_cast<unsigned char *>(&buf[LWS_PRE]), len, LWS_WRITE_RAW) < 0) return -1;
        c->bytes_out += len;
        stats_.bytes_written += len;
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    unsigned char *buf = first->writable_payload();
    size_t len = first->size();
    size_t frames = 1;
    if (c->outbox.queued_frames() > 1 && len < kCoalesceBytes) {
        // As many whole frames as fit, gathered in the scratch buffer (after LWS_PRE).
        if (write_scratch_.size() < LWS_PRE + kCoalesceBytes) write_scratch_.resize(LWS_PRE + kCoalesceBytes);
        buf = write_scratch_.data() + LWS_PRE;
        len = c->outbox.coalesce(buf, kCoalesceBytes, &frames);
    }
    int n = lws_write(c->wsi, buf, len, LWS_WRITE_RAW);
    for (size_t i = 0; i < frames; i++) {
        note_first_write(*c->outbox.front());
        c->outbox.pop();
    }
    if (n < 0) {
        c->close_kind = CloseKind::write_failed;
        return -1;
    }
    c->bytes_out += len;
    stats_.bytes_written += len;
    if (!c->outbox.empty() || c->closing) lws_callback_on_writable(c->wsi);
    return 0;
}

void Server::note_first_write(const Frame &f) {
    if (f.origin_ms() < 0 || !f.first_write()) return;
    const int64_t ms = wall_ms() - f.origin_ms();
    latency_.observe(ms > 0 ? static_cast<double>(ms) / 1000.0 : 0.0);  // clocks of two hosts: never < 0
}

size_t Server::publish_budget_per_turn() const {
    return std::max<size_t>(1, std::min(cfg_.client_backlog / 4, kCoalesceBytes));
}

void Server::on_timer(Client *c) {
    std::vector<SessionAction> actions;
    c->session.on_tick(monotonic_ms(), actions);
    apply(c, actions);
    arm_timer(c);
}

void Server::on_closed(Client *c) {
    membership_.remove(member_of(c));
    resume_asks_.erase(resume_asks_.lower_bound({c->id, 0}), resume_asks_.lower_bound({c->id + 1, 0}));
    for (auto it = resumes_.begin(); it != resumes_.end();) {  // its resumes in progress end here
        if (it->second.client_id != c->id) {
            ++it;
            continue;
        }
        drop_reads(it->second);
        it = resumes_.erase(it);
    }
    by_id_.erase(c->id);
    stats_.open[static_cast<size_t>(c->via)][eio_index(c->eio)]--;
    stats_.closed[static_cast<size_t>(c->close_kind)]++;
    std::string why;
    switch (c->close_kind) {
    case CloseKind::client_gone: why = "the client went away"; break;
    case CloseKind::write_failed: why = "a write failed"; break;
    case CloseKind::client_close: why = "the client closed (" + std::to_string(c->close_code) + ")"; break;
    default: why = std::to_string(c->close_code) + " " + c->close_reason;
    }
    PSDM_LOG_INFO(kTag,
                  "client %" PRIu64 " closed (user '%s', %s): %s; %.1f s, %zu room(s) joined, %" PRIu64
                  " bytes in, %" PRIu64 " bytes out",
                  c->id, c->who.user.c_str(), c->peer.c_str(), why.c_str(),
                  static_cast<double>(monotonic_ms() - c->opened_ms) / 1000.0, c->rooms_joined, c->bytes_in,
                  c->bytes_out);
    delete c;
    if (draining_ && by_id_.empty()) finish_drain();
}

// Each partition's next offset: one past the last record consumed; for an assigned partition
// with none consumed yet, the consumer's position (or, before its first record, where it will
// start: KafkaPartitionState::start). A partition whose position nobody knows yet is left out, and named
// in *unknown (if given): also "(no partition assigned yet)" while the consumer has none.
Positions Server::positions_now(std::string *unknown) const {
    Positions p;
    for (size_t i = 0; partitions_ && i < partitions_->size(); i++)
        if (partitions_->next(i) >= 0) p.emplace(partitions_->key(i), partitions_->next(i));
    if (partition_states_) {
        const std::vector<KafkaPartitionState> states = partition_states_();
        if (states.empty() && unknown) *unknown = "(no partition assigned yet)";
        for (const KafkaPartitionState &s : states) {
            const int64_t at = s.position >= 0 ? s.position : s.start;
            const PartitionKey key{s.topic, s.partition};
            if (at >= 0 && at <= kMaxPositionOffset && kafka_topic_name_ok(s.topic))
                p.emplace(key, at);  // no effect where a record set it
            else if (unknown && !p.count(key)) *unknown = partition_key_text(key);
        }
    }
    return p;
}

size_t Server::publish(const Route &route, int64_t origin_ms, size_t partition, int64_t offset) {
    FrameRef frame = Frame::make(ws_text_frame(sio_encode_event(cfg_.ns, cfg_.event, route.payload)), LWS_PRE,
                                 origin_ms);
    if (partition != kNoPartition && cfg_.recovery_max_bytes > 0)
        window_.add(partition, offset, route.room, route.to_global_room, frame, monotonic_ms());
    size_t n = 0;
    if (!route.room.empty()) n += deliver_to_room(route.room, frame, partition, offset);
    static const std::string global_room(kGlobalRoom);
    if (route.to_global_room && route.room != kGlobalRoom) n += deliver_to_room(global_room, frame, partition, offset);
    stats_.records_routed++;
    stats_.deliveries += n;
    return n;
}

size_t Server::deliver_to_room(const std::string &room, const FrameRef &frame, size_t partition, int64_t offset) {
    // Slow clients are closed after the loop: closing leaves rooms, which must not
    // happen while Membership is iterating.
    std::vector<Client *> slow;
    const std::string_view bytes = frame->view();
    size_t n = membership_.for_each_member(room, [&](MemberId m) {
        Client *c = client_of(m);
        if (c->resuming > 0) {  // after its replay
            c->held.push_back({room, partition, offset, frame});
            c->held_bytes += frame->size();
            if (c->held_bytes + c->outbox.queued_bytes() > cfg_.client_backlog) slow.push_back(c);
        } else if (batch_.ready() && idle(c) &&
                   batch_.add(c->fd, bytes.data(), bytes.size(), reinterpret_cast<uintptr_t>(c))) {
            if (batch_.full()) flush_batch(frame, slow);
        } else if (!push_frame(c, frame)) {
            slow.push_back(c);
        }
    });
    flush_batch(frame, slow);
    for (Client *c : slow) close_slow_consumer(c, frame->size());
    return n - slow.size();
}

// The batch's sends of `frame`, each handled as push_frame handles its own send().
void Server::flush_batch(const FrameRef &frame, std::vector<Client *> &slow) {
    if (batch_.empty()) return;
    stats_.uring_submits++;
    for (const SendBatch::Result &r : batch_.flush()) {
        stats_.writes_uring++;
        Client *c = reinterpret_cast<Client *>(r.tag);
        if (!sent(c, frame, r.res)) slow.push_back(c);
    }
    if (!batch_.ready())
        PSDM_LOG_ERROR(kTag, "io_uring failed (%s): fan-out sends with send() from now on", strerror(batch_.failure()));
}

void Server::apply(Client *c, std::vector<SessionAction> &actions) {
    for (auto &a : actions) {
        switch (a.kind) {
        case SessionAction::Kind::send: send_text(c, a.text); break;
        case SessionAction::Kind::join:
            if (c->closing) break;
            // Asked to resume: kept until the authorizer answers (which may be inside join()).
            if (a.resume && a.ack_id) resume_asks_[{c->id, *a.ack_id}] = std::move(*a.resume);
            if (membership_.join(member_of(c), a.text, a.ack_id) == Membership::JoinStart::too_many_rooms && a.ack_id) {
                resume_asks_.erase({c->id, *a.ack_id});
                send_text(c, c->session.error_ack(*a.ack_id, "too many rooms"));
            }
            break;
        case SessionAction::Kind::leave:
            membership_.leave(member_of(c), a.text);
            if (a.ack_id) send_text(c, c->session.leave_ack(*a.ack_id));
            break;
        case SessionAction::Kind::leave_all: membership_.leave_all(member_of(c)); break;
        case SessionAction::Kind::close: request_close(c, a.close_code, a.reason); break;
        }
    }
}

// A join was answered: Membership has already let the client in (or not).
void Server::answered(MemberId m, const std::string &room, std::optional<uint64_t> ack_id, const AuthzDecision &d) {
    Client *c = client_of(m);
    if (c->closing) return;
    if (!d.allowed) log_denial(c, room, d, "may not join");
    if (d.allowed) c->rooms_joined++;
    if (!ack_id) return;
    auto r = resume_asks_.find({c->id, *ack_id});
    if (r == resume_asks_.end()) {
        send_text(c, c->session.join_ack(*ack_id, d.allowed, room));
        return;
    }
    const std::string positions = std::move(r->second);
    resume_asks_.erase(r);
    answer_resume(c, room, *ack_id, d.allowed, positions);
}

// The client gave the positions it holds (kafka/position.h): it gets, for each partition it
// names, the room's records after its position, partition after partition, then live ones.
//
// Where from: the replay window when it holds all of them (at once, in this loop turn), else
// Kafka (ReplaySource: a read from the client's position up to the worker's, at most
// recovery_max_records offsets, within recovery_timeout_ms). While Kafka reads, the ack waits
// and the records published to the client's rooms are held (Client::held) and sent after the
// replay; those the replay covered are dropped. A partition whose position the worker does not
// know yet (just started, first fetch not done) is waited for, up to the same deadline.
//
// "recovered": every record after the client's positions was sent, for every partition the
// worker knows (a client naming fewer cannot tell what it missed there; an empty object is a
// first join, with nothing to recover). Else nothing is replayed, the client is told why and
// resyncs. A position ahead of the worker's (another worker is further on) needs nothing
// replayed: the client drops what it already has. The replay goes only to a client that is
// still in the room when it is ready.
void Server::answer_resume(Client *c, const std::string &room, uint64_t ack_id, bool allowed,
                           const std::string &positions) {
    if (!allowed) {  // the refusal, as without a resume: nothing of the room is sent
        send_text(c, c->session.join_ack(ack_id, false, room));
        return;
    }
    Positions from;
    std::string why;
    const JsonPtr json = json_parse_strict(positions);
    if (!json) why = "positions are not JSON";
    const bool refused = !json || !parse_resume_positions(json.get(), cfg_.topics, &from, &why);
    const uint64_t id = ++next_resume_id_;
    Resume &r = resumes_[id];
    r.client_id = c->id;
    r.ack_id = ack_id;
    r.room = room;
    r.from = std::move(from);
    if (refused) r.refusal = why;  // answered once the ack can give every position (plan_resume)
    r.deadline_ms = monotonic_ms() + cfg_.recovery_timeout_ms;
    c->resuming++;
    plan_resume(id);
}

size_t Server::partition_of(const PartitionKey &k) const { return partitions_ ? partitions_->find(k) : kNoPartition; }

void Server::plan_resume(uint64_t id) {
    Resume &r = resumes_.at(id);
    // Wait until the worker knows where it stands on every partition (just started: the
    // group's assignment, the first fetch), so that the ack gives them all.
    std::string unknown;
    const Positions now = positions_now(&unknown);
    if (!unknown.empty()) {
        r.waiting_for = unknown;
        return;
    }
    if (!r.refusal.empty()) return finish_resume(id, false, r.refusal);
    if (!r.from.empty()) {
        for (const auto &kv : now) {
            if (!r.from.count(kv.first))
                return finish_resume(id, false, "no position for " + partition_key_text(kv.first));
        }
    }
    for (const auto &kv : r.from) {  // a partition the worker is not assigned (yet)
        if (!now.count(kv.first)) {
            r.waiting_for = partition_key_text(kv.first);
            return;
        }
    }
    r.planned = true;
    r.at = now;
    for (const auto &kv : r.from) {
        const int64_t until = now.at(kv.first);
        if (kv.second >= until) continue;  // nothing since (or ahead of us)
        std::vector<FrameRef> frames;
        const size_t pid = partition_of(kv.first);
        if (pid != kNoPartition &&
            window_.collect(pid, kv.second, r.room, kGlobalRoom, &frames) == ReplayWindow::Coverage::complete) {
            for (const FrameRef &f : frames) r.bytes += f->size();
            r.frames[kv.first] = std::move(frames);
            continue;
        }
        const std::string where = partition_key_text(kv.first) + " from offset " + std::to_string(kv.second);
        if (!replay_source_ || cfg_.recovery_max_records == 0)
            return finish_resume(id, false, "the worker no longer holds " + where);
        if (static_cast<uint64_t>(until - kv.second) > cfg_.recovery_max_records)
            return finish_resume(id, false,
                                 "more than recovery_max_records (" + std::to_string(cfg_.recovery_max_records) +
                                     ") to read in " + where);
        const uint64_t read = replay_source_->read(kv.first, kv.second, until);
        r.reads.emplace(read, kv.first);
        resume_of_read_.emplace(read, ReadOwner{id, &r, &r.frames[kv.first]});
        resume_stats_.kafka_reads++;
    }
    if (r.bytes > cfg_.client_backlog) return finish_resume(id, false, "more than client_backlog to replay");
    if (r.reads.empty()) finish_resume(id, true, "");
}

void Server::on_replay_record(const std::vector<uint64_t> &reads, const Route &route, int64_t origin_ms) {
    resume_stats_.records_read++;
    if (route.status != RouteStatus::ok) return;
    FrameRef frame;  // encoded once, for every resume that wants it
    for (uint64_t read : reads) {
        auto owner = resume_of_read_.find(read);
        if (owner == resume_of_read_.end()) continue;
        Resume &r = *owner->second.resume;
        if (route.room != r.room && !(route.to_global_room && r.room == kGlobalRoom)) continue;
        if (!frame)
            frame = Frame::make(ws_text_frame(sio_encode_event(cfg_.ns, cfg_.event, route.payload)), LWS_PRE,
                                origin_ms);
        owner->second.frames->push_back(frame);
        r.bytes += frame->size();
        if (r.bytes > cfg_.client_backlog)
            finish_resume(owner->second.resume_id, false, "more than client_backlog to replay");
    }
}

void Server::on_replay_ended(uint64_t read, bool ok, const std::string &why) {
    auto owner = resume_of_read_.find(read);
    if (owner == resume_of_read_.end()) return;  // its resume ended already
    const uint64_t id = owner->second.resume_id;
    resume_of_read_.erase(owner);
    Resume &r = resumes_.at(id);
    const PartitionKey key = r.reads.at(read);
    r.reads.erase(read);
    if (!ok)
        finish_resume(
            id, false,
            "cannot read " + partition_key_text(key) + " from offset " + std::to_string(r.from.at(key)) + ": " + why);
    else if (r.reads.empty()) finish_resume(id, true, "");
}

// Every heartbeat tick: resumes waiting for a position try again; those past their deadline end.
void Server::tick_resumes(int64_t now_ms) {
    std::vector<uint64_t> due, waiting;
    for (const auto &kv : resumes_) {
        if (now_ms >= kv.second.deadline_ms) due.push_back(kv.first);
        else if (!kv.second.planned) waiting.push_back(kv.first);
    }
    for (uint64_t id : waiting) plan_resume(id);
    for (uint64_t id : due) {
        auto it = resumes_.find(id);
        if (it == resumes_.end()) continue;
        const Resume &r = it->second;
        finish_resume(id, false,
                      !r.refusal.empty() ? r.refusal
                      : r.planned        ? "Kafka did not answer within recovery_timeout_ms"
                                         : "the position of " + r.waiting_for + " is not known yet");
    }
}

void Server::finish_resume(uint64_t id, bool recovered, std::string why) {
    Resume r = std::move(resumes_.at(id));
    resumes_.erase(id);
    drop_reads(r);
    Client *c = by_id_.at(r.client_id);
    if (recovered && !membership_.is_member(member_of(c), r.room)) {
        recovered = false;
        why = "no longer in the room";
    }
    const Positions &at = r.planned ? r.at : positions_now();
    std::string ack = "{\"positions\":" + positions_json(at) + ",\"recovered\":" + (recovered ? "true" : "false");
    if (!recovered) ack += ",\"reason\":" + json_escape_string(why);
    send_text(c, c->session.ack(r.ack_id, "[" + ack + "}]"));
    // Held records below the ack's positions were replayed, or the client had them.
    for (const auto &kv : at) {
        const size_t pid = partition_of(kv.first);
        if (pid != kNoPartition) c->replayed_to[{r.room, pid}] = kv.second;
    }
    if (recovered) {
        if (!r.from.empty()) resume_stats_.recovered++;  // `{}`: a first join, not a resume
        for (auto &kv : r.frames) {
            resume_stats_.records_replayed += kv.second.size();
            for (FrameRef &f : kv.second) enqueue(c, std::move(f), Send::queued);
        }
    } else {
        (r.refusal.empty() ? resume_stats_.not_recovered : resume_stats_.refused)++;
        PSDM_LOG_INFO(kTag, "client %" PRIu64 " (user '%s'): %s in room '%s': %s", c->id, c->who.user.c_str(),
                      r.refusal.empty() ? "no resume" : "resume refused", r.room.c_str(), why.c_str());
    }
    if (--c->resuming == 0) release_held(c);
}

// Forgets a resume's Kafka reads and cancels them (their answers, if any come, are ignored).
void Server::drop_reads(const Resume &r) {
    for (const auto &read : r.reads) {
        resume_of_read_.erase(read.first);
        if (replay_source_) replay_source_->cancel(read.first);
    }
}

// The records published to the client's rooms while it resumed, in the order they came, but
// those a replay covered and those of rooms it has left since.
void Server::release_held(Client *c) {
    std::vector<Client::Held> held = std::move(c->held);
    c->held.clear();
    c->held_bytes = 0;
    for (Client::Held &h : held) {
        auto to = c->replayed_to.find({h.room, h.partition});
        if (to != c->replayed_to.end() && h.offset < to->second) continue;
        if (!membership_.is_member(member_of(c), h.room)) continue;
        enqueue(c, std::move(h.frame), Send::queued);
    }
    c->replayed_to.clear();
}

void Server::revoked(MemberId m, const std::string &room, const AuthzDecision &d) {
    log_denial(client_of(m), room, d, "removed from");
}

void Server::kept(MemberId m, const std::string &room, const AuthzDecision &d) {
    const Client *c = client_of(m);
    PSDM_LOG_INFO(kAuthzTag, "client %" PRIu64 ": user '%s' stays in room '%s' for now: re-check failed (%s)", c->id,
                  c->who.user.c_str(), room.c_str(), d.reason.c_str());
}

// One line per refusal: user, room, provider, reason.
void Server::log_denial(const Client *c, const std::string &room, const AuthzDecision &d, const char *what) {
    PSDM_LOG_NOTICE(kAuthzTag, "client %" PRIu64 ": user '%s' %s room '%s' (%s: %s%s)", c->id, c->who.user.c_str(),
                    what, room.c_str(), authz_->name(), d.failed ? "no answer: " : "", d.reason.c_str());
}

ServerStats Server::stats() const {
    ServerStats s = stats_;
    s.memberships_revoked = membership_.revoked_total();
    for (const auto &kv : by_id_) s.backlog_bytes += kv.second->outbox.queued_bytes();
    return s;
}

bool Server::start_authz(struct lws_context *context, std::string *err) {
    context_ = context;
    if (!authz_->start([context] { lws_cancel_service(context); }, err)) return false;
    revalidate_ms_ = authz_->revalidate_after_ms();
    if (revalidate_ms_ > 0) {
        schedule_revalidate();
        PSDM_LOG_INFO(kAuthzTag, "memberships are re-checked once older than %" PRId64 " ms (every %" PRId64 " ms)",
                      revalidate_ms_, revalidate_period_ms());
    }
    return true;
}

void Server::on_wake() {
    authz_->poll();
    if (wake_hook_) wake_hook_();
}

void Server::start_heartbeats(struct lws_context *context) {
    context_ = context;
    heartbeats_running_ = true;
    lws_sul_schedule(context_, 0, &heartbeat_timer_.sul, on_heartbeat_timer,
                     static_cast<lws_usec_t>(kHeartbeatTickMs) * LWS_US_PER_MS);
}

void Server::stop_heartbeats() {
    if (heartbeats_running_) lws_sul_cancel(&heartbeat_timer_.sul);
    heartbeats_running_ = false;
}

// Every kHeartbeatTickMs: the clients whose heartbeat deadline came get their tick.
// Entries whose client is gone, or whose deadline is no longer the armed one, are stale.
void Server::on_heartbeat_timer(lws_sorted_usec_list_t *sul) {
    Server *self = reinterpret_cast<HeartbeatTimer *>(sul)->self;
    if (!self->resumes_.empty()) guarded("resume timer", [self] { self->tick_resumes(monotonic_ms()); });
    self->wheel_.advance(monotonic_ms(), [self](uint64_t id, int64_t deadline) {
        auto it = self->by_id_.find(id);
        if (it == self->by_id_.end()) return;
        Client *c = it->second;
        if (c->armed_deadline != deadline) return;
        c->armed_deadline = INT64_MAX;  // consumed: on_timer arms the next one
        // Called from C (lws): an exception closes this client, the others carry on.
        if (!guarded("heartbeat", [self, c] { self->on_timer(c); }))
            self->request_close(c, kWsCloseInternalError, "internal error");
    });
    if (self->heartbeats_running_)
        lws_sul_schedule(self->context_, 0, &self->heartbeat_timer_.sul, on_heartbeat_timer,
                         static_cast<lws_usec_t>(kHeartbeatTickMs) * LWS_US_PER_MS);
}

void Server::stop_authz() {
    if (revalidate_ms_ > 0 && context_) lws_sul_cancel(&revalidate_timer_.sul);
    revalidate_ms_ = 0;
    authz_->stop();
}

void Server::reload_authz() {
    std::string err;
    if (!authz_->reload(&err)) {
        PSDM_LOG_ERROR(kAuthzTag, "reload (SIGHUP) failed, the previous rules stay in force: %s", err.c_str());
        return;
    }
    size_t asked = membership_.recheck_all();
    PSDM_LOG_NOTICE(kAuthzTag, "reload (SIGHUP): re-checking %zu membership(s) of %zu client(s)", asked, by_id_.size());
}

int64_t Server::revalidate_period_ms() const { return std::max<int64_t>(250, revalidate_ms_ / 4); }

void Server::schedule_revalidate() {
    lws_sul_schedule(context_, 0, &revalidate_timer_.sul, on_revalidate_timer,
                     static_cast<lws_usec_t>(revalidate_period_ms()) * LWS_US_PER_MS);
}

// Every quarter TTL: Membership re-asks the memberships whose last yes is TTL old.
void Server::on_revalidate_timer(lws_sorted_usec_list_t *sul) {
    Server *self = reinterpret_cast<RevalidateTimer *>(sul)->self;
    guarded("authz re-check", [self] { self->membership_.recheck_expired(); });  // next round tries again
    if (self->revalidate_ms_ > 0) self->schedule_revalidate();
}

void Server::send_text(Client *c, std::string_view text) { enqueue(c, Frame::make(ws_text_frame(text), LWS_PRE)); }

void Server::enqueue(Client *c, FrameRef frame, Send how) {
    size_t size = frame->size();
    if (!push_frame(c, std::move(frame), how)) close_slow_consumer(c, size);
}

// A client whose queue is empty is written to at once: one send(), no POLLOUT armed and
// disarmed through lws (issue 13: that was a sixth of the fan-out's CPU); deliver_to_room
// gathers a record's writes to such clients in a SendBatch instead (io_uring), and hands
// each result to sent() as if it had been this send(). Only what the kernel
// does not take is queued, for on_writeable. Never while lws holds bytes of an earlier write
// (lws_partial_buffered): they must leave first. A batch (Send::queued: a replay of thousands
// of frames) is queued whole: on_writeable sends it 64 kB per write, where a send() per frame
// would hold the loop (measured: 1 000 resumes of 2 000 records stalled live delivery for
// seconds).
bool Server::push_frame(Client *c, FrameRef frame, Send how) {
    if (c->closing) return true;  // dropped: it is going away
    if (how == Send::now_if_idle && idle(c)) {
        const std::string_view bytes = frame->view();
        const ssize_t n = send(c->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        stats_.writes_send++;
        return sent(c, frame, n < 0 ? -errno : n);
    }
    return queue_frame(c, std::move(frame));
}

bool Server::idle(const Client *c) const {
    return !c->closing && c->outbox.empty() && !c->write_failed && !lws_partial_buffered(c->wsi);
}

// What became of a write of all of `frame` to idle client c: n bytes taken, or -errno.
bool Server::sent(Client *c, const FrameRef &frame, ssize_t n) {
    if (n > 0) {
        note_first_write(*frame);
        c->bytes_out += static_cast<size_t>(n);
        stats_.bytes_written += static_cast<size_t>(n);
        if (static_cast<size_t>(n) == frame->size()) return true;
        return queue_frame(c, Frame::make(frame->view().substr(static_cast<size_t>(n)), LWS_PRE));  // the rest
    }
    if (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) {
        c->write_failed = true;  // on_writeable closes it
        lws_callback_on_writable(c->wsi);
        return true;
    }
    return queue_frame(c, frame);
}

bool Server::queue_frame(Client *c, FrameRef frame) {
    const bool was_empty = c->outbox.empty();
    if (c->outbox.push(std::move(frame)) == EnqueueResult::over_backlog) return false;
    if (was_empty) lws_callback_on_writable(c->wsi);
    return true;
}

// The slow-consumer policy in action: slow_consumer_policy() decides, this logs once
// and carries it out.
void Server::close_slow_consumer(Client *c, size_t incoming_bytes) {
    SlowConsumerDecision d = slow_consumer_policy(c->outbox, incoming_bytes);
    stats_.slow_consumers_closed++;
    PSDM_LOG_WARN("PSDM-SLOW", "client %" PRIu64 " (user '%s'): %s; closing with %d", c->id, c->who.user.c_str(),
                  d.reason.c_str(), d.close_code);
    c->outbox.clear();  // free its memory now
    c->held.clear();
    c->held_bytes = 0;
    request_close(c, d.close_code, d.reason);
}

void Server::request_close(Client *c, int code, std::string reason) {
    if (c->closing) return;
    PSDM_LOG_INFO(kTag, "client %" PRIu64 ": closing (%d %s)", c->id, code, reason.c_str());
    const CloseKind kind = close_kind_of(code, reason);
    start_close(c, code, std::move(reason), kind);
}

void Server::start_close(Client *c, int code, std::string reason, CloseKind kind) {
    if (c->closing) return;
    c->closing = true;
    c->close_kind = kind;
    c->close_code = code;
    c->close_reason = std::move(reason);  // ws_close_frame keeps what fits
    membership_.leave_all(member_of(c));  // no more deliveries to it
    // A client that does not read cannot hold the connection open: what is queued and the
    // close frame have kCloseSecs to leave.
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, kCloseSecs);
    lws_callback_on_writable(c->wsi);
}

// O(1): most received frames leave the deadline as it was and cost a comparison.
void Server::arm_timer(Client *c) {
    int64_t deadline = c->session.next_deadline_ms();
    if (deadline == c->armed_deadline) return;
    c->armed_deadline = deadline;  // an entry for the previous deadline is now stale
    if (deadline != INT64_MAX) wheel_.schedule(c->id, deadline);
}

}  // namespace psdm
