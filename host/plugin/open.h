/* open.h — dlopen and check a plugin without calling init; shared by the
 * loader and inspect. Private to host/plugin/. */
#ifndef STELE_PLUGIN_OPEN_H
#define STELE_PLUGIN_OPEN_H

#include "loader.h"

/* dlopens path, finds the entry, checks the descriptor. *out has no ctx
 * yet; release it with stele_plugin_close (which calls no fini). */
int stele_plugin_open(const char *path, stele_plugin **out, stele_err *err);

/* dlcloses and frees a plugin opened but not initialised. */
void stele_plugin_close(stele_plugin *p);

/* Checks the descriptor's size against the layout of its ABI minor and,
 * from ABI 1.2 on, its fingerprint against the headers of that version
 * (fingerprint.c). Reads nothing past the fingerprint: call it after the
 * magic and version checks and before anything else. */
int stele_plugin_check_layout(const stele_plugin_descriptor *d,
                              const char *path, stele_err *err);

/* true when d carries an ABI fingerprint (ABI 1.2 on), which
 * stele_plugin_check has then checked; false for plugins built before. */
bool stele_plugin_fingerprinted(const stele_plugin_descriptor *d);

/* The fingerprint of ABI <host major>.minor's headers, 0 for a minor from
 * before fingerprints or newer than the host's. */
uint64_t stele_plugin_known_fingerprint(unsigned minor);

#endif
