/*
 * registry_config.h — opening the registry a config asks for.
 *
 * Header-only so that the codec part does not link the config part: the
 * engine and the CLI, which link both, include it.
 */
#ifndef STELE_CODEC_REGISTRY_CONFIG_H
#define STELE_CODEC_REGISTRY_CONFIG_H

#include <string.h>

#include "codec/codec.h"
#include "config/config.h"

/* The embedded registry on log, or the REST client of cfg's registry:
 * section. log is borrowed by the embedded registry. */
static inline int stele_registry_open_config(const stele_config *cfg,
                                             stele_log *log,
                                             stele_registry **out,
                                             stele_err *err)
{
    if (!cfg->registry_backend || strcmp(cfg->registry_backend, "rest") != 0)
        return stele_registry_open_embedded(log, out, err);
    stele_registry_rest_opts o = {
        .url = cfg->registry_url,
        .username = cfg->registry_username,
        .password = cfg->registry_password,
        .ca_file = cfg->registry_ca_file,
        .cert_file = cfg->registry_cert_file,
        .key_file = cfg->registry_key_file,
        .timeout_ms = cfg->registry_timeout_ms,
        .retries = cfg->registry_retries > 0 ? cfg->registry_retries : -1,
        .strategy = cfg->registry_subject_strategy &&
                            strcmp(cfg->registry_subject_strategy,
                                   "topic_record") == 0
                        ? STELE_SUBJECT_TOPIC_RECORD
                        : STELE_SUBJECT_RECORD};
    return stele_registry_open_rest(&o, out, err);
}

#endif
