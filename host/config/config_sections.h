/* config_sections.h — the YAML document read into a stele_config
 * (config_sections.c). Private to host/config/. */
#ifndef STELE_CONFIG_SECTIONS_H
#define STELE_CONFIG_SECTIONS_H

#include "config_value.h"

/* Reads L->doc into L->cfg over the defaults already there: every
 * section's keys checked, then their values read; then the defaults that
 * depend on other keys (paths under data_dir, the topic prefix). Errors
 * are "FILE:LINE: reason" in L->err, except STELE_ENOMEM, which may come
 * without a message. */
int cfg_load_document(cfg_loader *L);

#endif
