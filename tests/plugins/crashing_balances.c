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

#include <stele/plugin.h>

static int crashing_project(void *ctx, const stele_event *evs, size_t n,
                            stele_store_tx *tx, stele_err *err);

/* The bank's projector, calling this file's project. */
#define BALANCES_PROJECT crashing_project
#include "../../plugins/bank/balances.c"

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
