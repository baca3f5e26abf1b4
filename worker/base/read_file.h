// Reading a small text file whole (the config file, the ACL file).
#pragma once

#include <cstddef>
#include <string>

namespace psdm {

// Reads `path` into *text. Returns 0, or an errno value: the open/read error,
// EISDIR for a directory, EFBIG when the file is larger than max_bytes.
// Never throws except std::bad_alloc. `what` names the file in messages, see below.
int read_small_file(const std::string &path, size_t max_bytes, std::string *text);

// "cannot read <what> 'PATH': <reason>" (or "<what> 'PATH' is larger than N bytes").
std::string read_small_file_error(const char *what, const std::string &path, int err, size_t max_bytes);

}  // namespace psdm
