/* CHECK(cond) for the fuzz targets of tests/fuzz/ (C and C++): a property that must hold.
 * When it does not, names the file, line and condition on stderr, then aborts, which
 * libFuzzer reports as a crash and saves the input that caused it. */
#ifndef PSDM_FUZZ_CHECK_H
#define PSDM_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static inline void psdm_fuzz_failed(const char *cond, const char *file, int line) {
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, cond);
    abort();
}

#define CHECK(cond) ((cond) ? (void)0 : psdm_fuzz_failed(#cond, __FILE__, __LINE__))

#endif /* PSDM_FUZZ_CHECK_H */
