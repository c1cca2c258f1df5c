/*
 * The guard around plugin calls (guard.h): the in-flight file, the
 * fatal-signal and exit hooks, the watchdog, and the count of deaths per
 * command.
 *
 * The file holds a crash table and N_SLOTS slots, one per process of the
 * data directory that calls plugins (a host, and a CLI that decides on the
 * embedded log). A process owns its slot by an fcntl lock on a byte of it:
 * the kernel drops the lock when the process dies however it dies, so a
 * slot that can be locked and says "in a call" is a dead process's last
 * word.
 */
#define _GNU_SOURCE
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/logline.h"
#include "common/util.h"

#define FILE_MAGIC 0x31445247454c4553ULL /* "STELGRD1" */
#define SLOT_MAGIC 0x544f4c53U           /* "SLOT" */
#define N_SLOTS 8
#define N_CRASHES 32
#define TOPIC_MAX 160
#define ID_MAX 256
#define WHY_MAX 112

/* A death in a call is ended with these (watchdog). */
#define EXIT_TIMED_OUT 70 /* EX_SOFTWARE */
#define EXIT_STOPPED 143  /* as if killed by SIGTERM */
#define WATCH_TICK_MS 20

enum { IDLE = 0, IN_CALL = 1 };
#define KIND_MAX GUARD_PROJECT_ONE
enum { R_NONE = 0, R_SIGNAL, R_EXIT, R_TIMEOUT, R_STOPPED, R_MAX };

typedef struct slot {
    uint32_t magic;
    uint32_t seq; /* odd while the command's identity is written */
    uint32_t state;
    uint32_t kind;
    uint32_t reason;
    int32_t signal;
    int32_t partition;
    int32_t pid;
    int64_t offset;
    uint64_t calls;     /* calls begun: the watchdog times each by it */
    int64_t elapsed_ms; /* R_TIMEOUT, R_STOPPED */
    char topic[TOPIC_MAX];
    char command_id[ID_MAX];
} slot;

typedef struct crash {
    uint32_t count; /* 0: a free entry */
    uint32_t kind;
    int32_t partition;
    uint32_t pad;
    int64_t offset;
    int64_t last_ms; /* wall clock of the last death counted */
    char topic[TOPIC_MAX];
    char command_id[ID_MAX];
    char why[WHY_MAX];
} crash;

typedef struct layout {
    uint64_t magic;
    uint32_t size; /* sizeof (layout): another build's file is started afresh */
    uint32_t pad;
    crash crashes[N_CRASHES];
    slot slots[N_SLOTS];
} layout;

static struct {
    bool open;
    int fd;
    layout *map;
    slot *slot; /* ours; NULL: calls are not recorded */
    char path[4096];
    int level; /* 0 error, 1 warn, 2 info, 3 debug */
    unsigned crash_limit;
    int64_t timeout_ms, grace_ms;
    volatile sig_atomic_t *stop;
    unsigned n_crashes; /* entries in use, as of open */
    pthread_t watchdog;
    bool watching;
    int quit;
    void *altstack;
    stack_t old_stack;
    bool stack_set;
    struct sigaction old_actions[5];
    bool handlers_set;
} g = {.fd = -1};

static const int fatal_signals[5] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

static void glogf(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void glogf(int level, const char *fmt, ...)
{
    if (level > g.level)
        return;
    stele_log_fields f = {.component = "guard"};
    va_list ap;
    va_start(ap, fmt);
    stele_logline_v(level, &f, fmt, ap);
    va_end(ap);
}

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case GUARD_DECIDE: return "decide";
    case GUARD_EVOLVE: return "evolve";
    case GUARD_PROJECT:
    case GUARD_PROJECT_ONE: return "project";
    case GUARD_REBUILD: return "evolve (rebuilding states)";
    default: return "a plugin call";
    }
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return NULL;
    }
}

static bool is_project(uint32_t kind)
{
    return kind == GUARD_PROJECT || kind == GUARD_PROJECT_ONE;
}

/* "decide of command X (t[p]@o)", "project of projector X on t[p]@o", or
 * for a batch "... on the batch from t[p]@o". */
static void describe_call(const slot *s, char *out, size_t size)
{
    if (is_project(s->kind))
        snprintf(out, size, "project of projector %s on %s%s[%d]@%" PRId64,
                 s->command_id,
                 s->kind == GUARD_PROJECT ? "the batch from " : "", s->topic,
                 (int)s->partition, s->offset);
    else
        snprintf(out, size, "%s of command %s (%s[%d]@%" PRId64 ")",
                 kind_name(s->kind), s->command_id, s->topic, (int)s->partition,
                 s->offset);
}

/* Copies s into a fixed field, cut to fit, NUL-terminated. */
static void put_str(char *dst, size_t size, const char *s)
{
    size_t n = s ? strnlen(s, size - 1) : 0;
    memcpy(dst, s ? s : "", n);
    dst[n] = '\0';
}

static bool str_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static int lock_byte(off_t at, bool wait)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    return fcntl(g.fd, wait ? F_SETLKW : F_SETLK, &fl);
}

static void unlock_byte(off_t at)
{
    struct flock fl = {
        .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    fcntl(g.fd, F_SETLK, &fl);
}

static off_t slot_at(size_t i)
{
    return (off_t)(offsetof(layout, slots) + i * sizeof(slot));
}

/* --- the hooks: async-signal-safe, or the watchdog's ---------------- */

static void on_fatal(int sig)
{
    slot *s = g.slot;
    if (s && __atomic_load_n(&s->state, __ATOMIC_RELAXED) == IN_CALL) {
        s->signal = sig;
        __atomic_store_n(&s->reason, R_SIGNAL, __ATOMIC_RELAXED);
    }
    /* Die of it as if never caught: a fault re-executes and faults again,
     * a raised signal is delivered when the handler returns. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void on_exit_hook(void)
{
    slot *s = g.slot;
    if (s && __atomic_load_n(&s->state, __ATOMIC_RELAXED) == IN_CALL &&
        s->reason == R_NONE)
        __atomic_store_n(&s->reason, R_EXIT, __ATOMIC_RELAXED);
}

/* Records why, says so in one line, and ends the process; unless the
 * call returned meanwhile. */
static void watchdog_end(slot *s, uint32_t reason, int64_t elapsed_ms)
{
    s->elapsed_ms = elapsed_ms;
    __atomic_store_n(&s->reason, reason, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->state, __ATOMIC_SEQ_CST) != IN_CALL) {
        s->reason = R_NONE; /* it returned just now */
        return;
    }
    char line[1024], call[600];
    int n;
    describe_call(s, call, sizeof call);
    if (reason == R_TIMEOUT)
        n = snprintf(line, sizeof line,
                     "stele error: %s timed out after %" PRId64
                     " ms (engine.plugin_timeout_ms): the host exits; the "
                     "next start counts it against the %s\n",
                     call, elapsed_ms,
                     is_project(s->kind) ? "event" : "command");
    else
        n = snprintf(line, sizeof line,
                     "stele error: asked to stop, but %s has not returned "
                     "after %" PRId64 " ms (engine.shutdown_grace_ms %" PRId64
                     "): the host exits\n",
                     call, elapsed_ms, g.grace_ms);
    if (n > 0) {
        ssize_t w = write(
            2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
    _exit(reason == R_TIMEOUT ? EXIT_TIMED_OUT : EXIT_STOPPED);
}

static void *watch(void *arg)
{
    (void)arg;
    int64_t stop_ns = 0, seen_ns = 0;
    uint64_t seen_call = 0;
    /* Fine enough for a limit of a few hundred ms; 50 wake-ups a second
     * cost an idle host nothing it would notice. */
    struct timespec tick = {0, WATCH_TICK_MS * 1000000L};
    while (!__atomic_load_n(&g.quit, __ATOMIC_ACQUIRE)) {
        nanosleep(&tick, NULL);
        slot *s = g.slot;
        int64_t now = stele_mono_ns();
        if (!stop_ns && g.stop && *g.stop)
            stop_ns = now;
        if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != IN_CALL)
            continue;
        uint64_t call = __atomic_load_n(&s->calls, __ATOMIC_RELAXED);
        if (call != seen_call || !seen_ns) {
            /* A call begun since the last tick: timed from now, so it
             * is never cut short (and at most a tick late). */
            seen_call = call;
            seen_ns = now;
        }
        int64_t elapsed_ms = (now - seen_ns) / 1000000;
        if (g.timeout_ms > 0 && elapsed_ms >= g.timeout_ms)
            watchdog_end(s, R_TIMEOUT, elapsed_ms);
        /* A stop lets the call in hand finish within the grace, counted
         * from the stop or from the call's start, whichever is later: a
         * batch finished after a stop goes on call by call. */
        if (stop_ns &&
            (now - (seen_ns > stop_ns ? seen_ns : stop_ns)) / 1000000 >=
                g.grace_ms)
            watchdog_end(s, R_STOPPED, elapsed_ms);
    }
    return NULL;
}

/* --- the calls ------------------------------------------------------ */

void guard_begin(const char *topic, int32_t partition, int64_t offset,
                 const char *command_id)
{
    slot *s = g.slot;
    if (!s)
        return;
    s->seq++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    put_str(s->topic, sizeof s->topic, topic);
    put_str(s->command_id, sizeof s->command_id, command_id);
    s->partition = partition;
    s->offset = offset;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    s->seq++;
}

void guard_call(guard_call_kind kind)
{
    slot *s = g.slot;
    if (!s)
        return;
    s->kind = (uint32_t)kind;
    s->reason = R_NONE;
    s->signal = 0;
    /* No clock here: the watchdog times a call from when it first sees
     * its number, a tick late at most. */
    __atomic_store_n(&s->calls, s->calls + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->state, IN_CALL, __ATOMIC_RELEASE);
}

void guard_return(void)
{
    slot *s = g.slot;
    if (s)
        __atomic_store_n(&s->state, IDLE, __ATOMIC_RELEASE);
}

static crash *find_crash(const char *topic, int32_t partition, int64_t offset,
                         const char *command_id)
{
    for (size_t i = 0; i < N_CRASHES; i++) {
        crash *c = &g.map->crashes[i];
        if (c->count && c->offset == offset && c->partition == partition &&
            strncmp(c->topic, topic, sizeof c->topic - 1) == 0 &&
            strncmp(c->command_id, command_id, sizeof c->command_id - 1) == 0)
            return c;
    }
    return NULL;
}

unsigned guard_crashes(const char *topic, int32_t partition, int64_t offset,
                       const char *command_id, guard_call_kind *kind, char *why,
                       size_t size)
{
    if (!g.open || g.n_crashes == 0)
        return 0;
    const crash *c = find_crash(topic, partition, offset, command_id);
    if (!c)
        return 0;
    if (kind)
        *kind = (guard_call_kind)c->kind;
    if (why && size)
        put_str(why, size, c->why);
    return c->count;
}

void guard_forget(const char *topic, int32_t partition, int64_t offset,
                  const char *command_id)
{
    if (!g.open)
        return;
    crash *c = find_crash(topic, partition, offset, command_id);
    if (c)
        memset(c, 0, sizeof *c);
}

unsigned guard_crash_limit(void)
{
    return g.open ? g.crash_limit : 0;
}

/* --- open: what the dead left behind -------------------------------- */

static void describe(const slot *s, char *why, size_t size)
{
    const char *name = signal_name(s->signal);
    switch (s->reason) {
    case R_SIGNAL:
        if (name)
            snprintf(why, size, "%s", name);
        else
            snprintf(why, size, "signal %d", (int)s->signal);
        break;
    case R_EXIT: snprintf(why, size, "exit() during the call"); break;
    case R_TIMEOUT:
        snprintf(why, size, "timed out after %" PRId64 " ms", s->elapsed_ms);
        break;
    case R_STOPPED:
        snprintf(why, size,
                 "still running %" PRId64 " ms into a stop (SIGTERM)",
                 s->elapsed_ms);
        break;
    default:
        snprintf(why, size,
                 "died without a signal the host could catch "
                 "(SIGKILL, out of memory, _exit())");
    }
}

/* A death in s's call: counted against its command. */
static void count_death(const slot *s)
{
    char why[WHY_MAX];
    describe(s, why, sizeof why);
    crash *c = find_crash(s->topic, s->partition, s->offset, s->command_id);
    if (!c) {
        /* A free entry, else the one counted longest ago. */
        c = &g.map->crashes[0];
        for (size_t i = 0; i < N_CRASHES; i++) {
            crash *x = &g.map->crashes[i];
            if (!x->count) {
                c = x;
                break;
            }
            if (x->last_ms < c->last_ms)
                c = x;
        }
        memset(c, 0, sizeof *c);
        put_str(c->topic, sizeof c->topic, s->topic);
        put_str(c->command_id, sizeof c->command_id, s->command_id);
        c->partition = s->partition;
        c->offset = s->offset;
    }
    c->count++;
    c->kind = s->kind;
    c->last_ms = stele_now_ms();
    put_str(c->why, sizeof c->why, why);
    char call[600];
    describe_call(s, call, sizeof call);
    if (s->kind == GUARD_PROJECT) {
        glogf(1,
              "%s: a process died during %s: %s. Its events are projected "
              "one by one next, to find the one",
              g.path, call, why);
        return;
    }
    if (s->kind == GUARD_REBUILD) {
        glogf(1,
              "%s: a process died during %s of aggregate type %s at "
              "%s[%d]@%" PRId64 ": %s. Death %u of %u before that event's "
              "aggregate is marked broken (engine.plugin_crash_limit)",
              g.path, kind_name(s->kind), s->command_id, s->topic,
              (int)s->partition, s->offset, why, c->count, g.crash_limit);
        return;
    }
    if (s->kind == GUARD_PROJECT_ONE) {
        glogf(1,
              "%s: a process died during %s: %s. Death %u of %u before the "
              "projector parks the event's aggregate with PLUGIN_CRASHED "
              "(engine.plugin_crash_limit)",
              g.path, call, why, c->count, g.crash_limit);
        return;
    }
    glogf(1,
          "%s: a process died during %s of command %s (%s[%d]@%" PRId64
          "): %s. Death %u of %u before the command is rejected with "
          "PLUGIN_CRASHED (engine.plugin_crash_limit)",
          g.path, kind_name(s->kind), s->command_id, s->topic,
          (int)s->partition, s->offset, why, c->count, g.crash_limit);
}

static bool slot_valid(const slot *s)
{
    return s->magic == SLOT_MAGIC && (s->seq & 1) == 0 && s->state <= IN_CALL &&
           s->reason < R_MAX && s->kind <= KIND_MAX &&
           str_ok(s->topic, sizeof s->topic) &&
           str_ok(s->command_id, sizeof s->command_id);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Reads the table and the slots of dead processes; claims a slot. Under
 * the file's lock. */
static void take_over(void)
{
    layout *m = g.map;
    g.n_crashes = 0;
    for (size_t i = 0; i < N_CRASHES; i++) {
        crash *c = &m->crashes[i];
        if (!c->count)
            continue;
        if (!str_ok(c->topic, sizeof c->topic) ||
            !str_ok(c->command_id, sizeof c->command_id) ||
            !str_ok(c->why, sizeof c->why) || c->kind > KIND_MAX) {
            glogf(1, "%s: crash entry %zu is torn: ignored", g.path, i);
            memset(c, 0, sizeof *c);
        }
    }
    for (size_t i = 0; i < N_SLOTS; i++) {
        slot *s = &m->slots[i];
        if (lock_byte(slot_at(i), false) != 0)
            continue; /* a live process's */
        if (!all_zero(s, sizeof *s)) {
            if (!slot_valid(s))
                glogf(1, "%s: slot %zu is torn or not a slot: ignored", g.path,
                      i);
            else if (s->state == IN_CALL)
                count_death(s);
        }
        if (g.slot) {
            /* Cleared only when it was a dead process's to clear. */
            if (!all_zero(s, sizeof *s))
                memset(s, 0, sizeof *s);
            unlock_byte(slot_at(i));
            continue;
        }
        memset(s, 0, sizeof *s);
        s->magic = SLOT_MAGIC;
        s->pid = (int32_t)getpid();
        g.slot = s;
    }
    for (size_t i = 0; i < N_CRASHES; i++)
        g.n_crashes += m->crashes[i].count > 0;
    if (!g.slot)
        glogf(1,
              "%s: all %d slots are held by live processes: plugin calls "
              "of this one are not guarded",
              g.path, N_SLOTS);
}

static int map_file(stele_err *err)
{
    struct stat st;
    if (fstat(g.fd, &st) != 0)
        return stele_err_set(err, STELE_EIO, "%s: %s", g.path, strerror(errno));
    bool fresh = st.st_size != (off_t)sizeof(layout);
    if (fresh && st.st_size != 0)
        glogf(1,
              "%s: %lld bytes, not the %zu of an in-flight file (torn, "
              "or another version's): ignored, starting afresh",
              g.path, (long long)st.st_size, sizeof(layout));
    if (fresh && (ftruncate(g.fd, 0) != 0 ||
                  ftruncate(g.fd, (off_t)sizeof(layout)) != 0))
        return stele_err_set(err, STELE_EIO, "%s: %s", g.path, strerror(errno));
    void *p =
        mmap(NULL, sizeof(layout), PROT_READ | PROT_WRITE, MAP_SHARED, g.fd, 0);
    if (p == MAP_FAILED)
        return stele_err_set(err, STELE_EIO, "%s: mmap: %s", g.path,
                             strerror(errno));
    g.map = p;
    if (!fresh && (g.map->magic != FILE_MAGIC ||
                   g.map->size != (uint32_t)sizeof(layout))) {
        glogf(1,
              "%s: not an in-flight file (bad magic): ignored, starting "
              "afresh",
              g.path);
        fresh = true;
    }
    if (fresh) {
        memset(g.map, 0, sizeof(layout));
        g.map->magic = FILE_MAGIC;
        g.map->size = (uint32_t)sizeof(layout);
    }
    return 0;
}

static int install_hooks(void)
{
    static bool atexit_done;
    if (!atexit_done && atexit(on_exit_hook) == 0)
        atexit_done = true;
    /* The handlers run on an alternate stack: a stack overflowed by
     * endless recursion leaves them none. */
    size_t size = 64 * 1024;
    if ((g.altstack = malloc(size))) {
        stack_t ss = {.ss_sp = g.altstack, .ss_size = size};
        if (sigaltstack(&ss, &g.old_stack) == 0) {
            g.stack_set = true;
        } else {
            free(g.altstack);
            g.altstack = NULL;
        }
    }
    struct sigaction sa = {.sa_handler = on_fatal,
                           .sa_flags = SA_ONSTACK | SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 5; i++)
        sigaction(fatal_signals[i], &sa, &g.old_actions[i]);
    g.handlers_set = true;
    __atomic_store_n(&g.quit, 0, __ATOMIC_RELEASE);
    if (pthread_create(&g.watchdog, NULL, watch, NULL) != 0) {
        glogf(1,
              "%s: cannot start the watchdog: plugin calls have no time "
              "limit",
              g.path);
        return 0;
    }
    g.watching = true;
    return 0;
}

static int level_of(const char *name)
{
    if (!name || strcmp(name, "info") == 0)
        return 2;
    if (strcmp(name, "error") == 0)
        return 0;
    if (strcmp(name, "warn") == 0)
        return 1;
    return 3;
}

int stele_guard_open(const stele_config *cfg, volatile sig_atomic_t *stop,
                     stele_err *err)
{
    if (g.open)
        return 0;
    g.level = level_of(cfg->log_level);
    g.crash_limit = (unsigned)cfg->plugin_crash_limit;
    g.timeout_ms = cfg->plugin_timeout_ms;
    g.grace_ms = cfg->shutdown_grace_ms;
    g.stop = stop;
    int n = snprintf(g.path, sizeof g.path, "%s/inflight", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof g.path)
        return stele_err_set(err, STELE_EINVAL, "data_dir too long");
    if (stele_mkdir_parent(g.path) != 0)
        return stele_err_set(err, STELE_EIO,
                             "cannot create the directory "
                             "of %s",
                             g.path);
    g.fd = open(g.path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (g.fd < 0)
        return stele_err_set(err, STELE_EIO, "%s: %s", g.path, strerror(errno));
    int rc = 0;
    /* Byte 0 is the file's lock: one process at a time reads what the
     * dead left and claims its slot. */
    while (lock_byte(0, true) != 0 && errno == EINTR) {
    }
    if ((rc = map_file(err)) == 0)
        take_over();
    unlock_byte(0);
    if (rc != 0) {
        if (g.map)
            munmap(g.map, sizeof(layout));
        g.map = NULL;
        close(g.fd);
        g.fd = -1;
        return rc;
    }
    g.open = true;
    return install_hooks();
}

void stele_guard_close(void)
{
    if (!g.open)
        return;
    if (g.watching) {
        __atomic_store_n(&g.quit, 1, __ATOMIC_RELEASE);
        pthread_join(g.watchdog, NULL);
        g.watching = false;
    }
    if (g.handlers_set) {
        for (size_t i = 0; i < 5; i++)
            sigaction(fatal_signals[i], &g.old_actions[i], NULL);
        g.handlers_set = false;
    }
    if (g.stack_set) {
        sigaltstack(&g.old_stack, NULL);
        g.stack_set = false;
    }
    free(g.altstack);
    g.altstack = NULL;
    slot *s = g.slot;
    g.slot = NULL;
    if (s)
        memset(s, 0, sizeof *s);
    munmap(g.map, sizeof(layout));
    g.map = NULL;
    close(g.fd); /* drops the slot's lock */
    g.fd = -1;
    g.open = false;
}

unsigned guard_count_death(const char *topic, int32_t partition, int64_t offset,
                           const char *command_id, guard_call_kind kind,
                           int wstatus, int64_t killed_after_ms, bool stopping)
{
    if (!g.open)
        return 0;
    /* Told as its slot would tell it after a death of the host. */
    slot s = {.kind = (uint32_t)kind,
              .partition = partition,
              .offset = offset,
              .elapsed_ms = killed_after_ms};
    put_str(s.topic, sizeof s.topic, topic);
    put_str(s.command_id, sizeof s.command_id, command_id);
    if (killed_after_ms > 0)
        s.reason = stopping ? R_STOPPED : R_TIMEOUT;
    else if (WIFSIGNALED(wstatus)) {
        s.reason = R_SIGNAL;
        s.signal = WTERMSIG(wstatus);
    } else
        s.reason = R_EXIT;
    while (lock_byte(0, true) != 0 && errno == EINTR) {
    }
    count_death(&s);
    g.n_crashes = 0;
    for (size_t i = 0; i < N_CRASHES; i++)
        g.n_crashes += g.map->crashes[i].count > 0;
    const crash *c = find_crash(topic, partition, offset, command_id);
    unsigned n = c && kind != GUARD_REBUILD ? c->count : 0;
    unlock_byte(0);
    return n;
}
