/* text.h — making messages from servers safe and one line long, for the
 * PostgreSQL log and store (and any backend quoting a server). */
#ifndef STELE_COMMON_TEXT_H
#define STELE_COMMON_TEXT_H

#include <stddef.h>

/* Copies in (may be NULL) to out on one line: runs of whitespace become one
 * space. in and out may be the same buffer. */
void stele_text_tidy(const char *in, char *out, size_t cap);

/* Replaces every occurrence of secret in msg by "***" (a secret shorter
 * than 4 characters is left alone: it would match too much). */
void stele_text_scrub(char *msg, const char *secret);

/* Copies in to out with every double-quoted part replaced by "...", then
 * tidies it: what a connection-string parse error quotes may hold a
 * password. */
void stele_text_redact_quoted(const char *in, char *out, size_t cap);

#endif
