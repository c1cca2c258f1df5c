/*
 * common_kafka.c — the test broker: found, started, restarted, and its
 * topics deleted after a run (common_kafka.h).
 */
#include "common_kafka.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define TIMEOUT_MS 30000

const char *ckt_bootstrap(void)
{
    const char *env = getenv("STELE_KAFKA_BOOTSTRAP");
    return env && *env ? env : DEFAULT_BOOTSTRAP;
}

static const char *test_dir(void)
{
    const char *env = getenv("STELE_TEST_KAFKA_DIR");
    return env && *env ? env : "/tmp/stele-kafka-test";
}

static bool port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9092)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int ckt_ensure_broker(void)
{
    if (strcmp(ckt_bootstrap(), DEFAULT_BOOTSTRAP) != 0 || port_open())
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "STELE_KAFKA_DIR='%s' %s/scripts/kafka-start.sh --fresh >&2",
             test_dir(), STELE_SOURCE_DIR);
    fprintf(stderr, "no Kafka broker on %s; running %s\n", DEFAULT_BOOTSTRAP,
            cmd);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot start the Kafka broker\n");
        return -1;
    }
    return 0;
}

/* The broker the scripts started (a java process run with
 * -Dstele.kafka.dir=<its state dir>): its pid, and its dir into dir; 0
 * when none runs. Found among the processes, not through a pid file. */
static long find_broker(char *dir, size_t size)
{
    DIR *proc = opendir("/proc");
    struct dirent *d;
    long found = 0;
    while (proc && !found && (d = readdir(proc))) {
        char *end;
        long pid = strtol(d->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], args[65536];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(args, 1, sizeof args - 1, f) : 0;
        if (f)
            fclose(f);
        args[n] = '\0';
        static const char key[] = "-Dstele.kafka.dir=";
        for (size_t at = 0; at < n; at += strlen(args + at) + 1)
            if (!strncmp(args + at, key, sizeof key - 1)) {
                snprintf(dir, size, "%s", args + at + sizeof key - 1);
                found = pid;
                break;
            }
    }
    if (proc)
        closedir(proc);
    return found;
}

long ckt_broker_pid(void)
{
    char dir[512];
    return find_broker(dir, sizeof dir);
}

const char *ckt_restart_command(int down_s)
{
    static char cmd[2048];
    char dir[512];
    if (strcmp(ckt_bootstrap(), DEFAULT_BOOTSTRAP) != 0 ||
        !find_broker(dir, sizeof dir))
        return NULL;
    snprintf(cmd, sizeof cmd,
             "STELE_KAFKA_DIR='%s' %s/scripts/kafka-stop.sh >&2 && sleep %d && "
             "STELE_KAFKA_DIR='%s' %s/scripts/kafka-start.sh >&2",
             dir, STELE_SOURCE_DIR, down_s, dir, STELE_SOURCE_DIR);
    return cmd;
}

/* The names of the broker's topics that start with prefix; *n of them. */
static char **matching_topics(rd_kafka_t *rk, const char *prefix, int *n)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 1, NULL, &md, TIMEOUT_MS);
    if (rc) {
        fprintf(stderr, "topic list: %s\n", rd_kafka_err2str(rc));
        return NULL;
    }
    char **names = calloc((size_t)md->topic_cnt + 1, sizeof *names);
    *n = 0;
    for (int i = 0; names && i < md->topic_cnt; i++)
        if (strncmp(md->topics[i].topic, prefix, strlen(prefix)) == 0)
            names[(*n)++] = strdup(md->topics[i].topic);
    rd_kafka_metadata_destroy(md);
    return names;
}

static int delete_topics(rd_kafka_t *rk, char **names, int n)
{
    rd_kafka_DeleteTopic_t **del = calloc((size_t)n, sizeof *del);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int i = 0; i < n; i++)
        del[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_DeleteTopics(rk, del, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    int deleted = -1;
    if (!ev) {
        fprintf(stderr, "delete topics: no answer\n");
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "delete topics: %s\n", rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_DeleteTopics_result_t *dr =
            rd_kafka_event_DeleteTopics_result(ev);
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(dr, &cnt);
        deleted = 0;
        for (size_t i = 0; i < cnt; i++) {
            if (rd_kafka_topic_result_error(res[i]))
                fprintf(stderr, "delete topic %s: %s\n",
                        rd_kafka_topic_result_name(res[i]),
                        rd_kafka_topic_result_error_string(res[i]));
            else
                deleted++;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy_array(del, (size_t)n);
    free(del);
    rd_kafka_queue_destroy(q);
    return deleted;
}

/* An admin client of the test broker, or NULL (reason on stderr). */
static rd_kafka_t *admin_client(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", ckt_bootstrap(), errstr,
                          sizeof errstr) == RD_KAFKA_CONF_OK)
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "admin client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int ckt_topic_config(const char *topic, const char *key, char *out, size_t size)
{
    rd_kafka_t *rk = admin_client();
    if (!rk)
        return -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ConfigResource_t *res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    int rc = -1;
    size_t nres = 0, ncfg = 0;
    const rd_kafka_ConfigResource_t **rs =
        ev && !rd_kafka_event_error(ev)
            ? rd_kafka_DescribeConfigs_result_resources(
                  rd_kafka_event_DescribeConfigs_result(ev), &nres)
            : NULL;
    const rd_kafka_ConfigEntry_t **cs =
        nres == 1 && !rd_kafka_ConfigResource_error(rs[0])
            ? rd_kafka_ConfigResource_configs(rs[0], &ncfg)
            : NULL;
    for (size_t i = 0; i < ncfg; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(cs[i]), key) == 0) {
            const char *v = rd_kafka_ConfigEntry_value(cs[i]);
            snprintf(out, size, "%s", v ? v : "");
            rc = 0;
        }
    if (rc)
        fprintf(stderr, "topic %s: no config %s\n", topic, key);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

int ckt_delete_topics(const char *prefix)
{
    rd_kafka_t *rk = admin_client();
    if (!rk)
        return -1;
    int n = 0, deleted = -1;
    char **names = matching_topics(rk, prefix, &n);
    if (names)
        deleted = n ? delete_topics(rk, names, n) : 0;
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    rd_kafka_destroy(rk);
    return deleted;
}
