/*
 * The SQLite read-model store: the store conformance suite
 * (store_conformance.c), then what only SQLite shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "store_conformance.h"

typedef struct fixture {
    sc_fixture sc; /* first: the suite sees an sc_fixture */
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/rm.db", f->dir);
    stele_err err = {0};
    assert_int_equal(stele_store_open_sqlite(path, &f->sc.s, &err), 0);
    assert_string_equal(stele_store_backend_name(f->sc.s), "sqlite");
    sc_fill(f->sc.s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stele_store_close(f->sc.s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Only columns marked INDEX get an index: FILTER and SORT alone do not. */
static void test_indexes_only_where_asked(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    json_t *rows = json_array();
    assert_int_equal(stele_store_select_json(
                         f->sc.s,
                         "SELECT name FROM sqlite_master WHERE type = 'index' "
                         "AND tbl_name = 'accounts' AND sql IS NOT NULL "
                         "ORDER BY name",
                         NULL, 0, rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 0), "name")),
        "accounts_owner");
    json_decref(rows);
#ifdef STELE_WITH_POSTGRES
    /* fillfactor is PostgreSQL's */
    assert_int_equal(stele_store_postgres_fillfactor(f->sc.s, 90, &err),
                     STELE_EINVAL);
#endif
}

int main(void)
{
    static const store_conformance_backend sqlite_backend = {
        .name = "sqlite",
        .setup = setup,
        .teardown = teardown,
        .missing_table_code = NULL, /* "no such table: nope" */
    };
    int failed = store_conformance_run(&sqlite_backend);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_indexes_only_where_asked, setup,
                                        teardown),
    };
    failed += cmocka_run_group_tests_name("store sqlite", tests, NULL, NULL);
    return failed ? 1 : 0;
}
