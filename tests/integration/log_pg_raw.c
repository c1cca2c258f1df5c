/*
 * log_pg_raw.c — the PostgreSQL log's stored records reached behind its
 * back for the conformance suite (log_conformance_raw): a bit flipped in
 * a column, a checksum set to NULL, and a database of its own made by
 * hand with the schema before checksums (version 1, as an earlier stele
 * left it); and, on such a database, hosts that open it all at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common_pg.h"
#include "log_pg_test.h"

/* Runs sql with topic, partition and offset as $1..$3 on conninfo's
 * database; the rows it changed. */
static long record_exec(const char *conninfo, const char *sql,
                        const char *topic, int32_t partition, int64_t offset)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting: %s", PQerrorMessage(c));
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%lld", (long long)offset);
    const char *params[] = {topic, part, off};
    PGresult *r = PQexecParams(c, sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long n = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

#define WHERE_RECORD                                                           \
    " WHERE topic_id = (SELECT id FROM stele_log.topics WHERE name = $1)"      \
    " AND part = $2::int4 AND off = $3::int8"

static void pg_raw_flip(void *opaque, const char *topic, int32_t partition,
                        int64_t offset, const char *column)
{
    long changed = 0;
    for (int t = 0; t < 2; t++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "UPDATE stele_log.%s SET %s = set_byte(%s, length(%s) - 1,"
                 " get_byte(%s, length(%s) - 1) # 1)" WHERE_RECORD,
                 t ? "compacted" : "records", column, column, column, column,
                 column);
        changed += record_exec(opaque, sql, topic, partition, offset);
    }
    assert_int_equal(changed, 1);
}

static void pg_raw_uncheck(void *opaque, const char *topic, int32_t partition,
                           int64_t offset)
{
    long changed = 0;
    for (int t = 0; t < 2; t++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "UPDATE stele_log.%s SET crc = NULL" WHERE_RECORD,
                 t ? "compacted" : "records");
        changed += record_exec(opaque, sql, topic, partition, offset);
    }
    assert_int_equal(changed, 1);
}

/* The tables as schema version 1 made them. */
static const char *const v1_schema =
    "CREATE SCHEMA stele_log;"
    "CREATE TABLE stele_log.meta(key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO stele_log.meta VALUES ('schema_version', '1');"
    "CREATE TABLE stele_log.topics(id serial PRIMARY KEY,"
    " name text NOT NULL UNIQUE, partitions integer NOT NULL,"
    " compacted boolean NOT NULL);"
    "CREATE TABLE stele_log.partitions(topic_id integer NOT NULL,"
    " part integer NOT NULL, uid integer GENERATED ALWAYS AS IDENTITY UNIQUE,"
    " next_offset bigint NOT NULL DEFAULT 0, PRIMARY KEY(topic_id, part));"
    "CREATE TABLE stele_log.records(topic_id integer NOT NULL,"
    " part integer NOT NULL, off bigint NOT NULL, ts bigint NOT NULL,"
    " key bytea, value bytea, headers bytea,"
    " PRIMARY KEY(topic_id, part, off));"
    "CREATE INDEX records_by_key ON stele_log.records(topic_id, part, key, "
    "off);"
    "CREATE TABLE stele_log.compacted(topic_id integer NOT NULL,"
    " part integer NOT NULL, key bytea NOT NULL, off bigint NOT NULL,"
    " ts bigint NOT NULL, value bytea, headers bytea,"
    " PRIMARY KEY(topic_id, part, key));"
    "CREATE UNIQUE INDEX compacted_by_offset"
    " ON stele_log.compacted(topic_id, part, off);"
    "CREATE TABLE stele_log.groups(id serial PRIMARY KEY,"
    " name text NOT NULL UNIQUE);"
    "CREATE TABLE stele_log.group_offsets(grp text NOT NULL,"
    " topic_id integer NOT NULL, part integer NOT NULL,"
    " next_offset bigint NOT NULL, PRIMARY KEY(grp, topic_id, part));"
    "CREATE TABLE stele_log.owners(group_id integer NOT NULL,"
    " puid integer NOT NULL, member bigint NOT NULL, epoch bigint NOT NULL,"
    " since timestamptz NOT NULL, PRIMARY KEY(group_id, puid));"
    "CREATE SEQUENCE stele_log.members;";

/* the header blob of "h" = "1" */
#define V1_HEADERS "'\\x010000000100000068000100000031'::bytea"

static char old_name[64];
static char *old_conninfo;

static void pg_raw_make_old(void *opaque, const char *topic,
                            const char *compacted)
{
    (void)opaque;
    snprintf(old_name, sizeof old_name, "stele_logtest_old_%d", (int)getpid());
    free(old_conninfo);
    assert_true(pgt_create_db(old_name, false, &old_conninfo));
    PGconn *c = PQconnectdb(old_conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting: %s", PQerrorMessage(c));
    char rows[1024];
    snprintf(rows, sizeof rows,
             "INSERT INTO stele_log.topics VALUES (1, '%s', 1, false),"
             " (2, '%s', 1, true);"
             "INSERT INTO stele_log.partitions(topic_id, part, next_offset)"
             " VALUES (1, 0, 1), (2, 0, 1);"
             "INSERT INTO stele_log.records VALUES (1, 0, 0, 1000, 'k', "
             "'v', " V1_HEADERS ");"
             "INSERT INTO stele_log.compacted VALUES (2, 0, 'k', 0, 1000, "
             "'v', " V1_HEADERS ");"
             "SELECT setval('stele_log.topics_id_seq', 2);",
             topic, compacted);
    for (int i = 0; i < 2; i++) {
        PGresult *r = PQexec(c, i ? rows : v1_schema);
        if (PQresultStatus(r) != PGRES_COMMAND_OK &&
            PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("making the old log: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
}

static int pg_raw_open_old(void *opaque, stele_log **out, stele_err *err)
{
    (void)opaque;
    return stele_log_open_postgres(old_conninfo, out, err);
}

static void pg_raw_remove_old(void *opaque)
{
    (void)opaque;
    pgt_drop_db(old_name);
    free(old_conninfo);
    old_conninfo = NULL;
}

const log_conformance_raw lpt_raw = {
    .flip = pg_raw_flip,
    .uncheck = pg_raw_uncheck,
    .make_old = pg_raw_make_old,
    .open_old = pg_raw_open_old,
    .remove_old = pg_raw_remove_old,
};

/* Hosts of this version started at once on a database an earlier stele
 * made: each opens it (the migration taken in turns under the schema
 * lock, the later ones finding it done), and the old record reads. */
void test_hosts_opening_an_old_log_at_once_all_migrate_it(void **state)
{
    (void)state;
    char topic[64], compacted[64];
    lpt_uniq(topic, sizeof topic, "old");
    lpt_uniq(compacted, sizeof compacted, "old-state");
    pg_raw_make_old(NULL, topic, compacted);
    int go[2];
    assert_int_equal(pipe(go), 0);
    enum { HOSTS = 4 };
    pid_t pids[HOSTS];
    for (int i = 0; i < HOSTS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(go[1]);
            char b;
            (void)!read(go[0], &b, 1); /* EOF: the parent let them go */
            stele_log *l = NULL;
            stele_err err = {0};
            int rc = stele_log_open_postgres(old_conninfo, &l, &err);
            if (rc)
                fprintf(stderr, "host %d: %s\n", i, err.msg);
            stele_log_close(l);
            _exit(rc ? 1 : 0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < HOSTS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(pgt_scalar(old_conninfo, "SELECT value::int FROM "
                                              "stele_log.meta WHERE key = "
                                              "'schema_version'"),
                     2);
    stele_log *l = NULL;
    OK(pg_raw_open_old(NULL, &l, E));
    stele_log_batch *b = NULL;
    OK(stele_log_read(l, topic, 0, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_true(b->records[0].unchecked);
    assert_int_equal(b->records[0].value_len, 1);
    assert_memory_equal(b->records[0].value, "v", 1);
    stele_log_batch_free(b);
    stele_log_close(l);
    pg_raw_remove_old(NULL);
}
