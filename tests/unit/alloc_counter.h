// Counts heap allocations in a unit-test binary, for tests that assert "no allocation",
// and fails one on request, for tests of what an allocation failure leaves behind.
// Replaces the global operator new/delete of the binary (ASan's included): include it
// in exactly one translation unit (each test binary is one).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

static size_t g_allocations = 0;  // operator new calls so far
// When not 0: the operator new call that makes g_allocations equal to it throws
// std::bad_alloc (once; set it again for another failure).
static size_t g_fail_allocation = 0;

// Out of line so that GCC does not see new paired with free (-Wmismatched-new-delete).
__attribute__((noinline)) static void raw_free(void *p) noexcept { std::free(p); }

void *operator new(size_t n) {
    if (++g_allocations == g_fail_allocation) {
        g_fail_allocation = 0;
        throw std::bad_alloc();
    }
    void *p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
void *operator new[](size_t n) { return operator new(n); }
void operator delete(void *p) noexcept { raw_free(p); }
void operator delete[](void *p) noexcept { raw_free(p); }
void operator delete(void *p, size_t) noexcept { raw_free(p); }
void operator delete[](void *p, size_t) noexcept { raw_free(p); }
