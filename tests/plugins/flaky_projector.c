/*
 * A test projector that counts events per account and fails its whole
 * batch when it meets a deposit of 666 — unless the file named by the
 * environment variable STELE_TEST_HEALED exists. It proves that a failed
 * batch writes nothing and does not move the checkpoint.
 */
#include <stele/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const stele_host_api *host;

static const stele_record_ref events[] = {
    {"bank.AccountOpened", 1},
    {"bank.Deposited", 2},
};

static const stele_column_def columns[] = {
    {"account_id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER},
    {"events", STELE_COL_INT, STELE_COL_SORT},
};

static const stele_table_def tables[] = {{"flaky_counts", columns, 2}};

static int project(void *ctx, const stele_event *evs, size_t n,
                   stele_store_tx *tx, stele_err *err)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const char *id = evs[i].meta->aggregate_id;
        stele_param p = STELE_P_TEXT(id, strlen(id));
        int rc = host->exec(tx,
                            "INSERT INTO flaky_counts(account_id, events) "
                            "VALUES(?1, 1) ON CONFLICT(account_id) DO "
                            "UPDATE SET events = events + 1",
                            &p, 1, err);
        if (rc != 0)
            return rc;
        int64_t amount = 0;
        stele_value money;
        if (strcmp(evs[i].type, "bank.Deposited") == 0 &&
            host->get_record(evs[i].value, "amount", &money) == 0)
            host->get_long(&money, "minor", &amount);
        const char *healed = getenv("STELE_TEST_HEALED");
        if (amount == 666 && !(healed && access(healed, F_OK) == 0)) {
            snprintf(err->msg, sizeof err->msg, "poison deposit");
            return STELE_EPLUGIN;
        }
    }
    return 0;
}

static int init(const stele_host_api *api, void **ctx, stele_err *err)
{
    (void)err;
    host = api;
    *ctx = NULL;
    return 0;
}

static const stele_projector_def def = {
    .name = "flaky",
    .version = 1,
    .events = events,
    .n_events = 2,
    .tables = tables,
    .n_tables = 1,
    .project = project,
};

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,        .name = "test.flaky", .version = "1",
    .kind = STELE_PLUGIN_PROJECTOR, .init = init,         .def.projector = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
