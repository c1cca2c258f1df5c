/*
 * bank.Deposited v1 -> v2.
 *
 * v1 carried the amount as a long in cents; v2 carries it as Money
 * {minor, currency}, and adds the deposit's channel. Schema resolution
 * cannot turn a long into a record, and only the bank knows which currency
 * its v1 amounts were in: every account was kept in euros then. The
 * channel was not recorded before v2: it keeps its default, "unknown".
 */
#include <stele/plugin.h>

static const stele_host_api *host;

static int upcast(void *ctx, const stele_value *old, stele_upcast_out *out,
                  stele_err *err)
{
    (void)ctx;
    (void)err;
    int64_t cents, balance;
    stele_value v2, money;
    int rc;
    if ((rc = host->get_long(old, "amount", &cents)) ||
        (rc = host->get_long(old, "balance", &balance)) ||
        (rc = host->upcast_emit(out, "bank.Deposited", &v2)) ||
        (rc = host->get_record(&v2, "amount", &money)) ||
        (rc = host->set_long(&money, "minor", cents)) ||
        (rc = host->set_string(&money, "currency", "EUR", 3)))
        return rc;
    return host->set_long(&v2, "balance", balance);
}

static int init(const stele_host_api *api, void **ctx, stele_err *err)
{
    (void)err;
    host = api;
    *ctx = NULL;
    return 0;
}

static const stele_upcaster_def def = {
    .event_type = "bank.Deposited",
    .from_version = 1,
    .to_version = 2,
    .upcast = upcast,
};

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "bank.deposited_v1_v2",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_UPCASTER,
    .init = init,
    .def.upcaster = &def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
