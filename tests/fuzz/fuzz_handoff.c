/* libFuzzer target for the handoff codec (handoff/handoff_proto.h): the request the worker
 * receives from the module. Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz`
 * (README, "Fuzzing"); the receiving syscall layer around it is fuzz_handoff_io.
 *
 * Properties: the decoders are total (no crash, no read past the input); whatever decode
 * accepts passes validation, re-encodes to a message of the same length that decodes to
 * the same fields; header_total agrees with decode; the replayed upgrade request either
 * fits 2048 bytes or says no_space, exactly as psdm_handoff_upgrade_len (what the module
 * checks before offering a connection) predicts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "handoff/handoff_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    if (total >= 0 && (size_t)total > size) CHECK(rc == PSDM_HS_E_TRUNCATED);
    if (total < 0) CHECK(rc == total);

    if (rc == PSDM_HS_OK) {
        CHECK(total >= 0 && (size_t)total == size);
        CHECK(psdm_handoff_validate(&req, NULL) == PSDM_HS_OK);
        const int n = psdm_handoff_encode(&req, again, sizeof again, NULL);
        CHECK(n == (int)size);
        psdm_handoff_req back;
        CHECK(psdm_handoff_decode(again, (size_t)n, &back, NULL) == PSDM_HS_OK);
        CHECK(back.kind == req.kind && back.ngroups == req.ngroups);
        CHECK(same(back.user, req.user) && same(back.uri, req.uri) && same(back.ws_key, req.ws_key) &&
              same(back.ws_version, req.ws_version) && same(back.host, req.host) &&
              same(back.client_addr, req.client_addr) && same(back.origin, req.origin) &&
              same(back.ws_protocol, req.ws_protocol) && same(back.ws_extensions, req.ws_extensions) &&
              same(back.early_data, req.early_data));
        for (unsigned i = 0; i < req.ngroups; i++) CHECK(same(back.groups[i], req.groups[i]));

        const int u = psdm_handoff_build_upgrade(&req, replay, sizeof replay);
        CHECK(u == PSDM_HS_E_NO_SPACE || (u > 0 && (size_t)u <= sizeof replay));
        if (u > 0) CHECK(memcmp(replay, "GET /", 5) == 0);
        /* The module refuses (413/431) exactly what the worker could not replay. */
        const size_t predicted = psdm_handoff_upgrade_len(&req);
        CHECK(u == PSDM_HS_E_NO_SPACE ? predicted > sizeof replay : predicted == (size_t)u);
    } else {
        CHECK(rc < 0 && strcmp(psdm_handoff_strerror(rc), "unknown_error") != 0);
    }

    return 0;
}
