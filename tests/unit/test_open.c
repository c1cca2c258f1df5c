/*
 * The composition root (host/open/): the log, store and registry a config
 * names, and the refusal of a backend the binary was built without.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "open/open.h"

static char dir[64];

static stele_config *load(const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stele.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "app: bank\ndata_dir: %s/data\n%s", dir, body);
    fclose(f);
    stele_config *cfg = NULL;
    stele_err err = {0};
    if (stele_config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-open-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* The defaults: the embedded log, store and registry, their folders made. */
static void test_the_default_config_opens_the_embedded_parts(void **state)
{
    (void)state;
    stele_config *cfg = load("");
    stele_err err = {0};
    stele_log *log = NULL;
    stele_store *store = NULL;
    stele_registry *reg = NULL;
    stele_open_opts o = {.role = "test"};
    assert_int_equal(stele_open_log(cfg, &o, &log, &err), 0);
    assert_string_equal(stele_log_backend_name(log), "sqlite");
    stele_log_caps caps = stele_log_capabilities(log);
    assert_true(caps.local);
    assert_false(caps.replies_topic);
    assert_true(caps.deletes_records);
    assert_int_equal(stele_open_store(cfg, &o, &store, &err), 0);
    assert_true(stele_open_registry_needs_log(cfg));
    assert_int_equal(stele_open_registry(cfg, log, &reg, &err), 0);
    assert_int_equal(access(cfg->log_path, F_OK), 0);
    assert_int_equal(access(cfg->store_path, F_OK), 0);
    stele_registry_close(reg);
    stele_store_close(store);
    stele_log_close(log);
    stele_config_free(cfg);
}

/* A REST registry needs no log; its options come from the config. */
static void test_a_rest_registry_is_opened_without_the_log(void **state)
{
    (void)state;
    stele_config *cfg = load("registry:\n  backend: rest\n"
                             "  url: http://127.0.0.1:1\n"
                             "  subject_strategy: topic_record\n");
    assert_false(stele_open_registry_needs_log(cfg));
    stele_registry *reg = NULL;
    stele_err err = {0};
    assert_int_equal(stele_open_registry(cfg, NULL, &reg, &err), 0);
    assert_int_equal(stele_registry_strategy(reg), STELE_SUBJECT_TOPIC_RECORD);
    stele_registry_close(reg);
    stele_config_free(cfg);
}

/* A backend this binary lacks is refused in one line that says how to
 * build it; one it has is at least tried (no server here: a connection
 * error, not the refusal). */
static void expect_backend(const char *section, const char *name, bool built,
                           const char *option)
{
    char body[256];
    if (strcmp(name, "kafka") == 0)
        snprintf(body, sizeof body,
                 "%s:\n  backend: kafka\n  kafka:\n"
                 "    bootstrap.servers: 127.0.0.1:1\n",
                 section);
    else
        snprintf(body, sizeof body,
                 "%s:\n  backend: postgres\n"
                 "  conninfo: host=127.0.0.1 port=1 connect_timeout=1\n",
                 section);
    stele_config *cfg = load(body);
    stele_err err = {0};
    stele_open_opts o = {.role = "test"};
    int rc;
    if (strcmp(section, "log") == 0) {
        stele_log *log = NULL;
        rc = stele_open_log(cfg, &o, &log, &err);
        stele_log_close(log);
        assert_int_equal(stele_open_has_log_backend(name), built);
    } else {
        stele_store *s = NULL;
        rc = stele_open_store(cfg, &o, &s, &err);
        if (rc == 0)
            stele_store_close(s);
        assert_int_equal(stele_open_has_store_backend(name), built);
    }
    if (built) {
        assert_null(strstr(err.msg, "built without"));
    } else {
        assert_int_equal(rc, STELE_EINVAL);
        assert_non_null(strstr(err.msg, "built without"));
        assert_non_null(strstr(err.msg, option));
        assert_null(strchr(err.msg, '\n'));
    }
    stele_config_free(cfg);
}

static void
test_a_backend_not_built_is_refused_saying_how_to_build_it(void **state)
{
    (void)state;
#ifdef STELE_WITH_KAFKA
    bool kafka = true;
#else
    bool kafka = false;
#endif
#ifdef STELE_WITH_POSTGRES
    bool pg = true;
#else
    bool pg = false;
#endif
    /* The Kafka client connects lazily: opening succeeds with no broker.
     * Only the refusal is checked for it. */
    if (!kafka)
        expect_backend("log", "kafka", false, "-DSTELE_KAFKA=ON");
    expect_backend("log", "postgres", pg, "-DSTELE_POSTGRES=ON");
    expect_backend("store", "postgres", pg, "-DSTELE_POSTGRES=ON");
    assert_true(stele_open_has_log_backend("sqlite"));
    assert_false(stele_open_has_log_backend("rabbitmq"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_the_default_config_opens_the_embedded_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_rest_registry_is_opened_without_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_backend_not_built_is_refused_saying_how_to_build_it, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
