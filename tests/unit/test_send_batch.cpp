// Unit tests for worker/server/send_batch over socketpair(AF_UNIX, SOCK_STREAM): every send
// of a flush comes back with its tag and result (whole, part of it when the peer's buffer
// fills, -EAGAIN when it is full, -EPIPE when the peer has gone), batches of more than one
// system call's worth, and the bytes arrive as sent. Skipped where the kernel refuses io_uring.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "server/send_batch.h"

using psdm::SendBatch;

namespace {

struct Pair {
    int mine = -1, peer = -1;
    Pair() {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        mine = sv[0];
        peer = sv[1];
    }
    ~Pair() {
        if (mine >= 0) close(mine);
        if (peer >= 0) close(peer);
    }
    std::string drain() const {
        std::string got;
        char buf[65536];
        for (ssize_t n; (n = read(peer, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
        return got;
    }
};

bool start_or_skip(SendBatch &b) {
    std::string err;
    if (b.start(&err)) return true;
    print_message("skipped: %s\n", err.c_str());
    return false;
}

std::map<uintptr_t, ssize_t> flush(SendBatch &b) {
    std::map<uintptr_t, ssize_t> by_tag;
    for (const auto &r : b.flush()) {
        assert_true(by_tag.find(r.tag) == by_tag.end());  // once each
        by_tag[r.tag] = r.res;
    }
    assert_true(b.empty());
    return by_tag;
}

void test_whole_part_full_gone(void **) {
    SendBatch b;
    if (!start_or_skip(b)) return;
    Pair whole, part, full, gone;
    const std::string small(300, 'w');
    const std::string big(1 << 20, 'b');  // more than a socket buffer takes
    // `full` has no room left at all.
    while (write(full.mine, big.data(), big.size()) > 0) {
    }
    close(gone.peer);
    gone.peer = -1;
    assert_true(b.add(whole.mine, small.data(), small.size(), 1));
    assert_true(b.add(part.mine, big.data(), big.size(), 2));
    assert_true(b.add(full.mine, small.data(), small.size(), 3));
    assert_true(b.add(gone.mine, small.data(), small.size(), 4));
    const auto got = flush(b);
    assert_int_equal(got.size(), 4);
    assert_int_equal(got.at(1), static_cast<ssize_t>(small.size()));
    assert_true(got.at(2) > 0 && got.at(2) < static_cast<ssize_t>(big.size()));
    assert_int_equal(got.at(3), -EAGAIN);
    assert_int_equal(got.at(4), -EPIPE);
    assert_true(whole.drain() == small);
    assert_true(part.drain() == big.substr(0, static_cast<size_t>(got.at(2))));
    assert_true(b.ready());
}

void test_many_batches(void **) {
    SendBatch b;
    if (!start_or_skip(b)) return;
    std::vector<Pair> pairs(3 * SendBatch::kEntries / 2);
    std::vector<std::string> texts;  // alive (and unmoved) until flushed
    for (size_t i = 0; i < pairs.size(); i++) texts.push_back("frame " + std::to_string(i));
    std::map<uintptr_t, ssize_t> got;
    for (size_t i = 0; i < pairs.size(); i++) {
        assert_true(b.add(pairs[i].mine, texts[i].data(), texts[i].size(), i));
        if (b.full()) got.merge(flush(b));
    }
    got.merge(flush(b));
    assert_int_equal(got.size(), pairs.size());
    for (size_t i = 0; i < pairs.size(); i++) {
        assert_int_equal(got.at(i), static_cast<ssize_t>(texts[i].size()));
        assert_true(pairs[i].drain() == texts[i]);
    }
    assert_true(flush(b).empty());  // nothing queued: nothing sent
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_part_full_gone),
        cmocka_unit_test(test_many_batches),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
