/* config_value.h — reading one YAML scalar of the config: ${VAR} expansion,
 * types, ranges and path resolution. Private to host/config/. */
#ifndef STELE_CONFIG_VALUE_H
#define STELE_CONFIG_VALUE_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"

typedef struct cfg_loader {
    const char *file; /* the config path, as given, for messages */
    char *dir;        /* its directory: relative paths resolve here */
    yaml_document_t *doc;
    stele_err *err;
    stele_config *cfg;
} cfg_loader;

/* Sets L->err to "FILE:LINE: reason" with n's line; returns STELE_EINVAL. */
int cfg_fail(cfg_loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "scalar", "sequence" or "mapping", for messages. */
const char *cfg_node_kind(const yaml_node_t *n);

/* true for an empty or null plain scalar ("key:", "~", "null"). */
bool cfg_is_null(const yaml_node_t *n);

/* The scalar n, ${VAR}-expanded, into *out (malloc'd). `what` names the key
 * in messages ("log.path"). allow_empty: "" is a valid value. */
int cfg_get_string(cfg_loader *L, const yaml_node_t *n, const char *what,
                   bool allow_empty, char **out);
/* A decimal integer in min..max. */
int cfg_get_int(cfg_loader *L, const yaml_node_t *n, const char *what,
                int64_t min, int64_t max, int64_t *out);
/* true or false (YAML 1.2: yes, no, on, off are refused, they are not
 * booleans in every reader of the file). */
int cfg_get_bool(cfg_loader *L, const yaml_node_t *n, const char *what,
                 bool *out);
/* One of choices (NULL-terminated). */
int cfg_get_choice(cfg_loader *L, const yaml_node_t *n, const char *what,
                   const char *const *choices, char **out);
/* A path, resolved against the config file's directory when relative. */
int cfg_get_path(cfg_loader *L, const yaml_node_t *n, const char *what,
                 char **out);
/* The app name: [a-zA-Z0-9_.-]+, at most 100 characters. */
int cfg_get_app(cfg_loader *L, const yaml_node_t *n, const char *what,
                char **out);
/* host:port, [v6addr]:port; port 0..65535 (0 picks a free port). */
int cfg_get_listen(cfg_loader *L, const yaml_node_t *n, const char *what,
                   char **out);

#endif
