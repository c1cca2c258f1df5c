/*
 * stele — the command line.
 *
 *   stele run     [-c CONFIG]                  run the host until
 * SIGINT/SIGTERM stele send    [-c CONFIG] [--timeout MS] [JSON|-] stele query
 * [-c CONFIG] NAME [JSON]      run a query plugin stele query   [-c CONFIG]
 * --list TABLE [--filter EXPR]... [--sort COL]
 *                 [--desc] [--page N | --after CURSOR] [--page-size N]
 *                 [--no-total]
 *   stele events  [-c CONFIG] [--aggregate TYPE] [--id ID] [--limit N]
 *   stele state   [-c CONFIG] TYPE ID
 *   stele replay  [-c CONFIG] [--aggregate TYPE]
 *   stele status  [-c CONFIG]                  commands waiting, projector lag
 *   stele plugin inspect FILE.so [--config CONFIG]
 *   stele schema  check|register|list|diff [-c CONFIG] [--topic TOPIC]
 *
 * Exit status: 0 success, 1 error, 2 usage, 3 command rejected,
 * 4 not found.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/engine.h"
#include "engine/guard.h"
#include "plugin/loader.h"

int stele_cli_schema(int argc, char **argv); /* cli/schema.c */

#define EXIT_USAGE 2
#define EXIT_REJECTED 3
#define EXIT_NOTFOUND 4

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  stele run     [-c CONFIG]\n"
          "  stele send    [-c CONFIG] [--timeout MS] [JSON|-]\n"
          "  stele query   [-c CONFIG] NAME [JSON]\n"
          "  stele query   [-c CONFIG] --list TABLE [--filter EXPR]... "
          "[--sort COL] [--desc]\n"
          "                [--page N | --after CURSOR] [--page-size N] "
          "[--no-total]\n"
          "  stele events  [-c CONFIG] [--aggregate TYPE] [--id ID] "
          "[--limit N]\n"
          "  stele state   [-c CONFIG] TYPE ID\n"
          "  stele replay  [-c CONFIG] [--aggregate TYPE]\n"
          "  stele status  [-c CONFIG]\n"
          "  stele plugin inspect FILE.so [--config CONFIG]\n"
          "  stele schema  check|register|list|diff [-c CONFIG] "
          "[--topic TOPIC]\n"
          "CONFIG defaults to config/stele.yaml. A command is JSON:\n"
          "  {\"type\": \"bank.Deposit\", \"aggregate_id\": \"acc-1\", "
          "\"data\": {\"amount\": 100},\n"
          "   \"command_id\": \"optional\", \"expected_version\": 3}\n",
          f);
}

static int fail(const stele_err *err)
{
    fprintf(stderr, "stele: %s\n", err->msg);
    return err->code == STELE_ENOTFOUND ? EXIT_NOTFOUND : EXIT_FAILURE;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

/* Options every subcommand takes, plus its own. */
typedef struct opts {
    const char *config;
    int timeout_ms;
    const char *list_table;
    char *filters[16];
    size_t n_filters;
    const char *sort;
    int desc, no_total;
    const char *after;
    long long page, page_size, limit;
    const char *aggregate, *id;
    int argc;
    char **argv; /* positional arguments */
} opts;

static long long parse_num(const char *s, const char *what, bool *ok)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0) {
        fprintf(stderr, "stele: %s: '%s' is not a non-negative integer\n", what,
                s);
        *ok = false;
    }
    return v;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 't'},
        {"list", required_argument, NULL, 'L'},
        {"filter", required_argument, NULL, 'f'},
        {"sort", required_argument, NULL, 's'},
        {"desc", no_argument, NULL, 'd'},
        {"page", required_argument, NULL, 'p'},
        {"page-size", required_argument, NULL, 'P'},
        {"after", required_argument, NULL, 'A'},
        {"no-total", no_argument, NULL, 'T'},
        {"aggregate", required_argument, NULL, 'a'},
        {"id", required_argument, NULL, 'i'},
        {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (opts){.config = "config/stele.yaml",
                .timeout_ms = -1,
                .page = 1,
                .page_size = 20};
    bool ok = true;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 't':
            o->timeout_ms = (int)parse_num(optarg, "--timeout", &ok);
            break;
        case 'L': o->list_table = optarg; break;
        case 'f':
            if (o->n_filters == 16) {
                fprintf(stderr, "stele: at most 16 --filter\n");
                return EXIT_USAGE;
            }
            o->filters[o->n_filters++] = optarg;
            break;
        case 's': o->sort = optarg; break;
        case 'd': o->desc = 1; break;
        case 'p': o->page = parse_num(optarg, "--page", &ok); break;
        case 'P': o->page_size = parse_num(optarg, "--page-size", &ok); break;
        case 'A': o->after = optarg; break;
        case 'T': o->no_total = 1; break;
        case 'a': o->aggregate = optarg; break;
        case 'i': o->id = optarg; break;
        case 'l': o->limit = parse_num(optarg, "--limit", &ok); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    o->argc = argc - optind;
    o->argv = argv + optind;
    return ok ? 0 : EXIT_USAGE;
}

/* Commands that write (run, send, replay) pass the schema gate and may
 * register schemas; the others only read. */
static int open_engine(const opts *o, bool writes, stele_config **cfg,
                       stele_engine **e)
{
    stele_err err = {0};
    if (stele_config_load(o->config, cfg, &err) != 0)
        return fail(&err);
    if ((writes ? stele_engine_open(*cfg, e, &err)
                : stele_engine_open_reader(*cfg, e, &err)) != 0) {
        stele_config_free(*cfg);
        return fail(&err);
    }
    return 0;
}

/* Reads all of stdin, bounded. */
/* The largest command stele send reads from stdin. */
#define STDIN_MAX (64u << 20)

/* Reads stdin whole; NULL with the reason on stderr when it cannot, or
 * when it holds more than STDIN_MAX (cut, it would be read as another
 * command or as bad JSON). */
static char *read_stdin(void)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0)
            break;
        if (n + 1 == cap) {
            if (cap >= STDIN_MAX) {
                fprintf(stderr,
                        "stele: the command on stdin is larger "
                        "than %u MiB\n",
                        STDIN_MAX >> 20);
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
    }
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int cmd_run(const opts *o, stele_engine *e)
{
    (void)o;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    stele_err err = {0};
    if (stele_engine_run(e, &stop_requested, &err) != 0)
        return fail(&err);
    return 0;
}

static int cmd_send(const opts *o, const stele_config *cfg, stele_engine *e)
{
    char *text = NULL;
    const char *src = o->argc > 0 ? o->argv[0] : "-";
    if (strcmp(src, "-") == 0 && !(src = text = read_stdin())) {
        fprintf(stderr, "stele: cannot read the command from stdin\n");
        return EXIT_FAILURE;
    }
    json_error_t jerr;
    /* A key twice is a mistake, not "the last one wins": a withdraw with a
     * second "type" would become a deposit. */
    json_t *cmd = json_loads(src, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!cmd) {
        fprintf(stderr, "stele: the command is not valid JSON: %s (line %d)\n",
                jerr.text, jerr.line);
        return EXIT_USAGE;
    }
    stele_err err = {0};
    stele_submitted s;
    json_t *result = NULL;
    int rc = stele_engine_submit_json(e, cmd, &s, &err);
    json_decref(cmd);
    if (rc == 0)
        rc = stele_engine_wait_result(
            e, &s, o->timeout_ms >= 0 ? o->timeout_ms : cfg->reply_timeout_ms,
            &result, &err);
    if (rc != 0)
        return fail(&err);
    print_json(result);
    const char *status = json_string_value(json_object_get(result, "status"));
    int code = status && strcmp(status, "accepted") == 0 ? 0 : EXIT_REJECTED;
    json_decref(result);
    /* Bring read models up to date when this process owns them. */
    size_t did;
    stele_engine_drain(e, &did, &err);
    return code;
}

static int cmd_query(const opts *o, stele_engine *e)
{
    stele_err err = {0};
    size_t did;
    /* A failing projector leaves its own read model behind, not the
     * others: say so and answer. */
    if (stele_engine_drain(e, &did, &err) != 0) {
        fprintf(stderr, "stele: warning: %s (read models may be behind)\n",
                err.msg);
        err = (stele_err){0};
    }
    json_t *out = NULL;
    int rc;
    if (o->list_table) {
        stele_filter filters[16];
        for (size_t i = 0; i < o->n_filters; i++)
            if (stele_filter_parse(o->filters[i], &filters[i], &err) != 0)
                return fail(&err);
        stele_list_request req = {.filters = filters,
                                  .n_filters = o->n_filters,
                                  .sort = o->sort,
                                  .descending = o->desc,
                                  .page = o->page,
                                  .page_size = o->page_size,
                                  .after = o->after,
                                  .no_total = o->no_total};
        rc = stele_engine_list(e, o->list_table, &req, &out, &err);
    } else {
        if (o->argc < 1) {
            usage(stderr);
            return EXIT_USAGE;
        }
        json_t *params = NULL;
        if (o->argc > 1) {
            json_error_t jerr;
            if (!(params =
                      json_loads(o->argv[1], JSON_REJECT_DUPLICATES, &jerr))) {
                fprintf(stderr, "stele: parameters are not valid JSON: %s\n",
                        jerr.text);
                return EXIT_USAGE;
            }
        }
        rc = stele_engine_query(e, o->argv[0], params, &out, &err);
        json_decref(params);
    }
    if (rc != 0)
        return fail(&err);
    print_json(out);
    json_decref(out);
    return 0;
}

static void print_line(void *opaque, json_t *ev)
{
    (void)opaque;
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(ev);
}

static int cmd_events(const opts *o, stele_engine *e)
{
    stele_err err = {0};
    if (stele_engine_events(e, o->aggregate, o->id, (size_t)o->limit,
                            print_line, NULL, &err) != 0)
        return fail(&err);
    return 0;
}

static int cmd_state(const opts *o, stele_engine *e)
{
    if (o->argc != 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    stele_err err = {0};
    json_t *out;
    if (stele_engine_state(e, o->argv[0], o->argv[1], &out, &err) != 0)
        return fail(&err);
    print_json(out);
    json_decref(out);
    return 0;
}

static int cmd_replay(const opts *o, stele_engine *e)
{
    stele_err err = {0};
    size_t events, states;
    if (stele_engine_replay(e, o->aggregate, &events, &states, &err) != 0)
        return fail(&err);
    printf("replayed %zu events into %zu states\n", events, states);
    size_t repaired, parked;
    if (stele_engine_repair_projections(e, &repaired, &parked, &err) != 0)
        return fail(&err);
    if (repaired || parked)
        printf("projectors: %zu parked aggregate%s repaired, %zu still "
               "parked (stele status lists them)\n",
               repaired, repaired == 1 ? "" : "s", parked);
    json_t *broken = NULL;
    if (stele_engine_broken(e, o->aggregate, &broken, &err) != 0)
        return fail(&err);
    size_t i, n = json_array_size(broken);
    json_t *b;
    json_array_foreach(broken, i, b)
        fprintf(stderr,
                "stele: %s %s (partition %d, version %lld) cannot be "
                "rebuilt: %s\n",
                json_string_value(json_object_get(b, "aggregate")),
                json_string_value(json_object_get(b, "id")),
                (int)json_integer_value(json_object_get(b, "partition")),
                (long long)json_integer_value(json_object_get(b, "version")),
                json_string_value(json_object_get(b, "reason")));
    json_decref(broken);
    if (parked > 0)
        fprintf(stderr, "stele: %zu aggregate%s still parked by projectors\n",
                parked, parked == 1 ? "" : "s");
    if (n > 0) {
        fprintf(stderr,
                "stele: %zu aggregate%s left broken: their commands are "
                "rejected with AGGREGATE_BROKEN until a replay rebuilds "
                "them\n",
                n, n == 1 ? "" : "s");
    }
    return n > 0 || parked > 0 ? EXIT_FAILURE : 0;
}

static int cmd_status(const opts *o, stele_engine *e)
{
    if (o->argc != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    stele_err err = {0};
    json_t *out = NULL;
    if (stele_engine_status(e, &out, &err) != 0)
        return fail(&err);
    print_json(out);
    json_decref(out);
    return 0;
}

/* stele plugin inspect PATH [--config F]: what the plugin declares, and
 * with a config, whether the config's schemas/ has every schema it names
 * (exit 1 when not). */
static int cmd_plugin(int argc, char **argv)
{
    const char *config = NULL;
    if (argc == 6 &&
        (strcmp(argv[4], "--config") == 0 || strcmp(argv[4], "-c") == 0))
        config = argv[5];
    if ((argc != 4 && !config) || strcmp(argv[2], "inspect") != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    stele_err err = {0};
    if (stele_plugin_inspect(argv[3], stdout, &err) != 0)
        return fail(&err);
    if (!config)
        return 0;
    stele_config *cfg = NULL;
    stele_codec *codec = NULL;
    size_t missing = 0;
    int rc = stele_config_load(config, &cfg, &err);
    if (rc == 0)
        rc = stele_codec_new(cfg->schemas_dir, NULL, &codec, &err);
    if (rc == 0) {
        const stele_schema *const *cat;
        size_t n = stele_codec_catalogue(codec, &cat);
        rc = stele_plugin_check_catalogue(argv[3], cat, n, cfg->schemas_dir,
                                          stdout, &missing, &err);
    }
    stele_codec_free(codec);
    stele_config_free(cfg);
    if (rc != 0)
        return fail(&err);
    return missing ? EXIT_FAILURE : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("stele %d.%d (plugin ABI %d.%d)\n", 0, 1, STELE_ABI_MAJOR,
               STELE_ABI_MINOR);
        return 0;
    }
    if (strcmp(cmd, "plugin") == 0)
        return cmd_plugin(argc, argv);
    if (strcmp(cmd, "schema") == 0)
        return stele_cli_schema(argc - 1, argv + 1);
    static const char *known[] = {"run",   "send",   "query", "events",
                                  "state", "replay", "status"};
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= strcmp(cmd, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "stele: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    opts o;
    int rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc;
    stele_config *cfg;
    stele_engine *e;
    bool writes = strcmp(cmd, "run") == 0 || strcmp(cmd, "send") == 0 ||
                  strcmp(cmd, "replay") == 0;
    if ((rc = open_engine(&o, writes, &cfg, &e)) != 0)
        return rc;
    /* Whatever may call decide, evolve or project (query drains pending
     * commands on the embedded log) is guarded: a plugin that crashes or
     * hangs costs its command, not every start of the host. */
    stele_err gerr = {0};
    if ((writes || strcmp(cmd, "query") == 0) &&
        stele_guard_open(cfg, strcmp(cmd, "run") == 0 ? &stop_requested : NULL,
                         &gerr) != 0)
        fprintf(stderr,
                "stele: warning: %s (plugin calls are not "
                "guarded)\n",
                gerr.msg);
    if (strcmp(cmd, "run") == 0)
        rc = cmd_run(&o, e);
    else if (strcmp(cmd, "send") == 0)
        rc = cmd_send(&o, cfg, e);
    else if (strcmp(cmd, "query") == 0)
        rc = cmd_query(&o, e);
    else if (strcmp(cmd, "events") == 0)
        rc = cmd_events(&o, e);
    else if (strcmp(cmd, "state") == 0)
        rc = cmd_state(&o, e);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&o, e);
    else
        rc = cmd_replay(&o, e);
    stele_engine_close(e);
    stele_guard_close();
    stele_config_free(cfg);
    return rc;
}
