/*
 * test_registry.c — the embedded registry (host/codec/registry_embedded.c)
 * on a real SQLite log, through the registry conformance suite that the
 * REST client also runs against a real registry
 * (tests/integration/test_registry_rest.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry_conformance.h"

typedef struct emb_fx {
    char dir[64], path[96];
    stele_log *log;
} emb_fx;

static int emb_setup(void **out)
{
    emb_fx *fx = calloc(1, sizeof *fx);
    stele_err err = {0};
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/stele-registry-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/log.db", fx->dir);
    if (stele_log_open_sqlite(fx->path, &fx->log, &err)) {
        fprintf(stderr, "embedded registry: %s\n", err.msg);
        return -1;
    }
    *out = fx;
    return 0;
}

static int emb_open(void *p, stele_registry **out, stele_err *err)
{
    emb_fx *fx = p;
    return stele_registry_open_embedded(fx->log, out, err);
}

static void emb_teardown(void *p)
{
    emb_fx *fx = p;
    stele_log_close(fx->log);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
}

int main(void)
{
    const registry_conformance_backend b = {
        .name = "registry conformance: embedded",
        .setup = emb_setup,
        .open = emb_open,
        .teardown = emb_teardown,
        .ids_across_subjects = RC_IDS_PER_SUBJECT,
        .register_checks_compat = false,
    };
    return registry_conformance_run(&b) ? 1 : 0;
}
