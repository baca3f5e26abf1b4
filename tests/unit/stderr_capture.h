// Captures what a unit test's code writes to stderr (where the worker's log goes), for
// tests that check "exactly one log line". Header-only; include it where needed.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>

// Runs fn with stderr redirected to a temporary file; returns what was written to it.
// Returns "(capture failed)" if no temporary file could be made.
template <class F>
std::string capture_stderr(F &&fn) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (!tmp) return "(capture failed)";
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    std::string text;
    rewind(tmp);
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, tmp)) > 0) text.append(buf, n);
    fclose(tmp);
    return text;
}

inline size_t count_lines(const std::string &s) {
    size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}
