#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "base/unique_fd.h"

namespace psdm {

int read_small_file(const std::string &path, size_t max_bytes, std::string *text) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno;
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    text->clear();
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return 0;
        text->append(buf, static_cast<size_t>(n));
        if (text->size() > max_bytes) return EFBIG;
    }
}

std::string read_small_file_error(const char *what, const std::string &path, int err, size_t max_bytes) {
    if (err == EFBIG)
        return std::string(what) + " '" + path + "' is larger than " + std::to_string(max_bytes) + " bytes";
    return std::string("cannot read ") + what + " '" + path +
           "': " + std::error_code(err, std::generic_category()).message();
}

}  // namespace psdm
