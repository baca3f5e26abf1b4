// Unit tests for worker/base/c_boundary.h: guarded() and guarded_or() stop every kind of
// exception (std::bad_alloc, another std::exception, a type that is none), log exactly one
// line naming the place, return the failure value and never rethrow; without an exception
// they return what the callable returned and log nothing. The failure path allocates nothing.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <new>
#include <stdexcept>
#include <string>

#include "alloc_counter.h"
#include "base/c_boundary.h"
#include "stderr_capture.h"

using namespace psdm;

namespace {

bool contains(const std::string &s, const char *part) { return s.find(part) != std::string::npos; }

struct NotAnException {  // thrown as is: no std::exception base
    int code;
};

// One line, with the tag, the place and the exception's description.
void assert_one_line(const std::string &log, const char *where, const char *what) {
    assert_int_equal(count_lines(log), 1);
    assert_true(contains(log, "error [PSDM-BOUNDARY] "));
    assert_true(contains(log, where));
    assert_true(contains(log, what));
}

void test_bad_alloc(void **) {
    bool ok = true;
    int calls = 0;
    std::string log = capture_stderr([&] {
        ok = guarded("test place one", [&] {
            calls++;
            throw std::bad_alloc();
        });
    });
    assert_false(ok);
    assert_int_equal(calls, 1);
    assert_one_line(log, "test place one: ", "std::bad_alloc");
}

// The failure path itself allocates nothing: it works when memory has run out.
void test_failure_path_does_not_allocate(void **) {
    const std::runtime_error prepared("out of everything");  // copies share its message
    size_t before = 0, after = 0;
    bool ok = true;
    std::string log = capture_stderr([&] {
        before = g_allocations;
        ok = guarded("no memory", [&] { throw prepared; });
        after = g_allocations;
    });
    assert_false(ok);
    assert_int_equal(after, before);
    assert_one_line(log, "no memory: ", "out of everything");
}

void test_runtime_error(void **) {
    int rc = 0;
    std::string log = capture_stderr([&] {
        rc = guarded_or("lws psdm-socketio RECEIVE", -1, []() -> int { throw std::runtime_error("the reason"); });
    });
    assert_int_equal(rc, -1);
    assert_one_line(log, "lws psdm-socketio RECEIVE: ", "the reason");
}

void test_not_a_std_exception(void **) {
    bool ok = true;
    size_t got = 7;
    std::string log = capture_stderr([&] {
        ok = guarded("odd thrower", [] { throw NotAnException{42}; });
        got = guarded_or("odd thrower 2", size_t{0}, []() -> size_t { throw 3; });
    });
    assert_false(ok);
    assert_int_equal(got, 0);
    assert_int_equal(count_lines(log), 2);  // one line per call
    assert_true(contains(log, "odd thrower: "));
    assert_true(contains(log, "odd thrower 2: "));
    assert_true(contains(log, "not a std::exception"));
}

void test_no_exception_passes_through(void **) {
    bool ok = false;
    int rc = 0, side = 0;
    std::string log = capture_stderr([&] {
        ok = guarded("quiet", [&] { side = 5; });
        rc = guarded_or("quiet", -1, [] { return 17; });
    });
    assert_true(ok);
    assert_int_equal(side, 5);
    assert_int_equal(rc, 17);
    assert_string_equal(log.c_str(), "");
}

// A callable whose result is discarded by guarded(), and a mutable one passed as an lvalue.
void test_callable_kinds(void **) {
    int n = 0;
    auto counter = [&n]() mutable { return ++n; };
    assert_true(guarded("lvalue", counter));
    assert_true(guarded("lvalue", counter));
    assert_int_equal(n, 2);
    assert_int_equal(guarded_or("returns", 0, counter), 3);
}

// Nothing escapes: the helpers are noexcept, and a throwing callable does not change that.
void test_noexcept(void **) {
    auto thrower = [] { throw 1; };
    auto int_thrower = []() -> int { throw std::logic_error("x"); };
    static_assert(noexcept(guarded("x", thrower)));
    static_assert(noexcept(guarded_or("x", 0, int_thrower)));
    // An exception thrown while another is being handled elsewhere is still contained.
    std::string log = capture_stderr([] {
        try {
            throw std::runtime_error("outer");
        } catch (const std::exception &) {
            assert_false(guarded("nested", [] { throw std::runtime_error("inner"); }));
        }
    });
    assert_one_line(log, "nested: ", "inner");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_alloc),
        cmocka_unit_test(test_failure_path_does_not_allocate),
        cmocka_unit_test(test_runtime_error),
        cmocka_unit_test(test_not_a_std_exception),
        cmocka_unit_test(test_no_exception_passes_through),
        cmocka_unit_test(test_callable_kinds),
        cmocka_unit_test(test_noexcept),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
