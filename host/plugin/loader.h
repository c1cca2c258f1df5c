/*
 * loader.h — loading plugin shared objects and checking their descriptors.
 *
 * A plugin is refused, with one line naming the file and the reason, when
 * the file is not a loadable shared object, lacks stele_plugin_entry, the
 * entry returns NULL, the magic differs, the ABI major differs or the minor
 * is newer than the host's, the descriptor's size is not its ABI's, its ABI
 * fingerprint (ABI 1.2 on) is not the one of that version's headers, the
 * kind is unknown, its definition is missing or incomplete (a required
 * callback or name is NULL), or its init fails.
 */
#ifndef STELE_PLUGIN_LOADER_H
#define STELE_PLUGIN_LOADER_H

#include <stdio.h>

#include <stele/plugin.h>

#include "codec/codec.h"

typedef struct stele_plugin {
    char *path;
    void *dl; /* dlopen handle */
    const stele_plugin_descriptor *desc;
    void *ctx; /* what init returned */
} stele_plugin;

/* Checks a descriptor without loading anything; err names `path`. */
int stele_plugin_check(const stele_plugin_descriptor *d, const char *path,
                       stele_err *err);

/* dlopens path (RTLD_NOW | RTLD_LOCAL), checks the descriptor and calls
 * init with api (borrowed: it must outlive the plugin). A plugin built
 * before ABI fingerprints loads with a warning logged through api->log. */
int stele_plugin_load(const char *path, const stele_host_api *api,
                      stele_plugin **out, stele_err *err);

/* Calls fini, dlcloses and frees. */
void stele_plugin_unload(stele_plugin *p);

/* Loads every path in order; on the first failure unloads what was loaded
 * and fails, so the host never starts half-configured. Also refuses two
 * plugins of the same kind and name. */
int stele_plugins_load_all(char *const *paths, size_t n,
                           const stele_host_api *api, stele_plugin ***out,
                           stele_err *err);

void stele_plugins_unload_all(stele_plugin **plugins, size_t n);

/* Prints the descriptor of the plugin at path (without calling init):
 * name, version, kind, ABI and fingerprint, and its definition (commands,
 * events, state, tables and columns, parameters...). */
int stele_plugin_inspect(const char *path, FILE *out, stele_err *err);

/* Checks that every schema the plugin at path names (state, commands,
 * events, query parameters, an upcaster's from-version) has its file in
 * the catalogue cat[0..n) read from dir; prints each one missing to out
 * and counts them in *missing. */
int stele_plugin_check_catalogue(const char *path,
                                 const stele_schema *const *cat, size_t n,
                                 const char *dir, FILE *out, size_t *missing,
                                 stele_err *err);

const char *stele_plugin_kind_name(stele_plugin_kind kind);

/* Opens each path without calling init, and calls fn with every upcaster
 * definition among them (other kinds are skipped). A path that cannot be
 * opened is an error, as for loading. */
int stele_plugins_each_upcaster(char *const *paths, size_t n,
                                int (*fn)(void *opaque,
                                          const stele_upcaster_def *u),
                                void *opaque, stele_err *err);

/* Fills the host API table's header fields (the fingerprint among them)
 * and log function. */
void stele_plugin_api_init(stele_host_api *api);

#endif
