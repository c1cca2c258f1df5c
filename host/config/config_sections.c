/*
 * config_sections.c — the config document walked section by section into a
 * stele_config.
 *
 * Each mapping's keys are checked against the keys that section allows
 * before any value is read, so the first mistake in the file is the one
 * reported.
 */
#include "config_sections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* librdkafka has a few hundred properties; this is far above any use. */
#define KAFKA_MAX_PROPS 1024
#define SECTION_MAX_KEYS 16

static const char *const root_keys[] = {
    "app",    "data_dir", "schemas", "plugins",  "log", "store",
    "engine", "http",     "logging", "registry", NULL};
static const char *const log_keys[] = {"backend",
                                       "path",
                                       "partitions",
                                       "replication_factor",
                                       "topic_prefix",
                                       "kafka",
                                       "conninfo",
                                       "command_retention_ms",
                                       "result_retention_ms",
                                       "max_poll_interval_ms",
                                       NULL};
static const char *const store_keys[] = {"backend", "path", "conninfo",
                                         "fillfactor", NULL};
static const char *const engine_keys[] = {"command_batch",
                                          "commit_interval_ms",
                                          "projection_batch",
                                          "max_value_bytes",
                                          "reply_timeout_ms",
                                          "misrouted",
                                          "plugin_crash_limit",
                                          "plugin_timeout_ms",
                                          "shutdown_grace_ms",
                                          "isolation",
                                          NULL};
static const char *const misrouted_modes[] = {"forward", "reject", NULL};
static const char *const isolation_modes[] = {"none", "process", NULL};
static const char *const http_keys[] = {"listen", NULL};
static const char *const logging_keys[] = {"level", "format", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const registry_keys[] = {"backend",       "url",
                                            "username",      "password",
                                            "ca_file",       "cert_file",
                                            "key_file",      "timeout_ms",
                                            "retries",       "subject_strategy",
                                            "compatibility", "auto_register",
                                            "verify_ms",     NULL};
static const char *const registry_backends[] = {"embedded", "rest", NULL};
static const char *const subject_strategies[] = {"record", "topic_record",
                                                 NULL};
static const char *const compat_modes[] = {"NONE",
                                           "BACKWARD",
                                           "BACKWARD_TRANSITIVE",
                                           "FORWARD",
                                           "FORWARD_TRANSITIVE",
                                           "FULL",
                                           "FULL_TRANSITIVE",
                                           NULL};

static const char *const log_backends[] = {"sqlite", "kafka", "postgres", NULL};
static const char *const store_backends[] = {"sqlite", "postgres", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug",
                                         NULL};

/* The keys found in one mapping, by their index in the section's key list. */
typedef struct fields {
    const char *where; /* "log"; NULL at the top level */
    const char *const *names;
    yaml_node_t *key[SECTION_MAX_KEYS];
    yaml_node_t *val[SECTION_MAX_KEYS];
} fields;

static yaml_node_t *field(const fields *f, const char *name)
{
    for (size_t i = 0; f->names[i]; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->val[i];
    return NULL;
}

static void join_names(const char *const *names, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
                              names[i]);
}

/* Checks that map's keys are scalars, known and unique, and records each
 * key's value node in f. */
static int collect(cfg_loader *L, yaml_node_t *map, fields *f)
{
    memset(f->key, 0, sizeof f->key);
    memset(f->val, 0, sizeof f->val);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return cfg_fail(L, k, "keys%s%s%s must be scalars, got a %s",
                            f->where ? " in '" : "", f->where ? f->where : "",
                            f->where ? "'" : "", cfg_node_kind(k));
        const char *name = (const char *)k->data.scalar.value;
        size_t i = 0;
        while (f->names[i] && strcmp(f->names[i], name) != 0)
            i++;
        if (!f->names[i]) {
            char expected[256];
            join_names(f->names, expected, sizeof expected);
            if (f->where)
                return cfg_fail(L, k,
                                "unknown key '%s' in '%s' (expected one of: "
                                "%s)",
                                name, f->where, expected);
            return cfg_fail(L, k, "unknown key '%s' (expected one of: %s)",
                            name, expected);
        }
        if (f->key[i])
            return cfg_fail(L, k, "duplicate key '%s%s%s' (first at line %lu)",
                            f->where ? f->where : "", f->where ? "." : "", name,
                            (unsigned long)f->key[i]->start_mark.line + 1);
        f->key[i] = k;
        f->val[i] = v;
    }
    return 0;
}

/* A section's mapping, or NULL when it is absent or empty ("log:"). */
static int section(cfg_loader *L, const fields *root, const char *name,
                   yaml_node_t **out)
{
    yaml_node_t *n = field(root, name);
    *out = NULL;
    if (!n || cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return cfg_fail(L, n, "'%s' must be a mapping, got a %s", name,
                        cfg_node_kind(n));
    *out = n;
    return 0;
}

static int read_int32(cfg_loader *L, yaml_node_t *n, const char *what,
                      int64_t min, int64_t max, int32_t *out)
{
    int64_t v;
    if (!n)
        return 0;
    int rc = cfg_get_int(L, n, what, min, max, &v);
    if (rc == 0)
        *out = (int32_t)v;
    return rc;
}

static int load_log(cfg_loader *L, const fields *root)
{
    stele_config *c = L->cfg;
    yaml_node_t *map;
    fields f = {.where = "log", .names = log_keys};
    int rc = section(L, root, "log", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    yaml_node_t *n;
    if ((n = field(&f, "backend"))) {
        free(c->log_backend);
        c->log_backend = NULL;
        if ((rc = cfg_get_choice(L, n, "log.backend", log_backends,
                                 &c->log_backend)))
            return rc;
    }
    if ((n = field(&f, "path")) &&
        (rc = cfg_get_path(L, n, "log.path", &c->log_path)))
        return rc;
    if ((rc = read_int32(L, field(&f, "partitions"), "log.partitions", 1, 10000,
                         &c->partitions)))
        return rc;
    if ((rc = read_int32(L, field(&f, "replication_factor"),
                         "log.replication_factor", 1, 1000,
                         &c->replication_factor)))
        return rc;
    if ((n = field(&f, "topic_prefix")) &&
        (rc = cfg_get_app(L, n, "log.topic_prefix", &c->topic_prefix)))
        return rc;
    /* 0: kept forever; at most ten years */
    if ((n = field(&f, "command_retention_ms")) &&
        (rc = cfg_get_int(L, n, "log.command_retention_ms", 0, 315360000000LL,
                          &c->command_retention_ms)))
        return rc;
    if ((n = field(&f, "result_retention_ms")) &&
        (rc = cfg_get_int(L, n, "log.result_retention_ms", 0, 315360000000LL,
                          &c->result_retention_ms)))
        return rc;
    if ((n = field(&f, "conninfo")) &&
        (rc = cfg_get_string(L, n, "log.conninfo", true, &c->log_conninfo)))
        return rc;
    /* 0: never; at most a day */
    if ((n = field(&f, "max_poll_interval_ms"))) {
        if ((rc = cfg_get_int(L, n, "log.max_poll_interval_ms", 0, 86400000,
                              &c->max_poll_interval_ms)))
            return rc;
        if (strcmp(c->log_backend, "postgres") != 0)
            return cfg_fail(L, n,
                            "'log.max_poll_interval_ms' applies to the "
                            "postgres backend (Kafka: set "
                            "max.poll.interval.ms under 'log.kafka')");
    }

    n = field(&f, "kafka");
    if (n && !cfg_is_null(n)) {
        if (n->type != YAML_MAPPING_NODE)
            return cfg_fail(L, n, "'log.kafka' must be a mapping, got a %s",
                            cfg_node_kind(n));
        size_t np =
            (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (np > KAFKA_MAX_PROPS)
            return cfg_fail(L, n, "'log.kafka' has %zu properties (at most %d)",
                            np, KAFKA_MAX_PROPS);
        if (np && !(c->log_props = calloc(np, sizeof *c->log_props)))
            return stele_err_set(L->err, STELE_ENOMEM, "out of memory");
        for (size_t i = 0; i < np; i++) {
            yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(L->doc, p->value);
            if (k->type != YAML_SCALAR_NODE || cfg_is_null(k))
                return cfg_fail(L, k,
                                "keys in 'log.kafka' must be property names");
            const char *key = (const char *)k->data.scalar.value;
            for (size_t j = 0; j < c->n_log_props; j++)
                if (strcmp(c->log_props[j].key, key) == 0)
                    return cfg_fail(L, k, "duplicate key 'log.kafka.%s'", key);
            char what[300];
            snprintf(what, sizeof what, "log.kafka.%s", key);
            if (!(c->log_props[i].key = strdup(key)))
                return stele_err_set(L->err, STELE_ENOMEM, "out of memory");
            c->n_log_props++;
            if ((rc = cfg_get_string(L, v, what, true, &c->log_props[i].value)))
                return rc;
        }
    }
    if (strcmp(c->log_backend, "kafka") == 0) {
        bool servers = false;
        for (size_t i = 0; i < c->n_log_props; i++)
            servers |= strcmp(c->log_props[i].key, "bootstrap.servers") == 0 ||
                       strcmp(c->log_props[i].key, "metadata.broker.list") == 0;
        if (!servers)
            return cfg_fail(L, field(&f, "backend"),
                            "'log.backend' is kafka but 'log.kafka' has no "
                            "bootstrap.servers");
    }
    return 0;
}

static int load_store(cfg_loader *L, const fields *root)
{
    stele_config *c = L->cfg;
    yaml_node_t *map, *n;
    fields f = {.where = "store", .names = store_keys};
    int rc = section(L, root, "store", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    if ((n = field(&f, "backend"))) {
        free(c->store_backend);
        c->store_backend = NULL;
        if ((rc = cfg_get_choice(L, n, "store.backend", store_backends,
                                 &c->store_backend)))
            return rc;
    }
    if ((n = field(&f, "path")) &&
        (rc = cfg_get_path(L, n, "store.path", &c->store_path)))
        return rc;
    if ((n = field(&f, "conninfo")) &&
        (rc = cfg_get_string(L, n, "store.conninfo", true, &c->store_conninfo)))
        return rc;
    if ((rc = read_int32(L, field(&f, "fillfactor"), "store.fillfactor", 10,
                         100, &c->store_fillfactor)))
        return rc;
    if (strcmp(c->store_backend, "postgres") == 0 && !c->store_conninfo)
        return cfg_fail(L, field(&f, "backend"),
                        "'store.backend' is postgres but 'store.conninfo' is "
                        "not set");
    return 0;
}

static int load_engine(cfg_loader *L, const fields *root)
{
    stele_config *c = L->cfg;
    yaml_node_t *map;
    fields f = {.where = "engine", .names = engine_keys};
    int rc = section(L, root, "engine", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    if ((rc = read_int32(L, field(&f, "command_batch"), "engine.command_batch",
                         1, 100000, &c->command_batch)) ||
        (rc = read_int32(L, field(&f, "commit_interval_ms"),
                         "engine.commit_interval_ms", 0, 60000,
                         &c->commit_interval_ms)) ||
        (rc = read_int32(L, field(&f, "projection_batch"),
                         "engine.projection_batch", 1, 100000,
                         &c->projection_batch)) ||
        (rc = read_int32(L, field(&f, "reply_timeout_ms"),
                         "engine.reply_timeout_ms", 1, 3600000,
                         &c->reply_timeout_ms)) ||
        (rc = read_int32(L, field(&f, "plugin_crash_limit"),
                         "engine.plugin_crash_limit", 0, 1000,
                         &c->plugin_crash_limit)) ||
        (rc = read_int32(L, field(&f, "plugin_timeout_ms"),
                         "engine.plugin_timeout_ms", 0, 3600000,
                         &c->plugin_timeout_ms)) ||
        (rc = read_int32(L, field(&f, "shutdown_grace_ms"),
                         "engine.shutdown_grace_ms", 0, 3600000,
                         &c->shutdown_grace_ms)))
        return rc;
    yaml_node_t *n = field(&f, "max_value_bytes");
    if (n && (rc = cfg_get_int(L, n, "engine.max_value_bytes", 1024, 16777216,
                               &c->max_value_bytes)))
        return rc;
    if ((n = field(&f, "misrouted"))) {
        char *mode = NULL;
        if ((rc = cfg_get_choice(L, n, "engine.misrouted", misrouted_modes,
                                 &mode)))
            return rc;
        c->misrouted_reject = strcmp(mode, "reject") == 0;
        free(mode);
    }
    if ((n = field(&f, "isolation"))) {
        char *mode = NULL;
        if ((rc = cfg_get_choice(L, n, "engine.isolation", isolation_modes,
                                 &mode)))
            return rc;
        c->isolate_plugins = strcmp(mode, "process") == 0;
        free(mode);
    }
    return 0;
}

static int load_http(cfg_loader *L, const fields *root)
{
    yaml_node_t *map, *n;
    fields f = {.where = "http", .names = http_keys};
    int rc = section(L, root, "http", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    if ((n = field(&f, "listen")))
        return cfg_get_listen(L, n, "http.listen", &L->cfg->http_listen);
    return 0;
}

/* Replaces a default string with the choice n holds. */
static int replace_choice(cfg_loader *L, yaml_node_t *n, const char *what,
                          const char *const *choices, char **out)
{
    char *old = *out;
    *out = NULL;
    int rc = cfg_get_choice(L, n, what, choices, out);
    if (rc)
        *out = old;
    else
        free(old);
    return rc;
}

static int load_registry(cfg_loader *L, const fields *root)
{
    stele_config *c = L->cfg;
    yaml_node_t *map, *n;
    fields f = {.where = "registry", .names = registry_keys};
    int rc = section(L, root, "registry", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    if ((n = field(&f, "backend")) &&
        (rc = replace_choice(L, n, "registry.backend", registry_backends,
                             &c->registry_backend)))
        return rc;
    if ((n = field(&f, "url")) &&
        (rc = cfg_get_string(L, n, "registry.url", false, &c->registry_url)))
        return rc;
    if (c->registry_url && strncmp(c->registry_url, "http://", 7) != 0 &&
        strncmp(c->registry_url, "https://", 8) != 0)
        return cfg_fail(L, n,
                        "'registry.url' must start with http:// or "
                        "https://, got '%s'",
                        c->registry_url);
    if (((n = field(&f, "username")) &&
         (rc = cfg_get_string(L, n, "registry.username", false,
                              &c->registry_username))) ||
        ((n = field(&f, "password")) &&
         (rc = cfg_get_string(L, n, "registry.password", true,
                              &c->registry_password))) ||
        ((n = field(&f, "ca_file")) &&
         (rc = cfg_get_path(L, n, "registry.ca_file", &c->registry_ca_file))) ||
        ((n = field(&f, "cert_file")) &&
         (rc = cfg_get_path(L, n, "registry.cert_file",
                            &c->registry_cert_file))) ||
        ((n = field(&f, "key_file")) &&
         (rc = cfg_get_path(L, n, "registry.key_file", &c->registry_key_file))))
        return rc;
    if ((rc = read_int32(L, field(&f, "timeout_ms"), "registry.timeout_ms", 1,
                         600000, &c->registry_timeout_ms)) ||
        (rc = read_int32(L, field(&f, "retries"), "registry.retries", 0, 100,
                         &c->registry_retries)) ||
        (rc = read_int32(L, field(&f, "verify_ms"), "registry.verify_ms", 0,
                         3600000, &c->registry_verify_ms)))
        return rc;
    if ((n = field(&f, "subject_strategy")) &&
        (rc =
             replace_choice(L, n, "registry.subject_strategy",
                            subject_strategies, &c->registry_subject_strategy)))
        return rc;
    if ((n = field(&f, "compatibility")) &&
        (rc = replace_choice(L, n, "registry.compatibility", compat_modes,
                             &c->registry_compatibility)))
        return rc;
    if ((n = field(&f, "auto_register")) &&
        (rc = cfg_get_bool(L, n, "registry.auto_register",
                           &c->registry_auto_register)))
        return rc;
    bool rest = strcmp(c->registry_backend, "rest") == 0;
    if (rest && !c->registry_url)
        return cfg_fail(L, field(&f, "backend"),
                        "'registry.backend' is rest but 'registry.url' is "
                        "not set");
    if (!rest && strcmp(c->registry_subject_strategy, "topic_record") == 0)
        return cfg_fail(L, field(&f, "subject_strategy"),
                        "'registry.subject_strategy' topic_record needs "
                        "'registry.backend: rest' (the embedded registry "
                        "gives each subject its own ids)");
    if (c->registry_password && !c->registry_username)
        return cfg_fail(L, field(&f, "password"),
                        "'registry.password' is set but 'registry.username' "
                        "is not");
    if (!c->registry_cert_file != !c->registry_key_file)
        return cfg_fail(
            L, field(&f, c->registry_cert_file ? "cert_file" : "key_file"),
            "'registry.cert_file' and 'registry.key_file' go "
            "together");
    return 0;
}

static int load_logging(cfg_loader *L, const fields *root)
{
    yaml_node_t *map, *n;
    fields f = {.where = "logging", .names = logging_keys};
    int rc = section(L, root, "logging", &map);
    if (rc || !map)
        return rc;
    if ((rc = collect(L, map, &f)))
        return rc;
    if ((n = field(&f, "level"))) {
        free(L->cfg->log_level);
        L->cfg->log_level = NULL;
        if ((rc = cfg_get_choice(L, n, "logging.level", log_levels,
                                 &L->cfg->log_level)))
            return rc;
    }
    if ((n = field(&f, "format"))) {
        free(L->cfg->log_format);
        L->cfg->log_format = NULL;
        return cfg_get_choice(L, n, "logging.format", log_formats,
                              &L->cfg->log_format);
    }
    return 0;
}

static int load_plugins(cfg_loader *L, yaml_node_t *n)
{
    stele_config *c = L->cfg;
    if (!n || cfg_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(L, n, "'plugins' must be a sequence, got a %s",
                        cfg_node_kind(n));
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count && !(c->plugins = calloc(count, sizeof *c->plugins)))
        return stele_err_set(L->err, STELE_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item =
            yaml_document_get_node(L->doc, n->data.sequence.items.start[i]);
        char what[32];
        snprintf(what, sizeof what, "plugins[%zu]", i);
        int rc = cfg_get_path(L, item, what, &c->plugins[i]);
        if (rc)
            return rc;
        c->n_plugins++;
    }
    return 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *s = malloc(dl + nl + 2);
    if (s)
        snprintf(s, dl + nl + 2, "%s/%s", dir, name);
    return s;
}

int cfg_load_document(cfg_loader *L)
{
    stele_config *c = L->cfg;
    yaml_node_t *root = yaml_document_get_root_node(L->doc);
    if (!root)
        return stele_err_set(L->err, STELE_EINVAL,
                             "%s:1: the config is empty (missing required "
                             "key 'app')",
                             L->file);
    if (root->type != YAML_MAPPING_NODE)
        return cfg_fail(L, root, "the config must be a mapping, got a %s",
                        cfg_node_kind(root));
    fields f = {.where = NULL, .names = root_keys};
    int rc = collect(L, root, &f);
    if (rc)
        return rc;

    yaml_node_t *n = field(&f, "app");
    if (!n)
        return cfg_fail(L, root, "missing required key 'app'");
    if ((rc = cfg_get_app(L, n, "app", &c->app)))
        return rc;
    if ((n = field(&f, "data_dir")))
        rc = cfg_get_path(L, n, "data_dir", &c->data_dir);
    else if (!(c->data_dir = join_path(L->dir, "data")))
        rc = STELE_ENOMEM;
    if (rc)
        return rc;
    if ((n = field(&f, "schemas")))
        rc = cfg_get_path(L, n, "schemas", &c->schemas_dir);
    else if (!(c->schemas_dir = join_path(L->dir, "schemas")))
        rc = STELE_ENOMEM;
    if (rc || (rc = load_plugins(L, field(&f, "plugins"))) ||
        (rc = load_log(L, &f)) || (rc = load_store(L, &f)) ||
        (rc = load_engine(L, &f)) || (rc = load_http(L, &f)) ||
        (rc = load_logging(L, &f)) || (rc = load_registry(L, &f)))
        return rc;

    if (!c->log_path && !(c->log_path = join_path(c->data_dir, "log.db")))
        return STELE_ENOMEM;
    if (!c->topic_prefix && !(c->topic_prefix = strdup(c->app)))
        return STELE_ENOMEM;
    if (!c->store_path &&
        !(c->store_path = join_path(c->data_dir, "readmodels.db")))
        return STELE_ENOMEM;
    return 0;
}
