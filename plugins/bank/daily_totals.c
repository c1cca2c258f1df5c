/*
 * The daily-totals projector: money in and out and accounts opened and
 * closed per UTC day, across all accounts. Events of many aggregates feed
 * one row, so it relies on each event's own time, not on arrival order.
 */
#include <stele/plugin.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const stele_host_api *host;

static const stele_record_ref events[] = {
    {"bank.AccountOpened", 1},
    {"bank.Deposited", 2},
    {"bank.Withdrawn", 1},
    {"bank.AccountClosed", 1},
};

static const stele_column_def columns[] = {
    {"day", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"deposited", STELE_COL_INT, STELE_COL_SORT},
    {"withdrawn", STELE_COL_INT, STELE_COL_SORT},
    {"opened", STELE_COL_INT, 0},
    {"closed", STELE_COL_INT, 0},
    {"events", STELE_COL_INT, 0},
};

static const stele_table_def tables[] = {
    {"daily_totals", columns, sizeof columns / sizeof columns[0]},
};

static int project(void *ctx, const stele_event *evs, size_t n,
                   stele_store_tx *tx, stele_err *err)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const stele_event *ev = &evs[i];
        int64_t dep = 0, wd = 0, opened = 0, closed = 0, amount = 0;
        const char *t = ev->type;
        int rc = 0;
        if (strcmp(t, "bank.AccountOpened") == 0) {
            opened = 1;
            rc = host->get_long(ev->value, "initial_deposit", &dep);
        } else if (strcmp(t, "bank.Deposited") == 0) {
            stele_value money; /* v2: {minor, currency} */
            rc = host->get_record(ev->value, "amount", &money);
            if (rc == 0)
                rc = host->get_long(&money, "minor", &amount);
            dep = amount;
        } else if (strcmp(t, "bank.Withdrawn") == 0) {
            rc = host->get_long(ev->value, "amount", &amount);
            wd = amount;
        } else if (strcmp(t, "bank.AccountClosed") == 0) {
            closed = 1;
        }
        if (rc != 0)
            return rc;
        time_t secs = (time_t)(ev->meta->timestamp_ms / 1000);
        struct tm tm;
        char day[16];
        gmtime_r(&secs, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        stele_param p[] = {STELE_P_TEXT(day, strlen(day)), STELE_P_INT(dep),
                           STELE_P_INT(wd), STELE_P_INT(opened),
                           STELE_P_INT(closed)};
        rc = host->exec(
            tx,
            "INSERT INTO daily_totals(day, deposited, withdrawn, opened, "
            "closed, events) VALUES(?1, ?2, ?3, ?4, ?5, 1) "
            "ON CONFLICT(day) DO UPDATE SET "
            "deposited = daily_totals.deposited + ?2, "
            "withdrawn = daily_totals.withdrawn + ?3, "
            "opened = daily_totals.opened + ?4, "
            "closed = daily_totals.closed + ?5, "
            "events = daily_totals.events + 1",
            p, 5, err);
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
    .name = "daily_totals",
    .version = 1,
    .events = events,
    .n_events = sizeof events / sizeof events[0],
    .tables = tables,
    .n_tables = 1,
    .project = project,
};

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "bank.daily_totals",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_PROJECTOR,
    .init = init,
    .def.projector = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
