/*
 * bench_kafka — the engine on a real Kafka broker with exactly-once on,
 * against raw librdkafka production of the same records to the same
 * broker in the same run.
 *
 *   bench_kafka [COMMANDS] [ACCOUNTS]     defaults: 100000 10000
 *
 * The broker must be up (scripts/kafka-start.sh). With
 * STELE_BENCH_REGISTRY_URL set (e.g. http://127.0.0.1:8081/apis/ccompat/v7,
 * scripts/registry-start.sh) the host and the encoder use that REST
 * registry (registry.backend: rest) instead of the embedded one, and the
 * HTTP requests they send are counted: at start, and on the command path
 * (from the first command produced to the last reply), which should send
 * none once the ids are cached. Prints:
 *   raw produce   the events the run writes, produced with a plain
 *                 idempotent librdkafka producer (no transactions)
 *   end-to-end    commands produced to the commands topic while one
 *                 in-process host decides them in transactions (events,
 *                 state, result, reply and offsets per batch); the clock
 *                 stops when the last reply is read
 *   latency       p50/p99 from producing a command to reading its reply,
 *                 at half the end-to-end rate
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/map.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"

#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define PARTITIONS 6

static char app[32], dir[128];
static const char *registry_url; /* STELE_BENCH_REGISTRY_URL */
static volatile sig_atomic_t stop_host;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kafka: %s: %s\n", what, why ? why : "");
    exit(1);
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:9092", NULL, 0);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
        rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    } else {
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        /* Replies are transactional: the broker's long poll is not woken
         * when a transaction's markers move the stable offset, so a short
         * fetch wait is what bounds the latency seen here. */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", NULL, 0);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk)
        die("rd_kafka_new", errstr);
    return rk;
}

static void produce(rd_kafka_t *p, const char *topic, int32_t partition,
                    const char *key, const void *value, size_t len,
                    rd_kafka_headers_t *h)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(h ? rd_kafka_headers_copy(h) : NULL),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p, 10);
            continue;
        }
        if (e)
            die("produce", rd_kafka_err2str(e));
        return;
    }
}

/* Deletes the run's topics: left behind, every later start of the broker
 * recovers their partitions (docs/kafka-broker.md). */
static void delete_topics(rd_kafka_t *p)
{
    const char *suffixes[] = {
        "raw",           "replies",        "Account.commands", "Account.events",
        "Account.state", "Account.results"};
    enum { N = sizeof suffixes / sizeof suffixes[0] };
    char names[N][96];
    rd_kafka_DeleteTopic_t *del[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "%s.%s", app, suffixes[i]);
        del[i] = rd_kafka_DeleteTopic_new(names[i]);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_DeleteTopics(p, del, N, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev || rd_kafka_event_error(ev))
        fprintf(stderr, "bench_kafka: the topics %s.* were not deleted: %s\n",
                app, ev ? rd_kafka_event_error_string(ev) : "no answer");
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy_array(del, N);
    rd_kafka_queue_destroy(q);
}

/* The baseline: records shaped like the events the engine writes (key,
 * ~20-byte value, 8 headers), to a topic of the same partition count. */
static double raw_produce(stele_engine *e, long n)
{
    (void)e;
    char topic[64];
    snprintf(topic, sizeof topic, "%s.raw", app);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    const char *names[] = {"event_id",       "event_type", "aggregate_type",
                           "aggregate_id",   "version",    "causation_id",
                           "correlation_id", "user"};
    for (int i = 0; i < 8; i++)
        rd_kafka_header_add(h, names[i], -1, "01M8CF6W21YRVCF106SFS1260Y", 26);
    char value[20] = {0};
    /* let the first produce create nothing: the topic is made by admin */
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(p, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, PARTITIONS, 1, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_CreateTopics(p, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    sleep(1);
    int64_t t0 = stele_mono_ns();
    for (long i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "acc-%ld", i % 10000);
        produce(p, topic, stele_partition_for_key(key, strlen(key), PARTITIONS),
                key, value, sizeof value, h);
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 60000);
    int64_t t1 = stele_mono_ns();
    rd_kafka_headers_destroy(h);
    rd_kafka_destroy(p);
    return (double)n / secs(t1 - t0);
}

static void *host_thread(void *arg)
{
    stele_engine *e = arg;
    stele_err err = {0};
    if (stele_engine_run(e, &stop_host, &err) != 0)
        fprintf(stderr, "bench_kafka: host: %s\n", err.msg);
    return NULL;
}

/* Encoded commands: OpenAccount for each account, then deposits. */
typedef struct commands {
    stele_buf *values;
    char (*keys)[32];
    char (*ids)[32];
    long n;
} commands;

static void encode_commands(const stele_config *cfg, commands *c, long n,
                            long accounts, const char *prefix)
{
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_err err = {0};
    const char *k[] = {"bootstrap.servers"}, *v[] = {"127.0.0.1:9092"};
    char id[64];
    snprintf(id, sizeof id, "%s.encoder", app);
    stele_registry_rest_opts ro = {.url = registry_url};
    if (stele_log_open_kafka(k, v, 1, id, &log, &err) ||
        (registry_url ? stele_registry_open_rest(&ro, &reg, &err)
                      : stele_registry_open_embedded(log, &reg, &err)) ||
        stele_codec_new(cfg->schemas_dir, reg, &codec, &err))
        die("codec", err.msg);
    const stele_schema *open_s, *dep_s;
    stele_codec_schema(codec, "bank.OpenAccount", 1, &open_s, &err);
    stele_codec_schema(codec, "bank.Deposit", 1, &dep_s, &err);
    avro_value_t ov, dv, f;
    stele_codec_value_new(open_s, &ov, &err);
    stele_codec_value_new(dep_s, &dv, &err);
    c->values = calloc((size_t)n, sizeof *c->values);
    c->keys = calloc((size_t)n, sizeof *c->keys);
    c->ids = calloc((size_t)n, sizeof *c->ids);
    c->n = n;
    for (long i = 0; i < n; i++) {
        snprintf(c->keys[i], sizeof c->keys[i], "acc-%ld", i % accounts);
        snprintf(c->ids[i], sizeof c->ids[i], "%s-%ld", prefix, i);
        if (i < accounts) {
            avro_value_get_by_name(&ov, "owner", &f, NULL);
            avro_value_set_string(&f, c->keys[i]);
            stele_codec_encode(codec, open_s, &ov, &c->values[i], &err);
        } else {
            avro_value_get_by_name(&dv, "amount", &f, NULL);
            avro_value_set_long(&f, 1);
            stele_codec_encode(codec, dep_s, &dv, &c->values[i], &err);
        }
    }
    avro_value_decref(&ov);
    avro_value_decref(&dv);
    stele_codec_free(codec);
    stele_registry_close(reg);
    stele_log_close(log);
}

static void produce_command(rd_kafka_t *p, const commands *c, long i)
{
    char topic[64];
    snprintf(topic, sizeof topic, "%s.Account.commands", app);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "command_id", -1, c->ids[i], -1);
    produce(p, topic,
            stele_partition_for_key(c->keys[i], strlen(c->keys[i]), PARTITIONS),
            c->keys[i], c->values[i].data, c->values[i].len, h);
    rd_kafka_headers_destroy(h);
}

/* A consumer of every replies partition, from their current ends. */
static rd_kafka_t *replies_tail(void)
{
    char topic[64], group[64];
    snprintf(topic, sizeof topic, "%s.replies", app);
    snprintf(group, sizeof group, "%s.bench-tail", app);
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, group);
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
            RD_KAFKA_OFFSET_END;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    /* make sure the END positions are fixed before anything is sent */
    for (int i = 0; i < 20; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    return c;
}

static int cmp_ns(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long accounts = argc > 2 ? atol(argv[2]) : 10000;
    registry_url = getenv("STELE_BENCH_REGISTRY_URL");
    if (registry_url && !*registry_url)
        registry_url = NULL;
    uint32_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        die("getrandom", NULL);
    snprintf(app, sizeof app, "bench%08x", r);
    snprintf(dir, sizeof dir, "/tmp/stele-bench-kafka-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/stele.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "app: %s\ndata_dir: %s/data\nschemas: %s/schemas\n"
            "plugins:\n  - %sbank_account.so\n"
            "log:\n  backend: kafka\n  partitions: %d\n"
            "  kafka:\n    bootstrap.servers: 127.0.0.1:9092\n"
            "    linger.ms: 5\n    fetch.wait.max.ms: 5\n"
            "engine:\n  command_batch: 5000\n  commit_interval_ms: 50\n"
            "logging:\n  level: warn\n",
            app, dir, STELE_SOURCE_DIR, PLUGINS, PARTITIONS);
    if (registry_url)
        fprintf(f, "registry:\n  backend: rest\n  url: %s\n", registry_url);
    fclose(f);
    stele_config *cfg;
    stele_engine *e;
    stele_err err = {0};
    if (stele_config_load(path, &cfg, &err) || stele_engine_open(cfg, &e, &err))
        die("engine", err.msg);
    uint64_t req_start = stele_registry_rest_requests();

    double raw = raw_produce(e, n);

    commands c;
    uint64_t req_enc0 = stele_registry_rest_requests();
    encode_commands(cfg, &c, n, accounts, "c");
    uint64_t req_enc = stele_registry_rest_requests() - req_enc0;
    rd_kafka_t *tail = replies_tail();
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
    pthread_t host;
    uint64_t req_run0 = stele_registry_rest_requests();
    pthread_create(&host, NULL, host_thread, e);
    int64_t t0 = stele_mono_ns();
    for (long i = 0; i < n; i++) {
        produce_command(p, &c, i);
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 60000);
    int64_t t_sent = stele_mono_ns();
    long replies = 0;
    int64_t last = t0;
    while (replies < n && secs(stele_mono_ns() - last) < 30) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(tail, 200);
        if (!m)
            continue;
        if (!m->err) {
            replies++;
            last = stele_mono_ns();
        }
        rd_kafka_message_destroy(m);
    }
    int64_t t1 = stele_mono_ns();
    double e2e = (double)replies / secs(t1 - t0);
    uint64_t req_run = stele_registry_rest_requests() - req_run0;

    /* Latency at half that rate. */
    long m_n = n / 5 > 20000 ? 20000 : n / 5;
    commands lc;
    encode_commands(cfg, &lc, m_n, accounts, "l");
    /* the accounts exist: send deposits only */
    for (long i = 0; i < m_n && i < accounts; i++)
        lc.values[i] = c.values[accounts < n ? accounts : 0];
    int64_t *sent = calloc((size_t)m_n, sizeof *sent);
    int64_t *lat = calloc((size_t)m_n, sizeof *lat);
    stele_map *index = stele_map_new();
    for (long i = 0; i < m_n; i++)
        stele_map_put(index, lc.ids[i], strlen(lc.ids[i]), (void *)(i + 1),
                      NULL);
    double rate = e2e / 2;
    long got = 0;
    int64_t lt0 = stele_mono_ns();
    long next = 0;
    int64_t quiet = stele_mono_ns();
    while (got < m_n && secs(stele_mono_ns() - quiet) < 30) {
        int64_t now = stele_mono_ns();
        while (next < m_n && secs(now - lt0) * rate >= (double)next) {
            sent[next] = stele_mono_ns();
            produce_command(p, &lc, next);
            next++;
        }
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(tail, 1);
        if (!m)
            continue;
        if (!m->err && m->key) {
            intptr_t i = (intptr_t)stele_map_get(index, m->key, m->key_len);
            if (i > 0 && lat[i - 1] == 0) {
                lat[i - 1] = stele_mono_ns() - sent[i - 1];
                got++;
                quiet = stele_mono_ns();
            }
        }
        rd_kafka_message_destroy(m);
    }
    qsort(lat, (size_t)m_n, sizeof *lat, cmp_ns);
    long missing = m_n - got;
    int64_t p50 = lat[missing + got / 2], p99 = lat[missing + (got * 99) / 100];

    stop_host = 1;
    pthread_join(host, NULL);
    stele_engine_stats st;
    stele_engine_stats_get(e, &st);
    printf("bank example on Kafka (broker on this machine), %d partitions, "
           "exactly-once, %ld commands, %ld accounts\n",
           PARTITIONS, n, accounts);
    printf("%-14s %9ld recs  %21.0f recs/s  (idempotent producer, no "
           "transactions)\n",
           "raw produce", n, raw);
    printf("%-14s %9ld cmds  %8.3f s  %10.0f cmds/s  (target 30000; sent in "
           "%.3f s; %" PRIu64 " transactions)\n",
           "end-to-end", replies, secs(t1 - t0), e2e, secs(t_sent - t0),
           st.transactions);
    printf("%-14s %21.2f x raw produce\n", "ratio", e2e / raw);
    printf("%-14s %9ld cmds  at %.0f cmds/s: p50 %.1f ms, p99 %.1f ms%s\n",
           "latency", got, rate, (double)p50 / 1e6, (double)p99 / 1e6,
           missing ? " (some replies missing!)" : "");
    if (registry_url)
        printf("%-14s %9" PRIu64 " HTTP requests at start (schema gate), "
               "%" PRIu64 " while encoding (another client), %" PRIu64
               " on the command path (%ld commands)  (%s)\n",
               "registry", req_start, req_enc, req_run, replies, registry_url);
    rd_kafka_consumer_close(tail);
    rd_kafka_destroy(tail);
    stele_engine_close(e);
    delete_topics(p);
    rd_kafka_destroy(p);
    stele_config_free(cfg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
