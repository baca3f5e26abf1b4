// Outbox: what the worker has yet to write to each client.
//
//   Frame    one encoded message, immutable and reference-counted: a publish to a room of
//            10 000 clients encodes once and queues 10 000 references to the same bytes.
//            The worker's frames are complete WebSocket frames (header and payload, built
//            by sio/ws_frame.h) that Server::on_writeable writes with LWS_WRITE_RAW: lws
//            sends those bytes as they are and adds no header of its own.
//   Outbox   one client's FIFO of frames, with byte accounting and a backlog limit.
//   slow_consumer_policy  what to do with a client whose backlog a push would overflow.
//
// Thread: not thread-safe; all of this belongs to the one event-loop thread. (FrameRef's
// reference count is atomic, so a Frame could be handed to another thread, but its headroom
// is shared scratch: only one writer at a time may use it, see Frame::writable_payload.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace psdm {

// An immutable, reference-counted encoded frame, shared by all its recipients.
// The payload (for the worker: a complete WebSocket frame) is stored after `headroom`
// spare bytes. The worker passes LWS_PRE, the room lws_write() wants before a buffer it
// frames itself; with LWS_WRITE_RAW, as the worker writes, lws writes nothing there
// (this unit does not include libwebsockets).
class Frame {
 public:
    // Copies payload into one new buffer of headroom + payload.size() bytes. `origin_ms`: when
    // the message it carries was made (wall clock, ms since the epoch; a Kafka record's
    // timestamp), -1 if unknown. Returns the only reference; allocates (the Frame + control
    // block, and the buffer).
    static std::shared_ptr<const Frame> make(std::string_view payload, size_t headroom, int64_t origin_ms = -1);

    // The first payload byte. The `headroom` bytes before it are writable scratch. The
    // payload bytes themselves must not be modified: they are shared by every recipient.
    // lws_write(LWS_WRITE_RAW) sends them as they are (no header, no masking, no extension),
    // so a shared Frame is safe to pass to lws_write for one client after another, on one
    // thread.
    unsigned char *writable_payload() const { return buf_.get() + headroom_; }

    size_t size() const { return size_; }  // payload bytes, headroom not included
    size_t headroom() const { return headroom_; }
    std::string_view view() const {
        return std::string_view(reinterpret_cast<const char *>(buf_.get() + headroom_), size_);
    }
    int64_t origin_ms() const { return origin_ms_; }

    // True the first time it is called on this Frame, false after: the writer measures the
    // time from origin to the first write to any recipient once. The only state a Frame
    // changes after make() (one thread: see the top of this file).
    bool first_write() const { return !std::exchange(written_, true); }

    Frame(const Frame &) = delete;
    Frame &operator=(const Frame &) = delete;

 private:
    struct Token {  // make() is the only way to build one (explicit: `{}` cannot forge it)
        explicit Token() = default;
    };

 public:
    Frame(Token, std::string_view payload, size_t headroom, int64_t origin_ms);  // for make_shared only

 private:
    std::unique_ptr<unsigned char[]> buf_;
    size_t size_;
    size_t headroom_;
    int64_t origin_ms_;
    mutable bool written_ = false;
};

using FrameRef = std::shared_ptr<const Frame>;

enum class EnqueueResult { queued, over_backlog };

// One client's queue of frames to send, first in first out.
//
// Storage: a ring buffer of FrameRef whose first slot lives inside the Outbox. A client that
// keeps up has 0 or 1 frame queued, and costs no allocation at all per message; a backlog
// spills into a heap ring (capacity a power of two, doubled when full), which is freed as
// soon as the queue drains. An empty Outbox owns no heap memory, and sizeof(Outbox) is a
// few words. (No std::deque: libstdc++'s allocates ~600 bytes even when empty.)
//
// Ownership: the Outbox holds one reference to each queued frame; pop() and clear() drop it.
class Outbox {
 public:
    // backlog_limit_bytes: the most payload bytes that may be queued at once. A frame larger
    // than the limit is never queued, so the limit must be at least the largest frame.
    explicit Outbox(size_t backlog_limit_bytes);
    ~Outbox();
    Outbox(Outbox &&other) noexcept;
    Outbox &operator=(Outbox &&other) noexcept;
    Outbox(const Outbox &) = delete;
    Outbox &operator=(const Outbox &) = delete;

    // Appends f (must not be null; asserted).
    // Returns queued, or over_backlog if queued_bytes() + f->size() would exceed the limit:
    // then f is NOT queued and nothing changes (the caller applies slow_consumer_policy).
    // O(1) amortised; allocates only when the queue already holds a frame and the ring is full.
    // Throws std::bad_alloc (the queue then is as it was).
    EnqueueResult push(FrameRef f);

    // The oldest frame, nullptr if empty. The pointer is valid until the next pop() or clear().
    const Frame *front() const;
    // The reference to the oldest frame (must not be empty; asserted), e.g. to keep the frame
    // alive past pop() while a partial write is outstanding.
    const FrameRef &front_ref() const;

    // Drops the oldest frame (must not be empty; asserted). Frees the heap ring when the queue
    // becomes empty. O(1), never throws.
    void pop();

    // Drops every frame and frees the heap ring. O(queued_frames()), never throws.
    void clear();

    // Write coalescing: copies whole queued frames, oldest first, into dst while their total
    // stays within cap bytes; returns the bytes copied and sets *frames to how many. Copies
    // nothing (returns 0, *frames = 0) when the oldest frame alone is larger than cap. The
    // frames stay queued: the caller pops *frames of them once written. O(frames copied),
    // no allocation.
    size_t coalesce(unsigned char *dst, size_t cap, size_t *frames) const;

    bool empty() const { return count_ == 0; }
    size_t queued_bytes() const { return bytes_; }
    size_t queued_frames() const { return count_; }
    size_t backlog_limit() const { return limit_; }
    // Slots of heap ring owned: 0 when the queue holds at most one frame. For tests and stats.
    size_t heap_slots() const { return heap_cap_; }

 private:
    FrameRef *slots() { return heap_ ? heap_ : &inline_; }
    const FrameRef *slots() const { return heap_ ? heap_ : &inline_; }
    size_t capacity() const { return heap_ ? heap_cap_ : 1; }
    void release_heap();

    FrameRef inline_;           // the ring when heap_ is null (capacity 1)
    FrameRef *heap_ = nullptr;  // the ring when not null (capacity heap_cap_, a power of two)
    size_t heap_cap_ = 0;
    size_t head_ = 0;  // index of the oldest frame
    size_t count_ = 0;
    size_t bytes_ = 0;  // sum of size() over the queued frames
    size_t limit_;
};

// The slow-consumer policy: what to do with a client when a push did not fit its backlog.
enum class SlowConsumerVerdict {
    close_client,  // close the WebSocket with close_code and reason; drop what is queued
};

struct SlowConsumerDecision {
    SlowConsumerVerdict verdict;
    // 1013 "Try Again Later" (RFC 6455 registry): the condition is temporary and the client is
    // welcome to reconnect, which Socket.IO clients do by themselves. Not 1008 "Policy
    // Violation": the client did not send anything that broke a rule; it fell behind.
    int close_code;
    // For the close frame and the caller's one log line, e.g.
    //   "client backlog 4194304 bytes exceeded (queued 4190000 bytes in 37 frames)"
    // At most kMaxCloseReason bytes, so it fits a close frame as is.
    std::string reason;
};

inline constexpr int kCloseTryAgainLater = 1013;
inline constexpr size_t kMaxCloseReason = 123;  // RFC 6455: 125-byte control payload - 2

// Given a client's queue and the size of the frame that did not fit (push returned
// over_backlog, i.e. box.queued_bytes() + incoming_bytes > box.backlog_limit(); asserted),
// decides what to do. Pure: changes nothing, logs nothing. Allocates the reason string.
SlowConsumerDecision slow_consumer_policy(const Outbox &box, size_t incoming_bytes);

}  // namespace psdm
