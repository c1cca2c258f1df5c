/*
 * common_registry.h — the Confluent-compatible schema registry the
 * integration tests run against: STELE_REGISTRY_URL when set, else
 * http://127.0.0.1:8081/apis/ccompat/v7, which scripts/registry-start.sh
 * starts (Apicurio 3.3.3, state in STELE_TEST_REGISTRY_DIR,
 * /tmp/stele-registry-test) when nothing answers on 127.0.0.1:8081.
 * Nothing here asserts: a failure returns -1 with the reason on stderr.
 */
#ifndef STELE_TESTS_COMMON_REGISTRY_H
#define STELE_TESTS_COMMON_REGISTRY_H

#include <stddef.h>

/* The registry's base URL (with its API path). */
const char *crt_url(void);
/* Makes sure the registry answers, starting it if none does. */
int crt_ensure_registry(void);
/* A registry of the test's own on port (management port + 1), in its own
 * state dir: started (restart: stopped first, so it comes back empty) or
 * stopped (stop); its URL into url. For the fault tests, which must not
 * take the shared registry away from other tests. */
int crt_private_registry(int port, const char *action, char *url, size_t size);

#endif
