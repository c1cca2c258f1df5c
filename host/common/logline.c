/* The host's log lines (logline.h). */
#include "logline.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "text.h"

static atomic_bool json_lines;

void stele_logline_json(bool on)
{
    atomic_store(&json_lines, on);
}

bool stele_logline_is_json(void)
{
    return atomic_load(&json_lines);
}

static const char *level_name(int level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return level >= 0 && level <= 3 ? names[level] : "info";
}

/* s as a JSON string, its bytes that are not UTF-8 as U+FFFD. */
static json_t *text(const char *s)
{
    if (stele_text_utf8_valid(s, strlen(s)))
        return json_string(s);
    char *fixed = stele_text_utf8_repair(s);
    json_t *j = fixed ? json_string(fixed) : NULL;
    free(fixed);
    return j;
}

static void put(json_t *o, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(o, key, text(value));
}

static void write_json(int level, const stele_log_fields *f, const char *msg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    json_t *o = json_object();
    if (o) {
        put(o, "time", when);
        put(o, "level", level_name(level));
        if (f) {
            put(o, "component", f->component);
            put(o, "plugin", f->plugin);
            put(o, "aggregate_type", f->aggregate_type);
            put(o, "aggregate_id", f->aggregate_id);
            put(o, "command_id", f->command_id);
            put(o, "correlation_id", f->correlation_id);
        }
        put(o, "msg", msg);
    }
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line)
        fprintf(stderr, "%s\n", line);
    else /* out of memory: the message still goes out, as text */
        fprintf(stderr, "stele %s: %s\n", level_name(level), msg);
    free(line);
}

void stele_logline_v(int level, const stele_log_fields *f, const char *fmt,
                     va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = strlen(msg);
    while (len && msg[len - 1] == '\n')
        msg[--len] = '\0';
    if (atomic_load(&json_lines))
        write_json(level, f, msg);
    else
        fprintf(stderr, "stele %s: %s\n", level_name(level), msg);
}

void stele_logline(int level, const stele_log_fields *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stele_logline_v(level, f, fmt, ap);
    va_end(ap);
}
