// psdm_loadgen: the load generator of `make bench` (see bench/README.md).
//
// Opens N Socket.IO (Engine.IO v4, websocket transport) connections to one server,
// connects each to a namespace and joins it to a room (client i joins room i % R),
// then produces JSON records to Kafka at a fixed rate, each naming a room and carrying
// a sequence number and its production time, and measures what the clients receive:
// deliveries per second, loss and duplicates against the exact expected count, and
// produce-to-receive latency. It reads the server's RSS and CPU time from /proc.
//
//   psdm_loadgen --port P [--path /x_socketio/socket.io/] --connections N --rooms R
//                [--procs P] [--bootstrap HOST:PORT --topic elog --rate MSGS/S --duration S]
//                [--server-pid PID]... [--broker-pid PID] [--extra-port P]... [--join-burst]
//
// --extra-port spreads the clients over several servers on this host (client i to the
// (i % n)-th port; their CPU and RSS are summed over every --server-pid), e.g. two workers
// consuming the same broker. --join-burst holds every client after its namespace connect
// and, after --settle, has them all join at once: the servers' CPU for the joins alone.
//
// Structure: the parent process forks --procs client processes ("shards"; each has
// its own open-files limit, so P shards hold up to P x ~19 900 connections here), then
// creates a librdkafka producer. Each shard runs one epoll loop over its clients
// (non-blocking connect from 127.0.0.(1 + i % K), HTTP upgrade, masked client frames,
// Engine.IO pings, namespace connect, join with ack: the WebSocket client core is
// ws_client.h) and talks to the parent over a SOCK_SEQPACKET socketpair. The phases,
// driven by the parent:
//
//   warm    one extra client (shard 0) joins a warm-up room; the parent produces to it
//           until it receives one: the server is consuming Kafka (nothing measured);
//   ramp    each shard opens its clients, --ramp-window handshakes in flight at once;
//   settle  idle for --settle seconds; RSS of --server-pid(s) is read before the ramp
//           and after this;
//   produce message k goes to room k % R with seq k / R, at --rate for --duration;
//   drain   shards wait until every client got every message of its room, or
//           --drain seconds after the last message; then report.
//
// Output: one JSON object on stdout; progress on stderr. Loopback only: the server
// address must be in 127.0.0.0/8 and clients bind to 127.0.0.x.
//
// --resume (bench/resume_bench.py): the clients resume as a page does (issue 12). The first
// join carries `{}` and its ack the worker's positions; every record's psdm_ws_msg_position
// moves the client's position on its partition to offset + 1. A client whose connection is
// lost reconnects after a jittered backoff (--backoff-min..--backoff-max, again after each
// failed attempt) and joins with its positions; the ack says whether it was recovered, and
// the records below the ack's positions are the replay, the others live. Records are counted
// per client by (room, seq) (loss, duplicates) and per partition by offset (out of order).
// Production then follows a plan instead of --rate x --duration alone: record seq s of a room
// goes to partition s % --partitions; with --drop-clients K, clients 0..K-1 close their
// connection --drop-at seconds into production, --backlog-per-room records are produced to
// their rooms as fast as the producer goes, the parent waits until the server has consumed
// them (a marker record per partition reaches the warm-up client), --return-settle seconds
// more, and then all K reconnect at the same moment and resume; production goes on for
// --after-return seconds. Production-to-reception latency of the other clients is kept per
// phase (before the drop, while away, after the return). A "producing" line on stderr marks
// the start of production (resume_bench.py kills and restarts the server from there), and
// --resume-log PREFIX writes one CSV line per client to PREFIX.SHARD.csv (times in
// CLOCK_REALTIME microseconds).
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "ws_client.h"

namespace {

using bench::cpu_seconds_self;
using bench::json_str;
using bench::now_mono_us;
using bench::parse_double;
using bench::parse_uint;

// ------------------------------------------------------------------------ clocks

int64_t now_real_us() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void sleep_until_mono_us(int64_t t) {
    timespec ts;
    ts.tv_sec = static_cast<time_t>(t / 1000000);
    ts.tv_nsec = static_cast<long>((t % 1000000) * 1000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// ------------------------------------------------------------------------ options

// The clients' options (host, port, path, ns, label, source_addrs, connections and the
// handshake and ramp deadlines) are bench::ClientOptions; the rest is the load's.
struct Options : bench::ClientOptions {
    Options() : ClientOptions(100, 30, 120) {}
    // Sets one of the load's own options (bench::parse_args); false for any other name.
    bool set(const std::string &a, const char *v);
    const char *error() const;  // what is wrong with them, or nullptr
    // --resume and --join-burst take no value; the others do.
    static bool is_flag(const std::string &a) { return a == "--resume" || a == "--join-burst"; }
    std::string event = "psdm_ws_msg";
    uint32_t rooms = 1;
    unsigned procs = 1;
    unsigned ramp_window = 500;
    unsigned stop_after_refusals = 0;  // per shard; 0 = never stop early
    double settle = 2;
    double hold = 0;
    std::string bootstrap;
    std::string topic = "elog";
    double rate = 0;
    double duration = 0;
    unsigned pad = 128;
    double drain = 10;
    double warm_timeout = 60;
    unsigned linger_ms = 1;
    unsigned spin_us = 0;
    std::vector<int> server_pids;
    std::vector<int> broker_pids;
    std::vector<unsigned> extra_ports;  // client i connects to port (i % (1 + extras)): --port, then these
    bool join_burst = false;
    // --resume mode (see the top of this file)
    bool resume = false;
    unsigned partitions = 0;  // 0: librdkafka's partitioner chooses
    double backoff_min = 0.5, backoff_max = 2;
    uint32_t drop_clients = 0, drop_rooms = 0;
    double drop_at = 10;
    uint64_t backlog_per_room = 0;
    double return_settle = 2, after_return = 10;
    std::string resume_log;
};

const char kUsage[] =
    "usage: psdm_loadgen --port P [options]\n"
    "  --host A               server address in 127.0.0.0/8 (127.0.0.1)\n"
    "  --port P               server port (required)\n"
    "  --path P               Socket.IO path (/bench_socketio/socket.io/)\n"
    "  --ns NS                namespace (/psdm_ws)\n"
    "  --event E              event name of records (psdm_ws_msg)\n"
    "  --connections N        clients to open (100)\n"
    "  --rooms R              client i joins room i % R (1)\n"
    "  --procs P              client processes, each with its own fd limit (1)\n"
    "  --source-addrs K       bind client i to 127.0.0.(1 + i % K) (50)\n"
    "  --ramp-window W        handshakes in flight at once, all processes together (500)\n"
    "  --handshake-timeout S  one client's connect..join-ack deadline (30)\n"
    "  --ramp-timeout S       stop opening clients after S seconds (120)\n"
    "  --stop-after-refusals K  a process stops opening clients after the server refused K\n"
    "                         (any failure but a timeout; 0 = never)\n"
    "  --settle S             idle seconds after the ramp before RSS is read (2)\n"
    "  --hold S               then idle S more seconds (server CPU while idle; pings) (0)\n"
    "  --bootstrap B          Kafka bootstrap servers (no producer without it)\n"
    "  --topic T              topic to produce to (elog)\n"
    "  --rate R               messages per second, all rooms together (0)\n"
    "  --duration S           seconds of production (0)\n"
    "  --pad BYTES            padding per record (128)\n"
    "  --drain S              wait at most S seconds after the last message (10)\n"
    "  --warm-timeout S       wait at most S seconds for the server to consume (60)\n"
    "  --linger-ms MS         producer linger.ms (1)\n"
    "  --spin-us US           client processes poll without sleeping for US after traffic (0 = never)\n"
    "  --server-pid PID       server process: RSS (summed) and CPU time (repeatable)\n"
    "  --broker-pid PID       broker process: CPU time (repeatable)\n"
    "  --label S              copied into the output\n"
    "  --extra-port P         another server on this host (repeatable): client i connects to the\n"
    "                         (i % (1 + extras))-th of --port, P...; the warm-up client to --port\n"
    "  --join-burst           clients connect and open the namespace during the ramp but join only\n"
    "                         after --settle, all at once: the server's CPU for the joins alone\n"
    "                         (server_cpu_joins_s, /proc/PID/task/*/schedstat) until every ack\n"
    "resume mode (bench/resume_bench.py):\n"
    "  --resume               clients keep positions, reconnect after a lost connection and resume\n"
    "  --partitions P         record seq s of a room goes to partition s % P (0: librdkafka chooses) (0)\n"
    "  --backoff-min S        a lost client reconnects after a random delay in [min, max] (0.5)\n"
    "  --backoff-max S        ... (2); the same after each failed attempt\n"
    "  --drop-clients K       clients 0..K-1 close their connection during production (0)\n"
    "  --drop-rooms RD        ... and join rooms R + i % RD of their own (0: i % R like the others)\n"
    "  --drop-at S            seconds of production before they close (10)\n"
    "  --backlog-per-room N   records produced to each of their rooms while they are away (0)\n"
    "  --return-settle S      they return S seconds after the server consumed that backlog (2)\n"
    "  --after-return S       production goes on S seconds after they returned (10)\n"
    "  --resume-log PREFIX    one CSV line per client in PREFIX.SHARD.csv\n";

bool Options::set(const std::string &a, const char *v) {
    if (a == "--event") event = v;
    else if (a == "--rooms") rooms = static_cast<uint32_t>(parse_uint(v, "--rooms"));
    else if (a == "--procs") procs = static_cast<unsigned>(parse_uint(v, "--procs"));
    else if (a == "--ramp-window") ramp_window = static_cast<unsigned>(parse_uint(v, "--ramp-window"));
    else if (a == "--stop-after-refusals")
        stop_after_refusals = static_cast<unsigned>(parse_uint(v, "--stop-after-refusals"));
    else if (a == "--settle") settle = parse_double(v, "--settle");
    else if (a == "--hold") hold = parse_double(v, "--hold");
    else if (a == "--bootstrap") bootstrap = v;
    else if (a == "--topic") topic = v;
    else if (a == "--rate") rate = parse_double(v, "--rate");
    else if (a == "--duration") duration = parse_double(v, "--duration");
    else if (a == "--pad") pad = static_cast<unsigned>(parse_uint(v, "--pad"));
    else if (a == "--drain") drain = parse_double(v, "--drain");
    else if (a == "--warm-timeout") warm_timeout = parse_double(v, "--warm-timeout");
    else if (a == "--spin-us") spin_us = static_cast<unsigned>(parse_uint(v, "--spin-us"));
    else if (a == "--linger-ms") linger_ms = static_cast<unsigned>(parse_uint(v, "--linger-ms"));
    else if (a == "--server-pid") server_pids.push_back(static_cast<int>(parse_uint(v, "--server-pid")));
    else if (a == "--broker-pid") broker_pids.push_back(static_cast<int>(parse_uint(v, "--broker-pid")));
    else if (a == "--resume") resume = true;
    else if (a == "--join-burst") join_burst = true;
    else if (a == "--extra-port") extra_ports.push_back(static_cast<unsigned>(parse_uint(v, "--extra-port")));
    else if (a == "--partitions") partitions = static_cast<unsigned>(parse_uint(v, "--partitions"));
    else if (a == "--backoff-min") backoff_min = parse_double(v, "--backoff-min");
    else if (a == "--backoff-max") backoff_max = parse_double(v, "--backoff-max");
    else if (a == "--drop-clients") drop_clients = static_cast<uint32_t>(parse_uint(v, "--drop-clients"));
    else if (a == "--drop-rooms") drop_rooms = static_cast<uint32_t>(parse_uint(v, "--drop-rooms"));
    else if (a == "--drop-at") drop_at = parse_double(v, "--drop-at");
    else if (a == "--backlog-per-room") backlog_per_room = parse_uint(v, "--backlog-per-room");
    else if (a == "--return-settle") return_settle = parse_double(v, "--return-settle");
    else if (a == "--after-return") after_return = parse_double(v, "--after-return");
    else if (a == "--resume-log") resume_log = v;
    else return false;
    return true;
}

const char *Options::error() const {
    if (rooms == 0) return "--rooms must be at least 1";
    if (procs == 0 || procs > 16) return "--procs must be 1..16";
    if (ramp_window == 0) return "--ramp-window must be at least 1";
    if (rate > 0 && duration > 0 && bootstrap.empty()) return "--rate needs --bootstrap";
    if (rate * duration > 1e8) return "--rate x --duration is too large";
    if (!resume && (partitions || drop_clients || drop_rooms || backlog_per_room || !resume_log.empty()))
        return "--partitions, --drop-*, --backlog-per-room and --resume-log need --resume";
    if (resume && join_burst) return "--join-burst and --resume do not go together";
    for (unsigned p : extra_ports)
        if (p == 0 || p > 65535) return "--extra-port must be 1..65535";
    if (resume) {
        if (partitions > 1024) return "--partitions must be 0..1024";
        if (backoff_max < backoff_min) return "--backoff-max must be at least --backoff-min";
        if (drop_clients > connections) return "--drop-clients must be at most --connections";
        if (rooms + drop_rooms > 4096) return "--rooms + --drop-rooms must be at most 4096 with --resume";
        if (drop_rooms && !drop_clients) return "--drop-rooms needs --drop-clients";
        if (drop_clients && (bootstrap.empty() || partitions == 0))
            return "--drop-clients needs --bootstrap and --partitions (a marker record goes to every partition)";
        if (rate > 0 && bootstrap.empty()) return "--rate needs --bootstrap";
    }
    return nullptr;
}

// Rooms the clients join: --rooms, plus --drop-rooms for the dropped clients (--resume).
uint32_t total_rooms(const Options &o) { return o.rooms + (o.resume ? o.drop_rooms : 0); }

// The room client `idx` joins: idx % R, or R + idx % RD for a dropped client with rooms of its own.
uint32_t room_of_client(const Options &o, uint32_t idx) {
    if (o.resume && idx < o.drop_clients && o.drop_rooms > 0) return o.rooms + idx % o.drop_rooms;
    return idx % o.rooms;
}

// Messages the producer will send at most, and so the highest seq a room can see + 1.
uint64_t planned_messages(const Options &o) {
    if (o.rate <= 0 || o.duration <= 0) return 0;
    return static_cast<uint64_t>(std::llround(o.rate * o.duration));
}

// Messages room `room` got when `produced` messages went round-robin over `rooms`.
uint64_t room_share(uint64_t produced, uint32_t rooms, uint32_t room) {
    return produced / rooms + (room < produced % rooms ? 1 : 0);
}

std::string room_name(const std::string &nonce, uint32_t room) { return "bench-" + nonce + "-" + std::to_string(room); }
std::string warm_room_name(const std::string &nonce) { return "bench-" + nonce + "-warm"; }

// ------------------------------------------------------------------------ latency histogram
// Log-linear buckets of microseconds: exact below 128 us, then 64 buckets per power of two
// (under 1.6% relative error), up to 2^64.

constexpr size_t kHistBuckets = 128 + 57 * 64;

size_t hist_index(uint64_t v) {
    if (v < 128) return static_cast<size_t>(v);
    unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));
    uint64_t top = v >> (e - 6);  // 64..127
    return 128 + static_cast<size_t>(e - 7) * 64 + static_cast<size_t>(top - 64);
}

double hist_value(size_t i) {
    if (i < 128) return static_cast<double>(i);
    size_t e = 7 + (i - 128) / 64;
    uint64_t top = 64 + (i - 128) % 64;
    uint64_t lo = top << (e - 6), width = uint64_t{1} << (e - 6);
    return static_cast<double>(lo) + static_cast<double>(width - 1) / 2.0;
}

double hist_percentile(const std::vector<uint64_t> &h, double p) {
    uint64_t total = 0;
    for (uint64_t c : h) total += c;
    if (total == 0) return -1;
    uint64_t rank = static_cast<uint64_t>(std::ceil(p * static_cast<double>(total)));
    if (rank == 0) rank = 1;
    uint64_t cum = 0;
    for (size_t i = 0; i < h.size(); i++) {
        cum += h[i];
        if (cum >= rank) return hist_value(i);
    }
    return hist_value(h.size() - 1);
}

// ------------------------------------------------------------------------ parent <-> shard messages

enum Fail : unsigned {
    kFailConnect,              // connect() failed (refused, reset)
    kFailLocalFds,             // this process ran out of file descriptors
    kFailHttpStatus,           // the upgrade was answered with another status than 101
    kFailClosedBeforeUpgrade,  // the server closed (FIN) before answering the upgrade
    kFailResetBeforeUpgrade,   // the connection was reset (RST) before the upgrade was answered
    kFailClosedBeforeJoin,     // closed after the upgrade, before the join ack
    kFailNamespaceRefused,     // 44/ns,... connect error
    kFailJoinRefused,          // join acked with an error
    kFailProtocol,             // a malformed answer (bad Sec-WebSocket-Accept, masked frame, ...)
    kFailTimeout,              // no join ack within --handshake-timeout
    kFailRampTimeout,          // still in flight when --ramp-timeout passed
    kFailNotStarted,           // never opened: the ramp stopped early
    kFailKinds
};
const char *const kFailNames[kFailKinds] = {"connect_error",         "local_fd_limit",       "http_status",
                                            "closed_before_upgrade", "reset_before_upgrade", "closed_before_join",
                                            "namespace_refused",     "join_refused",         "protocol_error",
                                            "handshake_timeout",     "ramp_timeout",         "not_started"};

constexpr unsigned kStatusSlots = 600;

struct CmdRamp {
    char type = 'R';
};
struct CmdDone {
    char type = 'D';
    uint64_t produced = 0;
    int64_t deadline_real_us = 0;
};
struct CmdClose {
    char type = 'C';
};
struct EvWarm {
    char type = 'W';
    uint64_t seq = 0;  // --resume: the seq of the warm-up room's record (markers); sent for each
};
// --resume: the records each room got (acknowledged by the broker), before CmdDone.
struct CmdCounts {
    char type = 'N';
    uint32_t rooms = 0;
    uint64_t count[4096] = {};  // the first `rooms` are sent
};
struct CmdAway {  // --resume: clients 0..drop_clients-1 close their connection and wait
    char type = 'A';
};
struct CmdReturn {  // --resume: the clients away reconnect now, all at once, and resume
    char type = 'B';
};
constexpr unsigned kPhases = 3;  // --resume: before the drop, while away, after the return
const char *const kPhaseNames[kPhases] = {"before_drop", "away", "after_return"};
struct CmdJoin {  // --join-burst: every client that opened the namespace joins now
    char type = 'J';
};
struct CmdPhase {  // --resume: records produced from start_real_us on belong to `phase`
    char type = 'P';
    uint32_t phase = 0;
    int64_t start_real_us = 0;
};
struct EvRamped {
    char type = 'M';
    uint64_t attempted = 0, held = 0;
    uint64_t fail[kFailKinds] = {};
    uint32_t http_status[kStatusSlots] = {};
    double seconds = 0;
    double cpu_s = 0;
};
struct EvStats {
    char type = 'S';
    uint64_t counted = 0;           // clients joined when the ramp ended
    uint64_t open_at_end = 0;       // of those, still open at the end
    uint64_t closed_by_server = 0;  // of those, closed by the server (close frame, FIN or RST)
    uint64_t expected = 0, delivered = 0, duplicates = 0, unexpected = 0, wrong_room = 0;
    uint64_t clients_complete = 0;
    uint64_t pings = 0, frames = 0, bytes = 0;
    int64_t first_rx_real_us = 0, last_rx_real_us = 0;
    double cpu_s = 0;
    uint64_t close_codes[5] = {};  // 1000, 1001, 1008, 1009/1011 others, none (no close frame)
    uint64_t hist[kHistBuckets] = {};
};
// --join-burst: the shard's joins after CmdJoin, sent once every one was answered (or failed).
struct EvJoined {
    char type = 'J';
    uint64_t sent = 0, acked = 0, refused = 0, lost = 0;
    int64_t first_sent_real_us = 0, last_ack_real_us = 0;
};
// --resume: what the shard's clients went through; sent before EvStats.
struct EvResume {
    char type = 'X';
    uint64_t out_of_order = 0;      // a record below the highest offset already received on its partition
    uint64_t no_position = 0;       // records without a parsable psdm_ws_msg_position
    uint64_t lost_connections = 0;  // joined clients whose connection the server closed or lost
    uint64_t attempts = 0;          // reconnection attempts (connect .. join ack)
    uint64_t attempt_fail[kFailKinds] = {};
    uint32_t attempt_status[kStatusSlots] = {};  // HTTP status of the attempts' upgrades
    uint64_t resumes = 0, recovered = 0, not_recovered = 0;
    uint64_t replayed = 0;         // records below a recovered resume ack's positions
    uint64_t clients_live = 0;     // counted clients whose last resume was recovered and then got a live record
    uint64_t clients_resumed = 0;  // counted clients that resumed at least once
    uint64_t clients_not_joined_at_end = 0;  // counted clients away, reconnecting or in a handshake at the end
    uint64_t clients_with_loss = 0;
};
// --resume: the latency histogram of phase `phase` (clients that were not dropped).
struct EvPhaseHist {
    char type = 'H';
    uint32_t phase = 0;
    uint64_t hist[kHistBuckets] = {};
};

bool send_msg(int fd, const void *p, size_t n) {
    for (;;) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r == static_cast<ssize_t>(n)) return true;
        if (r < 0 && errno == EINTR) continue;
        return false;
    }
}

// ------------------------------------------------------------------------ shard: the clients

// waiting: --resume, a lost client waits for its backoff to pass (or, away, for CmdReturn).
// parked: --join-burst, the namespace is open and the client waits for CmdJoin; it counts
// as joined (held) from then on, and is a joined client once it sent its join.
enum class St : uint8_t { idle, connecting, http, eio_open, ns, join, joined, closed, waiting, parked };

// Between connect() and the join ack.
bool in_handshake(St st) {
    return st != St::idle && st != St::joined && st != St::closed && st != St::waiting && st != St::parked;
}

// Open and past the ramp's handshake: joined, or parked for --join-burst.
bool is_held(St st) { return st == St::joined || st == St::parked; }

struct Conn {
    int fd = -1;
    uint32_t idx = 0;  // global client index
    uint32_t room = 0;
    St st = St::idle;
    bool want_out = false;
    bool counted = false;  // joined when the ramp ended: counts in the expected deliveries
    bool warm = false;
    bool join_pending = false;  // --join-burst: its join is sent, the ack not yet received
    int64_t deadline_us = 0;
    std::string in, out, frag;
    std::string key;
    std::vector<uint64_t> seen;  // bit per seq received
    uint64_t unique = 0;
};

// --resume: what one client holds as a page does, and what happened to it. Offsets and
// positions per partition of --topic (index = partition number); -1 = none.
struct Track {
    std::vector<int64_t> pos;       // the next offset it has not seen (sent when it resumes)
    std::vector<int64_t> last_off;  // the highest offset received (out-of-order check)
    std::vector<int64_t> ack_pos;   // the last resume ack's positions: records below were replayed
    bool has_pos = false;           // its first join was acknowledged with positions
    bool rejoin = false;            // the handshake in progress is a reconnection
    bool away = false;              // closed by CmdAway, waits for CmdReturn
    bool live_pending = false;      // resumed (recovered), no live record yet
    bool last_recovered = false;
    int64_t retry_at_us = 0;  // CLOCK_MONOTONIC: when a waiting client tries again
    uint32_t attempts = 0, failed = 0, resumes = 0, recovered = 0, not_recovered = 0;
    uint64_t replayed = 0, dups = 0, ooo = 0;  // replayed: by the last resume
    // CLOCK_REALTIME microseconds (0: never): the last loss, the last upgrade (101) and join
    // sent, its ack, its first live record and last replayed one; first and last record.
    int64_t lost_us = 0, connected_us = 0, join_sent_us = 0, ack_us = 0, first_live_us = 0, last_replayed_us = 0;
    int64_t first_rx_us = 0, last_rx_us = 0;
    std::string reason;  // of the last resume that was not recovered
};

constexpr uint64_t kCtlTag = UINT64_MAX;
constexpr uint64_t kWarmTag = UINT64_MAX - 1;

class Shard {
 public:
    Shard(const Options &o, unsigned shard, uint32_t first, uint32_t last, int ctl, std::string nonce)
        : o_(o),
          shard_(shard),
          ctl_(ctl),
          nonce_(std::move(nonce)),
          rng_(std::random_device{}() ^ (uint64_t{shard} << 32)) {
        conns_.resize(last - first);
        for (uint32_t i = 0; i < conns_.size(); i++) {
            conns_[i].idx = first + i;
            conns_[i].room = room_of_client(o, first + i);  // (first + i) % rooms without --resume
        }
        if (o.resume) tr_.resize(conns_.size());
        window_ = std::max(1u, o.ramp_window / o.procs);
        seen_words_ = (planned_messages(o) / o.rooms + 2 + 63) / 64;
        dsts_.resize(1 + o.extra_ports.size());
        bench::loopback_address(o.host, o.port, &dsts_[0]);  // checked by bench::parse_args
        for (size_t i = 0; i < o.extra_ports.size(); i++)
            bench::loopback_address(o.host, o.extra_ports[i], &dsts_[i + 1]);
        ns_prefix_ = ws::ns_prefix(o.ns);
        event_prefix_ = "[\"" + o.event + "\",";
        warm_.warm = true;
        warm_.idx = 0;
    }

    int run();

 private:
    void ctl_readable();
    void start_conn(Conn &c, uint64_t tag);
    void on_event(Conn &c, uint64_t tag, uint32_t events);
    void on_readable(Conn &c);
    void on_http(Conn &c);
    size_t parse_frames(Conn &c, const char *p, size_t n);
    void on_frame(Conn &c, const ws::Frame &f);
    void on_text(Conn &c, std::string_view t);
    void on_record(Conn &c, std::string_view payload);
    void send_text(Conn &c, std::string_view payload);
    void send_frame(Conn &c, unsigned opcode, std::string_view payload);
    void write_out(Conn &c, const char *p, size_t n);
    void set_out_interest(Conn &c, bool want, uint64_t tag);
    void fail(Conn &c, Fail why);
    void server_closed(Conn &c, int code);
    void close_fd(Conn &c);
    void became_joined(Conn &c, St st = St::joined);  // joined, or parked (--join-burst)
    void join_all();                                  // --join-burst: CmdJoin
    void burst_check();                               // --join-burst: EvJoined once every join sent is answered or lost
    void ramp_step();
    void check_timeouts();
    void maybe_report_stats(bool force);
    // --resume
    Track &tr(const Conn &c) { return tr_[static_cast<size_t>(&c - conns_.data())]; }
    std::string join_packet(Conn &c);
    void on_join_ack(Conn &c, std::string_view args);
    void on_record_resume(Conn &c, uint64_t seq, int64_t ts_us, std::string_view position);
    void lost(Conn &c);
    void attempt_failed(Conn &c, Fail why);
    void retry_later(Conn &c);
    void go_away();
    void come_back();
    void report_resume();
    void write_resume_log();
    uint64_t expected_of(const Conn &c) const {
        return o_.resume ? (c.room < room_counts_.size() ? room_counts_[c.room] : 0)
                         : room_share(produced_, o_.rooms, c.room);
    }
    uint64_t tag_of(const Conn &c) const { return c.warm ? kWarmTag : static_cast<uint64_t>(&c - conns_.data()); }
    const std::string &room_of(const Conn &c) {
        if (c.warm) return warm_room_;
        if (room_names_.size() <= c.room) room_names_.resize(c.room + 1);
        std::string &s = room_names_[c.room];
        if (s.empty()) s = room_name(nonce_, c.room);
        return s;
    }

    const Options &o_;
    unsigned shard_;
    int ctl_;
    std::string nonce_;
    std::mt19937_64 rng_;
    int ep_ = -1;
    std::vector<Conn> conns_;
    Conn warm_;
    std::string warm_room_;
    std::vector<std::string> room_names_;
    std::vector<sockaddr_in> dsts_;  // --port, then each --extra-port
    std::string ns_prefix_, event_prefix_;
    size_t seen_words_ = 0;
    unsigned window_ = 1;

    // ramp
    bool ramping_ = false, ramp_reported_ = false, stop_ramp_ = false;
    size_t next_ = 0;
    unsigned in_flight_ = 0;
    int64_t ramp_start_us_ = 0;
    EvRamped ramp_{};
    uint64_t failures_ = 0, refusals_ = 0;
    // warm-up
    bool warm_reported_ = false;
    int64_t warm_retry_us_ = 0;
    // measurement
    bool done_ = false, stats_sent_ = false, closing_ = false;
    uint64_t produced_ = 0;
    int64_t deadline_real_us_ = 0;
    uint64_t expected_total_ = 0, unique_total_ = 0;
    EvStats st_{};
    int64_t rx_now_us_ = 0;
    // --join-burst
    EvJoined jb_{};
    bool burst_active_ = false;
    // --resume
    std::vector<Track> tr_;
    std::vector<uint64_t> room_counts_;  // CmdCounts
    EvResume rs_{};
    int64_t phase_start_[kPhases] = {};
    std::vector<std::vector<uint64_t>> phase_hist_;
    char rbuf_[256 * 1024];
};

int Shard::run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) return 1;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kCtlTag;
    epoll_ctl(ep_, EPOLL_CTL_ADD, ctl_, &ev);
    warm_room_ = warm_room_name(nonce_);
    if (shard_ == 0) start_conn(warm_, kWarmTag);

    std::vector<epoll_event> evs(1024);
    int64_t last_scan = 0, last_busy = 0, last_progress = now_mono_us();
    while (!closing_) {
        // While traffic flows, poll without sleeping (for up to --spin-us after the last
        // event): a client process that sleeps in epoll_wait between messages makes the
        // server's every send() pay for waking it up, which a browser on another machine
        // would not cost it. Idle, it sleeps.
        int64_t spin_until = last_busy + static_cast<int64_t>(o_.spin_us);
        int timeout = o_.spin_us > 0 && now_mono_us() < spin_until ? 0 : 20;
        int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), timeout);
        if (n < 0 && errno != EINTR) return 1;
        if (n > 0 && o_.spin_us > 0) last_busy = now_mono_us();
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[static_cast<size_t>(i)].data.u64;
            uint32_t e = evs[static_cast<size_t>(i)].events;
            if (tag == kCtlTag) {
                if (e & (EPOLLHUP | EPOLLERR)) {
                    if (!(e & EPOLLIN)) return 1;  // parent gone
                }
                ctl_readable();
                continue;
            }
            Conn &c = tag == kWarmTag ? warm_ : conns_[tag];
            if (c.fd >= 0) on_event(c, tag, e);
        }
        int64_t now = now_mono_us();
        if (ramping_ && now - last_progress >= 5000000) {
            last_progress = now;
            fprintf(stderr, "psdm_loadgen: process %u: %.0f s: %" PRIu64 " joined, %u in flight, %" PRIu64 " failed\n",
                    shard_, static_cast<double>(now - ramp_start_us_) / 1e6, ramp_.held, in_flight_, failures_);
        }
        if (now - last_scan >= 100000) {
            last_scan = now;
            check_timeouts();
            if (shard_ == 0 && warm_.fd < 0 && !warm_reported_ && now >= warm_retry_us_) start_conn(warm_, kWarmTag);
        }
        if (ramping_) ramp_step();
        if (done_) maybe_report_stats(false);
    }
    for (auto &c : conns_)
        if (c.fd >= 0) close(c.fd);
    if (warm_.fd >= 0) close(warm_.fd);
    return 0;
}

void Shard::ctl_readable() {
    static char buf[sizeof(CmdCounts) + 64];
    ssize_t n = recv(ctl_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
        closing_ = true;  // parent gone
        return;
    }
    if (n <= 0) return;
    switch (buf[0]) {
    case 'R':
        ramping_ = true;
        ramp_start_us_ = now_mono_us();
        break;
    case 'D': {
        CmdDone d;
        memcpy(&d, buf, std::min(sizeof d, static_cast<size_t>(n)));
        produced_ = d.produced;
        deadline_real_us_ = d.deadline_real_us;
        expected_total_ = 0;
        for (auto &c : conns_)
            if (c.counted) expected_total_ += expected_of(c);
        done_ = true;
        break;
    }
    case 'N': {
        CmdCounts counts;
        memcpy(&counts, buf, std::min(sizeof counts, static_cast<size_t>(n)));
        room_counts_.assign(counts.count, counts.count + std::min<uint32_t>(counts.rooms, 4096));
        break;
    }
    case 'A': go_away(); break;
    case 'J': join_all(); break;
    case 'B': come_back(); break;
    case 'P': {
        CmdPhase ph;
        memcpy(&ph, buf, std::min(sizeof ph, static_cast<size_t>(n)));
        if (ph.phase < kPhases) phase_start_[ph.phase] = ph.start_real_us;
        break;
    }
    case 'C': closing_ = true; break;
    default: break;
    }
}

void Shard::start_conn(Conn &c, uint64_t tag) {
    int fd = ws::new_socket();
    if (fd < 0) {
        if (c.warm) {
            warm_retry_us_ = now_mono_us() + 500000;
            return;
        }
        if (o_.resume && tr(c).rejoin) {
            attempt_failed(c, kFailLocalFds);
            return;
        }
        c.st = St::closed;
        ramp_.attempted++;
        ramp_.fail[kFailLocalFds]++;
        failures_++;
        stop_ramp_ = true;  // no more fds in this process
        return;
    }
    c.fd = fd;
    if (o_.resume && !c.warm && tr(c).rejoin) {
        rs_.attempts++;
        tr(c).attempts++;
    } else if (!c.warm) {
        ramp_.attempted++;
        in_flight_++;
    }
    c.st = St::connecting;
    c.deadline_us = now_mono_us() + static_cast<int64_t>(o_.handshake_timeout * 1e6);
    const sockaddr_in &dst = dsts_[c.warm ? 0 : c.idx % dsts_.size()];
    if (!ws::start_connect(ep_, fd, c.warm ? 0u : c.idx % o_.source_addrs, dst, tag)) {
        fail(c, kFailConnect);
        return;
    }
    c.want_out = true;
}

void Shard::set_out_interest(Conn &c, bool want, uint64_t tag) { ws::want_writable(ep_, c.fd, tag, want, &c.want_out); }

void Shard::on_event(Conn &c, uint64_t tag, uint32_t events) {
    if (c.st == St::connecting) {
        ws::Connect r = ws::connect_result(c.fd, events);
        if (r == ws::Connect::pending) return;
        if (r == ws::Connect::failed) {
            fail(c, kFailConnect);
            return;
        }
        c.key = ws::new_key(rng_);
        std::string req = ws::upgrade_request(o_.path, o_.host, o_.port, c.key);  // Host: the first port's
        c.st = St::http;
        set_out_interest(c, false, tag);
        write_out(c, req.data(), req.size());
        return;
    }
    if (events & EPOLLOUT) {
        if (!c.out.empty()) {
            ssize_t n = ws::send_some(c.fd, c.out.data(), c.out.size());
            if (n < 0) {
                server_closed(c, -1);
                return;
            }
            c.out.erase(0, static_cast<size_t>(n));
        }
        if (c.out.empty()) set_out_interest(c, false, tag);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

void Shard::write_out(Conn &c, const char *p, size_t n) {
    if (c.fd < 0) return;
    if (c.out.empty()) {
        ssize_t w = ws::send_some(c.fd, p, n);
        if (w < 0) {
            if (is_held(c.st)) server_closed(c, -1);
            else fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeJoin);
            return;
        }
        if (static_cast<size_t>(w) == n) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
    c.out.append(p, n);
    set_out_interest(c, true, tag_of(c));
}

void Shard::send_frame(Conn &c, unsigned opcode, std::string_view payload) {
    std::string f;
    ws::append_frame(&f, opcode, payload, static_cast<uint32_t>(rng_()));
    write_out(c, f.data(), f.size());
}

void Shard::send_text(Conn &c, std::string_view payload) { send_frame(c, ws::kOpText, payload); }

void Shard::close_fd(Conn &c) {
    if (c.fd >= 0) {
        close(c.fd);  // also leaves the epoll set
        c.fd = -1;
    }
    c.in.clear();
    c.in.shrink_to_fit();
    c.out.clear();
    c.out.shrink_to_fit();
    c.frag.clear();
    c.frag.shrink_to_fit();
    c.key.clear();
    c.key.shrink_to_fit();
}

// A client ended before it joined.
void Shard::fail(Conn &c, Fail why) {
    bool in_flight = in_handshake(c.st);
    close_fd(c);
    c.st = St::closed;
    if (c.warm) {
        warm_retry_us_ = now_mono_us() + 500000;
        c.st = St::idle;
        return;
    }
    if (o_.resume && tr(c).rejoin) {
        attempt_failed(c, why);
        return;
    }
    if (in_flight) in_flight_--;
    ramp_.fail[why]++;
    failures_++;
    if (why != kFailTimeout && why != kFailRampTimeout) refusals_++;
    if (o_.stop_after_refusals && refusals_ >= o_.stop_after_refusals) stop_ramp_ = true;
}

// A joined client was closed by the server (or the connection broke).
void Shard::server_closed(Conn &c, int code) {
    if (!is_held(c.st)) {
        fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeJoin);
        return;
    }
    if (c.join_pending) {
        c.join_pending = false;
        jb_.lost++;
        burst_check();
    }
    close_fd(c);
    c.st = St::closed;
    if (c.warm) {
        c.st = St::idle;
        warm_retry_us_ = now_mono_us() + 500000;
        return;
    }
    if (ramp_reported_ && c.counted) {
        st_.closed_by_server++;
        size_t slot = code == 1000 ? 0 : code == 1001 ? 1 : code == 1008 ? 2 : code > 0 ? 3 : 4;
        st_.close_codes[slot]++;
        if (o_.resume) lost(c);
    } else {
        ramp_.held--;  // a client that joined and was closed during the ramp
        ramp_.fail[kFailClosedBeforeJoin]++;
    }
}

void Shard::became_joined(Conn &c, St st) {
    c.st = st;
    c.key.clear();
    c.key.shrink_to_fit();
    if (c.warm) return;
    in_flight_--;
    ramp_.held++;
}

void Shard::on_readable(Conn &c) {
    size_t len = 0;
    ws::Rx rx = ws::recv_some(c.fd, rbuf_, sizeof rbuf_, &len);
    if (rx == ws::Rx::again) return;
    if (rx == ws::Rx::reset && c.st == St::http) {
        fail(c, kFailResetBeforeUpgrade);
        return;
    }
    if (rx != ws::Rx::data) {
        server_closed(c, -1);
        return;
    }
    rx_now_us_ = now_real_us();
    st_.bytes += len;
    if (c.st == St::http) {
        c.in.append(rbuf_, len);
        on_http(c);
        return;
    }
    if (c.in.empty()) {
        size_t used = parse_frames(c, rbuf_, len);
        if (c.fd >= 0 && used < len) c.in.assign(rbuf_ + used, len - used);
    } else {
        c.in.append(rbuf_, len);
        size_t used = parse_frames(c, c.in.data(), c.in.size());
        if (c.fd >= 0) c.in.erase(0, used);
    }
}

void Shard::on_http(Conn &c) {
    ws::Answer a = ws::read_answer(c.in, c.key);
    if (!a.complete) {
        if (a.oversized) fail(c, kFailProtocol);
        return;
    }
    const bool rejoin = o_.resume && !c.warm && tr(c).rejoin;
    if (a.status != 101) {
        if (rejoin) rs_.attempt_status[std::min(a.status, kStatusSlots - 1)]++;
        else if (!c.warm) ramp_.http_status[std::min(a.status, kStatusSlots - 1)]++;
        fail(c, a.status ? kFailHttpStatus : kFailProtocol);
        return;
    }
    if (!a.accepted) {
        fail(c, kFailProtocol);
        return;
    }
    if (rejoin) {
        rs_.attempt_status[101]++;
        tr(c).connected_us = now_real_us();
    } else if (!c.warm) {
        ramp_.http_status[101]++;
    }
    c.st = St::eio_open;
    std::string rest = c.in.substr(a.head_len);
    c.in.clear();
    size_t used = parse_frames(c, rest.data(), rest.size());
    if (c.fd >= 0 && used < rest.size()) c.in.assign(rest, used, std::string::npos);
}

size_t Shard::parse_frames(Conn &c, const char *p, size_t n) {
    ws::FrameError err;
    size_t used = ws::decode_frames(p, n, 64u << 20, &err, [&](const ws::Frame &f) {
        on_frame(c, f);
        return c.fd >= 0;
    });
    if (err != ws::FrameError::none) {
        if (c.st == St::joined) server_closed(c, -1);
        else fail(c, kFailProtocol);
    }
    return used;
}

void Shard::on_frame(Conn &c, const ws::Frame &f) {
    st_.frames++;
    switch (f.opcode) {
    case ws::kOpText:
        if (f.fin) on_text(c, f.payload);
        else c.frag.assign(f.payload);
        break;
    case ws::kOpContinuation:
        c.frag.append(f.payload);
        if (f.fin) {
            std::string whole;
            whole.swap(c.frag);
            on_text(c, whole);
        }
        break;
    case ws::kOpClose: server_closed(c, ws::close_code(f.payload)); break;
    case ws::kOpPing: send_frame(c, ws::kOpPong, f.payload); break;
    default: break;
    }
}

void Shard::on_text(Conn &c, std::string_view t) {
    if (t.empty()) return;
    switch (t[0]) {
    case ws::kEioOpen:
        if (c.st == St::eio_open) {
            c.st = St::ns;
            send_text(c, ws::connect_packet(ns_prefix_));
        }
        return;
    case ws::kEioPing:
        st_.pings++;
        send_text(c, ws::pong_for(t));
        return;
    case ws::kEioClose: server_closed(c, 0); return;
    default: break;
    }
    char type;
    std::string_view rest;
    if (!ws::sio_packet(t, ns_prefix_, &type, &rest)) return;  // not Socket.IO, or another namespace
    switch (type) {
    case ws::kSioConnect:
        if (c.st == St::ns && o_.join_burst && !c.warm) {
            became_joined(c, St::parked);  // joins on CmdJoin
        } else if (c.st == St::ns) {
            c.st = St::join;
            if (o_.resume && !c.warm) send_text(c, join_packet(c));
            else
                send_text(
                    c, std::string{ws::kEioMessage, ws::kSioEvent} + ns_prefix_ + "1[\"join\",\"" + room_of(c) + "\"]");
        }
        break;
    case ws::kSioConnectError:
        if (c.st == St::ns) fail(c, kFailNamespaceRefused);
        break;
    case ws::kSioAck:
        if (c.st == St::join && rest.substr(0, 1) == "1") {
            if (o_.resume && !c.warm) on_join_ack(c, rest.substr(1));
            else if (rest.substr(1) == "[]") became_joined(c);
            else fail(c, kFailJoinRefused);
        } else if (c.join_pending && rest.substr(0, 1) == "1") {
            c.join_pending = false;
            if (rest.substr(1) == "[]") jb_.acked++;
            else jb_.refused++;
            jb_.last_ack_real_us = now_real_us();
            burst_check();
        }
        break;
    case ws::kSioEvent:
        if (rest.substr(0, event_prefix_.size()) == event_prefix_) on_record(c, rest);
        break;
    case ws::kSioDisconnect: server_closed(c, 0); break;
    default: break;
    }
}

// "key": value (a number or a string) in a flat JSON object; false when absent.
bool json_field(std::string_view obj, std::string_view quoted_key, std::string_view *value) {
    size_t p = obj.find(quoted_key);
    if (p == std::string_view::npos) return false;
    p += quoted_key.size();
    while (p < obj.size() && (obj[p] == ' ' || obj[p] == ':')) p++;
    if (p >= obj.size()) return false;
    if (obj[p] == '"') {
        size_t e = obj.find('"', p + 1);
        if (e == std::string_view::npos) return false;
        *value = obj.substr(p + 1, e - p - 1);
        return true;
    }
    size_t e = p;
    while (e < obj.size() && obj[e] >= '0' && obj[e] <= '9') e++;
    *value = obj.substr(p, e - p);
    return e > p;
}

uint64_t to_u64(std::string_view s) {
    uint64_t v = 0;
    for (char ch : s) v = v * 10 + static_cast<uint64_t>(ch - '0');
    return v;
}

void Shard::on_record(Conn &c, std::string_view payload) {
    std::string_view room, seq, ts;
    if (!json_field(payload, "\"experiment_name\"", &room) || !json_field(payload, "\"seq\"", &seq) ||
        !json_field(payload, "\"ts_us\"", &ts)) {
        if (!c.warm) st_.unexpected++;
        return;
    }
    if (c.warm) {
        if (room == warm_room_ && o_.resume) {  // each one: the parent waits for its markers
            EvWarm w;
            w.seq = to_u64(seq);
            send_msg(ctl_, &w, sizeof w);
            warm_reported_ = true;
        } else if (room == warm_room_ && !warm_reported_) {
            EvWarm w;
            send_msg(ctl_, &w, sizeof w);
            warm_reported_ = true;
        }
        return;
    }
    if (room != room_of(c)) {
        st_.wrong_room++;
        return;
    }
    uint64_t s = to_u64(seq);
    if (o_.resume) {
        std::string_view position;
        if (!json_field(payload, "\"psdm_ws_msg_position\"", &position)) position = {};
        on_record_resume(c, s, static_cast<int64_t>(to_u64(ts)), position);
        return;
    }
    int64_t lat = rx_now_us_ - static_cast<int64_t>(to_u64(ts));
    if (c.seen.empty()) c.seen.assign(seen_words_, 0);
    if (s / 64 >= c.seen.size()) {
        st_.unexpected++;
        return;
    }
    uint64_t bit = uint64_t{1} << (s % 64);
    if (c.seen[s / 64] & bit) {
        st_.duplicates++;
        return;
    }
    c.seen[s / 64] |= bit;
    c.unique++;
    if (c.counted) unique_total_++;
    st_.hist[hist_index(lat > 0 ? static_cast<uint64_t>(lat) : 0)]++;
    if (st_.first_rx_real_us == 0) st_.first_rx_real_us = rx_now_us_;
    st_.last_rx_real_us = rx_now_us_;
}

void Shard::ramp_step() {
    int64_t now = now_mono_us();
    if (!stop_ramp_ && now - ramp_start_us_ > static_cast<int64_t>(o_.ramp_timeout * 1e6)) {
        stop_ramp_ = true;
        for (auto &c : conns_)
            if (in_handshake(c.st)) fail(c, kFailRampTimeout);
    }
    while (!stop_ramp_ && in_flight_ < window_ && next_ < conns_.size()) {
        size_t i = next_++;
        start_conn(conns_[i], i);
    }
    if ((stop_ramp_ || next_ == conns_.size()) && in_flight_ == 0) {
        ramping_ = false;
        for (size_t i = next_; i < conns_.size(); i++) ramp_.fail[kFailNotStarted]++;
        ramp_.seconds = static_cast<double>(now - ramp_start_us_) / 1e6;
        ramp_.cpu_s = cpu_seconds_self();
        for (auto &c : conns_) c.counted = is_held(c.st);
        st_.counted = ramp_.held;
        ramp_reported_ = true;
        send_msg(ctl_, &ramp_, sizeof ramp_);
    }
}

void Shard::join_all() {
    jb_.first_sent_real_us = now_real_us();
    for (auto &c : conns_) {
        if (c.st != St::parked) continue;
        c.st = St::joined;
        c.join_pending = true;
        jb_.sent++;
        send_text(c, std::string{ws::kEioMessage, ws::kSioEvent} + ns_prefix_ + "1[\"join\",\"" + room_of(c) + "\"]");
    }
    burst_active_ = true;  // only now: a write that failed in the loop must not end the burst early
    burst_check();
}

void Shard::burst_check() {
    if (!burst_active_ || jb_.acked + jb_.refused + jb_.lost < jb_.sent) return;
    burst_active_ = false;
    send_msg(ctl_, &jb_, sizeof jb_);
}

void Shard::check_timeouts() {
    if (o_.resume) {  // reconnections too: every client, handshake deadlines and backoffs
        int64_t now = now_mono_us();
        for (auto &c : conns_) {
            if (in_handshake(c.st) && now > c.deadline_us) {
                fail(c, kFailTimeout);
            } else if (c.st == St::waiting && !tr(c).away && now >= tr(c).retry_at_us) {
                start_conn(c, tag_of(c));
            }
        }
        return;
    }
    if (in_flight_ == 0) return;
    int64_t now = now_mono_us();
    for (size_t i = 0; i < next_; i++) {
        Conn &c = conns_[i];
        if (in_handshake(c.st) && now > c.deadline_us) fail(c, kFailTimeout);
    }
}

// Seqs below `want` received (bits set in `seen`).
uint64_t seen_below(const std::vector<uint64_t> &seen, uint64_t want) {
    uint64_t got = 0;
    for (size_t w = 0; w < seen.size(); w++) {
        uint64_t bits = seen[w];
        if (w * 64 + 64 > want) {
            size_t keep = want > w * 64 ? static_cast<size_t>(want - w * 64) : 0;
            bits &= keep >= 64 ? ~uint64_t{0} : ((uint64_t{1} << keep) - 1);
        }
        got += static_cast<uint64_t>(__builtin_popcountll(bits));
    }
    return got;
}

void Shard::maybe_report_stats(bool force) {
    if (stats_sent_) return;
    bool complete = unique_total_ >= expected_total_;
    if (complete && o_.resume) {  // and every counted client is back
        for (auto &c : conns_)
            if (c.counted && c.st != St::joined) complete = false;
    }
    if (!complete && !force && now_real_us() < deadline_real_us_) return;
    st_.expected = expected_total_;
    for (auto &c : conns_) {
        if (!c.counted) continue;
        uint64_t want = expected_of(c), got = seen_below(c.seen, want);
        st_.delivered += got;
        st_.unexpected += c.unique - got;
        if (got == want) st_.clients_complete++;
        if (is_held(c.st)) st_.open_at_end++;
        if (o_.resume && got < want) rs_.clients_with_loss++;
    }
    if (o_.resume) report_resume();
    st_.cpu_s = cpu_seconds_self();
    send_msg(ctl_, &st_, sizeof st_);
    stats_sent_ = true;
}

// ------------------------------------------------------------------------ shard: --resume

bool all_digits(std::string_view s) {
    if (s.empty() || s.size() > 18) return false;
    for (char ch : s)
        if (ch < '0' || ch > '9') return false;
    return true;
}

// The "positions":{"TOPIC/P":N,...} object of a join ack's arguments, for `topic` only, into
// *out (index P; -1 where absent). False when the ack has none.
bool parse_positions(std::string_view args, const std::string &topic, std::vector<int64_t> *out) {
    static constexpr std::string_view kKey = "\"positions\":{";
    size_t p = args.find(kKey);
    if (p == std::string_view::npos) return false;
    p += kKey.size();
    out->clear();
    while (p < args.size() && args[p] != '}') {
        if (args[p] != '"') {
            p++;  // ',' or blanks
            continue;
        }
        size_t e = args.find('"', p + 1);
        if (e == std::string_view::npos) return false;
        std::string_view key = args.substr(p + 1, e - p - 1);
        p = e + 1;
        while (p < args.size() && (args[p] == ':' || args[p] == ' ')) p++;
        size_t b = p;
        while (p < args.size() && args[p] >= '0' && args[p] <= '9') p++;
        if (!all_digits(args.substr(b, p - b))) return false;
        size_t slash = key.rfind('/');
        if (slash == std::string_view::npos || key.substr(0, slash) != topic || !all_digits(key.substr(slash + 1)))
            continue;
        uint64_t part = to_u64(key.substr(slash + 1));
        if (part >= 1024) continue;
        if (out->size() <= part) out->resize(part + 1, -1);
        (*out)[part] = static_cast<int64_t>(to_u64(args.substr(b, p - b)));
    }
    return p < args.size();
}

// "TOPIC/PARTITION/OFFSET" (psdm_ws_msg_position, split from the right) of `topic`.
bool parse_record_position(std::string_view pos, const std::string &topic, size_t *part, int64_t *off) {
    size_t b = pos.rfind('/');
    if (b == std::string_view::npos || b == 0) return false;
    size_t a = pos.rfind('/', b - 1);
    if (a == std::string_view::npos) return false;
    std::string_view t = pos.substr(0, a), p = pos.substr(a + 1, b - a - 1), o = pos.substr(b + 1);
    if (t != topic || !all_digits(p) || !all_digits(o) || to_u64(p) >= 1024) return false;
    *part = static_cast<size_t>(to_u64(p));
    *off = static_cast<int64_t>(to_u64(o));
    return true;
}

// The join a page sends: `{}` the first time, then the positions it holds.
std::string Shard::join_packet(Conn &c) {
    Track &t = tr(c);
    std::string pos = "{";
    for (size_t p = 0; p < t.pos.size(); p++) {
        if (t.pos[p] < 0) continue;
        if (pos.size() > 1) pos += ',';
        pos += "\"" + o_.topic + "/" + std::to_string(p) + "\":" + std::to_string(t.pos[p]);
    }
    pos += "}";
    t.join_sent_us = now_real_us();
    return std::string{ws::kEioMessage, ws::kSioEvent} + ns_prefix_ + "1[\"join\",\"" + room_of(c) + "\"," + pos + "]";
}

// The ack of a join with positions: [{"positions":{...},"recovered":true|false[,"reason":"..."]}]
// (a refusal: [{"error":...}]).
void Shard::on_join_ack(Conn &c, std::string_view args) {
    Track &t = tr(c);
    std::vector<int64_t> at;
    if (args.find("\"error\"") != std::string_view::npos || !parse_positions(args, o_.topic, &at)) {
        fail(c, kFailJoinRefused);
        return;
    }
    if (!t.has_pos) {  // the first join: the client starts from the worker's positions
        t.pos = std::move(at);
        t.has_pos = true;
        became_joined(c);
        return;
    }
    c.st = St::joined;
    t.rejoin = false;
    t.resumes++;
    rs_.resumes++;
    t.ack_us = now_real_us();
    t.replayed = 0;
    t.last_replayed_us = 0;
    t.first_live_us = 0;
    t.last_recovered = args.find("\"recovered\":true") != std::string_view::npos;
    if (t.last_recovered) {
        t.recovered++;
        rs_.recovered++;
        t.live_pending = true;
    } else {
        t.not_recovered++;
        rs_.not_recovered++;
        t.live_pending = false;
        std::string_view why;
        t.reason = json_field(args, "\"reason\"", &why) ? std::string(why) : "";
        // As a page does (psdm_ws_resync): it reloads, and goes on from the worker's positions;
        // what it missed counts as lost here.
        if (t.pos.size() < at.size()) t.pos.resize(at.size(), -1);
        for (size_t p = 0; p < at.size(); p++) t.pos[p] = std::max(t.pos[p], at[p]);
    }
    t.ack_pos = std::move(at);
}

void Shard::on_record_resume(Conn &c, uint64_t s, int64_t ts_us, std::string_view position) {
    Track &t = tr(c);
    const int64_t rx = rx_now_us_;
    if (s >= (uint64_t{1} << 32)) {
        st_.unexpected++;
        return;
    }
    size_t part = 0;
    int64_t off = -1;
    const bool have_pos = parse_record_position(position, o_.topic, &part, &off);
    if (!have_pos) rs_.no_position++;
    if (s / 64 >= c.seen.size()) c.seen.resize(s / 64 + 1, 0);
    uint64_t bit = uint64_t{1} << (s % 64);
    if (c.seen[s / 64] & bit) {
        st_.duplicates++;
        t.dups++;
        return;
    }
    c.seen[s / 64] |= bit;
    c.unique++;
    if (c.counted) unique_total_++;
    if (have_pos) {
        if (t.last_off.size() <= part) t.last_off.resize(part + 1, -1);
        if (t.pos.size() <= part) t.pos.resize(part + 1, -1);
        if (off < t.last_off[part]) {
            rs_.out_of_order++;
            t.ooo++;
        } else {
            t.last_off[part] = off;
        }
        t.pos[part] = std::max(t.pos[part], off + 1);
        if (t.resumes > 0 && t.last_recovered && part < t.ack_pos.size() && off < t.ack_pos[part]) {
            t.replayed++;  // below the ack's positions: the replay
            t.last_replayed_us = rx;
            rs_.replayed++;
        } else if (t.live_pending) {
            t.first_live_us = rx;
            t.live_pending = false;
        }
    }
    const int64_t lat = rx - ts_us;
    const size_t bucket = hist_index(lat > 0 ? static_cast<uint64_t>(lat) : 0);
    st_.hist[bucket]++;
    if (c.counted && c.idx >= o_.drop_clients) {  // the clients that stay: latency per phase
        for (unsigned ph = kPhases; ph-- > 0;) {
            if (!phase_start_[ph] || ts_us < phase_start_[ph]) continue;
            if (phase_hist_.empty()) phase_hist_.assign(kPhases, std::vector<uint64_t>(kHistBuckets, 0));
            phase_hist_[ph][bucket]++;
            break;
        }
    }
    if (!t.first_rx_us) t.first_rx_us = rx;
    t.last_rx_us = rx;
    if (st_.first_rx_real_us == 0) st_.first_rx_real_us = rx;
    st_.last_rx_real_us = rx;
}

// A counted client lost its joined connection (closed already): it comes back after a backoff.
void Shard::lost(Conn &c) {
    Track &t = tr(c);
    rs_.lost_connections++;
    t.lost_us = now_real_us();
    t.rejoin = true;
    t.live_pending = false;
    retry_later(c);
}

// A reconnection attempt failed (closed already): another one after a backoff.
void Shard::attempt_failed(Conn &c, Fail why) {
    Track &t = tr(c);
    rs_.attempt_fail[why]++;
    t.failed++;
    if (t.away) {
        c.st = St::waiting;
        return;
    }
    retry_later(c);
}

void Shard::retry_later(Conn &c) {
    std::uniform_real_distribution<double> backoff(o_.backoff_min, o_.backoff_max);
    tr(c).retry_at_us = now_mono_us() + static_cast<int64_t>(backoff(rng_) * 1e6);
    c.st = St::waiting;
}

// CmdAway: clients 0..drop_clients-1 close their connection (no close frame: a page that lost
// its network) and wait for CmdReturn.
void Shard::go_away() {
    for (auto &c : conns_) {
        if (!c.counted || c.idx >= o_.drop_clients) continue;
        Track &t = tr(c);
        if (c.st == St::joined) t.lost_us = now_real_us();
        close_fd(c);
        c.st = St::waiting;
        t.away = true;
        t.rejoin = true;
        t.live_pending = false;
    }
}

// CmdReturn: every client away reconnects now and resumes.
void Shard::come_back() {
    for (auto &c : conns_) {
        if (!tr(c).away) continue;
        tr(c).away = false;
        start_conn(c, tag_of(c));
    }
}

void Shard::report_resume() {
    for (auto &c : conns_) {
        if (!c.counted) continue;
        const Track &t = tr(c);
        if (t.resumes) rs_.clients_resumed++;
        if (t.resumes && t.last_recovered && t.first_live_us) rs_.clients_live++;
        if (c.st != St::joined) rs_.clients_not_joined_at_end++;
    }
    send_msg(ctl_, &rs_, sizeof rs_);
    if (!phase_hist_.empty()) {
        auto h = std::make_unique<EvPhaseHist>();
        for (unsigned ph = 0; ph < kPhases; ph++) {
            h->phase = ph;
            std::copy(phase_hist_[ph].begin(), phase_hist_[ph].end(), h->hist);
            send_msg(ctl_, h.get(), sizeof *h);
        }
    }
    if (!o_.resume_log.empty()) write_resume_log();
}

// PREFIX.SHARD.csv: one line per client (resume_bench.py reads them).
void Shard::write_resume_log() {
    std::string path = o_.resume_log + "." + std::to_string(shard_) + ".csv";
    FILE *f = fopen(path.c_str(), "w");
    if (!f) {
        fprintf(stderr, "psdm_loadgen: cannot write %s: %s\n", path.c_str(), strerror(errno));
        return;
    }
    fputs(
        "idx,room,counted,joined_at_end,expected,received,duplicates,out_of_order,attempts,failed_attempts,"
        "resumes,recovered,not_recovered,last_recovered,lost_us,connected_us,join_sent_us,ack_us,first_live_us,"
        "replayed,last_replayed_us,first_rx_us,last_rx_us,reason\n",
        f);
    for (auto &c : conns_) {
        const Track &t = tr(c);
        const uint64_t want = expected_of(c);
        std::string reason = t.reason;
        for (char &ch : reason)
            if (ch == ',' || ch == '\n' || ch == '\r') ch = ';';
        fprintf(f,
                "%u,%u,%d,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%u,%u,%u,%u,%d,%" PRId64 ",%" PRId64
                ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%s\n",
                c.idx, c.room, c.counted ? 1 : 0, c.st == St::joined ? 1 : 0, want, seen_below(c.seen, want), t.dups,
                t.ooo, t.attempts, t.failed, t.resumes, t.recovered, t.not_recovered, t.last_recovered ? 1 : 0,
                t.lost_us, t.connected_us, t.join_sent_us, t.ack_us, t.first_live_us, t.replayed, t.last_replayed_us,
                t.first_rx_us, t.last_rx_us, reason.c_str());
    }
    fclose(f);
}

// ------------------------------------------------------------------------ parent

long read_rss_kb(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    fclose(f);
    return kb;
}

long rss_sum_kb(const std::vector<int> &pids) {
    long sum = 0;
    for (int p : pids) {
        long kb = read_rss_kb(p);
        if (kb < 0) return -1;
        sum += kb;
    }
    return sum;
}

// CPU seconds of the processes together; -1 if one is unreadable.
double cpu_seconds_of(const std::vector<int> &pids) {
    double sum = 0;
    for (int p : pids) {
        const double s = bench::cpu_seconds_of(p);
        if (s < 0) return -1;
        sum += s;
    }
    return sum;
}

// CPU seconds (nanosecond resolution) of the processes: the sum of their threads' run time
// (/proc/PID/task/TID/schedstat, first field); with main_only, the main thread's (TID = PID:
// the worker's event loop) alone. -1 when unreadable.
double cpu_seconds_precise(const std::vector<int> &pids, bool main_only) {
    double sum = 0;
    for (int p : pids) {
        std::vector<std::string> tids;
        if (main_only) {
            tids.push_back(std::to_string(p));
        } else {
            std::string dir = "/proc/" + std::to_string(p) + "/task";
            DIR *d = opendir(dir.c_str());
            if (!d) return -1;
            while (dirent *e = readdir(d))
                if (e->d_name[0] != '.') tids.emplace_back(e->d_name);
            closedir(d);
        }
        for (const auto &t : tids) {
            std::string path = "/proc/" + std::to_string(p) + "/task/" + t + "/schedstat";
            FILE *f = fopen(path.c_str(), "r");
            if (!f) continue;  // a thread that just ended
            unsigned long long ns = 0;
            if (fscanf(f, "%llu", &ns) == 1) sum += static_cast<double>(ns) / 1e9;
            fclose(f);
        }
    }
    return sum;
}

bool alive(const std::vector<int> &pids) {
    for (int p : pids)
        if (kill(p, 0) != 0) return false;
    return true;
}

struct Producer {
    rd_kafka_t *rk = nullptr;
    rd_kafka_topic_t *rkt = nullptr;
    uint64_t acked = 0, failed = 0;
    std::string last_error;

    static void on_delivery(rd_kafka_t *, const rd_kafka_message_t *m, void *opaque) {
        auto *self = static_cast<Producer *>(opaque);
        if (m->err) {
            self->failed++;
            self->last_error = rd_kafka_err2str(m->err);
        } else {
            self->acked++;
        }
    }

    bool create(const Options &o, std::string *err) {
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const std::pair<const char *, std::string> kv[] = {
            {"bootstrap.servers", o.bootstrap}, {"linger.ms", std::to_string(o.linger_ms)},
            {"socket.nagle.disable", "true"},   {"enable.idempotence", "false"},
            {"message.timeout.ms", "30000"},    {"log_level", "3"},
        };
        for (const auto &p : kv) {
            if (rd_kafka_conf_set(conf, p.first, p.second.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
                *err = errstr;
                rd_kafka_conf_destroy(conf);
                return false;
            }
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, this);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!rk) {
            *err = errstr;
            return false;
        }
        return true;
    }

    static constexpr int32_t kAnyPartition = -1;  // RD_KAFKA_PARTITION_UA, whose macro is a C cast

    // Queues one message (to `partition`, or where librdkafka's partitioner puts it); false if
    // librdkafka refused it for good.
    bool produce(const std::string &topic, const std::string &value, int32_t partition = kAnyPartition) {
        if (!rkt) rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        if (!rkt) {
            last_error = "cannot create topic handle";
            failed++;
            return false;
        }
        for (int attempt = 0; attempt < 1000; attempt++) {
            if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, const_cast<char *>(value.data()), value.size(),
                                 nullptr, 0, nullptr) == 0)
                return true;
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                last_error = rd_kafka_err2str(e);
                failed++;
                return false;
            }
            rd_kafka_poll(rk, 10);
        }
        failed++;
        return false;
    }

    ~Producer() {
        if (rkt) rd_kafka_topic_destroy(rkt);
        if (rk) {
            rd_kafka_flush(rk, 5000);
            rd_kafka_destroy(rk);
        }
    }
};

std::string record(const std::string &room, uint64_t seq, const std::string &pad) {
    std::string s;
    s.reserve(room.size() + pad.size() + 96);
    s += "{\"experiment_name\":\"";
    s += room;
    s += "\",\"seq\":";
    s += std::to_string(seq);
    s += ",\"ts_us\":";
    s += std::to_string(now_real_us());
    s += ",\"pad\":\"";
    s += pad;
    s += "\"}";
    return s;
}

struct ShardHandle {
    pid_t pid = -1;
    int fd = -1;
    bool ramped = false, stats = false, dead = false, joined = false;
    EvRamped ramp{};
    EvJoined jb{};  // --join-burst
    EvStats st{};
    // --resume
    std::vector<uint64_t> warm_seqs;  // EvWarm seqs (the warm-up client is in shard 0)
    bool resumed = false;
    EvResume rs{};
    std::vector<std::vector<uint64_t>> phase_hist;
};

// Waits up to timeout_ms for shard messages and reads every one that is there. False if a
// shard died.
bool pump_shards(std::vector<ShardHandle> &sh, int timeout_ms, bool *warm) {
    static std::vector<char> buf(std::max(sizeof(EvStats), sizeof(EvPhaseHist)) + 64);
    std::vector<pollfd> pfd;
    for (auto &s : sh) pfd.push_back({s.fd, POLLIN, 0});
    int n = poll(pfd.data(), pfd.size(), timeout_ms);
    if (n < 0 && errno != EINTR) return false;
    for (size_t i = 0; i < sh.size(); i++) {
        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        for (;;) {
            ssize_t r = recv(sh[i].fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (r == 0) {
                fprintf(stderr, "psdm_loadgen: client process %u exited\n", static_cast<unsigned>(i));
                sh[i].dead = true;
                return false;
            }
            if (r < 0) break;
            switch (buf[0]) {
            case 'W': {
                if (warm) *warm = true;
                EvWarm w;
                memcpy(&w, buf.data(), std::min(sizeof w, static_cast<size_t>(r)));
                sh[i].warm_seqs.push_back(w.seq);
                break;
            }
            case 'M':
                memcpy(&sh[i].ramp, buf.data(), std::min(sizeof sh[i].ramp, static_cast<size_t>(r)));
                sh[i].ramped = true;
                break;
            case 'S':
                memcpy(&sh[i].st, buf.data(), std::min(sizeof sh[i].st, static_cast<size_t>(r)));
                sh[i].stats = true;
                break;
            case 'J':
                memcpy(&sh[i].jb, buf.data(), std::min(sizeof sh[i].jb, static_cast<size_t>(r)));
                sh[i].joined = true;
                break;
            case 'X':
                memcpy(&sh[i].rs, buf.data(), std::min(sizeof sh[i].rs, static_cast<size_t>(r)));
                sh[i].resumed = true;
                break;
            case 'H': {
                auto h = std::make_unique<EvPhaseHist>();
                memcpy(h.get(), buf.data(), std::min(sizeof *h, static_cast<size_t>(r)));
                if (h->phase < kPhases) {
                    if (sh[i].phase_hist.empty())
                        sh[i].phase_hist.assign(kPhases, std::vector<uint64_t>(kHistBuckets, 0));
                    std::copy(h->hist, h->hist + kHistBuckets, sh[i].phase_hist[h->phase].begin());
                }
                break;
            }
            default: break;
            }
        }
    }
    return true;
}

// Reads shard messages until want(shards) is true or the deadline passes. False on timeout
// or if a shard died.
template <class Pred>
bool wait_shards(std::vector<ShardHandle> &sh, int64_t deadline_mono_us, bool *warm, Pred want) {
    for (;;) {
        if (want()) return true;
        int64_t left = deadline_mono_us - now_mono_us();
        if (left <= 0) return false;
        if (!pump_shards(sh, static_cast<int>(std::min<int64_t>(left / 1000 + 1, 100)), warm)) return false;
    }
}

void broadcast(std::vector<ShardHandle> &sh, const void *msg, size_t n) {
    for (auto &s : sh) send_msg(s.fd, msg, n);
}

// --resume: what the production plan did.
struct ResumeRun {
    std::vector<uint64_t> counts;  // records per room (seq 0..count-1)
    uint64_t sent = 0, acked = 0, markers = 0, backlog = 0;
    int64_t phase_real_us[kPhases] = {};
    int64_t drop_real_us = 0, backlog_done_real_us = 0, synced_real_us = 0, return_real_us = 0;
    std::string error;
};

// --resume production (see the top of this file): steady records at --rate round-robin over
// rooms 0..R-1 throughout; with --drop-clients, the drop, the backlog to the dropped clients'
// rooms, the markers, the return. Record seq s of a room goes to partition s % --partitions.
// Returns false (rr->error set) if it could not go on.
bool produce_resume(const Options &o, std::vector<ShardHandle> &sh, Producer &prod, const std::string &nonce,
                    ResumeRun *rr, double *produce_s, int64_t *produce_start_real) {
    const uint32_t n_rooms = total_rooms(o);
    std::vector<std::string> rooms(n_rooms);
    for (uint32_t r = 0; r < n_rooms; r++) rooms[r] = room_name(nonce, r);
    std::vector<uint64_t> next_seq(n_rooms, 0);
    const std::string pad(o.pad, 'x');
    auto produce = [&](uint32_t room) {
        const uint64_t seq = next_seq[room];
        const int32_t part = o.partitions ? static_cast<int32_t>(seq % o.partitions) : Producer::kAnyPartition;
        if (!prod.produce(o.topic, record(rooms[room], seq, pad), part)) return false;
        next_seq[room]++;
        rr->sent++;
        return true;
    };
    // The backlog goes to the dropped clients' rooms.
    const uint32_t backlog_first = o.drop_rooms ? o.rooms : 0, backlog_rooms = o.drop_rooms ? o.drop_rooms : o.rooms;
    const uint64_t backlog_total = o.drop_clients ? o.backlog_per_room * backlog_rooms : 0;
    constexpr uint64_t kMarkerBase = uint64_t{1} << 31;  // warm-room seqs past the warm-up's
    const std::string wroom = warm_room_name(nonce);

    rd_kafka_flush(prod.rk, 10000);  // warm-up messages: acknowledged before counting
    const uint64_t acked0 = prod.acked;
    fprintf(stderr, "psdm_loadgen[%s]: producing\n", o.label.c_str());
    fflush(stderr);
    const int64_t start = now_mono_us();
    *produce_start_real = now_real_us();
    auto phase = [&](unsigned ph) {
        CmdPhase p;
        p.phase = ph;
        p.start_real_us = now_real_us();
        rr->phase_real_us[ph] = p.start_real_us;
        broadcast(sh, &p, sizeof p);
    };
    phase(0);
    enum class Step { steady, backlog, flush, sync, settle, returned } step = Step::steady;
    int64_t end = o.drop_clients ? INT64_MAX : start + static_cast<int64_t>(o.duration * 1e6);
    int64_t marked_at = 0, return_at = 0;
    uint64_t k = 0;  // steady records so far
    bool ok = true;
    while (ok) {
        const int64_t now = now_mono_us();
        if (now >= end) break;
        for (; o.rate > 0 && start + static_cast<int64_t>(static_cast<double>(k) * 1e6 / o.rate) <= now; k++) {
            if (!produce(static_cast<uint32_t>(k % o.rooms))) {
                rr->error = "the producer refused a record: " + prod.last_error;
                return false;
            }
        }
        switch (step) {
        case Step::steady:
            if (o.drop_clients && now >= start + static_cast<int64_t>(o.drop_at * 1e6)) {
                CmdAway away;
                broadcast(sh, &away, sizeof away);
                rr->drop_real_us = now_real_us();
                phase(1);
                step = Step::backlog;
            }
            break;
        case Step::backlog:
            for (int i = 0; i < 1000 && rr->backlog < backlog_total; i++, rr->backlog++) {
                if (!produce(backlog_first + static_cast<uint32_t>(rr->backlog % backlog_rooms))) {
                    rr->error = "the producer refused a record: " + prod.last_error;
                    return false;
                }
            }
            if (rr->backlog >= backlog_total) step = Step::flush;
            break;
        case Step::flush:  // the backlog is in the log: a marker behind it on every partition
            if (rd_kafka_outq_len(prod.rk) == 0) {
                rr->backlog_done_real_us = now_real_us();
                for (unsigned p = 0; p < o.partitions; p++, rr->markers++)
                    prod.produce(o.topic, record(wroom, kMarkerBase + p, ""), static_cast<int32_t>(p));
                marked_at = now;
                step = Step::sync;
            }
            break;
        case Step::sync: {  // the server delivered every marker: it has consumed the backlog
            const auto &seen = sh[0].warm_seqs;
            bool all = true;
            for (unsigned p = 0; p < o.partitions && all; p++)
                all = std::find(seen.begin(), seen.end(), kMarkerBase + p) != seen.end();
            if (all) {
                rr->synced_real_us = now_real_us();
                return_at = now + static_cast<int64_t>(o.return_settle * 1e6);
                step = Step::settle;
            } else if (now - marked_at > 60000000) {
                rr->error = "the server did not deliver the marker records within 60 s";
                return false;
            }
            break;
        }
        case Step::settle:
            if (now >= return_at) {
                CmdReturn back;
                broadcast(sh, &back, sizeof back);
                rr->return_real_us = now_real_us();
                phase(2);
                end = now + static_cast<int64_t>(o.after_return * 1e6);
                step = Step::returned;
            }
            break;
        case Step::returned: break;
        }
        rd_kafka_poll(prod.rk, 0);
        int64_t wake = now + 10000;
        if (o.rate > 0) wake = std::min(wake, start + static_cast<int64_t>(static_cast<double>(k) * 1e6 / o.rate));
        if (step == Step::backlog) wake = now;
        ok = pump_shards(sh, static_cast<int>((std::max<int64_t>(0, wake - now_mono_us()) + 999) / 1000), nullptr);
    }
    if (!ok) {
        rr->error = "a client process exited";
        return false;
    }
    rd_kafka_flush(prod.rk, 30000);
    *produce_s = static_cast<double>(now_mono_us() - start) / 1e6;
    rr->acked = prod.acked - acked0;
    rr->counts = next_seq;
    if (rr->acked < rr->sent + rr->markers)
        fprintf(stderr, "psdm_loadgen: %" PRIu64 " of %" PRIu64 " messages not acknowledged (%s): counted as sent\n",
                rr->sent + rr->markers - rr->acked, rr->sent + rr->markers, prod.last_error.c_str());
    return true;
}

// --resume: the "resume" and "phases" members of the output object (after its other members).
void print_resume(const Options &o, const std::vector<ShardHandle> &sh, const ResumeRun &rr) {
    EvResume t{};
    std::vector<std::vector<uint64_t>> hist(kPhases, std::vector<uint64_t>(kHistBuckets, 0));
    for (const auto &s : sh) {
        const EvResume &r = s.rs;
        t.out_of_order += r.out_of_order;
        t.no_position += r.no_position;
        t.lost_connections += r.lost_connections;
        t.attempts += r.attempts;
        for (unsigned k = 0; k < kFailKinds; k++) t.attempt_fail[k] += r.attempt_fail[k];
        for (unsigned k = 0; k < kStatusSlots; k++) t.attempt_status[k] += r.attempt_status[k];
        t.resumes += r.resumes;
        t.recovered += r.recovered;
        t.not_recovered += r.not_recovered;
        t.replayed += r.replayed;
        t.clients_live += r.clients_live;
        t.clients_resumed += r.clients_resumed;
        t.clients_not_joined_at_end += r.clients_not_joined_at_end;
        t.clients_with_loss += r.clients_with_loss;
        for (unsigned ph = 0; ph < kPhases && !s.phase_hist.empty(); ph++)
            for (size_t k = 0; k < kHistBuckets; k++) hist[ph][k] += s.phase_hist[ph][k];
    }
    std::string fails, statuses;
    for (unsigned k = 0; k < kFailKinds; k++) {
        if (!t.attempt_fail[k]) continue;
        if (!fails.empty()) fails += ",";
        fails += "\"" + std::string(kFailNames[k]) + "\":" + std::to_string(t.attempt_fail[k]);
    }
    for (unsigned k = 0; k < kStatusSlots; k++) {
        if (!t.attempt_status[k]) continue;
        if (!statuses.empty()) statuses += ",";
        statuses += "\"" + std::to_string(k) + "\":" + std::to_string(t.attempt_status[k]);
    }
    printf(",\"resume\":{\"partitions\":%u,\"drop_clients\":%u,\"backlog_records\":%" PRIu64 ",\"markers\":%" PRIu64
           ",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"phase_real_us\":[%" PRId64 ",%" PRId64 ",%" PRId64
           "],\"drop_real_us\":%" PRId64 ",\"backlog_done_real_us\":%" PRId64 ",\"synced_real_us\":%" PRId64
           ",\"return_real_us\":%" PRId64 ",\"out_of_order\":%" PRIu64 ",\"no_position\":%" PRIu64
           ",\"lost_connections\":%" PRIu64 ",\"attempts\":%" PRIu64
           ",\"attempt_failures\":{%s},\"attempt_http_status\":{%s},\"resumes\":%" PRIu64 ",\"recovered\":%" PRIu64
           ",\"not_recovered\":%" PRIu64 ",\"replayed\":%" PRIu64 ",\"clients_resumed\":%" PRIu64
           ",\"clients_live\":%" PRIu64 ",\"clients_not_joined_at_end\":%" PRIu64 ",\"clients_with_loss\":%" PRIu64 "}",
           o.partitions, o.drop_clients, rr.backlog, rr.markers, rr.sent, rr.acked, rr.phase_real_us[0],
           rr.phase_real_us[1], rr.phase_real_us[2], rr.drop_real_us, rr.backlog_done_real_us, rr.synced_real_us,
           rr.return_real_us, t.out_of_order, t.no_position, t.lost_connections, t.attempts, fails.c_str(),
           statuses.c_str(), t.resumes, t.recovered, t.not_recovered, t.replayed, t.clients_resumed, t.clients_live,
           t.clients_not_joined_at_end, t.clients_with_loss);
    printf(",\"phases\":[");
    for (unsigned ph = 0; ph < kPhases; ph++) {
        uint64_t n = 0;
        for (uint64_t c : hist[ph]) n += c;
        printf("%s{\"phase\":\"%s\",\"deliveries\":%" PRIu64
               ",\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f}",
               ph ? "," : "", kPhaseNames[ph], n, hist_percentile(hist[ph], 0.50) / 1000.0,
               hist_percentile(hist[ph], 0.90) / 1000.0, hist_percentile(hist[ph], 0.99) / 1000.0,
               hist_percentile(hist[ph], 1.0) / 1000.0);
    }
    printf("]");
}

int run_parent(const Options &o, std::vector<ShardHandle> &sh, const std::string &nonce) {
    std::string error;
    Producer prod;
    bool have_producer = !o.bootstrap.empty();
    if (have_producer && !prod.create(o, &error)) {
        fprintf(stderr, "psdm_loadgen: Kafka producer: %s\n", error.c_str());
        return 1;
    }

    // warm-up: the server consumes and delivers to a client.
    bool warm = false;
    double warm_s = 0;
    int64_t t0 = now_mono_us();
    if (have_producer) {
        std::string wroom = warm_room_name(nonce);
        int64_t deadline = t0 + static_cast<int64_t>(o.warm_timeout * 1e6);
        uint64_t wseq = 0;
        while (!warm && now_mono_us() < deadline) {
            prod.produce(o.topic, record(wroom, wseq++, ""));
            rd_kafka_poll(prod.rk, 0);
            wait_shards(sh, std::min(deadline, now_mono_us() + 250000), &warm, [&] { return warm; });
        }
        if (!warm) {
            fprintf(stderr, "psdm_loadgen: the server delivered no warm-up message within %.0f s\n", o.warm_timeout);
            printf("{\"label\":%s,\"error\":\"server not consuming/delivering within warm-up timeout\"}\n",
                   json_str(o.label).c_str());
            return 3;
        }
        warm_s = static_cast<double>(now_mono_us() - t0) / 1e6;
        fprintf(stderr, "psdm_loadgen[%s]: server delivers (warm-up %.1f s)\n", o.label.c_str(), warm_s);
    }

    long rss_before = rss_sum_kb(o.server_pids);
    double server_cpu0 = cpu_seconds_of(o.server_pids);
    CmdRamp ramp_cmd;
    broadcast(sh, &ramp_cmd, sizeof ramp_cmd);
    int64_t ramp_deadline = now_mono_us() + static_cast<int64_t>((o.ramp_timeout + o.handshake_timeout + 30) * 1e6);
    bool ok = wait_shards(sh, ramp_deadline, &warm, [&] {
        for (auto &s : sh)
            if (!s.ramped) return false;
        return true;
    });
    if (!ok) {
        printf("{\"label\":%s,\"error\":\"ramp did not finish\"}\n", json_str(o.label).c_str());
        return 3;
    }
    EvRamped ramp{};
    for (auto &s : sh) {
        ramp.attempted += s.ramp.attempted;
        ramp.held += s.ramp.held;
        for (unsigned k = 0; k < kFailKinds; k++) ramp.fail[k] += s.ramp.fail[k];
        for (unsigned k = 0; k < kStatusSlots; k++) ramp.http_status[k] += s.ramp.http_status[k];
        ramp.seconds = std::max(ramp.seconds, s.ramp.seconds);
    }
    double server_cpu_ramp = cpu_seconds_of(o.server_pids) - server_cpu0;
    fprintf(stderr, "psdm_loadgen[%s]: %" PRIu64 "/%u clients joined in %.1f s\n", o.label.c_str(), ramp.held,
            o.connections, ramp.seconds);
    sleep_until_mono_us(now_mono_us() + static_cast<int64_t>(o.settle * 1e6));
    long rss_after = rss_sum_kb(o.server_pids);
    bool alive_after_ramp = alive(o.server_pids);
    EvJoined jb{};
    double server_cpu_joins = 0, server_main_cpu_joins = 0;
    if (o.join_burst) {
        double c0 = cpu_seconds_precise(o.server_pids, false), m0 = cpu_seconds_precise(o.server_pids, true);
        CmdJoin join_cmd;
        broadcast(sh, &join_cmd, sizeof join_cmd);
        bool all = wait_shards(sh, now_mono_us() + static_cast<int64_t>((o.handshake_timeout + 30) * 1e6), &warm, [&] {
            for (auto &s : sh)
                if (!s.joined) return false;
            return true;
        });
        server_cpu_joins = cpu_seconds_precise(o.server_pids, false) - c0;
        server_main_cpu_joins = cpu_seconds_precise(o.server_pids, true) - m0;
        for (auto &s : sh) {
            jb.sent += s.jb.sent;
            jb.acked += s.jb.acked;
            jb.refused += s.jb.refused;
            jb.lost += s.jb.lost;
            if (s.jb.first_sent_real_us && (!jb.first_sent_real_us || s.jb.first_sent_real_us < jb.first_sent_real_us))
                jb.first_sent_real_us = s.jb.first_sent_real_us;
            jb.last_ack_real_us = std::max(jb.last_ack_real_us, s.jb.last_ack_real_us);
        }
        fprintf(stderr,
                "psdm_loadgen[%s]: join burst: %" PRIu64 " joins sent, %" PRIu64 " acked%s; server CPU %.4f s\n",
                o.label.c_str(), jb.sent, jb.acked, all ? "" : " (not all answered in time)", server_cpu_joins);
    }
    double server_cpu_hold = 0;
    if (o.hold > 0) {
        double c0 = cpu_seconds_of(o.server_pids);
        sleep_until_mono_us(now_mono_us() + static_cast<int64_t>(o.hold * 1e6));
        server_cpu_hold = cpu_seconds_of(o.server_pids) - c0;
    }

    // production
    uint64_t planned = planned_messages(o), produced_ok = 0;
    double produce_s = 0;
    int64_t produce_start_real = now_real_us();
    double server_cpu1 = cpu_seconds_of(o.server_pids), broker_cpu1 = cpu_seconds_of(o.broker_pids);
    double server_cpu1_ns = cpu_seconds_precise(o.server_pids, false);
    double server_main_cpu1_ns = cpu_seconds_precise(o.server_pids, true);
    double self_cpu1 = cpu_seconds_self();
    if (have_producer) rd_kafka_flush(prod.rk, 10000);  // warm-up messages: acknowledged before counting
    uint64_t acked0 = prod.acked;
    ResumeRun rr;
    if (o.resume) {
        if (ramp.held > 0 && (have_producer || o.drop_clients)) {
            if (!produce_resume(o, sh, prod, nonce, &rr, &produce_s, &produce_start_real)) {
                fprintf(stderr, "psdm_loadgen: %s\n", rr.error.c_str());
                printf("{\"label\":%s,\"error\":%s}\n", json_str(o.label).c_str(), json_str(rr.error).c_str());
                return 3;
            }
            produced_ok = rr.sent;
        }
        rr.counts.resize(total_rooms(o), 0);
        CmdCounts counts;
        counts.rooms = total_rooms(o);
        std::copy(rr.counts.begin(), rr.counts.end(), counts.count);
        broadcast(sh, &counts, offsetof(CmdCounts, count) + sizeof(uint64_t) * counts.rooms);
    } else if (planned > 0 && ramp.held > 0) {
        std::string pad(o.pad, 'x');
        std::vector<std::string> rooms(o.rooms);
        for (uint32_t r = 0; r < o.rooms; r++) rooms[r] = room_name(nonce, r);
        int64_t start = now_mono_us();
        produce_start_real = now_real_us();
        uint64_t sent = 0;
        for (uint64_t k = 0; k < planned; k++) {
            int64_t at = start + static_cast<int64_t>(static_cast<double>(k) * 1e6 / o.rate);
            if (now_mono_us() < at) {
                rd_kafka_poll(prod.rk, 0);
                sleep_until_mono_us(at);
            }
            if (prod.produce(o.topic, record(rooms[k % o.rooms], k / o.rooms, pad))) sent++;
            else break;  // a gap would be counted as loss of the server: stop here instead
            rd_kafka_poll(prod.rk, 0);
        }
        rd_kafka_flush(prod.rk, 30000);
        produce_s = static_cast<double>(now_mono_us() - start) / 1e6;
        produced_ok = prod.acked - acked0;
        if (produced_ok < sent)
            fprintf(stderr, "psdm_loadgen: %" PRIu64 " of %" PRIu64 " messages not acknowledged (%s)\n",
                    sent - produced_ok, sent, prod.last_error.c_str());
        // Not acknowledged messages may or may not be in the log: count only a clean prefix.
        if (produced_ok != sent) produced_ok = std::min(produced_ok, sent);
    }

    CmdDone done;
    done.produced = produced_ok;
    done.deadline_real_us = now_real_us() + static_cast<int64_t>(o.drain * 1e6);
    broadcast(sh, &done, sizeof done);
    ok = wait_shards(sh, now_mono_us() + static_cast<int64_t>((o.drain + 30) * 1e6), &warm, [&] {
        for (auto &s : sh)
            if (!s.stats) return false;
        return true;
    });
    double server_cpu_window = cpu_seconds_of(o.server_pids) - server_cpu1;
    double server_cpu_window_ns = cpu_seconds_precise(o.server_pids, false) - server_cpu1_ns;
    double server_main_cpu_window_ns = cpu_seconds_precise(o.server_pids, true) - server_main_cpu1_ns;
    double broker_cpu_window = cpu_seconds_of(o.broker_pids) - broker_cpu1;
    double self_cpu_window = cpu_seconds_self() - self_cpu1;
    int64_t window_end_real = now_real_us();
    long rss_end = rss_sum_kb(o.server_pids);
    bool alive_end = alive(o.server_pids);
    if (!ok) {
        printf("{\"label\":%s,\"error\":\"client processes did not report\"}\n", json_str(o.label).c_str());
        return 3;
    }
    EvStats st{};
    std::vector<uint64_t> hist(kHistBuckets, 0);
    double shard_cpu_total = 0, shard_cpu_ramp = 0;
    for (auto &s : sh) {
        st.counted += s.st.counted;
        st.open_at_end += s.st.open_at_end;
        st.closed_by_server += s.st.closed_by_server;
        st.expected += s.st.expected;
        st.delivered += s.st.delivered;
        st.duplicates += s.st.duplicates;
        st.unexpected += s.st.unexpected;
        st.wrong_room += s.st.wrong_room;
        st.clients_complete += s.st.clients_complete;
        st.pings += s.st.pings;
        st.frames += s.st.frames;
        st.bytes += s.st.bytes;
        for (size_t k = 0; k < 5; k++) st.close_codes[k] += s.st.close_codes[k];
        if (s.st.first_rx_real_us && (!st.first_rx_real_us || s.st.first_rx_real_us < st.first_rx_real_us))
            st.first_rx_real_us = s.st.first_rx_real_us;
        st.last_rx_real_us = std::max(st.last_rx_real_us, s.st.last_rx_real_us);
        for (size_t k = 0; k < kHistBuckets; k++) hist[k] += s.st.hist[k];
        shard_cpu_total += s.st.cpu_s;
        shard_cpu_ramp += s.ramp.cpu_s;
    }
    double span_s = st.last_rx_real_us > produce_start_real
                        ? static_cast<double>(st.last_rx_real_us - produce_start_real) / 1e6
                        : 0;
    // Deliveries per second: what arrived, over the time from the first production to the
    // last arrival (the production window when the server keeps up).
    double dps = span_s > 0 ? static_cast<double>(st.delivered) / std::max(span_s, produce_s) : 0;
    double window_s = static_cast<double>(window_end_real - produce_start_real) / 1e6;

    std::string fails, statuses;
    for (unsigned k = 0; k < kFailKinds; k++) {
        if (!ramp.fail[k]) continue;
        if (!fails.empty()) fails += ",";
        fails += "\"" + std::string(kFailNames[k]) + "\":" + std::to_string(ramp.fail[k]);
    }
    for (unsigned k = 0; k < kStatusSlots; k++) {
        if (!ramp.http_status[k]) continue;
        if (!statuses.empty()) statuses += ",";
        statuses += "\"" + std::to_string(k) + "\":" + std::to_string(ramp.http_status[k]);
    }
    printf(
        "{\"label\":%s,\"connections\":%u,\"rooms\":%u,\"procs\":%u,"
        "\"warm_s\":%.3f,\"ramp_s\":%.3f,\"attempted\":%" PRIu64 ",\"held_after_ramp\":%" PRIu64
        ",\"ramp_failures\":{%s},\"http_status\":{%s},"
        "\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_end_kb\":%ld,\"rss_per_conn_bytes\":%.1f,"
        "\"server_alive_after_ramp\":%s,\"server_alive_end\":%s,"
        "\"planned\":%" PRIu64 ",\"produced\":%" PRIu64
        ",\"produce_s\":%.3f,\"rate\":%.3f,"
        "\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"delivered_pct\":%.4f,\"duplicates\":%" PRIu64
        ",\"unexpected\":%" PRIu64 ",\"wrong_room\":%" PRIu64 ",\"clients_complete\":%" PRIu64
        ",\"open_at_end\":%" PRIu64 ",\"closed_by_server\":%" PRIu64 ",\"close_codes\":{\"1000\":%" PRIu64
        ",\"1001\":%" PRIu64 ",\"1008\":%" PRIu64 ",\"other\":%" PRIu64 ",\"no_close_frame\":%" PRIu64
        "},"
        "\"pings\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
        ","
        "\"span_s\":%.3f,\"window_s\":%.3f,\"deliveries_per_s\":%.1f,"
        "\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f,"
        "\"hold_s\":%.3f,\"server_cpu_hold_s\":%.3f,"
        "\"server_cpu_ramp_s\":%.3f,\"server_cpu_window_s\":%.3f,\"broker_cpu_window_s\":%.3f,"
        "\"loadgen_cpu_ramp_s\":%.3f,\"loadgen_cpu_total_s\":%.3f,\"producer_cpu_window_s\":%.3f",
        json_str(o.label).c_str(), o.connections, o.rooms, o.procs, warm_s, ramp.seconds, ramp.attempted, ramp.held,
        fails.c_str(), statuses.c_str(), rss_before, rss_after, rss_end,
        ramp.held && rss_before >= 0 && rss_after >= 0
            ? static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(ramp.held)
            : -1.0,
        alive_after_ramp ? "true" : "false", alive_end ? "true" : "false", planned, produced_ok, produce_s,
        produce_s > 0 ? static_cast<double>(produced_ok) / produce_s : 0.0, st.expected, st.delivered,
        st.expected ? 100.0 * static_cast<double>(st.delivered) / static_cast<double>(st.expected) : 100.0,
        st.duplicates, st.unexpected, st.wrong_room, st.clients_complete, st.open_at_end, st.closed_by_server,
        st.close_codes[0], st.close_codes[1], st.close_codes[2], st.close_codes[3], st.close_codes[4], st.pings,
        st.frames, st.bytes, span_s, window_s, dps, hist_percentile(hist, 0.50) / 1000.0,
        hist_percentile(hist, 0.90) / 1000.0, hist_percentile(hist, 0.99) / 1000.0, hist_percentile(hist, 1.0) / 1000.0,
        o.hold, server_cpu_hold, server_cpu_ramp, server_cpu_window, broker_cpu_window, shard_cpu_ramp, shard_cpu_total,
        self_cpu_window);
    if (o.resume) print_resume(o, sh, rr);
    printf(",\"server_cpu_window_precise_s\":%.5f,\"server_main_thread_cpu_window_s\":%.5f", server_cpu_window_ns,
           server_main_cpu_window_ns);
    if (o.join_burst)
        printf(",\"joins_sent\":%" PRIu64 ",\"joins_acked\":%" PRIu64 ",\"joins_refused\":%" PRIu64
               ",\"joins_lost\":%" PRIu64
               ",\"join_burst_s\":%.4f,\"server_cpu_joins_s\":%.5f"
               ",\"server_main_thread_cpu_joins_s\":%.5f",
               jb.sent, jb.acked, jb.refused, jb.lost,
               jb.last_ack_real_us > jb.first_sent_real_us
                   ? static_cast<double>(jb.last_ack_real_us - jb.first_sent_real_us) / 1e6
                   : 0.0,
               server_cpu_joins, server_main_cpu_joins);
    printf("}\n");
    fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o = bench::parse_args<Options>(argc, argv, kUsage);
    signal(SIGPIPE, SIG_IGN);

    // Every client is one fd: take the whole open-files allowance (inherited by the shards).
    rlim_t fd_limit = bench::raise_fd_limit();
    uint64_t per_proc = (o.connections + o.procs - 1) / o.procs;
    if (fd_limit && per_proc + 64 > fd_limit)
        fprintf(stderr,
                "psdm_loadgen: warning: %" PRIu64
                " clients per process exceed the open-files limit %llu;"
                " use --procs\n",
                per_proc, static_cast<unsigned long long>(fd_limit));

    char nonce_buf[32];
    snprintf(nonce_buf, sizeof nonce_buf, "%x%05x", static_cast<unsigned>(getpid()),
             static_cast<unsigned>(now_real_us() & 0xfffff));
    std::string nonce = nonce_buf;

    std::vector<ShardHandle> sh(o.procs);
    for (unsigned i = 0; i < o.procs; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            perror("psdm_loadgen: socketpair");
            return 1;
        }
        int buf = 1 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        uint32_t first = static_cast<uint32_t>(std::min<uint64_t>(o.connections, per_proc * i));
        uint32_t last = static_cast<uint32_t>(std::min<uint64_t>(o.connections, per_proc * (i + 1)));
        fflush(nullptr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("psdm_loadgen: fork");
            return 1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(sv[0]);
            for (unsigned j = 0; j < i; j++) close(sh[j].fd);
            auto shard = std::make_unique<Shard>(o, i, first, last, sv[1], nonce);
            _exit(shard->run());
        }
        close(sv[1]);
        sh[i].pid = pid;
        sh[i].fd = sv[0];
    }

    int rc = run_parent(o, sh, nonce);
    CmdClose c;
    broadcast(sh, &c, sizeof c);
    int64_t deadline = now_mono_us() + 10000000;
    for (auto &s : sh) {
        int status;
        while (waitpid(s.pid, &status, WNOHANG) == 0) {
            if (now_mono_us() > deadline) {
                kill(s.pid, SIGKILL);
                waitpid(s.pid, &status, 0);
                break;
            }
            usleep(10000);
        }
    }
    return rc;
}
