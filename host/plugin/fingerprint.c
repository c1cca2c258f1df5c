/*
 * fingerprint.c — the descriptor's layout and ABI fingerprint, checked
 * right after its magic and version and before anything else in it is
 * read.
 *
 * A plugin built against an edited copy of plugin.h can claim the host's
 * ABI version and still disagree on every struct it shares with it: the
 * fingerprint (a hash of the headers' declarations, abi/abi_dump.c) is
 * what tells. It sits at the end of the descriptor, so it is read only
 * when the descriptor's size covers it; it is a plain integer, so a
 * descriptor of another layout yields a wrong number there, never a wild
 * pointer. The name, the kind and the definition are read only after it
 * matched: until then the plugin is named by its path alone.
 */
#include "open.h"

#include <inttypes.h>
#include <stddef.h>

#include "abi_known.h"
#include "common/err.h"

#define LAYOUT_HINT "(layout mismatch? built against a different plugin.h)"

/* Descriptors of the ABI minors before fingerprints end where the
 * fingerprint begins. */
#define SIZE_BEFORE_FINGERPRINTS                                               \
    offsetof(stele_plugin_descriptor, abi_fingerprint)
#define SIZE_WITH_FINGERPRINT (SIZE_BEFORE_FINGERPRINTS + sizeof(uint64_t))

bool stele_plugin_fingerprinted(const stele_plugin_descriptor *d)
{
    return d->abi_minor >= STELE_ABI_FIRST_FINGERPRINTED_MINOR;
}

uint64_t stele_plugin_known_fingerprint(unsigned minor)
{
    return minor < sizeof stele_abi_known / sizeof *stele_abi_known
               ? stele_abi_known[minor]
               : 0;
}

/* The descriptor of a minor from before fingerprints: its size is that
 * layout's, and nothing vouches for the rest. */
static int check_unfingerprinted(const stele_plugin_descriptor *d,
                                 const char *path, stele_err *err)
{
    if (d->size == SIZE_BEFORE_FINGERPRINTS)
        return 0;
    return stele_err_set(err, STELE_EABI,
                         "%s: descriptor size %u %s than ABI %u.%u's "
                         "%zu " LAYOUT_HINT,
                         path, (unsigned)d->size,
                         d->size < SIZE_BEFORE_FINGERPRINTS ? "smaller"
                                                            : "larger",
                         (unsigned)d->abi_major, (unsigned)d->abi_minor,
                         SIZE_BEFORE_FINGERPRINTS);
}

int stele_plugin_check_layout(const stele_plugin_descriptor *d,
                              const char *path, stele_err *err)
{
    if (!stele_plugin_fingerprinted(d))
        return check_unfingerprinted(d, path, err);
    if (d->size < SIZE_WITH_FINGERPRINT)
        return stele_err_set(err, STELE_EABI,
                             "%s: descriptor size %u smaller than "
                             "%zu " LAYOUT_HINT,
                             path, (unsigned)d->size, SIZE_WITH_FINGERPRINT);
    /* Its ABI is not newer than the host's (checked before): it cannot be
     * larger than the host's descriptor either. */
    if (d->size > sizeof *d)
        return stele_err_set(err, STELE_EABI,
                             "%s: descriptor size %u larger than ABI "
                             "%u.%u's %zu " LAYOUT_HINT,
                             path, (unsigned)d->size, (unsigned)d->abi_major,
                             (unsigned)d->abi_minor, sizeof *d);
    uint64_t want = stele_plugin_known_fingerprint(d->abi_minor);
    if (d->abi_fingerprint == want)
        return 0;
    if (d->abi_minor == STELE_ABI_MINOR)
        return stele_err_set(err, STELE_EABI,
                             "%s: built against a different plugin.h "
                             "(fingerprint %016" PRIx64 ", host %016" PRIx64
                             "): rebuild against this host's headers",
                             path, d->abi_fingerprint, want);
    return stele_err_set(err, STELE_EABI,
                         "%s: built against a different plugin.h "
                         "(fingerprint %016" PRIx64 ", host %016" PRIx64
                         " for ABI %u.%u): rebuild against this host's "
                         "headers",
                         path, d->abi_fingerprint, want, (unsigned)d->abi_major,
                         (unsigned)d->abi_minor);
}
