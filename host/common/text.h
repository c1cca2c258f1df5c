/* text.h — making messages from servers safe and one line long, for the
 * PostgreSQL log and store (and any backend quoting a server), and
 * checking that bytes are UTF-8 before they go into JSON. */
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

/* The length (1..4) of the well-formed UTF-8 sequence that starts s (len
 * bytes left), 0 when none does: a stray continuation byte, a truncated
 * or overlong sequence, a surrogate, a code point past U+10FFFF. */
size_t stele_text_utf8_seq(const unsigned char *s, size_t len);
/* Whether all of s is well-formed UTF-8. */
int stele_text_utf8_valid(const void *s, size_t len);
/* Replaces, in place, every byte of s (NUL-terminated) that does not
 * begin a well-formed UTF-8 sequence by '?'. */
void stele_text_utf8_fix(char *s);
/* A malloc'd copy of s (NUL-terminated) with every byte that does not
 * begin a well-formed UTF-8 sequence replaced by U+FFFD; NULL when out of
 * memory. */
char *stele_text_utf8_repair(const char *s);

#endif
