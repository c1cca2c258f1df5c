/*
 * The bank's queries. One shared object may hold one plugin only, so each
 * query is built from this file with -DQUERY_ACCOUNT or -DQUERY_RICHEST.
 *
 *  bank.account   one account's balance row (single result)
 *  bank.richest   accounts with at least min_balance, richest first (list)
 */
#include <stele/plugin.h>
#include <string.h>

static const stele_host_api *host;

#if defined(QUERY_ACCOUNT)
static int run(void *ctx, const stele_value *params, stele_query_ctx *q,
               stele_err *err)
{
    (void)ctx;
    const char *id;
    size_t len;
    int rc = host->get_string(params, "account_id", &id, &len);
    if (rc != 0)
        return rc;
    stele_param p = STELE_P_TEXT(id, len);
    return host->query_rows(q,
                            "SELECT account_id, owner, balance, status, "
                            "version FROM balances WHERE account_id = ?",
                            &p, 1, err);
}
static const stele_query_def def = {
    .name = "account",
    .params = {"bank.AccountLookup", 1},
    .single = true,
    .run = run,
};
#define PLUGIN_NAME "bank.account_query"
#elif defined(QUERY_RICHEST)
static int run(void *ctx, const stele_value *params, stele_query_ctx *q,
               stele_err *err)
{
    (void)ctx;
    int64_t min_balance, limit;
    int rc;
    if ((rc = host->get_long(params, "min_balance", &min_balance)) ||
        (rc = host->get_long(params, "limit", &limit)))
        return rc;
    if (limit < 1 || limit > 1000)
        limit = 10;
    stele_param p[] = {STELE_P_INT(min_balance), STELE_P_INT(limit)};
    return host->query_rows(q,
                            "SELECT account_id, owner, balance FROM balances "
                            "WHERE status = 'open' AND balance >= ? "
                            "ORDER BY balance DESC, account_id LIMIT ?",
                            p, 2, err);
}
static const stele_query_def def = {
    .name = "richest",
    .params = {"bank.RichestAccounts", 1},
    .single = false,
    .run = run,
};
#define PLUGIN_NAME "bank.richest_query"
#else
#error "define QUERY_ACCOUNT or QUERY_RICHEST"
#endif

static int init(const stele_host_api *api, void **ctx, stele_err *err)
{
    (void)err;
    host = api;
    *ctx = NULL;
    return 0;
}

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,    .name = PLUGIN_NAME, .version = "1.0.0",
    .kind = STELE_PLUGIN_QUERY, .init = init,        .def.query = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
