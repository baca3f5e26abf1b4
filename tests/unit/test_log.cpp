// Unit tests of worker/base/log: the two line forms (plain with our time, journal with the
// sd-daemon(3) priority prefix), cutting and newlines, and the JOURNAL_STREAM match that
// picks the form.
#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
// cmocka 1.1.5 declares print_error()/print_message() (used by fail_msg) outside its own
// extern "C" block: wrap the whole header so they link.
extern "C" {
#include <cmocka.h>
}

#include <cstdlib>
#include <cstring>
#include <string>

#include "stderr_capture.h"

using psdm::LogLevel;
using psdm::LogSink;

namespace {

// 2026-11-26T04:40:00.123Z
const struct timespec kNow = {1795668000, 123456789};

std::string format(LogSink sink, LogLevel level, const char *tag, std::string_view message, size_t cap = 2048) {
    std::string buf(cap, '\0');
    size_t n = psdm::log_format(buf.data(), cap, sink, level, kNow, tag, message);
    buf.resize(n);
    return buf;
}

void test_plain(void **) {
    assert_string_equal(format(LogSink::plain, LogLevel::error, "PSDM-CONFIG", "a.conf:3: authz: not set").c_str(),
                        "2026-11-26T04:40:00.123Z error [PSDM-CONFIG] a.conf:3: authz: not set\n");
    assert_string_equal(format(LogSink::plain, LogLevel::debug, "T", "").c_str(),
                        "2026-11-26T04:40:00.123Z debug [T] \n");
}

// sd-daemon(3): <3> SD_ERR, <4> SD_WARNING, <5> SD_NOTICE, <6> SD_INFO, <7> SD_DEBUG; no time.
void test_journal_prefixes(void **) {
    struct {
        LogLevel level;
        const char *line;
    } cases[] = {
        {LogLevel::error, "<3>error [PSDM-MAIN] m\n"},   {LogLevel::warn, "<4>warn [PSDM-MAIN] m\n"},
        {LogLevel::notice, "<5>notice [PSDM-MAIN] m\n"}, {LogLevel::info, "<6>info [PSDM-MAIN] m\n"},
        {LogLevel::debug, "<7>debug [PSDM-MAIN] m\n"},
    };
    for (const auto &c : cases)
        assert_string_equal(format(LogSink::journal, c.level, "PSDM-MAIN", "m").c_str(), c.line);
}

// One event, one line: newlines become spaces; a long message is cut, the '\n' kept.
void test_one_line(void **) {
    assert_string_equal(format(LogSink::journal, LogLevel::warn, "T", "a\nb\n").c_str(), "<4>warn [T] a b \n");
    std::string line = format(LogSink::journal, LogLevel::info, "T", std::string(100, 'x'), 20);
    assert_int_equal(line.size(), 20);
    assert_string_equal(line.c_str(), "<6>info [T] xxxxxxx\n");
    line = format(LogSink::plain, LogLevel::info, "T", "m", 10);  // even the prefix is cut
    assert_string_equal(line.c_str(), "2026-11-2\n");
    assert_int_equal(psdm::log_format(nullptr, 1, LogSink::plain, LogLevel::info, kNow, "T", "m"), 0);
    line = format(LogSink::plain, LogLevel::info, "T", "m", 2);
    assert_string_equal(line.c_str(), "2\n");
}

void test_journal_stream_match(void **) {
    assert_true(psdm::log_journal_stream_is("8:12345", 8, 12345));
    assert_true(psdm::log_journal_stream_is("66306:18446744073709551615", 66306, static_cast<ino_t>(-1)));
    assert_false(psdm::log_journal_stream_is("8:12345", 8, 12346));
    assert_false(psdm::log_journal_stream_is("9:12345", 8, 12345));
    for (const char *bad : {"", ":", "8:", ":12345", "8:12345x", "8:12345:1", "8 :12345", "-8:12345", "8:+12345", "x:1",
                            "99999999999999999999999:1"})
        assert_false(psdm::log_journal_stream_is(bad, 8, 12345));
    assert_false(psdm::log_journal_stream_is(nullptr, 8, 12345));
}

// log_init_sink compares with fstat of fd 2: journal only when JOURNAL_STREAM names it.
void test_init_sink(void **) {
    struct stat st;
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
    setenv("JOURNAL_STREAM", mine.c_str(), 1);
    assert_true(psdm::log_init_sink() == LogSink::journal);
    std::string out = capture_stderr([] { PSDM_LOG_WARN("T", "x=%d", 1); });
    // capture_stderr swaps fd 2 for a file: the sink chosen before stays.
    assert_string_equal(out.c_str(), "<4>warn [T] x=1\n");
    setenv("JOURNAL_STREAM", other.c_str(), 1);
    assert_true(psdm::log_init_sink() == LogSink::plain);
    unsetenv("JOURNAL_STREAM");
    assert_true(psdm::log_init_sink() == LogSink::plain);
    out = capture_stderr([] { PSDM_LOG_INFO("T", "y"); });
    assert_int_equal(out.size(), strlen("2026-11-26T04:40:00.123Z info [T] y\n"));
    assert_string_equal(out.c_str() + 24, " info [T] y\n");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),     cmocka_unit_test(test_journal_prefixes),
        cmocka_unit_test(test_one_line),  cmocka_unit_test(test_journal_stream_match),
        cmocka_unit_test(test_init_sink),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
