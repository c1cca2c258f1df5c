/*
 * config.c — loading the YAML config: the file read (bounded), parsed with
 * libyaml's document API so every node keeps its line, and walked into a
 * stele_config over its defaults (config_sections.c); and freeing it.
 */
#include "config.h"
#include "config_sections.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "common/err.h"

/* A config is a page of YAML; anything larger is a mistake. */
#define CONFIG_MAX_BYTES (1024 * 1024)

/* Fills the defaults that do not depend on other keys. */
static int set_defaults(stele_config *c)
{
    c->partitions = 4;
    c->command_retention_ms = 7LL * 24 * 3600 * 1000;
    c->result_retention_ms = 7LL * 24 * 3600 * 1000;
    c->max_poll_interval_ms = 300000; /* STELE_LOG_PG_MAX_POLL_INTERVAL_MS */
    c->command_batch = 1000;
    c->commit_interval_ms = 5;
    c->projection_batch = 1000;
    c->max_value_bytes = 1048576;
    c->reply_timeout_ms = 10000;
    c->plugin_crash_limit = 3;
    c->plugin_timeout_ms = 10000;
    c->shutdown_grace_ms = 5000;
    c->log_backend = strdup("sqlite");
    c->store_backend = strdup("sqlite");
    c->store_fillfactor = 90; /* STELE_STORE_PG_FILLFACTOR */
    c->log_level = strdup("info");
    c->log_format = strdup("text");
    c->registry_timeout_ms = 10000;
    c->registry_retries = 4;
    c->registry_backend = strdup("embedded");
    c->registry_subject_strategy = strdup("record");
    c->registry_compatibility = strdup("BACKWARD_TRANSITIVE");
    c->registry_auto_register = true;
    c->registry_verify_ms = 5000;
    if (!c->log_backend || !c->store_backend || !c->log_level ||
        !c->log_format || !c->registry_backend ||
        !c->registry_subject_strategy || !c->registry_compatibility)
        return STELE_ENOMEM;
    return 0;
}

/* Reads the whole file, refusing anything over CONFIG_MAX_BYTES. */
static int read_file(const char *path, char **out, size_t *len, stele_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return stele_err_set(err, errno == ENOENT ? STELE_ENOTFOUND : STELE_EIO,
                             "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        return stele_err_set(err, STELE_EINVAL, "%s: not a regular file", path);
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return stele_err_set(err, STELE_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > CONFIG_MAX_BYTES) {
        free(buf);
        if (bad)
            return stele_err_set(err, STELE_EIO, "%s: read error", path);
        return stele_err_set(err, STELE_EINVAL, "%s: larger than %d bytes",
                             path, CONFIG_MAX_BYTES);
    }
    *out = buf;
    *len = n;
    return 0;
}

static int yaml_error(const yaml_parser_t *p, const char *file, stele_err *err)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return stele_err_set(err, STELE_ENOMEM, "%s: out of memory", file);
    if (p->context)
        return stele_err_set(err, STELE_EINVAL, "%s:%lu: %s (%s at line %lu)",
                             file, (unsigned long)p->problem_mark.line + 1,
                             problem, p->context,
                             (unsigned long)p->context_mark.line + 1);
    return stele_err_set(err, STELE_EINVAL, "%s:%lu: %s", file,
                         (unsigned long)p->problem_mark.line + 1, problem);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* How deep mappings and sequences may nest: a config needs four levels;
 * 100,000 took libyaml 30 s to load before anything was refused. */
#define CONFIG_MAX_DEPTH 64

/* Refuses nesting past CONFIG_MAX_DEPTH, from libyaml's events, which
 * stop at the first level too deep instead of loading all of them. */
static int check_depth(const char *path, const char *text, size_t len,
                       stele_err *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, rc = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (bool done = false; !done && rc == 0;) {
        if (!yaml_parser_parse(&p, &ev))
            break; /* the load that follows reports it, with its line */
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > CONFIG_MAX_DEPTH)
                rc = stele_err_set(err, STELE_EINVAL,
                                   "%s:%zu: nested more than %d levels deep",
                                   path, ev.start_mark.line + 1,
                                   CONFIG_MAX_DEPTH);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT: depth--; break;
        case YAML_STREAM_END_EVENT: done = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

int stele_config_load(const char *path, stele_config **out, stele_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    *out = NULL;
    if ((rc = read_file(path, &text, &len, err)))
        return rc;
    if ((rc = check_depth(path, text, len, err))) {
        free(text);
        return rc;
    }

    stele_config *c = calloc(1, sizeof *c);
    cfg_loader L = {.file = path, .err = err, .cfg = c};
    if (!c || !(L.dir = dir_of(path)) || !(c->path = strdup(path)) ||
        set_defaults(c)) {
        free(text);
        free(L.dir);
        stele_config_free(c);
        return stele_err_set(err, STELE_ENOMEM, "%s: out of memory", path);
    }

    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&parser, path, err);
    } else {
        L.doc = &doc;
        rc = cfg_load_document(&L);
        if (rc == STELE_ENOMEM)
            stele_err_set(err, rc, "%s: out of memory", path);
        /* A second document would be silently ignored: refuse it. */
        if (rc == 0) {
            if (!yaml_parser_load(&parser, &extra)) {
                rc = yaml_error(&parser, path, err);
            } else {
                yaml_node_t *r = yaml_document_get_root_node(&extra);
                if (r)
                    rc = cfg_fail(&L, r, "more than one YAML document");
                yaml_document_delete(&extra);
            }
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(text);
    free(L.dir);
    if (rc) {
        stele_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void stele_config_free(stele_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->app);
    free(cfg->log_backend);
    free(cfg->log_path);
    free(cfg->topic_prefix);
    free(cfg->log_conninfo);
    for (size_t i = 0; i < cfg->n_log_props; i++) {
        free(cfg->log_props[i].key);
        free(cfg->log_props[i].value);
    }
    free(cfg->log_props);
    free(cfg->store_backend);
    free(cfg->store_path);
    free(cfg->store_conninfo);
    free(cfg->data_dir);
    free(cfg->schemas_dir);
    for (size_t i = 0; i < cfg->n_plugins; i++)
        free(cfg->plugins[i]);
    free(cfg->plugins);
    free(cfg->http_listen);
    free(cfg->log_level);
    free(cfg->log_format);
    free(cfg->registry_backend);
    free(cfg->registry_url);
    free(cfg->registry_username);
    free(cfg->registry_password);
    free(cfg->registry_ca_file);
    free(cfg->registry_cert_file);
    free(cfg->registry_key_file);
    free(cfg->registry_subject_strategy);
    free(cfg->registry_compatibility);
    free(cfg);
}
