/*
 * logline.h — the host's log lines on stderr, one per call: text for a
 * terminal ("stele warn: ..."), or one JSON object per line
 * (logging.format: json) for a collector, with what the line is about.
 *
 * The format is the process's (set once at start from the config); which
 * levels are written is the caller's to decide. Each line is written with
 * one call, so lines of several threads never interleave.
 */
#ifndef STELE_COMMON_LOGLINE_H
#define STELE_COMMON_LOGLINE_H

#include <stdarg.h>
#include <stdbool.h>

/* STELE_LOG_ERROR.. of <stele/plugin.h>: 0 error, 1 warn, 2 info,
 * 3 debug. */

/* What a line is about; NULL or "" fields are left out of JSON lines. */
typedef struct stele_log_fields {
    const char *component; /* "engine", "guard", "plugin", "kafka", ... */
    const char *plugin;
    const char *aggregate_type;
    const char *aggregate_id;
    const char *command_id;
    const char *correlation_id;
} stele_log_fields;

/* Lines as JSON objects from now on (false: text, the default). */
void stele_logline_json(bool on);
bool stele_logline_is_json(void);

/* Writes one line of level (0..3) about f (may be NULL). Text lines are
 * "stele <level>: <message>"; JSON lines carry time (UTC, RFC 3339 with
 * milliseconds), level, the fields and msg, with bytes that are not
 * UTF-8 replaced. */
void stele_logline(int level, const stele_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void stele_logline_v(int level, const stele_log_fields *f, const char *fmt,
                     va_list ap);

#endif
