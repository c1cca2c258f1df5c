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

#endif
