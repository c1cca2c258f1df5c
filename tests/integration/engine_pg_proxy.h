/*
 * engine_pg_proxy.h — a TCP relay in front of the test PostgreSQL server
 * that cuts connections on cue. Armed for a COMMIT, it passes the next
 * COMMIT a client sends on to the server, waits until the server has done
 * it, then cuts that connection without passing the answer back: the
 * client sees its connection lost during COMMIT, while the transaction is
 * in fact committed — the case a client cannot tell from a rollback.
 */
#ifndef STELE_TESTS_ENGINE_PG_PROXY_H
#define STELE_TESTS_ENGINE_PG_PROXY_H

#include <stddef.h>

typedef struct pgp_proxy pgp_proxy;

/* Listens on 127.0.0.1 (a free port) and relays to host:port. */
pgp_proxy *pgp_start(const char *host, int port);
int pgp_port(const pgp_proxy *p);
/* The next COMMIT relayed loses its answer, and its connection. */
void pgp_arm(pgp_proxy *p);
/* The next count client messages holding pattern, from clients whose
 * application_name is app (NULL: any), are passed on and, wait_ms later,
 * their connections cut without an answer. */
void pgp_arm_match(pgp_proxy *p, const void *pattern, size_t len,
                   const char *app, int count, int wait_ms);
/* How many answers it cut so far. */
int pgp_cuts(pgp_proxy *p);
void pgp_stop(pgp_proxy *p);

#endif
