/*
 * internal.h — private to host/registry: what a kind of registry provides.
 * Each fills a registry_ops table and embeds struct stele_registry first
 * in its own struct; registry.c checks the arguments and dispatches.
 */
#ifndef STELE_REGISTRY_INTERNAL_H
#define STELE_REGISTRY_INTERNAL_H

#include "registry.h"

#include <jansson.h>

#include "common/err.h"
#include "common/map.h"

typedef struct registry_ops {
    int (*register_schema)(stele_registry *reg, const char *subject,
                           const char *text, int32_t *id, stele_err *err);
    int (*lookup)(stele_registry *reg, int32_t id, const char **text,
                  stele_err *err);
    void (*close)(stele_registry *reg);
    /* The operations of the "subjects, versions, compatibility" section
     * of registry.h; registry.c checks the arguments. */
    int (*find)(stele_registry *reg, const char *subject, const char *text,
                stele_registry_schema *out, stele_err *err);
    int (*version)(stele_registry *reg, const char *subject, int version,
                   stele_registry_schema *out, stele_err *err);
    int (*subjects)(stele_registry *reg, char ***out, size_t *n,
                    stele_err *err);
    int (*versions)(stele_registry *reg, const char *subject, int **out,
                    size_t *n, stele_err *err);
    int (*get_compat)(stele_registry *reg, const char *subject,
                      stele_compat_mode *out, stele_err *err);
    int (*set_compat)(stele_registry *reg, const char *subject,
                      stele_compat_mode mode, stele_err *err);
    /* NULL: the registry does not check (the codec's stele_compat_test
     * checks in the host against the versions). */
    int (*test_compat)(stele_registry *reg, const char *subject,
                       const char *text, bool *compatible,
                       stele_compat_report *rep, stele_err *err);
    /* The text the registry holds for id now, not from a cache (*text is
     * malloc'd). NULL: the registry cannot lose what it gave out (the
     * embedded one is the log). */
    int (*fetch_fresh)(stele_registry *reg, int32_t id, char **text,
                       stele_err *err);
} registry_ops;

/* Embedded first in each registry's own struct. */
struct stele_registry {
    const registry_ops *ops;
    stele_subject_strategy strategy;
};

#endif
