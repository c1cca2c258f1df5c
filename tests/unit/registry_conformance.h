/*
 * registry_conformance.h — the behaviour every schema registry backend must
 * show to stele, written only against the registry functions of codec.h.
 * The embedded registry (tests/unit/test_registry.c) and the REST client
 * against a real Confluent-compatible registry (Apicurio, tests/
 * integration/test_registry_rest.c) run it; a backend's test program says
 * how to get a registry and what it is allowed to do differently.
 */
#ifndef STELE_TEST_REGISTRY_CONFORMANCE_H
#define STELE_TEST_REGISTRY_CONFORMANCE_H

#include <stdbool.h>

#include "codec/codec.h"

typedef struct registry_conformance_backend {
    const char *name;
    /* Prepares a registry for one test; *fixture is passed back. */
    int (*setup)(void **fixture);
    /* Opens a new handle on the fixture's registry (called once or more
     * per test: a second handle sees what the first registered). */
    int (*open)(void *fixture, stele_registry **out, stele_err *err);
    void (*teardown)(void *fixture);
    /* Prefix of every subject (a shared server keeps subjects across
     * runs, so it passes one unique to the run). */
    const char *subject_prefix;
    /* One text under two subjects: one id (Confluent's rule), an id per
     * subject (the embedded registry), or either (Apicurio). */
    enum {
        RC_IDS_SHARED,
        RC_IDS_PER_SUBJECT,
        RC_IDS_EITHER
    } ids_across_subjects;
    /* The server refuses an incompatible registration itself (409); the
     * embedded registry leaves that to the schema gate. */
    bool register_checks_compat;
} registry_conformance_backend;

/* Runs the suite as one cmocka group; returns the number of failures. */
int registry_conformance_run(const registry_conformance_backend *backend);

#endif
