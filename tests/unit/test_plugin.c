/* test_plugin.c — loading plugins: each refusal with its exact one-line
 * reason, definition checks, init/fini, load_all's rollback and duplicate
 * refusal, inspect's output, and the host API header. The fixtures are
 * built by tests/fixtures/CMakeLists.txt. */
#include <dlfcn.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin/loader.h"
#include "plugin/open.h"

#define FIXTURE(name) STELE_BUILD_DIR "/fixtures/" name ".so"
#define STR_(x) #x
#define STR(x) STR_(x)
/* the host's ABI version as the messages print it, "1.2" */
#define ABI STR(STELE_ABI_MAJOR) "." STR(STELE_ABI_MINOR)
#define LAYOUT " (layout mismatch? built against a different plugin.h)"

/* What the fixtures logged through the host API: "init x\nfini x\n". */
static char logged[4096];

static void record_log(stele_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void record_log(stele_log_level level, const char *fmt, ...)
{
    size_t n = strlen(logged);
    va_list ap;
    (void)level;
    va_start(ap, fmt);
    vsnprintf(logged + n, sizeof logged - n, fmt, ap);
    va_end(ap);
    n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "\n");
}

static stele_host_api api;

static int reset(void **state)
{
    (void)state;
    memset(&api, 0, sizeof api);
    stele_plugin_api_init(&api);
    api.log = record_log;
    logged[0] = '\0';
    return 0;
}

static void test_good_plugins_load_init_and_fini(void **state)
{
    (void)state;
    stele_plugin *p;
    stele_err err = {0};

    assert_int_equal(
        stele_plugin_load(FIXTURE("good_aggregate"), &api, &p, &err), 0);
    assert_string_equal(p->path, FIXTURE("good_aggregate"));
    assert_string_equal(p->desc->name, "fixture_counter");
    assert_int_equal(p->desc->kind, STELE_PLUGIN_AGGREGATE);
    assert_string_equal(p->desc->def.aggregate->type, "fixture.Counter");
    assert_string_equal(p->ctx, "fixture_counter");
    assert_string_equal(logged, "init fixture_counter\n");
    stele_plugin_unload(p);
    assert_string_equal(logged, "init fixture_counter\nfini fixture_counter\n");

    const char *others[] = {FIXTURE("good_projector"), FIXTURE("good_query"),
                            FIXTURE("good_upcaster")};
    const stele_plugin_kind kinds[] = {
        STELE_PLUGIN_PROJECTOR, STELE_PLUGIN_QUERY, STELE_PLUGIN_UPCASTER};
    for (size_t i = 0; i < 3; i++) {
        if (stele_plugin_load(others[i], &api, &p, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(p->desc->kind, kinds[i]);
        stele_plugin_unload(p);
    }
    /* The query fixture has neither init nor fini. */
    assert_string_equal(logged,
                        "init fixture_counter\nfini fixture_counter\n"
                        "init fixture_projector\nfini fixture_projector\n"
                        "init fixture_upcaster\nfini fixture_upcaster\n");
}

typedef struct refusal {
    const char *path;
    int code;
    const char *reason;
} refusal;

static void test_refusals_name_the_file_and_the_field(void **state)
{
    (void)state;
    char size_reason[128];
    snprintf(size_reason, sizeof size_reason,
             "descriptor size 40 smaller than %zu" LAYOUT,
             sizeof(stele_plugin_descriptor));
    const refusal cases[] = {
        {FIXTURE("not_a_plugin"), STELE_EINVAL,
         "not a shared object: invalid ELF header"},
        {FIXTURE("does_not_exist"), STELE_ENOTFOUND,
         "cannot open: No such file or directory"},
        {FIXTURE("bad_no_entry"), STELE_EABI, "no symbol stele_plugin_entry"},
        {FIXTURE("bad_null_entry"), STELE_EABI,
         "stele_plugin_entry returned NULL"},
        {FIXTURE("bad_magic"), STELE_EABI,
         "bad magic 0x12345678 (expected 0x5354454c)"},
        {FIXTURE("bad_abi"), STELE_EABI, "ABI major 2, host expects 1"},
        {FIXTURE("bad_minor"), STELE_EABI, "ABI 1.7 is newer than host " ABI},
        {FIXTURE("bad_size"), STELE_EABI, size_reason},
        {FIXTURE("bad_kind"), STELE_EABI, "unknown kind 9" LAYOUT},
        {FIXTURE("bad_no_decide"), STELE_EINVAL,
         "aggregate 'fixture.Broken' has no decide callback"},
        {FIXTURE("bad_init"), STELE_EPLUGIN,
         "init failed: cannot reach the ledger at 127.0.0.1:9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        stele_plugin *p = (stele_plugin *)1;
        stele_err err = {0};
        char want[1024];
        snprintf(want, sizeof want, "%s: %s", cases[i].path, cases[i].reason);
        int rc = stele_plugin_load(cases[i].path, &api, &p, &err);
        assert_int_equal(rc, cases[i].code);
        assert_int_equal(err.code, cases[i].code);
        assert_null(p);
        assert_string_equal(err.msg, want);
        assert_null(strchr(err.msg, '\n'));
    }
    assert_string_equal(logged, "");
}

/* A plugin built for another machine: glibc's dlopen says "No such file
 * or directory" of a file that is there; the host names both machines. */
static void test_plugin_for_another_machine_names_it(void **state)
{
    (void)state;
    char path[] = "/tmp/stele-plugin-arch-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *in = fopen(FIXTURE("good_aggregate"), "rb");
    assert_non_null(in);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(n > 20 && n < sizeof buf);
    /* e_machine (little-endian here): AArch64, or x86-64 on AArch64 */
    unsigned other = buf[18] == 183 ? 62 : 183;
    buf[18] = (unsigned char)other;
    buf[19] = 0;
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
    stele_plugin *p = NULL;
    stele_err err = {0};
    assert_int_equal(stele_plugin_load(path, &api, &p, &err), STELE_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "cannot be loaded: built for %s",
             other == 183 ? "AArch64" : "x86-64");
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "the host is"));
    unlink(path);
}

/* A valid aggregate descriptor the definition tests break one field at a
 * time. */
static int decide(void *ctx, const stele_command *cmd, const stele_value *st,
                  stele_decision *d)
{
    (void)ctx, (void)cmd, (void)st, (void)d;
    return 0;
}

static int evolve(void *ctx, stele_value *st, const stele_event *ev)
{
    (void)ctx, (void)st, (void)ev;
    return 0;
}

static int project(void *ctx, const stele_event *evs, size_t n,
                   stele_store_tx *tx, stele_err *err)
{
    (void)ctx, (void)evs, (void)n, (void)tx, (void)err;
    return 0;
}

static int run(void *ctx, const stele_value *params, stele_query_ctx *q,
               stele_err *err)
{
    (void)ctx, (void)params, (void)q, (void)err;
    return 0;
}

static int upcast(void *ctx, const stele_value *old, stele_upcast_out *out,
                  stele_err *err)
{
    (void)ctx, (void)old, (void)out, (void)err;
    return 0;
}

static void assert_refused(const stele_plugin_descriptor *d, const char *reason)
{
    stele_err err = {0};
    char want[1024];
    snprintf(want, sizeof want, "x.so: %s", reason);
    assert_int_not_equal(stele_plugin_check(d, "x.so", &err), 0);
    assert_string_equal(err.msg, want);
}

static void test_check_refuses_incomplete_aggregates(void **state)
{
    (void)state;
    stele_record_ref cmds[2] = {{"t.Open", 1}, {"t.Close", 1}};
    stele_record_ref evs[1] = {{"t.Opened", 1}};
    stele_aggregate_def a = {"t.Acct",   cmds, 2,      evs,   1,
                             {"t.S", 1}, 1,    decide, evolve};
    stele_plugin_descriptor d = {STELE_DESCRIPTOR_HEADER, .name = "t",
                                 .version = "1", .kind = STELE_PLUGIN_AGGREGATE,
                                 .def.aggregate = &a};
    stele_err err = {0};
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);

    d.name = "";
    assert_refused(&d, "descriptor has no name");
    /* before, both were taken */
    d.name = "t\nstele error: forged";
    assert_refused(&d, "plugin name may hold only letters, digits, '.', '_' "
                       "and '-'");
    d.name = "t";
    d.size = 0xffffffffu;
    char big[128];
    snprintf(big, sizeof big,
             "descriptor size 4294967295 larger than ABI %d.%d's %zu" LAYOUT,
             STELE_ABI_MAJOR, STELE_ABI_MINOR, sizeof d);
    assert_refused(&d, big);
    d.size = sizeof d;
    a.n_commands = 139656476364256u; /* a pointer read as a count */
    assert_refused(&d, "aggregate 't.Acct' declares 139656476364256 "
                       "commands (at most 10000)" LAYOUT);
    a.n_commands = 2;
    d.version = NULL;
    assert_refused(&d, "plugin 't' has no version string");
    d.version = "1";
    d.def.aggregate = NULL;
    assert_refused(&d, "aggregate plugin 't' has no definition");
    d.def.aggregate = &a;

    a.type = NULL;
    assert_refused(&d, "aggregate has no type");
    a.type = "t Acct";
    assert_refused(&d, "aggregate type 't Acct' may hold only letters, "
                       "digits, '.', '_' and '-'");
    a.type = "t.Acct";
    a.commands = NULL;
    assert_refused(&d, "aggregate 't.Acct' has 2 commands but no command "
                       "array");
    a.commands = cmds;
    a.n_commands = 0;
    assert_refused(&d, "aggregate 't.Acct' declares no commands");
    a.n_commands = 2;
    cmds[1].name = NULL;
    assert_refused(&d, "aggregate 't.Acct' command 1 has no name");
    cmds[1].name = "t.Open";
    assert_refused(&d, "aggregate 't.Acct' lists command 't.Open' twice");
    cmds[1].name = "t..Close";
    assert_refused(&d, "aggregate 't.Acct' command 't..Close' is not an Avro "
                       "full name");
    cmds[1].name = "t.Close";
    evs[0].version = 0;
    assert_refused(&d, "aggregate 't.Acct' event 't.Opened' has version 0 "
                       "(must be >= 1)");
    evs[0].version = 1;
    a.state.name = "";
    assert_refused(&d, "aggregate 't.Acct' state has no name");
    a.state.name = "t.S";
    a.state_version = 0;
    assert_refused(&d, "aggregate 't.Acct' has state_version 0 (must be >= 1)");
    a.state_version = 1;
    a.evolve = NULL;
    assert_refused(&d, "aggregate 't.Acct' has no evolve callback");
    a.evolve = evolve;
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);
}

static void test_check_refuses_bad_projectors(void **state)
{
    (void)state;
    stele_record_ref evs[1] = {{"t.Opened", 1}};
    stele_column_def cols[2] = {{"id", STELE_COL_TEXT, STELE_COL_KEY},
                                {"n", STELE_COL_INT, 0}};
    stele_table_def tables[1] = {{"accts", cols, 2}};
    stele_projector_def p = {"accts", 1, evs, 1, tables, 1, project};
    stele_plugin_descriptor d = {STELE_DESCRIPTOR_HEADER, .name = "p",
                                 .version = "1", .kind = STELE_PLUGIN_PROJECTOR,
                                 .def.projector = &p};
    stele_err err = {0};
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);

    cols[0].flags = STELE_COL_SORT;
    assert_refused(&d, "projector 'accts' table 'accts' has no KEY column");
    cols[0].flags = STELE_COL_KEY | STELE_COL_NULLABLE;
    assert_refused(&d, "projector 'accts' table 'accts' column 'id' is both "
                       "KEY and NULLABLE");
    cols[0].flags = STELE_COL_KEY;
    cols[1].flags = 0x20;
    assert_refused(&d, "projector 'accts' table 'accts' column 'n' has unknown "
                       "flags 0x20");
    cols[1].flags = STELE_COL_INDEX | STELE_COL_FILTER | STELE_COL_SORT;
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);
    cols[1].flags = 0;
    cols[1].type = (stele_column_type)7;
    assert_refused(&d, "projector 'accts' table 'accts' column 'n' has unknown "
                       "type 7");
    cols[1].type = STELE_COL_INT;
    cols[1].name = "id";
    assert_refused(&d, "projector 'accts' table 'accts' has column 'id' twice");
    cols[1].name = "n; DROP TABLE x";
    assert_refused(&d, "projector 'accts' table 'accts' column 1 is named 'n; "
                       "DROP TABLE x', not an SQL identifier");
    cols[1].name = "n";
    tables[0].name = "accts-2";
    assert_refused(&d, "projector 'accts' has a table named 'accts-2', not an "
                       "SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
                       "characters)");
    tables[0].name = "accts";
    tables[0].n_columns = 0;
    assert_refused(&d, "projector 'accts' table 'accts' has no columns");
    tables[0].n_columns = 2;
    p.tables = NULL;
    assert_refused(&d, "projector 'accts' has 1 tables but no array");
    p.tables = tables;
    p.n_events = 0;
    assert_refused(&d, "projector 'accts' declares no events");
    p.n_events = 1;
    p.version = 0;
    assert_refused(&d, "projector 'accts' has version 0 (must be >= 1)");
    p.version = 1;
    p.project = NULL;
    assert_refused(&d, "projector 'accts' has no project callback");
}

static void test_check_refuses_bad_queries_and_upcasters(void **state)
{
    (void)state;
    stele_query_def q = {"by_id", {"t.ById", 1}, true, run};
    stele_plugin_descriptor d = {STELE_DESCRIPTOR_HEADER, .name = "q",
                                 .version = "1", .kind = STELE_PLUGIN_QUERY,
                                 .def.query = &q};
    stele_err err = {0};
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);
    q.params.name = NULL;
    assert_refused(&d, "query 'by_id' params record has no name");
    q.params.name = "t.ById";
    q.run = NULL;
    assert_refused(&d, "query 'by_id' has no run callback");

    stele_upcaster_def u = {"t.Opened", 1, 2, upcast};
    d.kind = STELE_PLUGIN_UPCASTER;
    d.def.upcaster = &u;
    assert_int_equal(stele_plugin_check(&d, "x.so", &err), 0);
    u.to_version = 3;
    assert_refused(&d, "upcaster 't.Opened' goes from version 1 to 3 "
                       "(to_version must be from_version + 1)");
    u.to_version = 2;
    u.upcast = NULL;
    assert_refused(&d, "upcaster 't.Opened' v1 has no upcast callback");
    u.upcast = upcast;
    u.event_type = NULL;
    assert_refused(&d, "upcaster event_type '(null)' is not an Avro full name");
}

static void test_load_all_loads_in_order_and_unloads_in_reverse(void **state)
{
    (void)state;
    char *paths[] = {FIXTURE("good_aggregate"), FIXTURE("good_projector"),
                     FIXTURE("good_query"), FIXTURE("good_upcaster")};
    stele_plugin **ps = NULL;
    stele_err err = {0};
    if (stele_plugins_load_all(paths, 4, &api, &ps, &err))
        fail_msg("%s", err.msg);
    assert_non_null(ps);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(ps[i]->path, paths[i]);
    stele_plugins_unload_all(ps, 4);
    assert_string_equal(logged,
                        "init fixture_counter\ninit fixture_projector\n"
                        "init fixture_upcaster\nfini fixture_upcaster\n"
                        "fini fixture_projector\nfini fixture_counter\n");

    /* Nothing to load is not an error. */
    assert_int_equal(stele_plugins_load_all(NULL, 0, &api, &ps, &err), 0);
    stele_plugins_unload_all(ps, 0);
}

static void test_load_all_failure_unloads_everything(void **state)
{
    (void)state;
    char *paths[] = {FIXTURE("good_aggregate"), FIXTURE("good_projector"),
                     FIXTURE("bad_init"), FIXTURE("good_upcaster")};
    stele_plugin **ps = (stele_plugin **)1;
    stele_err err = {0};
    assert_int_equal(stele_plugins_load_all(paths, 4, &api, &ps, &err),
                     STELE_EPLUGIN);
    assert_null(ps);
    assert_string_equal(err.msg,
                        FIXTURE("bad_init") ": init failed: cannot reach the "
                                            "ledger at 127.0.0.1:9");
    /* The two loaded before the failure were finalised; the one after it
     * was never opened. */
    assert_string_equal(logged,
                        "init fixture_counter\ninit fixture_projector\n"
                        "fini fixture_projector\nfini fixture_counter\n");

    logged[0] = '\0';
    char *bad_abi[] = {FIXTURE("good_aggregate"), FIXTURE("bad_abi")};
    assert_int_equal(stele_plugins_load_all(bad_abi, 2, &api, &ps, &err),
                     STELE_EABI);
    assert_string_equal(err.msg,
                        FIXTURE("bad_abi") ": ABI major 2, host expects 1");
    assert_string_equal(logged, "init fixture_counter\nfini fixture_counter\n");
}

static void test_load_all_refuses_duplicates_before_init(void **state)
{
    (void)state;
    char *same_name[] = {FIXTURE("good_aggregate"), FIXTURE("dup_name")};
    stele_plugin **ps;
    stele_err err = {0};
    assert_int_equal(stele_plugins_load_all(same_name, 2, &api, &ps, &err),
                     STELE_ECONFLICT);
    assert_string_equal(err.msg, FIXTURE("dup_name") ": aggregate plugin "
                                                     "'fixture_counter' is "
                                                     "already loaded from " //
                        FIXTURE("good_aggregate"));
    assert_string_equal(logged, "init fixture_counter\nfini fixture_counter\n");

    logged[0] = '\0';
    char *same_type[] = {FIXTURE("good_aggregate"), FIXTURE("dup_type")};
    assert_int_equal(stele_plugins_load_all(same_type, 2, &api, &ps, &err),
                     STELE_ECONFLICT);
    assert_string_equal(err.msg, FIXTURE("dup_type") ": aggregate "
                                                     "'fixture.Counter' is "
                                                     "already defined by " //
                        FIXTURE("good_aggregate"));
    assert_string_equal(logged, "init fixture_counter\nfini fixture_counter\n");

    /* The same file twice is a duplicate too. */
    char *twice[] = {FIXTURE("good_query"), FIXTURE("good_query")};
    assert_int_equal(stele_plugins_load_all(twice, 2, &api, &ps, &err),
                     STELE_ECONFLICT);
}

static char *inspect(const char *path, int expect_rc, stele_err *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(stele_plugin_inspect(path, out, err), expect_rc);
    fclose(out);
    return text;
}

static void test_inspect_prints_each_kind_without_init(void **state)
{
    (void)state;
    stele_err err = {0};
    char abi[128], want[2048];
    snprintf(abi, sizeof abi,
             "abi: " ABI " (host " ABI "), fingerprint %016" PRIx64
             " (matches)\n",
             (uint64_t)STELE_ABI_FINGERPRINT);
    char *s = inspect(FIXTURE("good_aggregate"), 0, &err);
    snprintf(want, sizeof want, "%s%s%s",
             "plugin: " FIXTURE("good_aggregate") "\n"
                                                  "name: fixture_counter\n"
                                                  "version: 1.2.3\n"
                                                  "kind: aggregate\n",
             abi,
             "init: yes, fini: yes\n"
             "aggregate: fixture.Counter\n"
             "  state: fixture.CounterState v1\n"
             "  state_version: 3\n"
             "  commands:\n"
             "    fixture.Increment v1\n"
             "    fixture.Reset v2\n"
             "  events:\n"
             "    fixture.Incremented v1\n");
    assert_string_equal(s, want);
    free(s);

    s = inspect(FIXTURE("good_projector"), 0, &err);
    assert_non_null(strstr(s, abi));
    assert_non_null(strstr(s, "init: yes, fini: yes\n"
                              "projector: counters\n"
                              "  version: 2\n"
                              "  events:\n"
                              "    fixture.Incremented v1\n"
                              "    other.Happened v2\n"
                              "  tables:\n"
                              "    counters\n"
                              "      id     TEXT KEY\n"
                              "      total  INT  FILTER SORT\n"
                              "      note   TEXT NULLABLE\n"
                              "    counter_history\n"
                              "      id      TEXT KEY\n"
                              "      seq     INT  KEY SORT\n"
                              "      amount  REAL\n"
                              "      raw     BLOB\n"));
    free(s);

    s = inspect(FIXTURE("good_query"), 0, &err);
    assert_non_null(strstr(s, "init: no, fini: no\n"
                              "query: counter_by_id\n"
                              "  params: fixture.CounterById v1\n"
                              "  single: yes\n"));
    free(s);

    s = inspect(FIXTURE("good_upcaster"), 0, &err);
    assert_non_null(strstr(s, "upcaster: fixture.Incremented\n"
                              "  versions: 1 -> 2\n"));
    free(s);

    s = inspect(FIXTURE("bad_minor"), STELE_EABI, &err);
    assert_string_equal(s, "");
    free(s);
    assert_string_equal(
        err.msg, FIXTURE("bad_minor") ": ABI 1.7 is newer than host " ABI);
    /* inspect never calls init; bad_init's would fail. */
    s = inspect(FIXTURE("bad_init"), 0, &err);
    free(s);
    assert_string_equal(logged, "");
}

/* The fingerprint a fixture's descriptor carries, read past the host's
 * checks (the edited headers leave the descriptor's own layout alone). */
static uint64_t fingerprint_of(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    void *sym = dlsym(dl, STELE_PLUGIN_ENTRY_SYMBOL);
    assert_non_null(sym);
    stele_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    uint64_t fp = entry()->abi_fingerprint;
    dlclose(dl);
    return fp;
}

/* Built against a copy of plugin.h with get_long and get_double swapped,
 * or with a member inserted into stele_aggregate_def, still claiming the
 * host's ABI: refused for its fingerprint, naming the file, before its
 * name, kind or definition is read (the inserted member would otherwise
 * trip a bound with a pointer read as a count) and before init. */
static void test_plugin_built_against_edited_header_is_refused(void **state)
{
    (void)state;
    const char *paths[] = {FIXTURE("bad_swapped_getters"),
                           FIXTURE("bad_inserted_member")};
    for (size_t i = 0; i < 2; i++) {
        uint64_t theirs = fingerprint_of(paths[i]);
        assert_true(theirs != STELE_ABI_FINGERPRINT);
        char want[512];
        snprintf(want, sizeof want,
                 "%s: built against a different plugin.h (fingerprint "
                 "%016" PRIx64 ", host %016" PRIx64
                 "): rebuild against this host's headers",
                 paths[i], theirs, (uint64_t)STELE_ABI_FINGERPRINT);
        stele_plugin *p = (stele_plugin *)1;
        stele_err err = {0};
        assert_int_equal(stele_plugin_load(paths[i], &api, &p, &err),
                         STELE_EABI);
        assert_null(p);
        assert_string_equal(err.msg, want);
        char *s = inspect(paths[i], STELE_EABI, &err);
        assert_string_equal(s, "");
        free(s);
        assert_string_equal(err.msg, want);
    }
    assert_string_equal(logged, "");
}

/* The fingerprint is checked first: a descriptor whose fingerprint differs
 * is refused for it whatever follows; ABI 1.0 and 1.1 descriptors are of
 * the size they had then, and unchecked. */
static void test_check_reads_fingerprint_before_the_rest(void **state)
{
    (void)state;
    stele_plugin_descriptor d = {STELE_DESCRIPTOR_HEADER,
                                 .kind = (stele_plugin_kind)77};
    d.abi_fingerprint ^= 1;
    char want[256];
    snprintf(want, sizeof want,
             "built against a different plugin.h (fingerprint %016" PRIx64
             ", host %016" PRIx64 "): rebuild against this host's headers",
             (uint64_t)(STELE_ABI_FINGERPRINT ^ 1),
             (uint64_t)STELE_ABI_FINGERPRINT);
    assert_refused(&d, want);

    size_t old_size = offsetof(stele_plugin_descriptor, abi_fingerprint);
    d.abi_minor = 1; /* claims 1.1 with a 1.2 descriptor's size */
    snprintf(want, sizeof want,
             "descriptor size %zu larger than ABI 1.1's %zu" LAYOUT, sizeof d,
             old_size);
    assert_refused(&d, want);
    d.size = 40;
    snprintf(want, sizeof want,
             "descriptor size 40 smaller than ABI 1.1's %zu" LAYOUT, old_size);
    assert_refused(&d, want);
    d.size = (uint32_t)old_size; /* a real 1.1 descriptor: not checked */
    assert_refused(&d, "descriptor has no name");

    /* What the host compares with: its own for its minor, none before 1.2
     * nor past its own. */
    assert_true(stele_plugin_known_fingerprint(STELE_ABI_MINOR) ==
                STELE_ABI_FINGERPRINT);
    assert_true(stele_plugin_known_fingerprint(1) == 0);
    assert_true(stele_plugin_known_fingerprint(STELE_ABI_MINOR + 1) == 0);
}

/* A plugin built against ABI 1.1 (its descriptor ends before the
 * fingerprint) loads, with a warning, and inspect says it is unchecked. */
static void test_plugin_built_before_fingerprints_loads_unchecked(void **state)
{
    (void)state;
    stele_plugin *p;
    stele_err err = {0};
    if (stele_plugin_load(FIXTURE("old_abi11"), &api, &p, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(p->desc->abi_minor, 1);
    assert_string_equal(p->desc->def.aggregate->type, "fixture.Old");
    assert_string_equal(logged, FIXTURE("old_abi11") ": built before ABI "
                                                     "fingerprints (ABI "
                                                     "1.1): unchecked; "
                                                     "rebuild it against "
                                                     "this host's headers\n"
                                                     "init fixture_old\n");
    stele_plugin_unload(p);

    char *s = inspect(FIXTURE("old_abi11"), 0, &err);
    assert_non_null(strstr(s, "kind: aggregate\n"
                              "abi: 1.1 (host " ABI
                              "), unchecked: built before fingerprints\n"
                              "init: yes, fini: yes\n"));
    free(s);
}

static void test_api_init_fills_header_and_log_only(void **state)
{
    (void)state;
    stele_host_api a;
    memset(&a, 0, sizeof a);
    stele_plugin_api_init(&a);
    assert_int_equal(a.size, sizeof a);
    assert_int_equal(a.abi_major, STELE_ABI_MAJOR);
    assert_int_equal(a.abi_minor, STELE_ABI_MINOR);
    assert_true(a.abi_fingerprint == STELE_ABI_FINGERPRINT);
    assert_non_null(a.log);
    assert_null(a.get_long);
    assert_null(a.emit);

    /* log writes one "[plugin] level: msg" line to stderr. */
    char tmpl[] = "/tmp/stele_test_plugin_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    a.log(STELE_LOG_WARN, "low balance on %s", "acct-1");
    a.log(STELE_LOG_DEBUG, "trailing newline\n");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[256] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(tmpl);
    assert_string_equal(buf, "[plugin] warn: low balance on acct-1\n"
                             "[plugin] debug: trailing newline\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_good_plugins_load_init_and_fini, reset),
        cmocka_unit_test_setup(test_refusals_name_the_file_and_the_field,
                               reset),
        cmocka_unit_test_setup(test_plugin_for_another_machine_names_it, reset),
        cmocka_unit_test_setup(test_check_refuses_incomplete_aggregates, reset),
        cmocka_unit_test_setup(test_check_refuses_bad_projectors, reset),
        cmocka_unit_test_setup(test_check_refuses_bad_queries_and_upcasters,
                               reset),
        cmocka_unit_test_setup(
            test_load_all_loads_in_order_and_unloads_in_reverse, reset),
        cmocka_unit_test_setup(test_load_all_failure_unloads_everything, reset),
        cmocka_unit_test_setup(test_load_all_refuses_duplicates_before_init,
                               reset),
        cmocka_unit_test_setup(test_inspect_prints_each_kind_without_init,
                               reset),
        cmocka_unit_test_setup(
            test_plugin_built_against_edited_header_is_refused, reset),
        cmocka_unit_test_setup(test_check_reads_fingerprint_before_the_rest,
                               reset),
        cmocka_unit_test_setup(
            test_plugin_built_before_fingerprints_loads_unchecked, reset),
        cmocka_unit_test_setup(test_api_init_fills_header_and_log_only, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
