// SendBatch: one frame's sends to many client sockets in one system call, through io_uring.
//
// add() queues a send; flush() submits every queued send with one io_uring_submit_and_wait
// and returns each one's result. The sends are non-blocking (MSG_DONTWAIT): the kernel runs
// each during the submit and posts whole, part or -EAGAIN at once, so nothing is in flight
// after flush() returns and the buffers need to live only until then. That is one system
// call per kEntries deliveries instead of one per delivery (issue 13); the socket's own
// work, which is most of a send on loopback, is the same.
//
// Where the kernel refuses io_uring (seccomp, kernel.io_uring_disabled, an old kernel)
// start() says why and the caller sends with send() instead.
//
// Thread: the event loop's only. Not copyable (owns the ring).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct io_uring;

namespace psdm {

class SendBatch {
 public:
    static constexpr unsigned kEntries = 256;  // sends per system call

    SendBatch();
    ~SendBatch();
    SendBatch(const SendBatch &) = delete;
    SendBatch &operator=(const SendBatch &) = delete;

    // Sets up the ring. False, with *err naming the kernel's reason, when io_uring cannot
    // be used; the batch then stays unusable (ready() is false).
    bool start(std::string *err);
    bool ready() const { return ring_ != nullptr; }

    // Queues a send of len bytes at buf to fd; tag comes back with its result. The caller
    // flushes when full() before adding more. False: not queued (full), send it otherwise.
    bool add(int fd, const void *buf, size_t len, uintptr_t tag);
    bool full() const { return queued_ == kEntries; }
    bool empty() const { return queued_ == 0; }

    struct Result {
        uintptr_t tag;
        ssize_t res;  // bytes sent (maybe fewer than asked), or -errno (-EAGAIN: none)
    };
    // Submits what is queued and waits for every completion (they come during the submit).
    // The results, in no particular order, stay valid until the next add() or flush().
    // If the ring fails, the sends it did not run report -EAGAIN (nothing sent), one it ran
    // without reporting -EIO, and the batch is no longer ready(): failure() says why.
    const std::vector<Result> &flush();
    int failure() const { return failure_; }

 private:
    std::unique_ptr<struct io_uring> ring_;
    unsigned queued_ = 0;
    std::vector<Result> results_;
    std::vector<uintptr_t> tags_;  // queued, in submission order
    int failure_ = 0;
};

}  // namespace psdm
