#include "psdm_stats.h"

#include "http_log.h"
#include "http_protocol.h"
#include "apr_shm.h"
#include "mod_status.h"

#include <stdatomic.h>
#include <string.h>

/* Counters in memory shared between processes must be lock-free: a lock-free atomic
 * works on the memory itself (address-free), whatever process maps it. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared between processes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free to be shared between processes");

/* The segment: totals since the Apache parent started, and one gauge. */
typedef struct {
    atomic_ullong handoffs;
    atomic_ullong relays;
    atomic_int relays_open;
    atomic_ullong relay_from_client;
    atomic_ullong relay_from_worker;
    atomic_ullong refused[PSDM_STATS_MAX_CODE + 1]; /* by PSDMnnnn code */
    atomic_uint next_worker;                        /* psdm_stats_next_worker's turn */
} psdm_stats_shm;

/* The codes that end an upgrade without a handoff (mod_psdm_socket.c), as ops read them. */
static const struct {
    unsigned code;
    const char *why;
} psdm_refusals[] = {
    {1, "not a WebSocket upgrade, or another WebSocket version (400, 426)"},
    {12, "an upgrade the worker would refuse: its path or Engine.IO query (400)"},
    {2, "no usable user identity (401, or 403 after an auth module)"},
    {3, "unusable group list (403)"},
    {4, "Origin not allowed (403)"},
    {5, "PsdmSocketWorker not set (503)"},
    {6, "client went away during the upgrade"},
    {11, "upgrade request and early data over the handoff limit (413, 431)"},
    {7, "request cannot be encoded for the worker (400)"},
    {8, "no worker available: none listening, backlogs full, or no answer to a relay (503)"},
};

#define PSDM_STATS_KEY "psdm_socket_stats"

/* This process's view of the segment; NULL until psdm_stats_init succeeds. */
static psdm_stats_shm *stats;

unsigned psdm_stats_next_worker(void) {
    static atomic_uint own; /* without the segment: this process's own turns */
    return atomic_fetch_add_explicit(stats ? &stats->next_worker : &own, 1u, memory_order_relaxed);
}

apr_status_t psdm_stats_init(server_rec *s) {
    apr_pool_t *pool = s->process->pool;
    apr_shm_t *shm = NULL;
    void *data = NULL;
    /* Created once per Apache parent: post_config runs again on every restart, with the
     * module reloaded (stats is NULL again) but the process pool kept. */
    apr_pool_userdata_get(&data, PSDM_STATS_KEY, pool);
    if (data) {
        stats = apr_shm_baseaddr_get(data);
        return APR_SUCCESS;
    }
    apr_status_t rv = apr_shm_create(&shm, sizeof *stats, NULL, pool); /* anonymous: inherited by fork */
    if (rv != APR_SUCCESS) {
        stats = NULL;
        return rv;
    }
    stats = apr_shm_baseaddr_get(shm);
    memset(stats, 0, sizeof *stats); /* no child exists yet */
    apr_pool_userdata_set(shm, PSDM_STATS_KEY, apr_pool_cleanup_null, pool);
    return APR_SUCCESS;
}

void psdm_stats_handoff(void) {
    if (stats) atomic_fetch_add_explicit(&stats->handoffs, 1, memory_order_relaxed);
}

void psdm_stats_refused(unsigned code) {
    if (stats && code <= PSDM_STATS_MAX_CODE) atomic_fetch_add_explicit(&stats->refused[code], 1, memory_order_relaxed);
}

void psdm_stats_relay_open(void) {
    if (!stats) return;
    atomic_fetch_add_explicit(&stats->relays, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats->relays_open, 1, memory_order_relaxed);
}

void psdm_stats_relay_closed(apr_off_t from_client, apr_off_t from_worker) {
    if (!stats) return;
    atomic_fetch_sub_explicit(&stats->relays_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats->relay_from_client, (unsigned long long)from_client, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats->relay_from_worker, (unsigned long long)from_worker, memory_order_relaxed);
}

/* A counter's value; printed with APR_UINT64_T_FMT (apr's formatter knows no %llu). */
static apr_uint64_t load(atomic_ullong *v) { return (apr_uint64_t)atomic_load_explicit(v, memory_order_relaxed); }

int psdm_stats_status(request_rec *r, int flags) {
    int auto_form = flags & AP_STATUS_SHORT;
    if (!stats) {
        if (!auto_form)
            ap_rputs("<hr />\n<h2>mod_psdm_socket</h2>\n<p>Counters unavailable (see PSDM0013 in the error log).</p>\n",
                     r);
        return OK;
    }
    apr_uint64_t refused = 0;
    for (size_t i = 0; i < sizeof psdm_refusals / sizeof psdm_refusals[0]; i++)
        refused += load(&stats->refused[psdm_refusals[i].code]);
    apr_uint64_t handoffs = load(&stats->handoffs), relays = load(&stats->relays);
    apr_uint64_t from_client = load(&stats->relay_from_client), from_worker = load(&stats->relay_from_worker);
    int open = atomic_load_explicit(&stats->relays_open, memory_order_relaxed);

    if (auto_form) {
        ap_rprintf(r, "PsdmSocketHandoffs: %" APR_UINT64_T_FMT "\n", handoffs);
        ap_rprintf(r, "PsdmSocketRelays: %" APR_UINT64_T_FMT "\n", relays);
        ap_rprintf(r, "PsdmSocketRelaysOpen: %d\n", open);
        ap_rprintf(r, "PsdmSocketRelayBytesFromClients: %" APR_UINT64_T_FMT "\n", from_client);
        ap_rprintf(r, "PsdmSocketRelayBytesFromWorker: %" APR_UINT64_T_FMT "\n", from_worker);
        ap_rprintf(r, "PsdmSocketRefused: %" APR_UINT64_T_FMT "\n", refused);
        for (size_t i = 0; i < sizeof psdm_refusals / sizeof psdm_refusals[0]; i++)
            ap_rprintf(r, "PsdmSocketRefusedPSDM%04u: %" APR_UINT64_T_FMT "\n", psdm_refusals[i].code,
                       load(&stats->refused[psdm_refusals[i].code]));
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_psdm_socket</h2>\n<dl>\n", r);
    ap_rprintf(r, "<dt>Handoffs (connections passed to the worker): %" APR_UINT64_T_FMT "</dt>\n", handoffs);
    ap_rprintf(r,
               "<dt>TLS relays: %" APR_UINT64_T_FMT " started, %d open; %" APR_UINT64_T_FMT
               " bytes from clients, %" APR_UINT64_T_FMT " bytes from the worker</dt>\n",
               relays, open, from_client, from_worker);
    ap_rprintf(r, "<dt>Refused: %" APR_UINT64_T_FMT "</dt>\n</dl>\n", refused);
    ap_rputs("<table>\n<tr><th>Code</th><th>Refused</th><th>Why</th></tr>\n", r);
    for (size_t i = 0; i < sizeof psdm_refusals / sizeof psdm_refusals[0]; i++)
        ap_rprintf(r, "<tr><td>PSDM%04u</td><td>%" APR_UINT64_T_FMT "</td><td>%s</td></tr>\n", psdm_refusals[i].code,
                   load(&stats->refused[psdm_refusals[i].code]), psdm_refusals[i].why);
    ap_rputs("</table>\n", r);
    return OK;
}
