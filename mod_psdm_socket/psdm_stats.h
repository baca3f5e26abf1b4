/*
 * psdm_stats: the module's counters, shared by every Apache child (one anonymous
 * shared-memory segment created by the parent in post_config, inherited across fork,
 * lock-free atomic counters), shown on mod_status's page (/server-status, and as
 * "Key: value" lines in its ?auto form).
 *
 * The segment lives in the process pool: counters survive graceful and full restarts
 * (children of an old generation, still relaying, count into the same segment) and
 * start at 0 when the Apache parent starts. Counting is a few relaxed atomic adds; any
 * thread of any child may count. Without the segment (psdm_stats_init failed) counting
 * does nothing and the status page says the counters are unavailable.
 */
#ifndef PSDM_STATS_H
#define PSDM_STATS_H

#include "httpd.h"

/* Log codes (PSDMnnnn) are at most this number; the table of refusal codes is in psdm_stats.c. */
#define PSDM_STATS_MAX_CODE 17

/*
 * Attaches to the counters' segment, creating it (zeroed) in s->process->pool the first
 * time; call from post_config, in the parent, before children are forked.
 * Returns APR_SUCCESS, or the error of apr_shm_create (counting is then a no-op).
 */
apr_status_t psdm_stats_init(server_rec *s);

/* One connection handed over to the worker (a file descriptor passed). */
void psdm_stats_handoff(void);

/* One request ended without a handoff, logged with PSDM<code> (a refusal in the table
 * of psdm_stats.c); other codes are not counted. */
void psdm_stats_refused(unsigned code);

/* A TLS relay opened; and the same relay closed, with the bytes it carried each way. */
void psdm_stats_relay_open(void);
void psdm_stats_relay_closed(apr_off_t from_client, apr_off_t from_worker);

/* Whose turn it is: 0, 1, 2... across every child (round-robin over the workers). */
unsigned psdm_stats_next_worker(void);

/* mod_status's status_hook: the counters as HTML, or as "PsdmSocket...: N" lines when
 * flags has AP_STATUS_SHORT (?auto). Returns OK. */
int psdm_stats_status(request_rec *r, int flags);

#endif /* PSDM_STATS_H */
