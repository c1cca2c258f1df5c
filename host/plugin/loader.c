/*
 * loader.c — loading plugin shared objects, their init and fini, and the
 * header of the host API table.
 *
 * A plugin is opened and checked completely before any of its code other
 * than the entry function runs: init is only called on a descriptor that
 * passed stele_plugin_check and, in load_all, is not a duplicate.
 */
#include "open.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/logline.h"

static void host_log(stele_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void host_log(stele_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = strlen(msg);
    while (len && msg[len - 1] == '\n')
        msg[--len] = '\0';
    const char *name =
        (unsigned)level < sizeof names / sizeof *names ? names[level] : "info";
    if (stele_logline_is_json()) {
        stele_log_fields f = {.component = "plugin"};
        stele_logline(level, &f, "%s", msg);
        return;
    }
    /* One fprintf per line: stderr is unbuffered, so lines from several
     * threads do not interleave mid-line. */
    fprintf(stderr, "[plugin] %s: %s\n", name, msg);
}

void stele_plugin_api_init(stele_host_api *api)
{
    api->size = (uint32_t)sizeof *api;
    api->abi_major = STELE_ABI_MAJOR;
    api->abi_minor = STELE_ABI_MINOR;
    api->log = host_log;
    api->abi_fingerprint = STELE_ABI_FINGERPRINT;
}

/* true when the file starts with the ELF magic: then a dlopen failure is
 * about its contents (a missing library, an undefined symbol), not its
 * format. */
static bool is_elf(const char *path)
{
    unsigned char head[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == 4 && memcmp(head, "\177ELF", 4) == 0;
}

/* The ELF class (32/64-bit) and machine of the file at path, 0 when it is
 * not ELF or cannot be read. */
static unsigned elf_target(const char *path)
{
    unsigned char h[20] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n != sizeof h || memcmp(h, "\177ELF", 4) != 0)
        return 0;
    /* e_machine at 18, in the file's byte order (e_ident[5]: 1 LE, 2 BE) */
    unsigned machine =
        h[5] == 2 ? (unsigned)h[18] << 8 | h[19] : (unsigned)h[19] << 8 | h[18];
    return (unsigned)h[4] << 16 | machine;
}

static const char *machine_name(unsigned target)
{
    static const struct {
        unsigned machine;
        const char *name;
    } names[] = {{3, "x86 (32-bit)"}, {8, "MIPS"},      {20, "PowerPC"},
                 {21, "PowerPC 64"},  {22, "s390"},     {40, "ARM (32-bit)"},
                 {62, "x86-64"},      {183, "AArch64"}, {243, "RISC-V"},
                 {258, "LoongArch"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].machine == (target & 0xffff))
            return names[i].name;
    return "another machine";
}

/* Why dlopen refused an ELF file, when it is built for another machine
 * or word size than the host: glibc says only "No such file or
 * directory" then. NULL when the targets agree. */
static const char *other_target(const char *path, char *buf, size_t size)
{
    unsigned mine = elf_target("/proc/self/exe"), its = elf_target(path);
    if (!mine || !its || mine == its)
        return NULL;
    snprintf(buf, size,
             "built for %s (ELF machine %u, %d-bit), the host is %s (%u, "
             "%d-bit)",
             machine_name(its), its & 0xffff, (its >> 16) == 2 ? 64 : 32,
             machine_name(mine), mine & 0xffff, (mine >> 16) == 2 ? 64 : 32);
    return buf;
}

int stele_plugin_open(const char *path, stele_plugin **out, stele_err *err)
{
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0)
        return stele_err_set(err, errno == ENOENT ? STELE_ENOTFOUND : STELE_EIO,
                             "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return stele_err_set(err, STELE_EINVAL, "%s: not a regular file", path);

    stele_plugin *p = calloc(1, sizeof *p);
    /* A name without a slash would make dlopen search the library path. */
    size_t len = strlen(path) + 3;
    char *dlpath = malloc(len);
    if (!p || !dlpath || !(p->path = strdup(path))) {
        free(dlpath);
        stele_plugin_close(p);
        return stele_err_set(err, STELE_ENOMEM, "%s: out of memory", path);
    }
    snprintf(dlpath, len, "%s%s", strchr(path, '/') ? "" : "./", path);

    dlerror();
    p->dl = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *why = dlerror();
        size_t dl_len = strlen(dlpath);
        why = why ? why : "unknown error";
        /* dlerror repeats the path: "x.so: invalid ELF header". */
        if (strncmp(why, dlpath, dl_len) == 0 && why[dl_len] == ':')
            why += dl_len + (why[dl_len + 1] == ' ' ? 2 : 1);
        char target[200];
        const char *other = other_target(dlpath, target, sizeof target);
        if (other)
            why = other;
        int rc = stele_err_set(
            err, STELE_EINVAL, "%s: %s: %s", path,
            is_elf(dlpath) ? "cannot be loaded" : "not a shared object", why);
        free(dlpath);
        stele_plugin_close(p);
        return rc;
    }
    free(dlpath);

    void *sym = dlsym(p->dl, STELE_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        stele_plugin_close(p);
        return stele_err_set(err, STELE_EABI, "%s: no symbol %s", path,
                             STELE_PLUGIN_ENTRY_SYMBOL);
    }
    stele_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    p->desc = entry();
    int rc = stele_plugin_check(p->desc, path, err);
    if (rc) {
        stele_plugin_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void stele_plugin_close(stele_plugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
}

static int plugin_init(stele_plugin *p, const stele_host_api *api,
                       stele_err *err)
{
    /* Loaded all the same: it was built against a header that had no
     * fingerprint to give, and refusing it would break every plugin of a
     * deployment at once on upgrade. */
    if (!stele_plugin_fingerprinted(p->desc) && api->log)
        api->log(STELE_LOG_WARN,
                 "%s: built before ABI fingerprints (ABI %u.%u): unchecked; "
                 "rebuild it against this host's headers",
                 p->path, (unsigned)p->desc->abi_major,
                 (unsigned)p->desc->abi_minor);
    if (!p->desc->init)
        return 0;
    stele_err perr = {0};
    int rc = p->desc->init(api, &p->ctx, &perr);
    if (rc == 0)
        return 0;
    perr.msg[sizeof perr.msg - 1] = '\0';
    if (perr.msg[0])
        return stele_err_set(err, STELE_EPLUGIN, "%s: init failed: %s", p->path,
                             perr.msg);
    return stele_err_set(err, STELE_EPLUGIN,
                         "%s: init failed with status %d (%s)", p->path, rc,
                         stele_strstatus(rc));
}

int stele_plugin_load(const char *path, const stele_host_api *api,
                      stele_plugin **out, stele_err *err)
{
    stele_plugin *p;
    *out = NULL;
    if (!api)
        return stele_err_set(err, STELE_EINVAL, "%s: no host API table", path);
    int rc = stele_plugin_open(path, &p, err);
    if (rc)
        return rc;
    if ((rc = plugin_init(p, api, err))) {
        stele_plugin_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void stele_plugin_unload(stele_plugin *p)
{
    if (!p)
        return;
    if (p->desc->fini)
        p->desc->fini(p->ctx);
    stele_plugin_close(p);
}

/* What a plugin defines, which two plugins of one kind may not share:
 * the aggregate type, projector or query name, upcaster type and version. */
static void def_identity(const stele_plugin_descriptor *d, char *buf,
                         size_t size)
{
    switch (d->kind) {
    case STELE_PLUGIN_AGGREGATE:
        snprintf(buf, size, "aggregate '%s'", d->def.aggregate->type);
        break;
    case STELE_PLUGIN_PROJECTOR:
        snprintf(buf, size, "projector '%s'", d->def.projector->name);
        break;
    case STELE_PLUGIN_QUERY:
        snprintf(buf, size, "query '%s'", d->def.query->name);
        break;
    case STELE_PLUGIN_UPCASTER:
        snprintf(buf, size, "upcaster for '%s' v%d",
                 d->def.upcaster->event_type, d->def.upcaster->from_version);
        break;
    }
}

static int check_duplicate(stele_plugin *const *loaded, size_t n,
                           const stele_plugin *p, stele_err *err)
{
    const stele_plugin_descriptor *d = p->desc;
    char id[600], other[600];
    def_identity(d, id, sizeof id);
    for (size_t i = 0; i < n; i++) {
        const stele_plugin_descriptor *o = loaded[i]->desc;
        if (o->kind != d->kind)
            continue;
        if (strcmp(o->name, d->name) == 0)
            return stele_err_set(err, STELE_ECONFLICT,
                                 "%s: %s plugin '%s' is already loaded from "
                                 "%s",
                                 p->path, stele_plugin_kind_name(d->kind),
                                 d->name, loaded[i]->path);
        def_identity(o, other, sizeof other);
        if (strcmp(id, other) == 0)
            return stele_err_set(err, STELE_ECONFLICT,
                                 "%s: %s is already defined by %s", p->path, id,
                                 loaded[i]->path);
    }
    return 0;
}

int stele_plugins_load_all(char *const *paths, size_t n,
                           const stele_host_api *api, stele_plugin ***out,
                           stele_err *err)
{
    *out = NULL;
    if (!api)
        return stele_err_set(err, STELE_EINVAL, "no host API table");
    stele_plugin **all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    size_t loaded = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        stele_plugin *p;
        if ((rc = stele_plugin_open(paths[i], &p, err)))
            break;
        if ((rc = check_duplicate(all, loaded, p, err)) ||
            (rc = plugin_init(p, api, err))) {
            stele_plugin_close(p);
            break;
        }
        all[loaded++] = p;
    }
    if (rc) {
        stele_plugins_unload_all(all, loaded);
        return rc;
    }
    *out = all;
    return 0;
}

void stele_plugins_unload_all(stele_plugin **plugins, size_t n)
{
    if (!plugins)
        return;
    /* Reverse load order: a later plugin may rely on an earlier one. */
    while (n > 0)
        stele_plugin_unload(plugins[--n]);
    free(plugins);
}

int stele_plugins_each_upcaster(char *const *paths, size_t n,
                                int (*fn)(void *opaque,
                                          const stele_upcaster_def *u),
                                void *opaque, stele_err *err)
{
    for (size_t i = 0; i < n; i++) {
        stele_plugin *p;
        int rc = stele_plugin_open(paths[i], &p, err);
        if (rc)
            return rc;
        if (p->desc->kind == STELE_PLUGIN_UPCASTER)
            rc = fn(opaque, p->desc->def.upcaster);
        stele_plugin_close(p);
        if (rc)
            return rc;
    }
    return 0;
}
