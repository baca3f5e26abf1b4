// The WebSocket opening handshake rules. See ws_handshake.h for the contracts.
//
// References (read, not copied): RFC 6455 section 4.2.1 (the client's handshake as a server
// reads it) and 4.2.2 (426 with Sec-WebSocket-Version), RFC 9110 section 15 (status codes,
// 426 with Upgrade), RFC 9112 sections 2 to 5 (request line, field lines, CRLF), RFC 6585
// section 5 (431), the Engine.IO protocol (error codes 0, 3, 5 and their JSON body).
#include "sio/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace psdm {

namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr size_t kShownMax = 100;  // longest client text quoted in a reason

bool ascii_ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 9110 tchar: what a method or header name is made of.
bool is_tchar(char c) { return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos; }

bool all_of(std::string_view s, bool (*pred)(char)) {
    for (char c : s)
        if (!pred(c)) return false;
    return !s.empty();
}

std::string_view trim_ows(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// `s` quoted for a log line: at most kShownMax bytes, bytes outside printable ASCII as \xNN.
std::string shown(std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    std::string out = "'";
    for (size_t i = 0; i < s.size() && i < kShownMax; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b >= 0x20 && b < 0x7f && b != '\\') {
            out += static_cast<char>(b);
        } else {
            out += "\\x";
            out += kHex[b >> 4];
            out += kHex[b & 15];
        }
    }
    if (s.size() > kShownMax) out += "...";
    return out + "'";
}

// Calls f(entry) for each entry of a comma-separated list, trimmed; empty entries skipped.
template <typename F>
void for_each_entry(std::string_view list, F f) {
    while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view entry = trim_ows(list.substr(0, comma));
        if (!entry.empty()) f(entry);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
}

HttpAnswer refusal(unsigned status, std::string reason, std::string body) {
    HttpAnswer a;
    a.status = status;
    a.reason = std::move(reason);
    a.content_type = "text/plain";
    a.body = std::move(body) + "\n";
    return a;
}

// An Engine.IO error, as Engine.IO servers answer a bad handshake: {"code":N,"message":"..."}.
HttpAnswer engineio_refusal(unsigned status, int code, std::string_view message, std::string reason) {
    HttpAnswer a;
    a.status = status;
    a.reason = std::move(reason);
    a.content_type = "application/json";
    a.body = "{\"code\":" + std::to_string(code) + ",\"message\":" + json_escape_string(message) + "}";
    return a;
}

// Why Sec-WebSocket-Protocol is refused, or "" if it is fine (see check_upgrade).
std::string subprotocol_problem(std::string_view list) {
    bool tokens = true;
    std::string_view first_ours;
    for_each_entry(list, [&](std::string_view p) {
        tokens = tokens && all_of(p, [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
        if (first_ours.empty() && p.substr(0, kInternalProtocolPrefix.size()) == kInternalProtocolPrefix)
            first_ours = p;
    });
    if (!tokens) return "Sec-WebSocket-Protocol " + shown(list) + " is not a list of protocol names";
    if (first_ours.empty())
        return "Sec-WebSocket-Protocol " + shown(list) + " does not offer " + std::string(kSocketIoSubprotocol);
    if (first_ours != kSocketIoSubprotocol)
        return "Sec-WebSocket-Protocol " + shown(list) + " asks for the internal protocol " + shown(first_ours);
    return "";
}

const char *status_text(unsigned status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

RequestHead refused(HttpAnswer a) {
    RequestHead h;
    h.state = RequestHead::State::refused;
    h.refusal = std::move(a);
    return h;
}

HttpAnswer malformed(std::string reason) {
    return refusal(400, "malformed request: " + reason, "Malformed HTTP request");
}

// The request line, "METHOD SP TARGET SP HTTP/1.x" (no CRLF), into *r; "" or why not.
std::string parse_request_line(std::string_view line, UpgradeRequest *r) {
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return "request line " + shown(line) + " is not 'METHOD TARGET HTTP/1.1'";
    r->method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    r->http_version = line.substr(sp2 + 1);
    if (!all_of(r->method, is_tchar)) return "method " + shown(r->method) + " is not a token";
    if (target.empty() || target.front() != '/' || !all_of(target, [](char c) { return c > 0x20 && c < 0x7f; }))
        return "target " + shown(target) + " is not a path (printable ASCII starting with '/')";
    if (r->http_version != "HTTP/1.1" && r->http_version != "HTTP/1.0")
        return "version " + shown(r->http_version) + " is not HTTP/1.x";
    const size_t q = target.find('?');
    r->path = target.substr(0, q);
    r->query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    return "";
}

// One "Name: value" line (no CRLF) into *r; "" or why not.
std::string parse_header_line(std::string_view line, UpgradeRequest *r) {
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
        return "folded header line " + shown(line) + " (obsolete line folding)";
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || !all_of(name, is_tchar))
        return "header line " + shown(line) + " is not 'Name: value'";
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
            return "header " + shown(name) + " has a control character (a bare CR or LF?)";
    struct Field {
        std::string_view name;
        std::optional<std::string_view> *slot;
    };
    const Field fields[] = {{"Host", &r->host},
                            {"Upgrade", &r->upgrade},
                            {"Connection", &r->connection},
                            {"Sec-WebSocket-Key", &r->key},
                            {"Sec-WebSocket-Version", &r->version},
                            {"Sec-WebSocket-Protocol", &r->protocol}};
    for (const Field &f : fields) {
        if (!ascii_ieq(name, f.name)) continue;
        if (*f.slot) return "header " + std::string(f.name) + " given twice";
        *f.slot = value;
    }
    return "";
}

}  // namespace

bool socketio_path_ok(std::string_view path) {
    for (std::string_view suffix : {std::string_view("/socket.io/"), std::string_view("/socket.io")})
        if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) return true;
    return false;
}

bool ws_key_ok(std::string_view key) {
    if (key.size() != 24 || key.substr(22) != "==") return false;
    for (char c : key.substr(0, 22))
        if (!(is_alnum(c) || c == '+' || c == '/')) return false;
    return true;
}

HttpAnswer check_upgrade(const UpgradeRequest &r) {
    if (!socketio_path_ok(r.path))
        return engineio_refusal(404, 0, "Not found", "path " + shown(r.path) + " does not end in /socket.io/");
    const HandshakeQuery hq = parse_handshake_query(r.query);
    if (!hq.ok) return engineio_refusal(400, hq.code, hq.error, "query " + shown(r.query) + ": " + hq.error);
    if (!r.upgrade || !ascii_ieq(*r.upgrade, "websocket"))
        return engineio_refusal(400, 3, "Bad request",
                                "not a WebSocket upgrade (Upgrade: " + (r.upgrade ? shown(*r.upgrade) : "none") + ")");
    if (r.method != "GET")
        return refusal(400, "method " + shown(r.method) + " is not GET", "WebSocket upgrade needs GET");
    if (!r.http_version.empty() && r.http_version != "HTTP/1.1")
        return refusal(400, shown(r.http_version) + " is not HTTP/1.1", "WebSocket upgrade needs HTTP/1.1");
    bool upgrade_listed = false;
    if (r.connection)
        for_each_entry(*r.connection,
                       [&](std::string_view c) { upgrade_listed = upgrade_listed || ascii_ieq(c, "upgrade"); });
    if (!upgrade_listed)
        return refusal(400,
                       "Connection " + (r.connection ? shown(*r.connection) : "(none)") + " does not list 'upgrade'",
                       "WebSocket upgrade needs Connection: Upgrade");
    if (!r.host || r.host->empty()) return refusal(400, "no Host header", "WebSocket upgrade needs a Host header");
    if (!r.version || *r.version != "13") {
        HttpAnswer a = refusal(426,
                               "Sec-WebSocket-Version " + (r.version ? shown(*r.version) : "(none)") + " is not 13",
                               "Unsupported WebSocket version: this server speaks 13");
        a.headers = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        return a;
    }
    if (!r.key || !ws_key_ok(*r.key))
        return refusal(400, "Sec-WebSocket-Key " + (r.key ? shown(*r.key) : "(none)") + " is not 16 bytes in base64",
                       "Invalid Sec-WebSocket-Key");
    if (r.protocol && !trim_ows(*r.protocol).empty()) {
        std::string why = subprotocol_problem(*r.protocol);
        if (!why.empty()) return refusal(400, std::move(why), "Unsupported Sec-WebSocket-Protocol");
    }
    HttpAnswer ok;
    ok.version = hq.version;
    return ok;
}

HttpAnswer http_refusal_at_capacity(size_t connections) {
    HttpAnswer a = refusal(503, "at capacity (" + std::to_string(connections) + " connections)",
                           "Too many connections, try again later");
    a.headers = "Retry-After: " + std::to_string(kRetryAfterSecs) + "\r\n";
    return a;
}

RequestHead parse_request_head(std::string_view bytes) {
    const size_t line_end = bytes.find(kCrlf);
    // Unfinished, the line is all there is but a CR that may start its CRLF.
    const size_t line_len = line_end != std::string_view::npos
                                ? line_end
                                : bytes.size() - (!bytes.empty() && bytes.back() == '\r');
    if (line_len > kMaxRequestLine)
        return refused(refusal(414, "request line longer than " + std::to_string(kMaxRequestLine) + " bytes",
                               "Request line too long"));
    if (line_end == std::string_view::npos) return {};
    const size_t end = bytes.find("\r\n\r\n", line_end);
    if (end == std::string_view::npos ? bytes.size() >= kMaxRequestHead : end + 4 > kMaxRequestHead)
        return refused(refusal(431, "request head longer than " + std::to_string(kMaxRequestHead) + " bytes",
                               "Request header fields too large"));
    if (end == std::string_view::npos) return {};

    RequestHead h;
    std::string why = parse_request_line(bytes.substr(0, line_end), &h.request);
    for (size_t pos = line_end + 2; why.empty() && pos < end + 2;) {
        const size_t eol = bytes.find(kCrlf, pos);
        why = parse_header_line(bytes.substr(pos, eol - pos), &h.request);
        pos = eol + 2;
    }
    if (!why.empty()) return refused(malformed(std::move(why)));
    h.state = RequestHead::State::complete;
    h.length = end + 4;
    return h;
}

std::string ws_accept_value(std::string_view key) {
    static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 section 1.3
    std::string text(key);
    text.append(kGuid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char *>(text.data()), text.size(), digest);
    unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char *>(b64), static_cast<size_t>(n));
}

std::string ws_accept_answer_bytes(const UpgradeRequest &r) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    out.append(ws_accept_value(r.key.value_or(""))).append(kCrlf);
    if (r.protocol && !trim_ows(*r.protocol).empty())
        out.append("Sec-WebSocket-Protocol: ").append(kSocketIoSubprotocol).append(kCrlf);
    return out.append(kCrlf);
}

std::string http_response_bytes(unsigned status, std::string_view headers, std::string_view content_type,
                                std::string_view body, bool head_only) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    out.append(headers);
    out.append("Content-Type: ").append(content_type).append(kCrlf);
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += status == 426 ? "Connection: Upgrade, close\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!head_only) out.append(body);
    return out;
}

std::string http_answer_bytes(const HttpAnswer &a) {
    return http_response_bytes(a.status, a.headers, a.content_type, a.body);
}

}  // namespace psdm
