// The http provider: see authz_http.h for the protocol with the web application.
#include "authz/authz_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <string_view>
#include <thread>

#include "base/c_boundary.h"
#include "base/log.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-AUTHZ";

bool is_unreserved(unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_' || ch == '~';
}

// RFC 3986 percent-encoding of one substituted value: unreserved characters kept, every other
// byte %XX; a value made only of dots ("." and ".." are dot segments, which URL normalization
// removes along with the segment before) has its dots encoded too, so that it can never
// change which path of the template is asked.
std::string percent_encode(const std::string &s) {
    static const char kHex[] = "0123456789ABCDEF";
    const bool only_dots = s.find_first_not_of('.') == std::string::npos;
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto ch = static_cast<unsigned char>(c);
        if (is_unreserved(ch) && !(only_dots && ch == '.')) {
            out += c;
        } else {
            out += '%';
            out += kHex[ch >> 4];
            out += kHex[ch & 15];
        }
    }
    return out;
}

// RFC 7230 token: the characters a header name may have.
bool is_header_name(const std::string &s) {
    if (s.empty()) return false;
    for (char c : s) {
        auto ch = static_cast<unsigned char>(c);
        if (!(is_unreserved(ch) || std::string_view("!#$%&'*+^`|").find(c) != std::string_view::npos)) return false;
    }
    return true;
}

bool has_control_chars(const std::string &s) {
    for (char c : s) {
        auto ch = static_cast<unsigned char>(c);
        if (ch < 0x20 || ch == 0x7f) return true;
    }
    return false;
}

// ------------------------------------------------------------------ the libcurl transport

// One thread drives a curl multi handle: it takes submitted requests, runs them, and
// hands results back. Only curl_multi_wakeup() touches the multi handle from another
// thread (libcurl allows exactly that).
//
// The thread's body is at the C boundary (base/c_boundary.h): an exception (out of
// memory) is logged and the thread goes on. Each request is always in exactly one
// place - submitted_, fresh_ (taken, not started), active_ (started; finished_ too once
// curl is done with it), done_ (answered), results_ - and moves on only once its next
// place is secured, so an exception loses nothing: the next turn resumes it.
class CurlTransport final : public HttpTransport {
 public:
    ~CurlTransport() override { stop(); }

    bool start(std::function<void()> wake, std::string *err) override {
        static bool global_done = false;  // curl_global_init is not thread-safe: loop thread, first call
        if (!global_done) {
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                *err = "curl_global_init failed";
                return false;
            }
            global_done = true;
        }
        multi_ = curl_multi_init();
        if (!multi_) {
            *err = "curl_multi_init failed";
            return false;
        }
        wake_ = std::move(wake);
        // The thread blocks every signal (it inherits the mask): SIGTERM, SIGINT and SIGHUP
        // go to the event loop's thread, whose handlers they are written for.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        thread_ = std::thread([this] { run(); });
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return true;
    }

    void submit(HttpRequest req) override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            submitted_.push_back(std::move(req));
        }
        curl_multi_wakeup(multi_);
    }

    void take_results(std::vector<HttpResult> *out) override {
        std::lock_guard<std::mutex> lock(mu_);
        for (HttpResult &r : results_) out->push_back(std::move(r));
        results_.clear();
    }

    void stop() override {
        if (!thread_.joinable()) return;
        {
            std::lock_guard<std::mutex> lock(mu_);
            stopping_ = true;
        }
        curl_multi_wakeup(multi_);
        thread_.join();
        curl_multi_cleanup(multi_);
        multi_ = nullptr;
    }

 private:
    struct Transfer {
        CURL *easy = nullptr;
        curl_slist *headers = nullptr;
        HttpRequest req;
        char errbuf[CURL_ERROR_SIZE] = {0};
        const char *setup_error = nullptr;  // it could not start: the answer's error
        bool in_multi = false;
        ~Transfer() {
            if (easy) curl_easy_cleanup(easy);
            curl_slist_free_all(headers);
        }
    };

    struct Finished {
        Transfer *t;
        CURLcode code;
    };

    // libcurl's write callback (C). Nothing in it can throw.
    static size_t discard(char *, size_t size, size_t nmemb, void *) noexcept { return size * nmemb; }

    // Thread: the transport's. Returns false (t->setup_error set) if the request cannot start.
    bool add(Transfer *t) {
        t->easy = curl_easy_init();
        if (t->easy && !t->req.header.empty()) {
            t->headers = curl_slist_append(nullptr, t->req.header.c_str());
            if (!t->headers) {
                curl_easy_cleanup(t->easy);
                t->easy = nullptr;
            }
        }
        if (!t->easy) {
            t->setup_error = "out of memory";
            return false;
        }
        CURL *e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, t->req.url.c_str());
        // The path as http_authz_url built it: no dot-segment removal or other normalization.
        curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t->req.timeout_ms));
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "psdm_socketd");
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        if (t->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        if (curl_multi_add_handle(multi_, e) != CURLM_OK) {
            t->setup_error = "curl_multi_add_handle failed";
            return false;
        }
        t->in_multi = true;
        return true;
    }

    static HttpResult result_of(Transfer *t, CURLcode code) {
        HttpResult r;
        r.id = t->req.id;
        if (t->setup_error) {
            r.error = t->setup_error;
        } else if (code == CURLE_OK) {
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
            r.error = "no answer within " + std::to_string(t->req.timeout_ms) + " ms (authz_timeout_ms)";
        } else {
            r.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
        }
        return r;
    }

    // Thread: the transport's, until stop().
    void run() {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                if (stopping_) break;
            }
            guarded("authz http transport thread", [this] { turn(); });
            curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
        }
        for (auto &kv : active_)
            if (kv.second->in_multi) curl_multi_remove_handle(multi_, kv.second->easy);
        active_.clear();
        finished_.clear();
    }

    // Starts what was submitted, collects what finished, hands the results back.
    void turn() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (fresh_.empty()) {
                fresh_.swap(submitted_);
            } else {
                for (; !submitted_.empty(); submitted_.pop_front()) fresh_.push_back(std::move(submitted_.front()));
            }
        }
        while (!fresh_.empty()) {
            // Every finished transfer is in active_: room in finished_ for all of them.
            if (finished_.capacity() < active_.size() + 1) finished_.reserve(2 * (active_.size() + 1));
            auto t = std::make_unique<Transfer>();
            Transfer *key = t.get();
            active_.emplace(key, std::move(t));
            key->req = std::move(fresh_.front());
            fresh_.pop_front();
            if (!add(key)) finished_.push_back({key, CURLE_OK});  // answered with its setup_error
        }
        int running = 0;
        curl_multi_perform(multi_, &running);
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(multi_, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            char *priv = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            finished_.push_back({reinterpret_cast<Transfer *>(priv), m->data.result});  // capacity reserved
        }
        while (!finished_.empty()) {
            Finished f = finished_.back();
            done_.push_back(result_of(f.t, f.code));
            finished_.pop_back();
            if (f.t->in_multi) curl_multi_remove_handle(multi_, f.t->easy);
            active_.erase(f.t);
        }
        if (!done_.empty()) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                if (results_.empty()) {
                    results_.swap(done_);
                } else {
                    results_.reserve(results_.size() + done_.size());
                    for (HttpResult &r : done_) results_.push_back(std::move(r));
                    done_.clear();
                }
            }
            wake_();
        }
    }

    CURLM *multi_ = nullptr;
    std::function<void()> wake_;
    std::thread thread_;
    std::mutex mu_;
    // {mu_}
    std::deque<HttpRequest> submitted_;
    std::vector<HttpResult> results_;
    bool stopping_ = false;
    // the thread's own
    std::deque<HttpRequest> fresh_;
    std::unordered_map<Transfer *, std::unique_ptr<Transfer>> active_;
    std::vector<Finished> finished_;
    std::vector<HttpResult> done_;
};

}  // namespace

std::unique_ptr<HttpTransport> http_transport_curl() { return std::make_unique<CurlTransport>(); }

std::string http_authz_url(const std::string &url_template, const std::string &user, const std::string &room) {
    std::string out;
    out.reserve(url_template.size() + room.size() + user.size());
    size_t i = 0;
    while (i < url_template.size()) {
        if (url_template.compare(i, 6, "{room}") == 0) {
            out += percent_encode(room);
            i += 6;
        } else if (url_template.compare(i, 6, "{user}") == 0) {
            out += percent_encode(user);
            i += 6;
        } else {
            out += url_template[i++];
        }
    }
    return out;
}

// ------------------------------------------------------------------ the provider

std::unique_ptr<HttpAuthorizer> HttpAuthorizer::create(HttpAuthzOptions opts, std::unique_ptr<HttpTransport> transport,
                                                       std::function<int64_t()> clock, std::string *err) {
    if (opts.url_template.find("{room}") == std::string::npos) {
        *err = "the URL '" + opts.url_template +
               "' has no {room}: write where the room goes, e.g. http://127.0.0.1:5000/ws/authz/{room}";
        return nullptr;
    }
    if (!is_header_name(opts.user_header)) {
        *err = "authz_user_header '" + opts.user_header + "' is not an HTTP header name";
        return nullptr;
    }
    if (opts.max_in_flight == 0) opts.max_in_flight = 1;
    return std::unique_ptr<HttpAuthorizer>(new HttpAuthorizer(std::move(opts), std::move(transport), std::move(clock)));
}

HttpAuthorizer::~HttpAuthorizer() { stop(); }

bool HttpAuthorizer::start(std::function<void()> wake, std::string *err) {
    if (!transport_->start(std::move(wake), err)) return false;
    PSDM_LOG_INFO(kTag,
                  "authz = %s: identity in header %s, timeout %u ms, answers cached %u ms (allow) / %u ms (deny), "
                  "at most %zu request(s) in flight",
                  opts_.url_template.c_str(), opts_.user_header.c_str(), opts_.timeout_ms, opts_.allow_ttl_ms,
                  opts_.deny_ttl_ms, opts_.max_in_flight);
    return true;
}

void HttpAuthorizer::stop() {
    if (stopped_) return;
    stopped_ = true;
    transport_->stop();
    pending_.clear();  // their clients are going away with the event loop
    queue_.clear();
    by_request_.clear();
    in_flight_ = 0;
}

std::string HttpAuthorizer::key_of(const std::string &user, const std::string &room) {
    std::string key;
    key.reserve(user.size() + 1 + room.size());
    key.append(user).push_back('\0');  // no user name or room contains NUL
    key.append(room);
    return key;
}

void HttpAuthorizer::do_check(const Identity &who, const std::string &room, Done done) {
    if (stopped_) return;
    if (has_control_chars(who.user)) {  // cannot go into a header line (Apache never sends one)
        done({false, "user name has control characters", true});
        return;
    }
    std::string key = key_of(who.user, room);
    int64_t now = clock_();
    auto c = cache_.find(key);
    if (c != cache_.end()) {
        if (c->second.expires_ms > now) {
            counters_.cache_hits++;
            done({c->second.allowed, c->second.allowed ? "cached allow" : "cached deny", false});
            return;
        }
        cache_.erase(c);
    }
    auto [it, fresh] = pending_.try_emplace(key);
    Pending &p = it->second;
    p.waiters.push_back(std::move(done));
    if (!fresh) return;  // the same question is being asked: wait for its answer
    p.user = who.user;
    p.room = room;
    p.asked_ms = now;
    if (in_flight_ < opts_.max_in_flight) {
        send(key, p);
    } else {
        queue_.push_back(std::move(key));
    }
}

void HttpAuthorizer::send(const std::string &key, Pending &p) {
    HttpRequest req;
    req.id = ++next_request_id_;
    req.url = http_authz_url(opts_.url_template, p.user, p.room);
    if (!p.user.empty()) req.header = opts_.user_header + ": " + p.user;
    req.timeout_ms = opts_.timeout_ms;
    p.request_id = req.id;
    by_request_.emplace(req.id, key);
    in_flight_++;
    counters_.requests++;
    PSDM_LOG_DEBUG(kTag, "GET %s (user '%s')", req.url.c_str(), p.user.c_str());
    transport_->submit(std::move(req));
}

void HttpAuthorizer::remember(const std::string &key, bool allowed, int64_t now) {
    unsigned ttl = allowed ? opts_.allow_ttl_ms : opts_.deny_ttl_ms;
    if (ttl == 0) return;
    if (cache_.size() >= opts_.max_cache_entries) {
        for (auto it = cache_.begin(); it != cache_.end();) it = it->second.expires_ms <= now ? cache_.erase(it) : ++it;
        if (cache_.size() >= opts_.max_cache_entries) cache_.clear();
    }
    cache_[key] = {allowed, now + ttl};
}

// Answers everyone waiting for `key`. The question is gone before the first answer, so
// a waiter that asks again starts afresh.
void HttpAuthorizer::finish(const std::string &key, AuthzDecision d) {
    auto node = pending_.extract(key);
    if (node.empty()) return;
    for (Done &w : node.mapped().waiters) w(d);
}

void HttpAuthorizer::poll() {
    if (stopped_) return;
    std::vector<HttpResult> results;
    transport_->take_results(&results);
    int64_t now = clock_();
    for (HttpResult &r : results) {
        auto b = by_request_.find(r.id);
        if (b == by_request_.end()) continue;
        std::string key = std::move(b->second);
        by_request_.erase(b);
        in_flight_--;
        auto p = pending_.find(key);
        if (p == pending_.end()) continue;
        AuthzDecision d;
        if (r.status >= 200 && r.status < 300) {
            d.allowed = true;
            d.reason = "HTTP " + std::to_string(r.status);
            remember(key, true, now);
        } else if (r.status == 401 || r.status == 403 || r.status == 404) {
            d.reason = "HTTP " + std::to_string(r.status);
            remember(key, false, now);
        } else {
            d.failed = true;
            d.reason = r.status ? "HTTP " + std::to_string(r.status) + " (expected 2xx, 401, 403 or 404)" : r.error;
            PSDM_LOG_WARN(kTag, "GET %s: %s; refusing user '%s' room '%s' (%zu join(s) waiting)",
                          http_authz_url(opts_.url_template, p->second.user, p->second.room).c_str(), d.reason.c_str(),
                          p->second.user.c_str(), p->second.room.c_str(), p->second.waiters.size());
        }
        finish(key, std::move(d));
    }
    pump_queue();
}

// Sends queued questions while slots are free; refuses those that waited too long.
void HttpAuthorizer::pump_queue() {
    int64_t now = clock_();
    while (!queue_.empty() && !stopped_) {
        std::string key = std::move(queue_.front());
        queue_.pop_front();
        auto p = pending_.find(key);
        if (p == pending_.end()) continue;
        if (now - p->second.asked_ms >= opts_.timeout_ms) {
            AuthzDecision d{false,
                            "no free request slot within " + std::to_string(opts_.timeout_ms) +
                                " ms (authz_max_in_flight = " + std::to_string(opts_.max_in_flight) + ")",
                            true};
            PSDM_LOG_WARN(kTag, "user '%s' room '%s': %s", p->second.user.c_str(), p->second.room.c_str(),
                          d.reason.c_str());
            finish(key, std::move(d));
            continue;
        }
        if (in_flight_ >= opts_.max_in_flight) {
            queue_.push_front(std::move(key));
            break;
        }
        send(key, p->second);
    }
}

bool HttpAuthorizer::reload(std::string *err) {
    (void)err;
    size_t n = cache_.size();
    cache_.clear();
    PSDM_LOG_NOTICE(kTag, "reload: forgot %zu cached answer(s) of %s", n, opts_.url_template.c_str());
    return true;
}

}  // namespace psdm
