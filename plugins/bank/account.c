/*
 * The Account aggregate of the bank example.
 *
 * An account is nothing yet, open, or closed — its state is a union of
 * those shapes (bank.AccountState). Commands: OpenAccount, Deposit,
 * Withdraw (rejected on insufficient funds), CloseAccount. Any command on a
 * closed account is rejected.
 */
#include <stele/plugin.h>
#include <string.h>

/* Tests build this file with another state version to prove that a bump
 * rebuilds stored states from events. */
#ifndef ACCOUNT_STATE_VERSION
#define ACCOUNT_STATE_VERSION 1
#endif

/* Tests build this file with BANK_DEPOSITED_V1 for the account as it was
 * before bank.Deposited v2 (amount in cents, no currency, no channel), to
 * write v1 events that the current plugins must read as v2. */
#ifdef BANK_DEPOSITED_V1
#define DEPOSIT_VERSION 1
#define DEPOSITED_VERSION 1
#else
#define DEPOSIT_VERSION 2
#define DEPOSITED_VERSION 2
#endif

/* The bank keeps its accounts in one currency. */
#define CURRENCY "EUR"

static const stele_host_api *host;

static const stele_record_ref commands[] = {
    {"bank.OpenAccount", 1},
    {"bank.Deposit", DEPOSIT_VERSION},
    {"bank.Withdraw", 1},
    {"bank.CloseAccount", 1},
};

static const stele_record_ref events[] = {
    {"bank.AccountOpened", 1},
    {"bank.Deposited", DEPOSITED_VERSION},
    {"bank.Withdrawn", 1},
    {"bank.AccountClosed", 1},
};

typedef enum { NONE, OPEN, CLOSED } shape;

/* The account's shape and, when open, its owner and balance. */
typedef struct account {
    shape shape;
    stele_value body;
    int64_t balance;
} account;

static int read_account(const stele_value *state, account *a)
{
    const char *branch;
    int rc = host->get_branch(state, "account", &branch, &a->body);
    if (rc != 0)
        return rc;
    a->balance = 0;
    if (strcmp(branch, "bank.OpenState") == 0) {
        a->shape = OPEN;
        return host->get_long(&a->body, "balance", &a->balance);
    }
    a->shape = strcmp(branch, "bank.ClosedState") == 0 ? CLOSED : NONE;
    return 0;
}

static int emit_withdrawn(stele_decision *d, int64_t amount, int64_t balance)
{
    stele_value ev;
    int rc = host->emit(d, "bank.Withdrawn", &ev);
    if (rc == 0)
        rc = host->set_long(&ev, "amount", amount);
    if (rc == 0)
        rc = host->set_long(&ev, "balance", balance);
    return rc;
}

static int emit_deposited(stele_decision *d, const stele_command *cmd,
                          int64_t amount, int64_t balance)
{
    stele_value ev;
    int rc = host->emit(d, "bank.Deposited", &ev);
    if (rc == 0)
        rc = host->set_long(&ev, "balance", balance);
#ifdef BANK_DEPOSITED_V1
    (void)cmd;
    if (rc == 0)
        rc = host->set_long(&ev, "amount", amount);
#else
    stele_value money;
    const char *channel;
    size_t len;
    if (rc == 0)
        rc = host->get_record(&ev, "amount", &money);
    if (rc == 0)
        rc = host->set_long(&money, "minor", amount);
    if (rc == 0)
        rc =
            host->set_string(&money, "currency", CURRENCY, sizeof CURRENCY - 1);
    if (rc == 0)
        rc = host->get_string(cmd->value, "channel", &channel, &len);
    if (rc == 0)
        rc = host->set_string(&ev, "channel", channel, len);
#endif
    return rc;
}

static int decide(void *ctx, const stele_command *cmd, const stele_value *state,
                  stele_decision *d)
{
    (void)ctx;
    account a;
    int rc = read_account(state, &a);
    if (rc != 0)
        return rc;
    const char *t = cmd->type;

    if (strcmp(t, "bank.OpenAccount") == 0) {
        if (a.shape != NONE)
            return host->reject(d, "ALREADY_EXISTS", "account %s exists",
                                cmd->aggregate_id);
        const char *owner;
        size_t len;
        int64_t initial;
        if ((rc = host->get_string(cmd->value, "owner", &owner, &len)) ||
            (rc = host->get_long(cmd->value, "initial_deposit", &initial)))
            return rc;
        if (len == 0)
            return host->reject(d, "INVALID", "owner must not be empty");
        if (initial < 0)
            return host->reject(d, "INVALID",
                                "initial deposit must not be negative");
        stele_value ev;
        if ((rc = host->emit(d, "bank.AccountOpened", &ev)) ||
            (rc = host->set_string(&ev, "owner", owner, len)) ||
            (rc = host->set_long(&ev, "initial_deposit", initial)))
            return rc;
        return 0;
    }

    if (a.shape == NONE)
        return host->reject(d, "NOT_FOUND", "account %s is not open",
                            cmd->aggregate_id);
    if (a.shape == CLOSED)
        return host->reject(d, "ACCOUNT_CLOSED", "account %s is closed",
                            cmd->aggregate_id);

    if (strcmp(t, "bank.Deposit") == 0 || strcmp(t, "bank.Withdraw") == 0) {
        int64_t amount;
        if ((rc = host->get_long(cmd->value, "amount", &amount)))
            return rc;
        if (amount <= 0)
            return host->reject(d, "INVALID", "amount must be positive");
        if (t[5] == 'D') {
            if (a.balance > INT64_MAX - amount)
                return host->reject(d, "INVALID", "balance would overflow");
            return emit_deposited(d, cmd, amount, a.balance + amount);
        }
        if (amount > a.balance)
            return host->reject(d, "INSUFFICIENT_FUNDS",
                                "balance %lld is less than %lld",
                                (long long)a.balance, (long long)amount);
        return emit_withdrawn(d, amount, a.balance - amount);
    }

    if (strcmp(t, "bank.CloseAccount") == 0) {
        const char *reason;
        size_t len;
        stele_value ev;
        if ((rc = host->get_string(cmd->value, "reason", &reason, &len)) ||
            (rc = host->emit(d, "bank.AccountClosed", &ev)) ||
            (rc = host->set_string(&ev, "reason", reason, len)) ||
            (rc = host->set_long(&ev, "final_balance", a.balance)))
            return rc;
        return 0;
    }
    return host->reject(d, "UNKNOWN_COMMAND", "Account does not handle %s", t);
}

static int evolve(void *ctx, stele_value *state, const stele_event *ev)
{
    (void)ctx;
    const char *t = ev->type;
    stele_value body;
    int rc;
    if (strcmp(t, "bank.AccountOpened") == 0) {
        const char *owner;
        size_t len;
        int64_t initial;
        if ((rc = host->get_string(ev->value, "owner", &owner, &len)) ||
            (rc = host->get_long(ev->value, "initial_deposit", &initial)) ||
            (rc =
                 host->set_branch(state, "account", "bank.OpenState", &body)) ||
            (rc = host->set_string(&body, "owner", owner, len)))
            return rc;
        return host->set_long(&body, "balance", initial);
    }
    account a;
    if ((rc = read_account(state, &a)))
        return rc;
    if (strcmp(t, "bank.Deposited") == 0 || strcmp(t, "bank.Withdrawn") == 0) {
        int64_t balance;
        if (a.shape != OPEN)
            return STELE_EINVAL;
        if ((rc = host->get_long(ev->value, "balance", &balance)))
            return rc;
        return host->set_long(&a.body, "balance", balance);
    }
    if (strcmp(t, "bank.AccountClosed") == 0) {
        const char *owner, *reason;
        size_t olen, rlen;
        int64_t final_balance;
        stele_value closed;
        if (a.shape != OPEN)
            return STELE_EINVAL;
        /* Read everything from the open shape before switching branch:
         * set_branch replaces the value the strings point into. */
        char owner_copy[512];
        if ((rc = host->get_string(&a.body, "owner", &owner, &olen)))
            return rc;
        if (olen >= sizeof owner_copy)
            olen = sizeof owner_copy - 1;
        memcpy(owner_copy, owner, olen);
        if ((rc = host->get_string(ev->value, "reason", &reason, &rlen)) ||
            (rc = host->get_long(ev->value, "final_balance", &final_balance)) ||
            (rc = host->set_branch(state, "account", "bank.ClosedState",
                                   &closed)) ||
            (rc = host->set_string(&closed, "owner", owner_copy, olen)) ||
            (rc = host->set_string(&closed, "reason", reason, rlen)))
            return rc;
        return host->set_long(&closed, "final_balance", final_balance);
    }
    return STELE_EINVAL;
}

static int init(const stele_host_api *api, void **ctx, stele_err *err)
{
    (void)err;
    host = api;
    *ctx = NULL;
    return 0;
}

static const stele_aggregate_def account_def = {
    .type = "Account",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .events = events,
    .n_events = sizeof events / sizeof events[0],
    .state = {"bank.AccountState", 1},
    .state_version = ACCOUNT_STATE_VERSION,
    .decide = decide,
    .evolve = evolve,
};

static const stele_plugin_descriptor descriptor = {
    STELE_DESCRIPTOR_HEADER,
    .name = "bank.account",
    .version = "1.0.0",
    .kind = STELE_PLUGIN_AGGREGATE,
    .init = init,
    .def.aggregate = &account_def,
};

STELE_EXPORT const stele_plugin_descriptor *stele_plugin_entry(void)
{
    return &descriptor;
}
