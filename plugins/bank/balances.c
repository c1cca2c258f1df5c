/*
 * The balances projector: one row per account with its owner, balance and
 * status, kept by the Account events.
 */
#include <stele/plugin.h>
#include <string.h>

/* Tests build this file with another version to prove that a bump
 * rebuilds the read model. */
#ifndef BALANCES_VERSION
#define BALANCES_VERSION 1
#endif
/* and with another project, to prove how the host contains one that
 * crashes (tests/plugins/crashing_balances.c). */
#ifndef BALANCES_PROJECT
#define BALANCES_PROJECT project
#endif

static const stele_host_api *host;

static const stele_record_ref events[] = {
    {"bank.AccountOpened", 1},
    {"bank.Deposited", 2},
    {"bank.Withdrawn", 1},
    {"bank.AccountClosed", 1},
};

static const stele_column_def columns[] = {
    {"account_id", STELE_COL_TEXT,
     STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"owner", STELE_COL_TEXT,
     STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
    {"balance", STELE_COL_INT, STELE_COL_FILTER | STELE_COL_SORT},
    {"status", STELE_COL_TEXT, STELE_COL_FILTER},
    {"version", STELE_COL_INT, 0},
    {"updated_at", STELE_COL_INT, STELE_COL_SORT},
};

static const stele_table_def tables[] = {
    {"balances", columns, sizeof columns / sizeof columns[0]},
};

#define TEXT(s) STELE_P_TEXT((s), strlen(s))

static int project_one(stele_store_tx *tx, const stele_event *ev,
                       stele_err *err)
{
    const stele_event_meta *m = ev->meta;
    const char *t = ev->type;
    int rc;
    if (strcmp(t, "bank.AccountOpened") == 0) {
        const char *owner;
        size_t len;
        int64_t initial;
        if ((rc = host->get_string(ev->value, "owner", &owner, &len)) ||
            (rc = host->get_long(ev->value, "initial_deposit", &initial)))
            return rc;
        stele_param p[] = {TEXT(m->aggregate_id), STELE_P_TEXT(owner, len),
                           STELE_P_INT(initial), STELE_P_INT(m->version),
                           STELE_P_INT(m->timestamp_ms)};
        return host->exec(tx,
                          "INSERT INTO balances(account_id, owner, balance, "
                          "status, version, updated_at) "
                          "VALUES(?, ?, ?, 'open', ?, ?)",
                          p, 5, err);
    }
    if (strcmp(t, "bank.Deposited") == 0 || strcmp(t, "bank.Withdrawn") == 0) {
        int64_t balance;
        if ((rc = host->get_long(ev->value, "balance", &balance)))
            return rc;
        stele_param p[] = {STELE_P_INT(balance), STELE_P_INT(m->version),
                           STELE_P_INT(m->timestamp_ms), TEXT(m->aggregate_id)};
        return host->exec(tx,
                          "UPDATE balances SET balance = ?, version = ?, "
                          "updated_at = ? WHERE account_id = ?",
                          p, 4, err);
    }
    if (strcmp(t, "bank.AccountClosed") == 0) {
        stele_param p[] = {STELE_P_INT(m->version),
                           STELE_P_INT(m->timestamp_ms), TEXT(m->aggregate_id)};
        return host->exec(tx,
                          "UPDATE balances SET status = 'closed', balance = 0, "
                          "version = ?, updated_at = ? WHERE account_id = ?",
                          p, 3, err);
    }
    return 0;
}

static int project(void *ctx, const stele_event *evs, size_t n,
                   stele_store_tx *tx, stele_err *err)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        int rc = project_one(tx, &evs[i], err);
        if (rc != 0)
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
    .name = "balances",
    .version = BALANCES_VERSION,
    .events = events,
    .n_events = sizeof events / sizeof events[0],
    .tables = tables,
    .n_tables = 1,
    .project = BALANCES_PROJECT,
};

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "bank.balances",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_PROJECTOR,
    .init = init,
    .def.projector = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
