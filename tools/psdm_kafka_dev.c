/*
 * psdm_kafka_dev: a Kafka-protocol broker for tests and for `make demo`.
 *
 * It is librdkafka's mock cluster (rdkafka_mock.h) kept running in a process of
 * its own, so that real Kafka clients (kcat, the worker's librdkafka consumer)
 * talk to it over TCP on loopback. It is not a Kafka server for production.
 *
 *   psdm_kafka_dev [--brokers N] [--partitions N] [--topic NAME]... [--bootstrap-file PATH]
 *
 * On start it prints one line, "bootstrap.servers=HOST:PORT[,HOST:PORT...]",
 * on stdout (and writes the bare address list to --bootstrap-file, atomically),
 * then runs until SIGTERM or SIGINT. Topics are created on demand by the first
 * produce or metadata request; --topic creates one up front.
 *
 * For failure tests: SIGUSR1 takes every broker down (connections are closed and
 * refused, the ports stay reserved), SIGUSR2 brings them back up, each logged.
 *
 * Known behaviour of the mock on librdkafka 2.0.2: an empty fetch waits the
 * consumer's whole fetch.wait.max.ms, a consumer-group join takes about 3 s,
 * and the first produce to a new topic can take about 1 s.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG "PSDM-KDEV"

/* Takes every broker of the cluster down or up; logs the outcome. */
static void set_brokers(rd_kafka_mock_cluster_t *mcluster, int brokers, int up) {
    for (int id = 1; id <= brokers; id++) {
        rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mcluster, id)
                                     : rd_kafka_mock_broker_set_down(mcluster, id);
        if (err) fprintf(stderr, "[" TAG "] broker %d: %s\n", id, rd_kafka_err2str(err));
    }
    fprintf(stderr, "[" TAG "] brokers %s\n", up ? "up" : "down");
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: psdm_kafka_dev [--brokers N] [--partitions N] [--topic NAME]... "
            "[--bootstrap-file PATH]\n"
            "  Runs librdkafka's mock Kafka cluster on loopback until SIGTERM/SIGINT and\n"
            "  prints 'bootstrap.servers=ADDR' once it listens.\n");
}

/* Parses a positive int in [1, max]. Returns 0 on success, -1 otherwise. */
static int parse_count(const char *s, int max, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 1 || v > max) return -1;
    *out = (int)v;
    return 0;
}

/* Writes `text` to `path` via a temporary file and rename(2), so a reader never
 * sees a partial address. Returns 0 or an errno value. */
static int write_file_atomically(const char *path, const char *text) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) return ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f) return errno;
    int rc = fprintf(f, "%s\n", text) < 0 ? EIO : 0;
    if (fclose(f) != 0 && rc == 0) rc = errno;
    if (rc == 0 && rename(tmp, path) != 0) rc = errno;
    if (rc != 0) unlink(tmp);
    return rc;
}

int main(int argc, char **argv) {
    int brokers = 1, partitions = 1;
    const char *bootstrap_file = NULL;
    const char *topics[64];
    int ntopics = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--brokers") && v) {
            if (parse_count(v, 16, &brokers)) {
                fprintf(stderr, "[" TAG "] --brokers: expected 1..16, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--partitions") && v) {
            if (parse_count(v, 1024, &partitions)) {
                fprintf(stderr, "[" TAG "] --partitions: expected 1..1024, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--topic") && v) {
            if (ntopics == (int)(sizeof topics / sizeof topics[0])) {
                fprintf(stderr, "[" TAG "] --topic: at most 64 topics\n");
                return 2;
            }
            topics[ntopics++] = v;
            i++;
        } else if (!strcmp(a, "--bootstrap-file") && v) {
            bootstrap_file = v;
            i++;
        } else {
            fprintf(stderr, "[" TAG "] unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }

    /* Signals are taken synchronously with sigwait(); block them before librdkafka
     * starts its threads so that they inherit the mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char errstr[512]; /* librdkafka API error reporting buffer */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char nparts[16];
    snprintf(nparts, sizeof nparts, "%d", partitions);
    /* The mock cluster needs a client instance to live in; it never produces. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "[" TAG "] config: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "[" TAG "] cannot create the client instance: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    conf = NULL; /* now owned, and freed, by rk */

    rd_kafka_mock_cluster_t *mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mcluster) {
        fprintf(stderr, "[" TAG "] cannot start the mock cluster (%d brokers)\n", brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, topics[i], partitions, 1);
        if (err) {
            fprintf(stderr, "[" TAG "] cannot create topic '%s': %s\n", topics[i], rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(mcluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (bootstrap_file) {
        int rc = write_file_atomically(bootstrap_file, bootstrap);
        if (rc) {
            fprintf(stderr, "[" TAG "] cannot write --bootstrap-file '%s': %s\n", bootstrap_file, strerror(rc));
            rd_kafka_mock_cluster_destroy(mcluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    printf("bootstrap.servers=%s\n", bootstrap);
    fflush(stdout);
    fprintf(stderr,
            "[" TAG "] mock Kafka cluster with %d broker(s) listening at %s (topics auto-created, %d partition(s))\n",
            brokers, bootstrap, partitions);

    /* The cluster runs on its own threads; this one only waits for signals. */
    for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0) break;
        if (sig == SIGUSR1) set_brokers(mcluster, brokers, 0);
        else if (sig == SIGUSR2) set_brokers(mcluster, brokers, 1);
        else break;
    }

    fprintf(stderr, "[" TAG "] stopping\n");
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);
    if (bootstrap_file) unlink(bootstrap_file);
    return 0;
}
