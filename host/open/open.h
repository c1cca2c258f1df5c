/*
 * open.h — the composition root: the log, the store and the registry a
 * config names, opened with the config's options.
 *
 * Every process that opens a part from a config comes through here (the
 * engine for stele run/send/state/..., stele schema), so a backend's
 * options, retries and names live in one place. A backend the binary was
 * built without (-DSTELE_KAFKA=OFF, -DSTELE_POSTGRES=OFF) is refused here
 * with one line that says how to build it.
 */
#ifndef STELE_OPEN_H
#define STELE_OPEN_H

#include <stdbool.h>

#include <stele/stele.h>

#include "codec/codec.h"
#include "config/config.h"
#include "log/log.h"
#include "store/store.h"

typedef struct stele_open_opts {
    /* What opens it ("host", "schema"): part of Kafka's transactional.id,
     * which is app.role.hostname.pid.start-ms, unique among live hosts. */
    const char *role;
    /* Wait up to a minute for a server (PostgreSQL) that is not up yet,
     * saying so through warn before each retry; false: one try. */
    bool retry;
    void (*warn)(void *opaque, const char *msg);
    void *opaque;
} stele_open_opts;

/* The log of cfg's log: section. */
int stele_open_log(const stele_config *cfg, const stele_open_opts *o,
                   stele_log **out, stele_err *err);

/* The read-model store of cfg's store: section. */
int stele_open_store(const stele_config *cfg, const stele_open_opts *o,
                     stele_store **out, stele_err *err);

/* The embedded registry on log (borrowed), or the REST client of cfg's
 * registry: section (log may then be NULL). */
int stele_open_registry(const stele_config *cfg, stele_log *log,
                        stele_registry **out, stele_err *err);

/* Whether the registry cfg names keeps its schemas in the log (so that
 * a process must open the log to reach it). */
bool stele_open_registry_needs_log(const stele_config *cfg);

/* Whether this binary was built with the backend ("sqlite", "kafka",
 * "postgres"). */
bool stele_open_has_log_backend(const char *name);
bool stele_open_has_store_backend(const char *name);

#endif
