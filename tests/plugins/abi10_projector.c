/*
 * A projector as a plugin built against ABI 1.0 declares it: its FILTER
 * and SORT columns had an index then, with no INDEX flag to ask for one.
 * The host keeps that for such plugins (tests/unit/test_engine.c).
 */
#include <stele/plugin.h>
#include <string.h>

#include "../fixtures/descriptor_1_1.h"

static const stele_host_api *host;

static const stele_record_ref events[] = {{"bank.AccountOpened", 1}};

static const stele_column_def columns[] = {
    {"account_id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER},
    {"owner", STELE_COL_TEXT, STELE_COL_FILTER},
    {"opened_at", STELE_COL_INT, STELE_COL_SORT},
    {"note", STELE_COL_TEXT, STELE_COL_NULLABLE},
};

static const stele_table_def tables[] = {{"abi10_accounts", columns, 4}};

static int project(void *ctx, const stele_event *evs, size_t n,
                   stele_store_tx *tx, stele_err *err)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const char *owner;
        size_t len;
        int rc = host->get_string(evs[i].value, "owner", &owner, &len);
        if (rc)
            return rc;
        const char *id = evs[i].meta->aggregate_id;
        stele_param p[] = {STELE_P_TEXT(id, strlen(id)),
                           STELE_P_TEXT(owner, len),
                           STELE_P_INT(evs[i].meta->timestamp_ms)};
        if ((rc = host->exec(tx,
                             "INSERT INTO abi10_accounts(account_id, owner, "
                             "opened_at) VALUES(?, ?, ?)",
                             p, 3, err)))
            return rc;
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
    .name = "abi10",
    .version = 1,
    .events = events,
    .n_events = 1,
    .tables = tables,
    .n_tables = 1,
    .project = project,
};

/* The descriptor of ABI 1.0: no fingerprint at its end. */
static const descriptor_1_1 descriptor = {
    DESCRIPTOR_HEADER_1(0),         .name = "test.abi10", .version = "1",
    .kind = STELE_PLUGIN_PROJECTOR, .init = init,         .def.projector = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return (const stele_plugin_descriptor *)&descriptor;
}
