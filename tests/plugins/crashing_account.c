/*
 * The bank's Account aggregate with a decide that crashes or hangs as the
 * command asks: a Deposit of 666 writes through NULL (SIGSEGV), 667 calls
 * abort(), 668 calls exit(3), 669 recurses without end (stack overflow),
 * 670 loops forever; a deposit of 671 is decided but its evolve writes
 * through NULL; 672 makes decide fail (a plugin error, no crash); 673
 * reads a misspelt field ("amountt") and fails with its status. Any other
 * command is the bank's. The containment tests (tests/e2e/test_containment.c)
 * prove that such a command costs itself, not the host.
 */
#include <stdint.h>
#include <stdlib.h>

/* The bank's account, its entry renamed: this file's descriptor is the
 * plugin's. */
#define stele_plugin_entry bank_account_entry
#include "../../plugins/bank/account.c"
#undef stele_plugin_entry

static volatile int sink;

static int recurse(int depth)
{
    volatile char frame[256];
    if (sink == -1) /* never: only so that it is not "infinite" to gcc */
        return 0;
    frame[depth % sizeof frame] = (char)depth;
    return recurse(depth + 1) + frame[0]; /* not a tail call */
}

static void crash_as_asked(int64_t amount)
{
    switch (amount) {
    /* Address 8, not NULL: UBSan would stop a NULL store before it
     * faults. */
    case 666: *(volatile int *)(uintptr_t)(sink + 8) = 1; break;
    case 667: abort();
    case 668: exit(3);
    case 669: sink = recurse(0); break;
    case 670:
        for (;;)
            sink++;
    default: break;
    }
}

static int64_t deposit_amount(const stele_command *cmd)
{
    int64_t amount = 0;
    if (strcmp(cmd->type, "bank.Deposit") == 0)
        host->get_long(cmd->value, "amount", &amount);
    return amount;
}

static int crashing_decide(void *ctx, const stele_command *cmd,
                           const stele_value *state, stele_decision *d)
{
    int64_t amount = deposit_amount(cmd);
    crash_as_asked(amount);
    if (amount == 672)
        return STELE_EPLUGIN;
    if (amount == 673) {
        int64_t x;
        return host->get_long(cmd->value, "amountt", &x);
    }
    return decide(ctx, cmd, state, d);
}

static int crashing_evolve(void *ctx, stele_value *state, const stele_event *ev)
{
    stele_value money;
    int64_t minor = 0;
    if (strcmp(ev->type, "bank.Deposited") == 0 &&
        host->get_record(ev->value, "amount", &money) == 0 &&
        host->get_long(&money, "minor", &minor) == 0 && minor == 671)
        *(volatile int *)(uintptr_t)(sink + 8) = 1;
    return evolve(ctx, state, ev);
}

static const stele_aggregate_def crashing_def = {
    .type = "Account",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .events = events,
    .n_events = sizeof events / sizeof events[0],
    .state = {"bank.AccountState", 1},
    .state_version = ACCOUNT_STATE_VERSION,
    .decide = crashing_decide,
    .evolve = crashing_evolve,
};

static const stele_plugin_descriptor crashing_descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "test.crashing_account",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_AGGREGATE,
    .init = init,
    .def.aggregate = &crashing_def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &crashing_descriptor;
}
