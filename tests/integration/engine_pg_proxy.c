/* The COMMIT-answer-losing relay (see engine_pg_proxy.h). */
#define _GNU_SOURCE /* memmem */
#include "engine_pg_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct pgp_proxy {
    int listen_fd;
    int port;
    struct sockaddr_in upstream;
    atomic_bool armed;
    atomic_int cuts;
    atomic_bool stopping;
    atomic_int relays; /* running */
    pthread_t acceptor;
};

typedef struct relay {
    pgp_proxy *p;
    int client, server;
} relay;

static bool send_all(int fd, const char *buf, ssize_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        buf += w;
        n -= w;
    }
    return true;
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    char buf[65536];
    struct pollfd fds[2] = {{r->client, POLLIN, 0}, {r->server, POLLIN, 0}};
    while (!atomic_load(&r->p->stopping)) {
        if (poll(fds, 2, 200) < 0)
            break;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
            if (n <= 0 || !send_all(fds[1 - i].fd, buf, n)) {
                done = true;
                break;
            }
            bool expected = true;
            /* Client to server: a COMMIT while armed. The statement's
             * text is in the message (simple or extended protocol). */
            if (i == 0 && memmem(buf, (size_t)n, "COMMIT", 6) &&
                atomic_compare_exchange_strong(&r->p->armed, &expected,
                                               false)) {
                atomic_fetch_add(&r->p->cuts, 1);
                struct timespec ts = {0, 300 * 1000000L};
                nanosleep(&ts, NULL); /* the server commits meanwhile */
                done = true;
            }
        }
        if (done)
            break;
    }
    close(r->client);
    close(r->server);
    atomic_fetch_sub(&r->p->relays, 1);
    free(r);
    return NULL;
}

static void *accept_main(void *arg)
{
    pgp_proxy *p = arg;
    while (!atomic_load(&p->stopping)) {
        struct pollfd pfd = {p->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        int c = accept(p->listen_fd, NULL, NULL);
        if (c < 0)
            continue;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        relay *r = malloc(sizeof *r);
        if (s < 0 || !r ||
            connect(s, (struct sockaddr *)&p->upstream, sizeof p->upstream)) {
            close(c);
            if (s >= 0)
                close(s);
            free(r);
            continue;
        }
        *r = (relay){p, c, s};
        atomic_fetch_add(&p->relays, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, relay_main, r) != 0) {
            atomic_fetch_sub(&p->relays, 1);
            close(c);
            close(s);
            free(r);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

pgp_proxy *pgp_start(const char *host, int port)
{
    pgp_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->upstream.sin_family = AF_INET;
    p->upstream.sin_port = htons((uint16_t)port);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (inet_pton(AF_INET, host, &p->upstream.sin_addr) != 1 ||
        (p->listen_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(p->listen_fd, 64) ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &len) ||
        pthread_create(&p->acceptor, NULL, accept_main, p) != 0) {
        if (p->listen_fd > 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    return p;
}

int pgp_port(const pgp_proxy *p)
{
    return p->port;
}

void pgp_arm(pgp_proxy *p)
{
    atomic_store(&p->armed, true);
}

int pgp_cuts(pgp_proxy *p)
{
    return atomic_load(&p->cuts);
}

void pgp_stop(pgp_proxy *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, true);
    pthread_join(p->acceptor, NULL);
    close(p->listen_fd);
    /* Relays see stopping within a poll interval (or a cut's wait). */
    for (int i = 0; i < 100 && atomic_load(&p->relays) > 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(p);
}
