/*
 * The composition root (open.h): each backend of the log, the store and
 * the registry opened from a config, with its options and retries.
 */
#include "open.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

/* How long a process waits at start for a database that is not up. */
#define SERVER_CONNECT_WAIT_S 60

static bool is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

bool stele_open_has_log_backend(const char *name)
{
#ifdef STELE_WITH_KAFKA
    if (is(name, "kafka"))
        return true;
#endif
#ifdef STELE_WITH_POSTGRES
    if (is(name, "postgres"))
        return true;
#endif
    return is(name, "sqlite");
}

bool stele_open_has_store_backend(const char *name)
{
#ifdef STELE_WITH_POSTGRES
    if (is(name, "postgres"))
        return true;
#endif
    return is(name, "sqlite");
}

static int not_built(const char *section, const char *name, stele_err *err)
{
    const char *option = is(name, "kafka") ? "STELE_KAFKA" : "STELE_POSTGRES";
    return stele_err_set(err, STELE_EINVAL,
                         "%s.backend %s: this stele was built without it "
                         "(configure with cmake -D%s=ON and build again)",
                         section, name, option);
}

#ifdef STELE_WITH_POSTGRES
/* open until it succeeds, fails for good, or the wait is over. */
static int with_retries(const stele_open_opts *o, const char *what,
                        int (*open)(const stele_config *, void *, stele_err *),
                        const stele_config *cfg, void *out, stele_err *err)
{
    int64_t deadline =
        stele_mono_ns() + (int64_t)SERVER_CONNECT_WAIT_S * 1000000000;
    long delay_ms = 250;
    for (;;) {
        int rc = open(cfg, out, err);
        if (rc != STELE_ERETRY || !o || !o->retry || stele_mono_ns() > deadline)
            return rc;
        if (o->warn) {
            char msg[sizeof err->msg + 100];
            snprintf(msg, sizeof msg, "%s: %s (retrying in %ld ms)", what,
                     err->msg, delay_ms);
            o->warn(o->opaque, msg);
        }
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (delay_ms < 4000)
            delay_ms *= 2;
    }
}

static int open_pg_log(const stele_config *cfg, void *out, stele_err *err)
{
    stele_log_pg_options po = {.max_poll_interval_ms =
                                   cfg->max_poll_interval_ms};
    return stele_log_open_postgres_with(
        cfg->log_conninfo ? cfg->log_conninfo : "", &po, out, err);
}

static int open_pg_store(const stele_config *cfg, void *out, stele_err *err)
{
    stele_store **s = out;
    int rc = stele_store_open_postgres(
        cfg->store_conninfo ? cfg->store_conninfo : "", s, err);
    if (rc == 0 && (rc = stele_store_postgres_fillfactor(
                        *s, cfg->store_fillfactor, err))) {
        stele_store_close(*s);
        *s = NULL;
    }
    return rc;
}
#endif

#ifdef STELE_WITH_KAFKA
static int open_kafka(const stele_config *cfg, const stele_open_opts *o,
                      stele_log **out, stele_err *err)
{
    const char **keys = calloc(cfg->n_log_props + 1, sizeof *keys);
    const char **values = calloc(cfg->n_log_props + 1, sizeof *values);
    int rc;
    if (!keys || !values) {
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < cfg->n_log_props; i++) {
            keys[i] = cfg->log_props[i].key;
            values[i] = cfg->log_props[i].value;
        }
        /* Unique among running hosts; a restarted host gets a new one,
         * and KIP-447 fencing (group metadata sent with the offsets)
         * keeps a zombie from committing. */
        char host[128] = "host", id[400];
        gethostname(host, sizeof host - 1);
        snprintf(id, sizeof id, "%s.%s.%s.%ld.%lld", cfg->app,
                 o && o->role ? o->role : "host", host, (long)getpid(),
                 (long long)stele_now_ms());
        rc = stele_log_open_kafka(keys, values, cfg->n_log_props, id, out, err);
    }
    free(keys);
    free(values);
    return rc;
}
#endif

int stele_open_log(const stele_config *cfg, const stele_open_opts *o,
                   stele_log **out, stele_err *err)
{
    *out = NULL;
    const char *name = cfg->log_backend ? cfg->log_backend : "sqlite";
    if (!stele_open_has_log_backend(name))
        return not_built("log", name, err);
    if (is(name, "sqlite")) {
        if (stele_mkdir_parent(cfg->log_path) != 0)
            return stele_err_set(err, STELE_EIO,
                                 "cannot create the directory of %s",
                                 cfg->log_path);
        return stele_log_open_sqlite(cfg->log_path, out, err);
    }
#ifdef STELE_WITH_POSTGRES
    if (is(name, "postgres"))
        return with_retries(o, "event store", open_pg_log, cfg, out, err);
#endif
#ifdef STELE_WITH_KAFKA
    return open_kafka(cfg, o, out, err);
#else
    (void)o;
    return not_built("log", name, err);
#endif
}

int stele_open_store(const stele_config *cfg, const stele_open_opts *o,
                     stele_store **out, stele_err *err)
{
    *out = NULL;
    const char *name = cfg->store_backend ? cfg->store_backend : "sqlite";
    if (!stele_open_has_store_backend(name))
        return not_built("store", name, err);
    if (is(name, "sqlite")) {
        if (stele_mkdir_parent(cfg->store_path) != 0)
            return stele_err_set(err, STELE_EIO,
                                 "cannot create the directory of %s",
                                 cfg->store_path);
        return stele_store_open_sqlite(cfg->store_path, out, err);
    }
#ifdef STELE_WITH_POSTGRES
    return with_retries(o, "read-model store", open_pg_store, cfg, out, err);
#else
    (void)o;
    return not_built("store", name, err);
#endif
}

bool stele_open_registry_needs_log(const stele_config *cfg)
{
    return !is(cfg->registry_backend, "rest");
}

int stele_open_registry(const stele_config *cfg, stele_log *log,
                        stele_registry **out, stele_err *err)
{
    if (stele_open_registry_needs_log(cfg))
        return stele_registry_open_embedded(log, out, err);
    stele_registry_rest_opts ro = {
        .url = cfg->registry_url,
        .username = cfg->registry_username,
        .password = cfg->registry_password,
        .ca_file = cfg->registry_ca_file,
        .cert_file = cfg->registry_cert_file,
        .key_file = cfg->registry_key_file,
        .timeout_ms = cfg->registry_timeout_ms,
        .retries = cfg->registry_retries > 0 ? cfg->registry_retries : -1,
        .strategy = is(cfg->registry_subject_strategy, "topic_record")
                        ? STELE_SUBJECT_TOPIC_RECORD
                        : STELE_SUBJECT_RECORD};
    return stele_registry_open_rest(&ro, out, err);
}
