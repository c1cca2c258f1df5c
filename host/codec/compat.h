/*
 * compat.h — compatibility: Avro schema resolution between .avsc texts, by a
 * subject's level, and the schema gate over the whole catalogue.
 */
#ifndef STELE_CODEC_COMPAT_H
#define STELE_CODEC_COMPAT_H

#include "codec/schema.h"

/* ------------------------------------------------------------------ */
/* Compatibility                                                        */

/*
 * Whether schema_text may become the next version of subject: asked of a
 * registry that checks (stele_registry_tests_compat), else checked in the
 * host against the subject's versions with its level, or `fallback` when
 * it has none. *compatible is set and the reasons appended to rep. A
 * subject with no versions is compatible.
 */
int stele_compat_test(stele_registry *reg, const char *subject,
                      const char *schema_text, stele_compat_mode fallback,
                      bool *compatible, stele_compat_report *rep,
                      stele_err *err);

/*
 * Avro schema resolution between two .avsc texts, checked on their JSON
 * (avro-c drops defaults and aliases): can data written with writer_text
 * be read with reader_text? Each incompatibility is appended to rep as
 * "bank.Deposited.amount: writer type string cannot be read as long".
 * Returns 0 when the check ran (compatible iff nothing was appended),
 * STELE_EINVAL naming `what` when a text is not a valid schema.
 */
int stele_compat_check(const char *reader_text, const char *writer_text,
                       stele_compat_report *rep, stele_err *err);

/*
 * Checks new_text against the previous versions of a subject (oldest
 * first) per mode: BACKWARD (the new schema reads the latest previous
 * version's data), FORWARD (the latest previous reads the new data), FULL
 * (both), the _TRANSITIVE forms against every previous version, NONE.
 * Messages say which version and direction failed.
 */
int stele_compat_check_mode(stele_compat_mode mode, const char *new_text,
                            const char *const *previous,
                            const int *previous_versions, size_t n_previous,
                            stele_compat_report *rep, stele_err *err);

/*
 * The schema gate (gate.c): every record type of the catalogue against
 * its subject in the registry — registered versions matched by text, a
 * deployed version edited in place (DIFFERS), the compatibility of the
 * versions not registered yet by the subject's level (fallback when it
 * has none), upcaster-bridged steps understood (bridged: whether an
 * upcaster leads into type vN). Each finding goes to line(), bad when it
 * is an error; *bad counts those. do_register registers the compatible
 * new versions of every type without an error. Returns 0 when the gate
 * ran (whatever it found).
 */
typedef struct stele_gate {
    stele_registry *reg;
    stele_codec *codec;
    const char *topic; /* topic-record strategy: the topic's subjects */
    stele_compat_mode fallback;
    bool do_register;
    bool (*bridged)(void *opaque, const char *type, int version);
    void *bridged_opaque;
    /* Whether the process registers type vN (NULL: every version, as
     * stele schema register does): one it does not is neither checked nor
     * checked against (the process that writes it checks it, with the
     * upcasters it loads). */
    bool (*registers)(void *opaque, const char *type, int version);
    void *registers_opaque;
    void (*line)(void *opaque, bool bad, const char *line);
    void *line_opaque;
} stele_gate;
int stele_gate_run(const stele_gate *g, size_t *types, size_t *bad,
                   stele_err *err);

#endif
