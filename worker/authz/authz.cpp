// authorizer_create: from `authz = ...` to a provider.
#include "authz/authz.h"

#include "authz/authz_file.h"
#include "authz/authz_http.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"

namespace psdm {

namespace {

// allow-all: every user may read every room. Must be written explicitly.
class AllowAll final : public Authorizer {
 public:
    const char *name() const override { return "allow-all"; }

 protected:
    void do_check(const Identity &, const std::string &, Done done) override { done({true, "allow-all", false}); }
};

}  // namespace

std::unique_ptr<Authorizer> authorizer_create(const Config &cfg, std::string *err) {
    const std::string &spec = cfg.authz;
    if (spec == "allow-all") {
        PSDM_LOG_WARN("PSDM-AUTHZ", "authz = allow-all: every user may join every room");
        return std::make_unique<AllowAll>();
    }
    if (spec.rfind("file:", 0) == 0) {
        // "file:/PATH" (config checked that PATH is absolute).
        std::string why;
        auto a = FileAuthorizer::create(spec.substr(5), &why);
        if (!a) *err = "file provider: " + why;
        return a;
    }
    if (spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0) {
        HttpAuthzOptions o;
        o.url_template = spec;
        o.user_header = cfg.authz_user_header;
        o.timeout_ms = cfg.authz_timeout_ms;
        o.allow_ttl_ms = cfg.authz_allow_ttl_ms;
        o.deny_ttl_ms = cfg.authz_deny_ttl_ms;
        o.max_in_flight = cfg.authz_max_in_flight;
        std::string why;
        auto a = HttpAuthorizer::create(std::move(o), http_transport_curl(), monotonic_ms, &why);
        if (!a) *err = "http provider: " + why;
        return a;
    }
    *err = "unknown authz provider '" + spec + "' (expected allow-all, file:/PATH, http://URL or https://URL)";
    return nullptr;
}

}  // namespace psdm
