/* libFuzzer target for the handoff codec (worker/handoff_proto). Not part of the CMake
 * build; build and run by hand:
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *       tests/fuzz/fuzz_handoff.c handoff/handoff_proto.c -o /tmp/fuzz_handoff
 *   /tmp/fuzz_handoff -max_len=40000
 *
 * Properties: the decoders are total (no crash, no read past the input); whatever decode
 * accepts passes validation, re-encodes to a message of the same length that decodes to
 * the same fields; header_total agrees with decode; the replayed upgrade request either
 * fits 2048 bytes or says no_space; answer_decode accepts only what answer_encode makes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handoff/handoff_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

static int same(psdm_hs_str a, psdm_hs_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned char again[PSDM_HS_MAX_MSG];
    static char replay[PSDM_HS_REPLAY_MAX];

    const int total = psdm_handoff_header_total(data, size);
    psdm_handoff_req req;
    uint8_t tag;
    const int rc = psdm_handoff_decode(data, size, &req, &tag);
    if (total >= 0 && (size_t)total > size) check(rc == PSDM_HS_E_TRUNCATED);
    if (total < 0) check(rc == total);

    if (rc == PSDM_HS_OK) {
        check(total >= 0 && (size_t)total == size);
        check(psdm_handoff_validate(&req, NULL) == PSDM_HS_OK);
        const int n = psdm_handoff_encode(&req, again, sizeof again, NULL);
        check(n == (int)size);
        psdm_handoff_req back;
        check(psdm_handoff_decode(again, (size_t)n, &back, NULL) == PSDM_HS_OK);
        check(back.kind == req.kind && back.ngroups == req.ngroups);
        check(same(back.user, req.user) && same(back.uri, req.uri) && same(back.ws_key, req.ws_key) &&
              same(back.ws_version, req.ws_version) && same(back.host, req.host) &&
              same(back.client_addr, req.client_addr) && same(back.origin, req.origin) &&
              same(back.ws_protocol, req.ws_protocol) && same(back.ws_extensions, req.ws_extensions) &&
              same(back.early_data, req.early_data));
        for (unsigned i = 0; i < req.ngroups; i++) check(same(back.groups[i], req.groups[i]));

        const int u = psdm_handoff_build_upgrade(&req, replay, sizeof replay);
        check(u == PSDM_HS_E_NO_SPACE || (u > 0 && (size_t)u <= sizeof replay));
        if (u > 0) check(memcmp(replay, "GET /", 5) == 0);
    } else {
        check(rc < 0 && strcmp(psdm_handoff_strerror(rc), "unknown_error") != 0);
    }

    if (size >= PSDM_HS_ANSWER_LEN) {
        uint8_t status;
        if (psdm_handoff_answer_decode(data, &status) == PSDM_HS_OK) {
            unsigned char a[PSDM_HS_ANSWER_LEN];
            psdm_handoff_answer_encode(status, a);
            check(memcmp(a, data, sizeof a) == 0);
        }
    }
    return 0;
}
