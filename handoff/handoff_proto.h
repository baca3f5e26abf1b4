/*
 * handoff_proto: the wire contract between mod_psdm_socket (Apache) and psdm_socketd,
 * as a pure codec. THIS COMMENT IS THE SPEC; change it, the code and the tests together.
 *
 * Pure C11: no httpd, APR or lws types, no syscalls, no allocation, no logging. Compiled
 * into the module (C) and the worker (C++). Every function is thread-safe (no state).
 *
 * ---------------------------------------------------------------------------------------
 * Conversation (on a connection to the worker's Unix stream socket)
 *
 *   module -> worker   REQUESTs, one after another, each in one sendmsg. kind 1
 *                      (handoff): the client's TCP socket travels as SCM_RIGHTS with the
 *                      request's FIRST byte, in the same sendmsg; any number of them per
 *                      connection (each Apache child keeps one connection per worker).
 *                      kind 2 (relay, used for TLS): no fd, and the last request of its
 *                      connection (which then carries the relay, below).
 *   worker -> module   nothing. The worker answers the CLIENT, in HTTP: libwebsockets'
 *                      "101 Switching Protocols", or the worker's refusal
 *                      (psdm_handoff_build_refusal: 503 with Retry-After). A refused
 *                      request does not end the connection; a request the worker cannot
 *                      frame (bad header, missing fd) does: nothing after it can be trusted.
 *
 * Ownership of the client connection (kind 1): the module sends without waiting
 * (non-blocking connect and sendmsg).
 *   - The whole request was sent: the connection is the worker's. The module forgets it
 *     (no response, no lingering close) and never learns what the worker did with it.
 *   - Not all of it (connect refused, the backlog or the socket buffer full: EAGAIN; a
 *     partial send): the connection stays the module's, which closes that Unix
 *     connection and offers the client to the next worker or answers 503 itself. A worker
 *     that reads a request cut short by EOF closes its copy of the client socket untouched.
 *   - A worker that stops accepting (socket activation: the next worker takes the socket's
 *     backlog) shuts down the reading side of the connections it has; the module's next
 *     sendmsg on one fails with EPIPE, nothing of it sent, and it connects again. Requests
 *     already queued are still read and answered.
 * So exactly one side ever writes to the client, and the module never waits for the
 * worker: a stopped or overloaded worker costs Apache a connect() and a sendmsg() per
 * upgrade, and the socket buffers and the listen backlog bound how much waits for it in
 * the kernel. A connection that has sent nothing for a while is not closed: it is
 * Apache's (the peer check passed), and each child keeps one per worker.
 *
 * Relay (kind 2): the client connection stays Apache's (mod_ssl holds the TLS session).
 * After the request, the Unix connection carries the client's raw bytes in both
 * directions (module <-> TLS client) until either side closes. The worker's first bytes
 * are its HTTP answer (101 or the refusal); the module waits for them at most
 * PsdmSocketTimeout, then closes the Unix connection and answers 503 itself.
 *
 * A connection from a peer whose uid is not allowed (SO_PEERCRED) is closed at once:
 * nothing is read from it and nothing is written anywhere.
 *
 * The worker replays the request to libwebsockets as a minimal HTTP/1.1 upgrade
 * (psdm_handoff_build_upgrade below), so lws, not Apache, sends "101 Switching Protocols"
 * and computes Sec-WebSocket-Accept. Apache must not have answered anything.
 *
 * Version 1 (until 0.1) had the worker answer the module (8 bytes, "PSDA") and the module
 * commit with one byte before the connection changed hands: the module waited for the
 * worker, so a hung worker held one Apache thread per upgrade for the whole timeout.
 *
 * ---------------------------------------------------------------------------------------
 * REQUEST, all integers big-endian (network byte order)
 *
 *   offset size  field
 *   0      4     magic       "PSDM" (0x50 0x53 0x44 0x4d)
 *   4      1     version     1
 *   5      1     kind        1 = handoff (fd attached), 2 = relay (no fd)
 *   6      2     flags       0 (any other value: bad_flags)
 *   8      4     body_len    bytes after this 14-byte header, 0..PSDM_HS_MAX_BODY (32768);
 *                            larger: too_long, detected from the header alone, before
 *                            the body is read or any buffer is sized
 *   12     2     count       number of fields in the body; count * 3 > body_len: bad_length
 *   14     ...   body        exactly `count` fields, filling body_len exactly:
 *                  tag u8 | len u16 | len bytes
 *
 *   tag name           presence          length      content (bytes)
 *   1   user           required, once    1..256      no control chars (0x00-0x1f, 0x7f)
 *   2   group          0..64 times       1..256      no control chars; order kept
 *   3   client_addr    optional, once    1..64       no control chars, no space
 *                                                    ("203.0.113.5:51234", "[2001:db8::1]:443")
 *   4   host           optional, once    1..256      no control chars, no space (Host header)
 *   5   uri            required, once    1..2048     starts with '/', no control chars, no
 *                                                    space (path and query as received)
 *   6   ws_key         required, once    24          22 of [A-Za-z0-9+/] then "=="
 *                                                    (Sec-WebSocket-Key, RFC 6455 4.1)
 *   7   ws_version     required, once    2           exactly "13"
 *   8   origin         optional, once    1..512      no control chars
 *   9   ws_protocol    optional, once    1..256      no control chars (Sec-WebSocket-Protocol)
 *   10  ws_extensions  optional, once    1..512      no control chars (carried for the log;
 *                                                    NOT replayed: no extension is negotiated)
 *   11  early_data     optional, once    1..2048     any bytes: what Apache read past the
 *                                                    request (the client's first frames);
 *                                                    see REPLAY LIMIT below
 *
 *   - Fields may come in any order; the encoder writes them in tag order, groups in the
 *     caller's order. A zero-length field is bad_field (absent fields are omitted).
 *   - Unknown tag: unknown_field (error, not skipped). Module and worker ship together;
 *     a new tag comes with a version bump, and a mismatch shows up as a clear refusal
 *     instead of a silently dropped (possibly security-relevant) field.
 *   - A non-repeatable tag twice: duplicate_field. A 65th group: too_many_groups.
 *   - A field whose header or bytes run past body_len, or bytes left in the body after
 *     `count` fields: bad_length.
 *   - "No control chars" is what keeps field values from injecting header lines into
 *     the replayed HTTP request; bytes >= 0x80 (UTF-8) pass unchecked.
 *   - Worst case, every field at its maximum, is 22584 body bytes: every request that
 *     passes validation fits PSDM_HS_MAX_BODY, so encoding never fails for size.
 *
 * REPLAY LIMIT: the worker hands lws the upgrade request it rebuilds from the fields
 * (psdm_handoff_build_upgrade) followed by the early data, in one buffer that lws
 * takes only up to PSDM_HS_REPLAY_MAX (2048) bytes (lws_adopt_socket_vhost_readbuf).
 * That one constant bounds both sides: the worker refuses (REFUSAL below) a request
 * whose replay would not fit, and the module, which computes the same length
 * (psdm_handoff_upgrade_len), never offers one: it answers the client itself (413 for
 * too much early data, 431 for an upgrade request too large to replay). Early data
 * alone is therefore limited to PSDM_HS_REPLAY_MAX as a field.
 *
 * REFUSAL: the worker's answer to a client it will not serve (over capacity, shutting
 * down, a request it cannot use), written on the client connection (kind 1) or into the
 * relay (kind 2), then the connection is closed:
 *
 *   HTTP/1.1 503 Service Unavailable\r\n
 *   Retry-After: 5\r\n
 *   Content-Type: text/plain\r\n
 *   Content-Length: <n>\r\n
 *   Connection: close\r\n
 *   \r\n
 *   live updates are unavailable, try again later\n
 * ---------------------------------------------------------------------------------------
 */
#ifndef PSDM_HANDOFF_PROTO_H
#define PSDM_HANDOFF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PSDM_HS_VERSION = 2,
    PSDM_HS_HEADER_LEN = 14,                                 /* request header */
    PSDM_HS_MAX_BODY = 32768,                                /* request body_len limit */
    PSDM_HS_MAX_MSG = PSDM_HS_HEADER_LEN + PSDM_HS_MAX_BODY, /* receive buffer that always fits */
    PSDM_HS_FIELD_HEADER_LEN = 3,
    PSDM_HS_MAX_GROUPS = 64,
    PSDM_HS_MAX_USER = 256, /* also each group */
    PSDM_HS_MAX_CLIENT_ADDR = 64,
    PSDM_HS_MAX_HOST = 256,
    PSDM_HS_MAX_URI = 2048,
    PSDM_HS_WS_KEY_LEN = 24,
    PSDM_HS_MAX_ORIGIN = 512,
    PSDM_HS_MAX_WS_PROTOCOL = 256,
    PSDM_HS_MAX_WS_EXTENSIONS = 512,
    /* The replayed upgrade request plus early data (REPLAY LIMIT above): lws's
     * lws_adopt_socket_vhost_readbuf limit, the cap for build_upgrade on both sides. */
    PSDM_HS_REPLAY_MAX = 2048,
    PSDM_HS_MAX_EARLY_DATA = PSDM_HS_REPLAY_MAX /* never more than the replay holds */
};

/* Request kinds (header byte 5). */
enum { PSDM_HS_KIND_HANDOFF = 1, PSDM_HS_KIND_RELAY = 2 };

/* Field tags. */
enum {
    PSDM_HS_TAG_USER = 1,
    PSDM_HS_TAG_GROUP = 2,
    PSDM_HS_TAG_CLIENT_ADDR = 3,
    PSDM_HS_TAG_HOST = 4,
    PSDM_HS_TAG_URI = 5,
    PSDM_HS_TAG_WS_KEY = 6,
    PSDM_HS_TAG_WS_VERSION = 7,
    PSDM_HS_TAG_ORIGIN = 8,
    PSDM_HS_TAG_WS_PROTOCOL = 9,
    PSDM_HS_TAG_WS_EXTENSIONS = 10,
    PSDM_HS_TAG_EARLY_DATA = 11
};

/*
 * Status codes: 0 or one of these (negative). handoff_io also returns positive errno
 * values; these never collide with them. psdm_handoff_strerror names each one.
 */
typedef enum {
    PSDM_HS_OK = 0,
    PSDM_HS_E_TRUNCATED = -1, /* fewer bytes than the header or body_len announce */
    PSDM_HS_E_BAD_MAGIC = -2,
    PSDM_HS_E_BAD_VERSION = -3,
    PSDM_HS_E_BAD_KIND = -4,
    PSDM_HS_E_BAD_FLAGS = -5,  /* request flags not 0 */
    PSDM_HS_E_TOO_LONG = -6,   /* body_len > PSDM_HS_MAX_BODY, or > the receiver's buffer */
    PSDM_HS_E_BAD_LENGTH = -7, /* lengths do not add up: field past body, trailing bytes */
    PSDM_HS_E_BAD_FIELD = -8,  /* a field breaks its rule (length or content) */
    PSDM_HS_E_UNKNOWN_FIELD = -9,
    PSDM_HS_E_MISSING_FIELD = -10,
    PSDM_HS_E_DUPLICATE_FIELD = -11,
    PSDM_HS_E_TOO_MANY_GROUPS = -12,
    PSDM_HS_E_NO_SPACE = -13,    /* output does not fit the caller's buffer */
    PSDM_HS_E_INVALID_ARG = -14, /* NULL where not allowed; io: message not a valid request */
    /* -15 was bad_status (the answer of version 1) */
    /* handoff_io only */
    PSDM_HS_E_CLOSED = -16, /* peer closed before sending a byte */
    PSDM_HS_E_NO_FD = -17,  /* handoff request without its fd (or fd < 0 given to send) */
    /* fd where none is expected, more than one, not with the first bytes, or SCM_RIGHTS
     * truncated (MSG_CTRUNC) */
    PSDM_HS_E_BAD_FD = -18
} psdm_hs_err;

/* A view of `len` bytes; ptr may be NULL when len is 0. len 0 = field absent. */
typedef struct {
    const char *ptr;
    uint16_t len;
} psdm_hs_str;

/*
 * One request. For encode the caller fills it (zero-initialize, then set what exists);
 * after decode every view points into the decoded buffer, which must outlive it.
 */
typedef struct {
    uint8_t kind; /* PSDM_HS_KIND_* */
    psdm_hs_str user, client_addr, host, uri, ws_key, ws_version, origin, ws_protocol, ws_extensions, early_data;
    psdm_hs_str groups[PSDM_HS_MAX_GROUPS];
    unsigned ngroups;
} psdm_handoff_req;

/**
 * @brief Checks a request against the field rules of the spec (what encode and decode
 *        both enforce).
 * @param bad_tag may be NULL; else set to the offending tag for bad_field,
 *        missing_field, too_many_groups (2), and to 0 otherwise.
 * @returns 0, or bad_kind, bad_field, missing_field, too_many_groups, invalid_arg.
 */
int psdm_handoff_validate(const psdm_handoff_req *req, uint8_t *bad_tag);

/**
 * @brief Validates and encodes req into buf[0..cap). cap >= PSDM_HS_MAX_MSG always fits.
 * @param bad_tag may be NULL; as for psdm_handoff_validate.
 * @returns bytes written (> 0), or a negative psdm_hs_err (validation errors, no_space).
 */
int psdm_handoff_encode(const psdm_handoff_req *req, unsigned char *buf, size_t cap, uint8_t *bad_tag);

/**
 * @brief Validates a request header (magic, version, kind, flags, body_len, count)
 *        from the first len bytes of buf. Reads only the header.
 * @returns the total message length (header + body, <= PSDM_HS_MAX_MSG), or truncated
 *          when len < PSDM_HS_HEADER_LEN, or another negative psdm_hs_err.
 */
int psdm_handoff_header_total(const unsigned char *buf, size_t len);

/**
 * @brief Decodes exactly one complete request: len must equal its total length.
 *        Total over arbitrary bytes; out's views point into buf.
 * @param bad_tag may be NULL; else set to the offending tag for bad_field,
 *        unknown_field (the unknown value), duplicate_field, missing_field,
 *        too_many_groups and bad_length (when a field ran past the body), 0 otherwise.
 * @returns 0, or a negative psdm_hs_err: truncated (len shorter than announced),
 *          bad_length (len longer: trailing bytes), header and field errors. On error
 *          *out is unspecified.
 */
int psdm_handoff_decode(const unsigned char *buf, size_t len, psdm_handoff_req *out, uint8_t *bad_tag);

/** @brief Stable snake_case name of a psdm_hs_err ("bad_field"); "unknown_error" else. */
const char *psdm_handoff_strerror(int err);

/** @brief Stable name of a field tag ("origin"); "unknown" for others. */
const char *psdm_handoff_tag_name(unsigned tag);

/**
 * @brief Builds the worker's REFUSAL (the 503 response of the spec) into buf[0..cap).
 *        Not NUL-terminated.
 * @returns its length, or no_space if cap is too small (256 bytes always fit).
 */
int psdm_handoff_build_refusal(char *buf, size_t cap);

/**
 * @brief Builds the HTTP/1.1 upgrade request the worker replays into lws, followed by
 *        the early data. Not NUL-terminated. Exactly:
 *
 *          GET <uri> HTTP/1.1\r\n
 *          Host: <host>\r\n                         (only if host is set)
 *          Upgrade: websocket\r\n
 *          Connection: Upgrade\r\n
 *          Sec-WebSocket-Key: <ws_key>\r\n
 *          Sec-WebSocket-Version: <ws_version>\r\n
 *          Origin: <origin>\r\n                     (only if origin is set)
 *          Sec-WebSocket-Protocol: <ws_protocol>\r\n (only if ws_protocol is set)
 *          \r\n
 *          <early_data>
 *
 *        req is validated first (so no field can inject a header line).
 * @param cap the worker passes PSDM_HS_REPLAY_MAX (lws's readbuf limit).
 * @returns the length written, or no_space when it would exceed cap (buf contents
 *          then unspecified), or a validation error.
 */
int psdm_handoff_build_upgrade(const psdm_handoff_req *req, char *buf, size_t cap);

/**
 * @brief The length psdm_handoff_build_upgrade would produce for req without a cap,
 *        computed from the field lengths alone (no validation, nothing written): the
 *        module compares it with PSDM_HS_REPLAY_MAX before offering a connection, so
 *        that it refuses exactly what the worker would. 0 for NULL.
 */
size_t psdm_handoff_upgrade_len(const psdm_handoff_req *req);

#ifdef __cplusplus
}
#endif

#endif /* PSDM_HANDOFF_PROTO_H */
