// Unit tests for worker/sio/ws_handshake: the opening-handshake rules (RFC 6455 section 4.2.1,
// 426 of section 4.2.2), the request-head parser of the direct port (RFC 9112: request line,
// CRLF field lines, limits 414/431), the replay handed to lws, and the refusal bytes.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "sio/ws_handshake.h"

using namespace psdm;

namespace {

const std::string kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 section 1.3's sample nonce

// A valid upgrade; `extra` header lines are added, `drop` (a header name) is left out.
std::string request(const std::string &target = "/lgbk_socketio/socket.io/?EIO=4&transport=websocket",
                    const std::string &extra = "", const std::string &drop = "", const std::string &method = "GET") {
    std::string r = method + " " + target + " HTTP/1.1\r\n";
    for (const char *h :
         {"Host: 127.0.0.1:8080", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"}) {
        std::string line(h);
        if (drop.empty() || line.compare(0, drop.size(), drop) != 0) r += line + "\r\n";
    }
    if (drop != "Sec-WebSocket-Key") r += "Sec-WebSocket-Key: " + kKey + "\r\n";
    return r + extra + "\r\n";
}

// The verdict for a whole request: the parser's refusal, or check_upgrade's.
HttpAnswer verdict(const std::string &bytes) {
    RequestHead h = parse_request_head(bytes);
    if (h.state == RequestHead::State::refused) return h.refusal;
    if (h.state != RequestHead::State::complete) fail_msg("incomplete: %s", bytes.c_str());
    return check_upgrade(h.request);
}

struct Case {
    std::string bytes;
    unsigned status;          // 0: accepted
    const char *reason_part;  // part of the log reason ("" for accepted)
    const char *body_part;
};

void test_verdicts(void **) {
    const Case cases[] = {
        {request(), 0, "", ""},
        {request("/socket.io?EIO=3&transport=websocket&t=N8x"), 0, "", ""},
        {request("/a/socket.io/?EIO=4&transport=websocket", "Connection: keep-alive\r\n", "Connection"), 400,
         "Connection 'keep-alive' does not list 'upgrade'", "Connection: Upgrade"},
        {request("/a/socket.io/?EIO=4&transport=websocket", "Connection: keep-alive, Upgrade\r\n", "Connection"), 0, "",
         ""},
        {request("/a/socket.io/?EIO=4&transport=websocket", "upgrade: WebSocket\r\n", "Upgrade"), 0, "", ""},
        // Sec-WebSocket-Version: RFC 6455 section 4.2.2, 426 naming the version spoken.
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Version: 99\r\n", "Sec-WebSocket-Version"),
         426, "Sec-WebSocket-Version '99' is not 13", "speaks 13"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version"),
         426, "'8' is not 13", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "", "Sec-WebSocket-Version"), 426,
         "Sec-WebSocket-Version (none) is not 13", ""},
        // Sec-WebSocket-Key: 16 bytes in base64.
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Key:\r\n", "Sec-WebSocket-Key"), 400,
         "Sec-WebSocket-Key '' is not 16 bytes in base64", "Invalid Sec-WebSocket-Key"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Key: not-base64!!\r\n", "Sec-WebSocket-Key"),
         400, "'not-base64!!' is not 16 bytes", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "", "Sec-WebSocket-Key"), 400,
         "Sec-WebSocket-Key (none) is not", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n",
                 "Sec-WebSocket-Key"),
         400, "is not 16 bytes", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==x\r\n",
                 "Sec-WebSocket-Key"),
         400, "is not 16 bytes", ""},
        // Engine.IO: path and query.
        {request("/a/nope/?EIO=4&transport=websocket"), 404, "path '/a/nope/' does not end in /socket.io/",
         "{\"code\":0,\"message\":\"Not found\"}"},
        {request("/s/socket.io/?EIO=5&transport=websocket"), 400,
         "query 'EIO=5&transport=websocket': unsupported protocol version",
         "{\"code\":5,\"message\":\"unsupported protocol version\"}"},
        {request("/s/socket.io/?EIO=4&transport=polling"), 400, "transport unknown",
         "{\"code\":0,\"message\":\"transport unknown\"}"},
        {request("/s/socket.io/?EIO=4&transport=websocket&sid=x"), 400, "session id unknown", "\"code\":1"},
        // Not an upgrade, or not one RFC 6455 allows.
        {request("/s/socket.io/?EIO=4&transport=websocket", "", "Upgrade"), 400,
         "not a WebSocket upgrade (Upgrade: none)", "{\"code\":3,\"message\":\"Bad request\"}"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Upgrade: h2c\r\n", "Upgrade"), 400,
         "not a WebSocket upgrade (Upgrade: 'h2c')", "\"code\":3"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "", "", "POST"), 400, "method 'POST' is not GET",
         "WebSocket upgrade needs GET"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "", "Host"), 400, "no Host header", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Host:\r\n", "Host"), 400, "no Host header", ""},
        // Subprotocols: ours may be offered; none other of the worker's may come first.
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Protocol: psdm-socketio\r\n"), 0, "", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Protocol: chat, psdm-socketio\r\n"), 0, "",
         ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Protocol: chat\r\n"), 400,
         "Sec-WebSocket-Protocol 'chat' does not offer psdm-socketio", "Unsupported Sec-WebSocket-Protocol"},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Protocol: psdm-kafka, psdm-socketio\r\n"),
         400, "Sec-WebSocket-Protocol 'psdm-kafka, psdm-socketio' asks for the internal protocol 'psdm-kafka'", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Protocol: x;psdm-kafka, psdm-socketio\r\n"),
         400, "is not a list of protocol names", ""},
        // The head itself.
        {"GET /s/socket.io/?EIO=4&transport=websocket HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
         "upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
             kKey + "\r\n\r\n",
         400, "'HTTP/1.0' is not HTTP/1.1", ""},
        {"GET /s/socket.io/ HTTP/2\r\n\r\n", 400, "malformed request: version 'HTTP/2' is not HTTP/1.x",
         "Malformed HTTP request"},
        {"GET  /s/socket.io/ HTTP/1.1\r\n\r\n", 400, "is not 'METHOD TARGET HTTP/1.1'", ""},
        {"GET http://h/s/socket.io/ HTTP/1.1\r\n\r\n", 400, "target 'http://h/s/socket.io/' is not a path", ""},
        {"G(T /s/socket.io/ HTTP/1.1\r\n\r\n", 400, "method 'G(T' is not a token", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "X-A: 1\nX-B: 2\r\n"), 400,
         "header 'X-A' has a control character", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "X-A: 1\r\n folded\r\n"), 400, "folded header line", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "X-A : 1\r\n"), 400, "is not 'Name: value'", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Key: " + kKey + "\r\n"), 400,
         "header Sec-WebSocket-Key given twice", ""},
        {request("/s/socket.io/?EIO=4&transport=websocket", "host: other\r\n"), 400, "header Host given twice", ""},
    };
    for (const Case &c : cases) {
        const HttpAnswer a = verdict(c.bytes);
        printf("%u: %s\n", a.status, a.reason.c_str());
        if (a.status != c.status || a.reason.find(c.reason_part) == std::string::npos ||
            a.body.find(c.body_part) == std::string::npos)
            fail_msg("%s\n-> %u '%s' body '%s'; expected %u '%s' body with '%s'", c.bytes.c_str(), a.status,
                     a.reason.c_str(), a.body.c_str(), c.status, c.reason_part, c.body_part);
    }
}

void test_accepted_fields(void **) {
    const std::string bytes = request("/lgbk_socketio/socket.io/?EIO=3&transport=websocket", "X-Other: y\r\n") + "ab";
    RequestHead h = parse_request_head(bytes);
    assert_true(h.state == RequestHead::State::complete);
    assert_int_equal(h.length, bytes.size() - 2);
    assert_true(h.request.path == "/lgbk_socketio/socket.io/");
    assert_true(h.request.query == "EIO=3&transport=websocket");
    assert_true(h.request.host == std::string_view("127.0.0.1:8080"));
    assert_true(h.request.key == std::string_view(kKey));
    assert_false(h.request.protocol.has_value());
    const HttpAnswer a = check_upgrade(h.request);
    assert_true(a.accepted());
    assert_true(a.version == EioVersion::v3);
}

void test_limits(void **) {
    // Incomplete heads wait for more, up to the limits.
    assert_true(parse_request_head("").state == RequestHead::State::incomplete);
    assert_true(parse_request_head("GET / HTTP/1.1\r\nHost: x\r\n").state == RequestHead::State::incomplete);
    assert_true(parse_request_head(std::string(kMaxRequestLine, 'a')).state == RequestHead::State::incomplete);
    assert_true(parse_request_head(std::string(kMaxRequestLine, 'a') + "\r").state == RequestHead::State::incomplete);
    // 414: the request line (CRLF excluded) is longer than kMaxRequestLine, finished or not.
    RequestHead h = parse_request_head(std::string(kMaxRequestLine + 1, 'a'));
    assert_true(h.state == RequestHead::State::refused);
    assert_int_equal(h.refusal.status, 414);
    const std::string longest_line = "GET /" + std::string(kMaxRequestLine - 14, 'a') + " HTTP/1.1";
    assert_int_equal(longest_line.size(), kMaxRequestLine);
    assert_true(parse_request_head(longest_line + "\r\n\r\n").state == RequestHead::State::complete);
    h = parse_request_head("GET /" + std::string(kMaxRequestLine - 13, 'a') + " HTTP/1.1\r\n\r\n");
    assert_int_equal(h.refusal.status, 414);
    // 431: the head, its final empty line included, is longer than kMaxRequestHead.
    const std::string start = "GET /socket.io/ HTTP/1.1\r\nX-Pad: ";
    const std::string pad(kMaxRequestHead - start.size() - 4, 'p');
    h = parse_request_head(start + pad + "\r\n\r\n");
    assert_true(h.state == RequestHead::State::complete);
    assert_int_equal(h.length, kMaxRequestHead);
    h = parse_request_head(start + pad + "p\r\n\r\n");
    assert_true(h.state == RequestHead::State::refused);
    assert_int_equal(h.refusal.status, 431);
    assert_string_equal(h.refusal.reason.c_str(), "request head longer than 4096 bytes");
    h = parse_request_head(start + std::string(7000, 'p'));  // not finished, already too long
    assert_int_equal(h.refusal.status, 431);
    assert_true(parse_request_head(start + pad).state == RequestHead::State::incomplete);
}

void test_key(void **) {
    assert_true(ws_key_ok(kKey));
    assert_true(ws_key_ok("AAAAAAAAAAAAAAAAAAAAAA=="));
    assert_true(ws_key_ok("+/+/+/+/+/+/+/+/+/+/+/=="));
    for (const char *bad : {"", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZQ==\n",
                            "dGhlIHNhbXBsZSBub25jZ-==", "dGhlIHNhbXBsZSBub25jZQAA", "AAAAAAAAAAAAAAAAAAAAAAAA",
                            " dGhlIHNhbXBsZSBub25jZQ=="})
        if (ws_key_ok(bad)) fail_msg("'%s' accepted", bad);
}

// RFC 6455 section 1.3's worked example: this key's accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
void test_accept_answer(void **) {
    assert_string_equal(ws_accept_value(kKey).c_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    const std::string bytes = request("/p/socket.io/?EIO=4&transport=websocket",
                                      "Cookie: a=b\r\nSec-WebSocket-Protocol: chat, psdm-socketio\r\n") +
                              "\x81\x85";
    RequestHead h = parse_request_head(bytes);
    assert_true(h.state == RequestHead::State::complete);
    assert_true(check_upgrade(h.request).accepted());
    assert_string_equal(
        ws_accept_answer_bytes(h.request).c_str(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: psdm-socketio\r\n\r\n");
    // Early data is not part of the head.
    assert_int_equal(h.length, bytes.size() - 2);
    // Without subprotocols, none is answered.
    const std::string plain_bytes = request("/p/socket.io/?EIO=4&transport=websocket", "");
    RequestHead plain = parse_request_head(plain_bytes);
    assert_null(strstr(ws_accept_answer_bytes(plain.request).c_str(), "Sec-WebSocket-Protocol"));
}

void test_answer_bytes(void **) {
    HttpAnswer a = verdict(
        request("/s/socket.io/?EIO=4&transport=websocket", "Sec-WebSocket-Version: 7\r\n", "Sec-WebSocket-Version"));
    assert_string_equal(http_answer_bytes(a).c_str(),
                        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        "Content-Type: text/plain\r\nContent-Length: 53\r\nConnection: Upgrade, close\r\n\r\n"
                        "Unsupported WebSocket version: this server speaks 13\n");
    a = verdict(request("/s/socket.io/?EIO=9&transport=websocket"));
    assert_string_equal(http_answer_bytes(a).c_str(),
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 51\r\n"
                        "Connection: close\r\n\r\n{\"code\":5,\"message\":\"unsupported protocol version\"}");
    a = http_refusal_at_capacity(5);
    assert_string_equal(a.reason.c_str(), "at capacity (5 connections)");
    assert_string_equal(http_answer_bytes(a).c_str(),
                        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 38\r\nConnection: close\r\n\r\nToo many connections, try again later\n");
    a = parse_request_head(std::string(5000, 'x')).refusal;
    assert_true(http_answer_bytes(a).compare(0, 27, "HTTP/1.1 414 URI Too Long\r\n") == 0);
}

// Client text in reasons is cut and made printable: log lines stay one line.
void test_reason_is_one_line(void **) {
    UpgradeRequest r;
    const std::string path = "/a\n\x1b[31m" + std::string(300, 'x');
    r.path = path;
    const HttpAnswer a = check_upgrade(r);
    assert_int_equal(a.status, 404);
    assert_true(a.reason.find('\n') == std::string::npos && a.reason.find('\x1b') == std::string::npos);
    assert_true(a.reason.find("'/a\\x0a\\x1b[31mxxx") != std::string::npos);
    assert_true(a.reason.size() < 200);
}

void test_socketio_path(void **) {
    for (const char *ok : {"/socket.io/", "/socket.io", "/lgbk_socketio/socket.io/", "/a/b/socket.io"})
        if (!socketio_path_ok(ok)) fail_msg("'%s' refused", ok);
    for (const char *bad : {"", "/", "/socket.io/x", "/socket.iox", "socket.i"})
        if (socketio_path_ok(bad)) fail_msg("'%s' accepted", bad);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_accepted_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_accept_answer),
        cmocka_unit_test(test_answer_bytes),
        cmocka_unit_test(test_reason_is_one_line),
        cmocka_unit_test(test_socketio_path),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
