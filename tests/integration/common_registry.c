/*
 * common_registry.c — the test registry: found or started through
 * scripts/registry-start.sh (common_registry.h).
 */
#include "common_registry.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_URL "http://127.0.0.1:8081/apis/ccompat/v7"

const char *crt_url(void)
{
    const char *env = getenv("STELE_REGISTRY_URL");
    return env && *env ? env : DEFAULT_URL;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static const char *test_dir(void)
{
    const char *env = getenv("STELE_TEST_REGISTRY_DIR");
    return env && *env ? env : "/tmp/stele-registry-test";
}

int crt_ensure_registry(void)
{
    if (strcmp(crt_url(), DEFAULT_URL) != 0 || port_open(8081))
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "STELE_REGISTRY_DIR='%s' %s/scripts/registry-start.sh >&2",
             test_dir(), STELE_SOURCE_DIR);
    fprintf(stderr, "no schema registry on 127.0.0.1:8081; running %s\n", cmd);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot start the schema registry\n");
        return -1;
    }
    return 0;
}

int crt_private_registry(int port, const char *action, char *url, size_t size)
{
    char cmd[1024];
    const char *script =
        strcmp(action, "stop") == 0 ? "registry-stop.sh" : "registry-start.sh";
    snprintf(cmd, sizeof cmd,
             "STELE_REGISTRY_PORT=%d STELE_REGISTRY_DIR=/tmp/stele-registry-%d "
             "%s/scripts/%s %s >&2",
             port, port, STELE_SOURCE_DIR, script,
             strcmp(action, "restart") == 0 ? "--fresh" : "");
    if (url)
        snprintf(url, size, "http://127.0.0.1:%d/apis/ccompat/v7", port);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed\n", cmd);
        return -1;
    }
    return 0;
}
