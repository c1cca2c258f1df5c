/*
 * fuzz_config.c — the YAML config loader (host/config) on a file in a
 * temporary folder, as stele reads stele.yaml: libyaml, the depth check,
 * every section's keys and values, ${VAR} expansion. Invariants: a
 * refusal names the file; a config accepted has every default filled, its
 * backends, level and bounds among the allowed, and paths made absolute
 * against the file's folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char dir[64], path[128];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/stele-fuzz-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/stele.yaml", dir);
    atexit(cleanup);
    /* For ${VAR} in inputs: one set, one empty. */
    setenv("STELE_FUZZ_SET", "value", 1);
    setenv("STELE_FUZZ_EMPTY", "", 1);
    return 0;
}

static bool one_of(const char *s, const char *const *allowed)
{
    for (; s && *allowed; allowed++)
        if (!strcmp(s, *allowed))
            return true;
    return false;
}

static void check_path(const char *what, const char *p)
{
    if (p && p[0] != '/') {
        fprintf(stderr, "%s is not absolute: '%s'\n", what, p);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    stele_config *c = NULL;
    stele_err err = {0};
    if (stele_config_load(path, &c, &err)) {
        if (c || strncmp(err.msg, path, strlen(path))) {
            fprintf(stderr, "refusal does not name the file: '%s'\n", err.msg);
            abort();
        }
        if (getenv("STELE_FUZZ_VERBOSE"))
            fprintf(stderr, "refused: %s\n", err.msg);
        return 0;
    }
    if (getenv("STELE_FUZZ_VERBOSE"))
        fprintf(stderr, "accepted: app %s, log %s\n", c->app, c->log_backend);
    static const char *const logs[] = {"sqlite", "kafka", "postgres", NULL};
    static const char *const stores[] = {"sqlite", "postgres", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug",
                                         NULL};
    static const char *const regs[] = {"embedded", "rest", NULL};
    if (!c->app || !*c->app || !one_of(c->log_backend, logs) ||
        !one_of(c->store_backend, stores) || !one_of(c->log_level, levels) ||
        !one_of(c->registry_backend, regs) || c->partitions < 1 ||
        !c->data_dir || !c->schemas_dir || !c->registry_compatibility ||
        !c->registry_subject_strategy || strcmp(c->path, path)) {
        fprintf(stderr, "accepted config breaks an invariant\n");
        abort();
    }
    check_path("data_dir", c->data_dir);
    check_path("schemas", c->schemas_dir);
    check_path("log.path", c->log_path);
    check_path("store.path", c->store_path);
    for (size_t i = 0; i < c->n_plugins; i++)
        check_path("a plugin", c->plugins[i]);
    for (size_t i = 0; i < c->n_log_props; i++)
        if (!c->log_props[i].key || !c->log_props[i].value)
            abort();
    stele_config_free(c);
    return 0;
}
