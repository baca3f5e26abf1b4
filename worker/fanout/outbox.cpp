// Outbox: see outbox.h.
#include "fanout/outbox.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace psdm {

// ---- Frame ----

Frame::Frame(Token, std::string_view payload, size_t headroom, int64_t origin_ms)
    : buf_(new unsigned char[headroom + payload.size()]),  // headroom left uninitialised
      size_(payload.size()),
      headroom_(headroom),
      origin_ms_(origin_ms) {
    if (!payload.empty()) std::memcpy(buf_.get() + headroom_, payload.data(), payload.size());
}

std::shared_ptr<const Frame> Frame::make(std::string_view payload, size_t headroom, int64_t origin_ms) {
    return std::make_shared<const Frame>(Token{}, payload, headroom, origin_ms);
}

// ---- Outbox ----

namespace {
constexpr size_t kFirstHeapSlots = 8;
}

Outbox::Outbox(size_t backlog_limit_bytes) : limit_(backlog_limit_bytes) {}

Outbox::~Outbox() { clear(); }

Outbox::Outbox(Outbox &&other) noexcept
    : inline_(std::move(other.inline_)),
      heap_(std::exchange(other.heap_, nullptr)),
      heap_cap_(std::exchange(other.heap_cap_, 0)),
      head_(std::exchange(other.head_, 0)),
      count_(std::exchange(other.count_, 0)),
      bytes_(std::exchange(other.bytes_, 0)),
      limit_(other.limit_) {}

Outbox &Outbox::operator=(Outbox &&other) noexcept {
    if (this != &other) {
        clear();
        inline_ = std::move(other.inline_);
        heap_ = std::exchange(other.heap_, nullptr);
        heap_cap_ = std::exchange(other.heap_cap_, 0);
        head_ = std::exchange(other.head_, 0);
        count_ = std::exchange(other.count_, 0);
        bytes_ = std::exchange(other.bytes_, 0);
        limit_ = other.limit_;
    }
    return *this;
}

void Outbox::release_heap() {
    delete[] heap_;
    heap_ = nullptr;
    heap_cap_ = 0;
}

EnqueueResult Outbox::push(FrameRef f) {
    assert(f != nullptr && "Outbox::push of a null frame");
    assert(bytes_ <= limit_);
    const size_t n = f->size();
    if (n > limit_ - bytes_) return EnqueueResult::over_backlog;  // bytes_ + n > limit_, no overflow

    size_t cap = capacity();
    if (count_ == cap) {
        // Full: move the frames, oldest first, into a ring twice as large (or the first heap
        // ring when spilling out of the inline slot). new[] may throw: nothing has changed yet.
        const size_t new_cap = heap_ ? cap * 2 : kFirstHeapSlots;
        FrameRef *grown = new FrameRef[new_cap];
        FrameRef *old = slots();
        for (size_t i = 0; i < count_; ++i) grown[i] = std::move(old[(head_ + i) & (cap - 1)]);
        release_heap();
        heap_ = grown;
        heap_cap_ = new_cap;
        head_ = 0;
        cap = new_cap;
    }
    slots()[(head_ + count_) & (cap - 1)] = std::move(f);
    ++count_;
    bytes_ += n;
    return EnqueueResult::queued;
}

const Frame *Outbox::front() const { return count_ == 0 ? nullptr : slots()[head_].get(); }

const FrameRef &Outbox::front_ref() const {
    assert(count_ != 0 && "Outbox::front_ref on an empty outbox");
    return slots()[head_];
}

void Outbox::pop() {
    assert(count_ != 0 && "Outbox::pop on an empty outbox");
    FrameRef &slot = slots()[head_];
    assert(bytes_ >= slot->size());
    bytes_ -= slot->size();
    slot.reset();
    head_ = (head_ + 1) & (capacity() - 1);
    --count_;
    if (count_ == 0) {
        head_ = 0;
        release_heap();  // drained: back to the inline slot, no heap memory held
    }
}

void Outbox::clear() {
    const size_t cap = capacity();
    FrameRef *s = slots();
    for (size_t i = 0; i < count_; ++i) s[(head_ + i) & (cap - 1)].reset();
    release_heap();
    inline_.reset();
    head_ = 0;
    count_ = 0;
    bytes_ = 0;
}

// ---- slow-consumer policy ----

size_t Outbox::coalesce(unsigned char *dst, size_t cap, size_t *frames) const {
    const FrameRef *s = slots();
    size_t len = 0, n = 0;
    for (; n < count_; ++n) {
        const Frame &f = *s[(head_ + n) & (capacity() - 1)];
        if (f.size() > cap - len) break;
        std::memcpy(dst + len, f.view().data(), f.size());
        len += f.size();
    }
    *frames = n;
    return len;
}

SlowConsumerDecision slow_consumer_policy(const Outbox &box, size_t incoming_bytes) {
    assert(incoming_bytes > box.backlog_limit() - box.queued_bytes() &&
           "slow_consumer_policy called for a frame that fits");
    (void)incoming_bytes;  // the verdict does not depend on it yet
    SlowConsumerDecision d{SlowConsumerVerdict::close_client, kCloseTryAgainLater, std::string()};
    // At most 15 + 20 + 24 + 20 + 10 + 20 + 8 = 117 bytes with 20-digit numbers.
    d.reason.reserve(kMaxCloseReason);
    d.reason += "client backlog ";
    d.reason += std::to_string(box.backlog_limit());
    d.reason += " bytes exceeded (queued ";
    d.reason += std::to_string(box.queued_bytes());
    d.reason += " bytes in ";
    d.reason += std::to_string(box.queued_frames());
    d.reason += " frames)";
    assert(d.reason.size() <= kMaxCloseReason);
    return d;
}

}  // namespace psdm
