/*
 * bench_kafka_rtt: sequential SAL command round trip over Kafka (command
 * produce -> final ack consumed) against an ocps-csc process, next to a raw
 * librdkafka produce -> consume round trip on the same broker (the mock
 * cluster run as a process, tests/kafka), measured in the same run.
 *
 *   bench_kafka_rtt [N]     (default 300)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "bench_util.h"
#include "sal_fixture.h"
#include "test_util.h"

/* Produce one message and consume it. */
static void trip(rd_kafka_t *p, rd_kafka_t *c, double t0)
{
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC("ocps.bench.ping"), RD_KAFKA_V_VALUE("ping", 4),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_poll(p, 0);
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) {
            if (tu_now() - t0 > 10) {
                return;
            }
            continue;
        }
        bool data = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_message_destroy(m);
        if (data) {
            return;
        }
    }
}

/* Raw librdkafka: `trips` produce->consume trips per sample (1: one way;
 * 2: a ping-pong like a command and its ack), n samples; mean seconds. */
static double raw_rtt(fx *f, int n, int trips, double *med)
{
    const char *brokers = getenv("LSST_KAFKA_BROKER_ADDR");
    if (trips == 1 && fx_broker_command(f, "create ocps.bench.ping") != 0) {
        return -1;
    }
    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(pc, "linger.ms", "0", err, sizeof err);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(cc, "group.id", "bench-raw", err, sizeof err);
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "10", err, sizeof err);
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "ocps.bench.ping", 0)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    double *v = calloc((size_t)n, sizeof *v);
    double sum = 0;
    int got = 0;
    for (int i = -20; i < n; i++) {
        double t0 = tu_now();
        for (int k = 0; k < trips; k++) {
            trip(p, c, t0);
        }
        if (i >= 0) {
            v[i] = tu_now() - t0;
            sum += v[i];
            got++;
        }
    }
    bench_sort(v, n);
    *med = v[n / 2];
    free(v);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_flush(p, 1000);
    rd_kafka_destroy(p);
    return got ? sum / got : -1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 300;
    setenv("OCPS_TEST_TRANSPORT", "kafka", 1);
    fx_env(CYCLONE_CONFIG);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    fx_start_csc(&f, csc);
    double *rtt = calloc((size_t)n, sizeof *rtt);
    int failures = 0;
    if (bench_command_loop(&f, n, 20, rtt, &failures) != 0) {
        fx_close(&f);
        return 1;
    }
    double mean = bench_sort(rtt, n);
    double med = rtt[n / 2];
    double raw_med = 0;
    double raw = raw_rtt(&f, n, 1, &raw_med);
    double pp_med = 0;
    double pp = raw_rtt(&f, n, 2, &pp_med);
    fx_close(&f);
    free(rtt);
    printf("SAL command round trip over Kafka (mock broker), %d sequential commands (%d failed):\n", n,
           failures);
    printf("  mean %.2f ms, median %.2f ms\n", mean * 1e3, med * 1e3);
    if (raw > 0) {
        printf("raw librdkafka produce->consume round trip, same broker: mean %.2f ms, median %.2f ms\n",
               raw * 1e3, raw_med * 1e3);
        printf("ratio command/raw: mean %.2f, median %.2f\n", mean / raw, med / raw_med);
        printf("raw ping-pong (two trips, like command + ack): mean %.2f ms, median %.2f ms\n", pp * 1e3,
               pp_med * 1e3);
        printf("ratio command/ping-pong: mean %.2f, median %.2f\n", mean / pp, med / pp_med);
    }
    return 0;
}
