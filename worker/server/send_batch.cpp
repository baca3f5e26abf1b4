#include "server/send_batch.h"

#include <errno.h>
#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace psdm {

SendBatch::SendBatch() = default;

SendBatch::~SendBatch() {
    if (ring_) io_uring_queue_exit(ring_.get());
}

bool SendBatch::start(std::string *err) {
    auto ring = std::make_unique<struct io_uring>();
    const int rc = io_uring_queue_init(kEntries, ring.get(), 0);
    if (rc < 0) {
        *err = std::string("io_uring: ") + strerror(-rc);
        return false;
    }
    ring_ = std::move(ring);
    results_.reserve(kEntries);
    tags_.reserve(kEntries);
    return true;
}

bool SendBatch::add(int fd, const void *buf, size_t len, uintptr_t tag) {
    // Not null while fewer than kEntries are queued (flush() reaps them all): checked anyway.
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) return false;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, tag);
    tags_.push_back(tag);
    queued_++;
    return true;
}

const std::vector<SendBatch::Result> &SendBatch::flush() {
    results_.clear();
    if (queued_ == 0) return results_;
    const unsigned want = queued_;
    queued_ = 0;
    int submitted;
    do {
        submitted = io_uring_submit_and_wait(ring_.get(), want);
    } while (submitted == -EINTR);
    // Each submitted send has completed by now (MSG_DONTWAIT): reap them all.
    unsigned seen = 0;
    const unsigned ran = submitted > 0 ? static_cast<unsigned>(submitted) : 0;
    while (seen < ran) {
        struct io_uring_cqe *cqe = nullptr;
        if (io_uring_wait_cqe(ring_.get(), &cqe) < 0) break;
        unsigned head, n = 0;
        io_uring_for_each_cqe(ring_.get(), head, cqe) {
            results_.push_back({static_cast<uintptr_t>(io_uring_cqe_get_data64(cqe)), cqe->res});
            n++;
        }
        io_uring_cq_advance(ring_.get(), n);
        seen += n;
    }
    if (seen == want) {
        tags_.clear();
        return results_;
    }
    // The ring failed: the sends it never ran sent nothing (-EAGAIN: queue them); one that ran
    // without a completion may have sent part (-EIO: that client is closed). No ring from here
    // on: a stale entry must never run later.
    failure_ = submitted < 0 ? -submitted : EIO;
    io_uring_queue_exit(ring_.get());
    ring_.reset();
    std::vector<uintptr_t> got;
    for (const Result &r : results_) got.push_back(r.tag);
    std::sort(got.begin(), got.end());
    for (size_t i = 0; i < tags_.size(); i++)
        if (!std::binary_search(got.begin(), got.end(), tags_[i]))
            results_.push_back({tags_[i], i < ran ? -EIO : -EAGAIN});
    tags_.clear();
    return results_;
}

}  // namespace psdm
