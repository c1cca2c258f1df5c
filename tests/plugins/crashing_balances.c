/*
 * The bank's balances projector with a project that crashes or hangs on
 * the deposit the event carries: 666 writes to address 8 (SIGSEGV), 667
 * calls abort(), 670 loops forever. Every other event is the bank's. The
 * containment tests (tests/e2e/test_projector_containment.c) prove that
 * such an event costs its aggregate in this projector, not the projector
 * nor the host.
 */
#include <stdint.h>
#include <stdlib.h>

/* The bank's projector, its entry renamed: this file's descriptor is the
 * plugin's. */
#define stele_plugin_entry bank_balances_entry
#include "../../plugins/bank/balances.c"
#undef stele_plugin_entry

static volatile int sink;

static void crash_as_asked(const stele_event *ev)
{
    stele_value money;
    int64_t minor = 0;
    if (strcmp(ev->type, "bank.Deposited") != 0 ||
        host->get_record(ev->value, "amount", &money) != 0 ||
        host->get_long(&money, "minor", &minor) != 0)
        return;
    switch (minor) {
    /* Address 8, not NULL: UBSan would stop a NULL store before it
     * faults. */
    case 666: *(volatile int *)(uintptr_t)(sink + 8) = 1; break;
    case 667: abort();
    case 670:
        for (;;)
            sink++;
    default: break;
    }
}

static int crashing_project(void *ctx, const stele_event *evs, size_t n,
                            stele_store_tx *tx, stele_err *err)
{
    for (size_t i = 0; i < n; i++)
        crash_as_asked(&evs[i]);
    return project(ctx, evs, n, tx, err);
}

static const stele_projector_def crashing_def = {
    .name = "balances",
    .version = BALANCES_VERSION,
    .events = events,
    .n_events = sizeof events / sizeof events[0],
    .tables = tables,
    .n_tables = 1,
    .project = crashing_project,
};

static const stele_plugin_descriptor crashing_descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "test.crashing_balances",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_PROJECTOR,
    .init = init,
    .def.projector = &crashing_def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &crashing_descriptor;
}
