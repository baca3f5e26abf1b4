#include "authz.h"

#include "log.h"

namespace psdm {

namespace {

// allow-all: every user may read every room. Must be written explicitly.
class AllowAll final : public Authorizer {
 public:
    const char *name() const override { return "allow-all"; }
    void check(const Identity &, const std::string &, std::function<void(AuthzDecision)> done) override {
        done({true, ""});
    }
};

}  // namespace

std::unique_ptr<Authorizer> authorizer_create(const std::string &spec, std::string *err) {
    if (spec == "allow-all") {
        PSDM_LOG_WARN("PSDM-AUTHZ", "authz = allow-all: every user may join every room");
        return std::make_unique<AllowAll>();
    }
    if (spec.rfind("file:", 0) == 0 || spec.rfind("http:", 0) == 0 || spec.rfind("https:", 0) == 0) {
        *err = "authz provider '" + spec.substr(0, spec.find(':')) + "' is not implemented yet; use allow-all";
        return nullptr;
    }
    *err = "unknown authz provider '" + spec + "' (expected allow-all, file:PATH, http:URL or https:URL)";
    return nullptr;
}

}  // namespace psdm
