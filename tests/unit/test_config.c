/* test_config.c — the YAML config: every key, defaults, path resolution,
 * ${VAR} expansion, and each kind of error with its exact file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/stele_test_config_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to <tmpdir>/<name>; returns the path (static buffer). */
static const char *write_config(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static stele_config *load_ok(const char *text)
{
    const char *path = write_config("stele.yaml", text);
    stele_config *cfg = NULL;
    stele_err err = {0};
    int rc = stele_config_load(path, &cfg, &err);
    if (rc)
        fail_msg("unexpected error: %s", err.msg);
    assert_non_null(cfg);
    return cfg;
}

/* Loads text and asserts the error is "<path>:<expected>". */
static void load_fails(const char *text, const char *expected)
{
    const char *path = write_config("stele.yaml", text);
    stele_config *cfg = (stele_config *)1;
    stele_err err = {0};
    char want[1024];
    int rc = stele_config_load(path, &cfg, &err);
    assert_int_equal(rc, STELE_EINVAL);
    assert_int_equal(err.code, STELE_EINVAL);
    assert_null(cfg);
    snprintf(want, sizeof want, "%s:%s", path, expected);
    assert_string_equal(err.msg, want);
}

static void assert_path(const char *got, const char *rel)
{
    char want[512];
    snprintf(want, sizeof want, "%s/%s", tmpdir, rel);
    assert_string_equal(got, want);
}

static void test_full_file_sets_every_key(void **state)
{
    (void)state;
    stele_config *c = load_ok("# the bank\n"
                              "app: bank-1.test_x\n"
                              "data_dir: var/data\n"
                              "schemas: ../schemas\n"
                              "plugins:\n"
                              "  - ../build/plugins/bank_account.so\n"
                              "  - /opt/stele/accounts.so\n"
                              "log:\n"
                              "  backend: kafka\n"
                              "  path: log/x.db\n"
                              "  partitions: 12\n"
                              "  replication_factor: 3\n"
                              "  topic_prefix: prod.bank\n"
                              "  command_retention_ms: 0\n"
                              "  result_retention_ms: 86400000\n"
                              "  kafka:\n"
                              "    bootstrap.servers: 127.0.0.1:9092\n"
                              "    security.protocol: SASL_SSL\n"
                              "    enable.idempotence: true\n"
                              "    linger.ms: 20\n"
                              "store:\n"
                              "  backend: postgres\n"
                              "  path: rm.db\n"
                              "  conninfo: \"host=127.0.0.1 dbname=stele\"\n"
                              "  fillfactor: 75\n"
                              "engine:\n"
                              "  command_batch: 100000\n"
                              "  commit_interval_ms: 0\n"
                              "  projection_batch: 1\n"
                              "  max_value_bytes: 16777216\n"
                              "  reply_timeout_ms: 3600000\n"
                              "  misrouted: reject\n"
                              "  plugin_crash_limit: 1\n"
                              "  plugin_timeout_ms: 0\n"
                              "  shutdown_grace_ms: 250\n"
                              "  isolation: process\n"
                              "http:\n"
                              "  listen: 127.0.0.1:8080\n"
                              "logging:\n"
                              "  level: debug\n"
                              "  format: json\n");
    assert_string_equal(c->app, "bank-1.test_x");
    assert_path(c->data_dir, "var/data");
    assert_path(c->schemas_dir, "../schemas");
    assert_int_equal(c->n_plugins, 2);
    assert_path(c->plugins[0], "../build/plugins/bank_account.so");
    assert_string_equal(c->plugins[1], "/opt/stele/accounts.so");
    assert_string_equal(c->log_backend, "kafka");
    assert_path(c->log_path, "log/x.db");
    assert_int_equal(c->partitions, 12);
    assert_int_equal(c->replication_factor, 3);
    assert_string_equal(c->topic_prefix, "prod.bank");
    assert_int_equal(c->command_retention_ms, 0);
    assert_int_equal(c->result_retention_ms, 86400000);
    assert_int_equal(c->n_log_props, 4);
    assert_string_equal(c->log_props[0].key, "bootstrap.servers");
    assert_string_equal(c->log_props[0].value, "127.0.0.1:9092");
    assert_string_equal(c->log_props[1].key, "security.protocol");
    assert_string_equal(c->log_props[1].value, "SASL_SSL");
    assert_string_equal(c->log_props[2].value, "true");
    assert_string_equal(c->log_props[3].value, "20");
    assert_string_equal(c->store_backend, "postgres");
    assert_path(c->store_path, "rm.db");
    assert_string_equal(c->store_conninfo, "host=127.0.0.1 dbname=stele");
    assert_int_equal(c->store_fillfactor, 75);
    assert_int_equal(c->command_batch, 100000);
    assert_int_equal(c->commit_interval_ms, 0);
    assert_int_equal(c->projection_batch, 1);
    assert_int_equal(c->max_value_bytes, 16777216);
    assert_int_equal(c->reply_timeout_ms, 3600000);
    assert_true(c->misrouted_reject);
    assert_int_equal(c->plugin_crash_limit, 1);
    assert_int_equal(c->plugin_timeout_ms, 0);
    assert_int_equal(c->shutdown_grace_ms, 250);
    assert_true(c->isolate_plugins);
    assert_string_equal(c->http_listen, "127.0.0.1:8080");
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->log_format, "json");
    assert_path(c->path, "stele.yaml");
    stele_config_free(c);
}

static void test_only_app_gives_defaults(void **state)
{
    (void)state;
    stele_config *c = load_ok("app: bank\n");
    assert_string_equal(c->app, "bank");
    assert_path(c->data_dir, "data");
    assert_path(c->schemas_dir, "schemas");
    assert_int_equal(c->n_plugins, 0);
    assert_null(c->plugins);
    assert_string_equal(c->log_backend, "sqlite");
    assert_path(c->log_path, "data/log.db");
    assert_int_equal(c->partitions, 4);
    assert_int_equal(c->replication_factor, 0);
    assert_string_equal(c->topic_prefix, c->app);
    assert_int_equal(c->command_retention_ms, 604800000);
    assert_int_equal(c->result_retention_ms, 604800000);
    assert_int_equal(c->max_poll_interval_ms, 300000);
    assert_int_equal(c->n_log_props, 0);
    assert_string_equal(c->store_backend, "sqlite");
    assert_path(c->store_path, "data/readmodels.db");
    assert_null(c->store_conninfo);
    assert_int_equal(c->store_fillfactor, 90);
    assert_int_equal(c->command_batch, 1000);
    assert_int_equal(c->commit_interval_ms, 5);
    assert_int_equal(c->projection_batch, 1000);
    assert_int_equal(c->max_value_bytes, 1048576);
    assert_false(c->misrouted_reject);
    assert_int_equal(c->reply_timeout_ms, 10000);
    assert_int_equal(c->plugin_crash_limit, 3);
    assert_int_equal(c->plugin_timeout_ms, 10000);
    assert_int_equal(c->shutdown_grace_ms, 5000);
    assert_false(c->isolate_plugins);
    assert_null(c->http_listen);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->log_format, "text");
    stele_config_free(c);
}

static void test_empty_sections_keep_defaults(void **state)
{
    (void)state;
    stele_config *c = load_ok("app: bank\nplugins:\nlog:\nstore: ~\n"
                              "engine: {}\nhttp:\nlogging:\n");
    assert_int_equal(c->n_plugins, 0);
    assert_string_equal(c->log_backend, "sqlite");
    assert_int_equal(c->partitions, 4);
    assert_null(c->http_listen);
    stele_config_free(c);
}

static void test_log_and_store_paths_default_under_data_dir(void **state)
{
    (void)state;
    stele_config *c = load_ok("app: bank\ndata_dir: /srv/stele\n");
    assert_string_equal(c->data_dir, "/srv/stele");
    assert_string_equal(c->log_path, "/srv/stele/log.db");
    assert_string_equal(c->store_path, "/srv/stele/readmodels.db");
    stele_config_free(c);
}

static void test_paths_resolve_against_config_dir_not_cwd(void **state)
{
    (void)state;
    char sub[300], path[512], cwd[512];
    snprintf(sub, sizeof sub, "%s/conf", tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    const char *p =
        write_config("conf/stele.yaml", "app: bank\nlog:\n  path: ../log.db\n"
                                        "plugins: [a.so]\n");
    snprintf(path, sizeof path, "%s", p);
    stele_config *c = NULL;
    stele_err err = {0};
    assert_int_equal(stele_config_load(path, &c, &err), 0);
    assert_path(c->data_dir, "conf/data");
    assert_path(c->log_path, "conf/../log.db");
    assert_path(c->store_path, "conf/data/readmodels.db");
    assert_path(c->plugins[0], "conf/a.so");
    stele_config_free(c);

    /* A config named without a directory: paths get "./" so that dlopen
     * does not search the library path for a plugin. */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(sub), 0);
    assert_int_equal(stele_config_load("stele.yaml", &c, &err), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(c->data_dir, "./data");
    assert_string_equal(c->plugins[0], "./a.so");
    stele_config_free(c);
}

static void test_env_vars_expand_in_values(void **state)
{
    (void)state;
    setenv("STELE_T_PASS", "s3cr$t", 1);
    setenv("STELE_T_PARTS", "16", 1);
    setenv("STELE_T_EMPTY", "", 1);
    unsetenv("STELE_T_UNSET");
    stele_config *c =
        load_ok("app: ${STELE_T_UNSET:-bank}\n"
                "log:\n"
                "  partitions: ${STELE_T_PARTS}\n"
                "  kafka:\n"
                "    sasl.password: ${STELE_T_PASS}\n"
                "    client.id: a${STELE_T_EMPTY:-b}c$${NOT_A_VAR}$d$\n"
                "store:\n"
                "  backend: postgres\n"
                "  conninfo: \"host=db password=${STELE_T_PASS} "
                "x=${STELE_T_EMPTY}\"\n");
    assert_string_equal(c->app, "bank");
    assert_int_equal(c->partitions, 16);
    assert_string_equal(c->log_props[0].value, "s3cr$t");
    assert_string_equal(c->log_props[1].value, "abc${NOT_A_VAR}$d$");
    assert_string_equal(c->store_conninfo, "host=db password=s3cr$t x=");
    stele_config_free(c);
}

static void test_env_errors_name_the_variable(void **state)
{
    (void)state;
    unsetenv("STELE_T_UNSET");
    load_fails("app: bank\nstore:\n  backend: postgres\n"
               "  conninfo: password=${STELE_T_UNSET}\n",
               "4: environment variable 'STELE_T_UNSET' is not set (in "
               "'store.conninfo')");
    load_fails("app: bank\ndata_dir: ${HOME\n",
               "2: unterminated '${' in 'data_dir'");
    load_fails("app: bank\ndata_dir: ${1X}\n",
               "2: bad reference '${1X}' in 'data_dir' (expected ${NAME} or "
               "${NAME:-default})");
    load_fails("app: bank\ndata_dir: ${A-b}\n",
               "2: bad reference '${A-b}' in 'data_dir' (expected ${NAME} or "
               "${NAME:-default})");
    setenv("STELE_T_PARTS", "many", 1);
    load_fails("app: bank\nlog:\n  partitions: ${STELE_T_PARTS}\n",
               "3: 'log.partitions' must be an integer in 1..10000, got "
               "'many'");
}

static void test_unknown_keys_are_errors(void **state)
{
    (void)state;
    load_fails("app: bank\nlog:\n  backend: sqlite\n\n  partitons: 4\n",
               "5: unknown key 'partitons' in 'log' (expected one of: "
               "backend, path, partitions, replication_factor, "
               "topic_prefix, kafka, conninfo, command_retention_ms, "
               "result_retention_ms, max_poll_interval_ms)");
    load_fails("app: bank\nplugin: [a.so]\n",
               "2: unknown key 'plugin' (expected one of: app, data_dir, "
               "schemas, plugins, log, store, engine, http, logging, "
               "registry)");
    load_fails("app: bank\nengine:\n  batch: 3\n",
               "3: unknown key 'batch' in 'engine' (expected one of: "
               "command_batch, commit_interval_ms, projection_batch, "
               "max_value_bytes, reply_timeout_ms, misrouted, "
               "plugin_crash_limit, plugin_timeout_ms, shutdown_grace_ms, "
               "isolation)");
    load_fails("app: bank\nhttp:\n  port: 80\n",
               "3: unknown key 'port' in 'http' (expected one of: listen)");
    load_fails("app: bank\n[a]: 1\n", "2: keys must be scalars, got a "
                                      "sequence");
}

static void test_wrong_types_are_errors(void **state)
{
    (void)state;
    load_fails("app:\n  - bank\n", "2: 'app' must be a scalar, got a "
                                   "sequence");
    load_fails("app: bank\nlog: sqlite\n",
               "2: 'log' must be a mapping, got a scalar");
    load_fails("app: bank\nplugins: a.so\n",
               "2: 'plugins' must be a sequence, got a scalar");
    load_fails("app: bank\nplugins:\n  - a.so\n  - {x: 1}\n",
               "4: 'plugins[1]' must be a scalar, got a mapping");
    load_fails("app: bank\nlog:\n  kafka: [a]\n",
               "3: 'log.kafka' must be a mapping, got a sequence");
    load_fails("app: bank\nlog:\n  kafka:\n    acks: [1]\n",
               "4: 'log.kafka.acks' must be a scalar, got a sequence");
    load_fails("app: bank\nlog:\n  kafka:\n    acks:\n",
               "4: 'log.kafka.acks' has no value");
    load_fails("- app: bank\n", "1: the config must be a mapping, got a "
                                "sequence");
    load_fails("app: bank\ndata_dir:\n", "2: 'data_dir' has no value");
    load_fails("app: bank\ndata_dir: ''\n", "2: 'data_dir' is empty");
}

static void test_bad_values_are_errors(void **state)
{
    (void)state;
    load_fails("app: bank\nlog:\n  partitions: 0\n",
               "3: 'log.partitions' must be an integer in 1..10000, got '0'");
    load_fails("app: bank\nlog:\n  partitions: 10001\n",
               "3: 'log.partitions' must be an integer in 1..10000, got "
               "'10001'");
    load_fails("app: bank\nlog:\n  partitions: 0x10\n",
               "3: 'log.partitions' must be an integer in 1..10000, got "
               "'0x10'");
    load_fails("app: bank\nengine:\n  max_value_bytes: 99999999999999999999\n",
               "3: 'engine.max_value_bytes' must be an integer in "
               "1024..16777216, got '99999999999999999999'");
    load_fails("app: bank\nlog:\n  command_retention_ms: -1\n",
               "3: 'log.command_retention_ms' must be an integer in "
               "0..315360000000, got '-1'");
    load_fails("app: bank\nlog:\n  result_retention_ms: 1e3\n",
               "3: 'log.result_retention_ms' must be an integer in "
               "0..315360000000, got '1e3'");
    load_fails("app: bank\nstore:\n  fillfactor: 5\n",
               "3: 'store.fillfactor' must be an integer in 10..100, got '5'");
    load_fails("app: bank\nengine:\n  commit_interval_ms: -1\n",
               "3: 'engine.commit_interval_ms' must be an integer in "
               "0..60000, got '-1'");
    load_fails("app: bank\nlog:\n  backend: mysql\n",
               "3: 'log.backend' must be one of sqlite, kafka, postgres, got "
               "'mysql'");
    /* before, 100,000 levels took libyaml 30 s to load first */
    char *deep = malloc(300000);
    assert_non_null(deep);
    int at = snprintf(deep, 300000, "app: bank\nlog:\n  partitions: ");
    for (int i = 0; i < 100000; i++)
        deep[at++] = '[';
    for (int i = 0; i < 100000; i++)
        deep[at++] = ']';
    deep[at++] = '\n';
    deep[at] = '\0';
    load_fails(deep, "3: nested more than 64 levels deep");
    free(deep);
    load_fails("app: bank\ndata_dir: ${STELE_NOPE:-${HOME}}\n",
               "2: the default in '${STELE_NOPE}' refers to another variable, "
               "which is not supported (in 'data_dir')");
    load_fails("app: bank\nengine:\n  plugin_timeout_ms: -1\n",
               "3: 'engine.plugin_timeout_ms' must be an integer in "
               "0..3600000, got '-1'");
    load_fails("app: bank\nengine:\n  misrouted: decide\n",
               "3: 'engine.misrouted' must be one of forward, reject, got "
               "'decide'");
    load_fails("app: bank\nengine:\n  misrouted: forward\n"
               "  isolation: thread\n",
               "4: 'engine.isolation' must be one of none, process, got "
               "'thread'");
    load_fails("app: bank\nlogging:\n  format: xml\n",
               "3: 'logging.format' must be one of text, json, got 'xml'");
    load_fails("app: bank\nlogging:\n  level: verbose\n",
               "3: 'logging.level' must be one of error, warn, info, debug, "
               "got 'verbose'");
    load_fails("app: my bank\n",
               "1: 'app' may hold only letters, digits, '_', '.' and '-' "
               "(topic names start with it), got 'my bank'");
    load_fails("app: bank\nhttp:\n  listen: 8080\n",
               "3: 'http.listen' must be host:port (port 0..65535, IPv6 in "
               "brackets), got '8080'");
    load_fails("app: bank\nhttp:\n  listen: ::1:80\n",
               "3: 'http.listen' must be host:port (port 0..65535, IPv6 in "
               "brackets), got '::1:80'");
    stele_config *c = load_ok("app: bank\nhttp:\n  listen: '[::1]:0'\n");
    assert_string_equal(c->http_listen, "[::1]:0");
    stele_config_free(c);
}

static void test_backends_need_their_settings(void **state)
{
    (void)state;
    load_fails("app: bank\nstore:\n  backend: postgres\n",
               "3: 'store.backend' is postgres but 'store.conninfo' is not "
               "set");
    load_fails("app: bank\nlog:\n  backend: kafka\n  kafka:\n    acks: all\n",
               "3: 'log.backend' is kafka but 'log.kafka' has no "
               "bootstrap.servers");
    load_fails("app: bank\nlog:\n  backend: kafka\n  kafka:\n"
               "    bootstrap.servers: b:9092\n  max_poll_interval_ms: 1000\n",
               "6: 'log.max_poll_interval_ms' applies to the postgres "
               "backend (Kafka: set max.poll.interval.ms under 'log.kafka')");
    stele_config *c = load_ok("app: bank\nlog:\n  backend: postgres\n"
                              "  max_poll_interval_ms: 60000\n");
    assert_int_equal(c->max_poll_interval_ms, 60000);
    stele_config_free(c);
}

static void test_duplicate_keys_are_errors(void **state)
{
    (void)state;
    load_fails("app: bank\ndata_dir: a\napp: other\n",
               "3: duplicate key 'app' (first at line 1)");
    load_fails("app: bank\nlog:\n  partitions: 2\n  partitions: 3\n",
               "4: duplicate key 'log.partitions' (first at line 3)");
    load_fails("app: bank\nlog:\n  kafka:\n    acks: 1\n    acks: all\n",
               "5: duplicate key 'log.kafka.acks'");
}

static void test_missing_app_is_an_error(void **state)
{
    (void)state;
    load_fails("# comment\n\ndata_dir: x\n", "3: missing required key 'app'");
    load_fails("", "1: the config is empty (missing required key 'app')");
    load_fails("# only a comment\n",
               "1: the config is empty (missing required key 'app')");
}

static void test_yaml_syntax_errors_report_libyaml_line(void **state)
{
    (void)state;
    load_fails("app: bank\nlog:\n  path: a\n   partitions: 3\n",
               "4: mapping values are not allowed in this context");
    load_fails("app: bank\nlog: [a, b\n",
               "3: did not find expected ',' or ']' (while parsing a flow "
               "sequence at line 2)");
    load_fails("app: bank\n---\napp: other\n",
               "3: more than one YAML document");
}

static void test_file_errors(void **state)
{
    (void)state;
    char path[400];
    stele_config *c = NULL;
    stele_err err = {0};
    snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
    assert_int_equal(stele_config_load(path, &c, &err), STELE_ENOTFOUND);
    assert_null(c);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
             path);
    assert_string_equal(err.msg, want);

    /* Larger than 1 MiB: refused before parsing. */
    snprintf(path, sizeof path, "%s/big.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("app: bank\n", f);
    for (int i = 0; i < 1024 * 1024 / 8; i++)
        fputs("# pad  \n", f);
    fclose(f);
    assert_int_equal(stele_config_load(path, &c, &err), STELE_EINVAL);
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes", path);
    assert_string_equal(err.msg, want);
}

static void test_registry_defaults_to_embedded(void **state)
{
    (void)state;
    stele_config *c = load_ok("app: bank\n");
    assert_string_equal(c->registry_backend, "embedded");
    assert_string_equal(c->registry_subject_strategy, "record");
    assert_string_equal(c->registry_compatibility, "BACKWARD_TRANSITIVE");
    assert_true(c->registry_auto_register);
    assert_int_equal(c->registry_timeout_ms, 10000);
    assert_int_equal(c->registry_retries, 4);
    assert_null(c->registry_url);
    stele_config_free(c);
}

static void test_registry_rest_sets_every_key(void **state)
{
    (void)state;
    setenv("STELE_TEST_REG_PW", "s3cret", 1);
    stele_config *c = load_ok("app: bank\n"
                              "registry:\n"
                              "  backend: rest\n"
                              "  url: https://registry:8081/apis/ccompat/v7\n"
                              "  username: stele\n"
                              "  password: ${STELE_TEST_REG_PW}\n"
                              "  ca_file: tls/ca.pem\n"
                              "  cert_file: tls/client.pem\n"
                              "  key_file: /etc/stele/client.key\n"
                              "  timeout_ms: 2500\n"
                              "  retries: 7\n"
                              "  subject_strategy: topic_record\n"
                              "  compatibility: FULL_TRANSITIVE\n"
                              "  auto_register: false\n");
    assert_false(c->registry_auto_register);
    assert_string_equal(c->registry_backend, "rest");
    assert_string_equal(c->registry_url,
                        "https://registry:8081/apis/ccompat/v7");
    assert_string_equal(c->registry_username, "stele");
    assert_string_equal(c->registry_password, "s3cret");
    assert_path(c->registry_ca_file, "tls/ca.pem");
    assert_path(c->registry_cert_file, "tls/client.pem");
    assert_string_equal(c->registry_key_file, "/etc/stele/client.key");
    assert_int_equal(c->registry_timeout_ms, 2500);
    assert_int_equal(c->registry_retries, 7);
    assert_string_equal(c->registry_subject_strategy, "topic_record");
    assert_string_equal(c->registry_compatibility, "FULL_TRANSITIVE");
    stele_config_free(c);
}

static void test_registry_errors_name_line(void **state)
{
    (void)state;
    load_fails("app: bank\nregistry:\n  backend: rest\n",
               "3: 'registry.backend' is rest but 'registry.url' is not set");
    load_fails("app: bank\nregistry:\n  urll: http://x\n",
               "3: unknown key 'urll' in 'registry' (expected one of: "
               "backend, url, username, password, ca_file, cert_file, "
               "key_file, timeout_ms, retries, subject_strategy, "
               "compatibility, auto_register, verify_ms)");
    load_fails("app: bank\nregistry:\n  auto_register: yes\n",
               "3: 'registry.auto_register' must be true or false, got "
               "'yes'");
    load_fails("app: bank\nregistry:\n  url: ftp://x\n",
               "3: 'registry.url' must start with http:// or https://, got "
               "'ftp://x'");
    load_fails("app: bank\nregistry:\n  subject_strategy: topic_record\n",
               "3: 'registry.subject_strategy' topic_record needs "
               "'registry.backend: rest' (the embedded registry gives each "
               "subject its own ids)");
    load_fails("app: bank\nregistry:\n  backend: rest\n  url: http://x\n"
               "  cert_file: a.pem\n",
               "5: 'registry.cert_file' and 'registry.key_file' go together");
    load_fails("app: bank\nregistry:\n  url: http://x\n  password: p\n",
               "4: 'registry.password' is set but 'registry.username' is not");
    load_fails("app: bank\nregistry:\n  retries: 1000\n",
               "3: 'registry.retries' must be an integer in 0..100, got "
               "'1000'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file_sets_every_key),
        cmocka_unit_test(test_only_app_gives_defaults),
        cmocka_unit_test(test_empty_sections_keep_defaults),
        cmocka_unit_test(test_log_and_store_paths_default_under_data_dir),
        cmocka_unit_test(test_paths_resolve_against_config_dir_not_cwd),
        cmocka_unit_test(test_env_vars_expand_in_values),
        cmocka_unit_test(test_env_errors_name_the_variable),
        cmocka_unit_test(test_unknown_keys_are_errors),
        cmocka_unit_test(test_wrong_types_are_errors),
        cmocka_unit_test(test_bad_values_are_errors),
        cmocka_unit_test(test_backends_need_their_settings),
        cmocka_unit_test(test_duplicate_keys_are_errors),
        cmocka_unit_test(test_missing_app_is_an_error),
        cmocka_unit_test(test_yaml_syntax_errors_report_libyaml_line),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_registry_defaults_to_embedded),
        cmocka_unit_test(test_registry_rest_sets_every_key),
        cmocka_unit_test(test_registry_errors_name_line),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
