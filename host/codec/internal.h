/*
 * internal.h — private to host/codec: the structs behind the opaque
 * handles of codec.h and the functions the codec's files share.
 *
 * Threading: avro-c (Debian's build) is not thread-safe and a stele_codec
 * keeps one memory writer and reader, caches and resolvers; use a codec
 * from one thread at a time.
 */
#ifndef STELE_CODEC_INTERNAL_H
#define STELE_CODEC_INTERNAL_H

#include "codec.h"

#include "common/err.h"
#include "common/map.h"

/* Nesting deeper than this in a value or a default is refused: decoding
 * recurses, and a recursive schema must not take the stack with it. */
#define CODEC_MAX_DEPTH 64

/* The most array and map items a decoded value may hold, all containers
 * together: 16 MiB of input must not become gigabytes of generic values. */
#define CODEC_MAX_ITEMS (1u << 20)

/* ------------------------------------------------------------------ */
/* Binary pre-check (wire_check.c)                                      */

/* A compiled walk of a writer schema over Avro binary: it checks every
 * length, count, index and varint against the bytes left, with no
 * allocation, before avro-c (which trusts lengths) reads the data. */
typedef struct wire_shape wire_shape;

int codec_wire_shape_new(avro_schema_t schema, wire_shape **out,
                         stele_err *err);
void codec_wire_shape_free(wire_shape *ws);
/* 0 when data holds exactly one well-formed value; STELE_EINVAL with the
 * reason and byte offset otherwise. */
int codec_wire_shape_check(const wire_shape *ws, const void *data, size_t len,
                           stele_err *err);

/* ------------------------------------------------------------------ */
/* Schemas                                                              */

/* What the codec knows of one record type inside a schema: the declared
 * default (JSON, borrowed from the schema's parsed text) of each field. */
typedef struct record_info {
    avro_schema_t schema;
    char *full_name;
    size_t n_fields;
    json_t **defaults; /* [n_fields]; NULL: no default */
} record_info;

typedef struct codec_schema {
    stele_schema pub;   /* first: a stele_schema * is a codec_schema * */
    char *path;         /* the .avsc file; NULL for a schema fetched by id */
    json_t *json;       /* the parsed text, which defaults point into */
    stele_map *records; /* avro_schema_t (pointer bytes) -> record_info */
    wire_shape *shape;
    avro_value_t tmpl; /* a value holding every default */
    bool has_tmpl;
    /* upcast.c: the chain of this type, looked up once chains are checked */
    struct upcast_chain *chain;
    bool chain_known;
    /* looked up in the registry by a codec that does not register: not
     * registered then (its id stays 0), so not asked again */
    bool looked_up;
} codec_schema;

static inline const codec_schema *codec_schema_of(const stele_schema *s)
{
    return (const codec_schema *)s;
}

/* Parses text into a codec_schema: avro schema, generic class, record
 * infos, binary shape and defaults. name/version/id are set by the
 * caller. where names the source in errors ("bank/x.v1.avsc"). */
int codec_schema_parse(const char *text, size_t len, const char *where,
                       codec_schema **out, stele_err *err);
void codec_schema_free(codec_schema *cs);

/* The schema behind links (named-type references). */
avro_schema_t codec_schema_deref(avro_schema_t s);

/* The record info for a record schema of cs (NULL if not one of its). */
const record_info *codec_record_info(const codec_schema *cs,
                                     avro_schema_t record);

/* Writes "ns.Name" (or "Name") of a named schema into buf. */
const char *codec_full_name(avro_schema_t s, char *buf, size_t size);
/* The key of type name at version in the codec's by_name map; EINVAL when
 * it does not fit size. */
int codec_name_key(const char *name, int version, char *key, size_t size,
                   size_t *len);

/* ------------------------------------------------------------------ */
/* Defaults (defaults.c)                                                */

/* Builds cs->records and the defaults template. */
int codec_defaults_build(codec_schema *cs, const char *where, stele_err *err);
void codec_defaults_free(codec_schema *cs);

/* Fills v (just reset) with the zero value of its schema, applying the
 * declared defaults of every record field below it. */
int codec_defaults_zero_fill(const codec_schema *cs, avro_value_t *v, int depth,
                             char *path, size_t path_cap, stele_err *err);

/* ------------------------------------------------------------------ */
/* JSON (json.c)                                                        */

typedef enum json_mode {
    JSON_INPUT,  /* user input: tagged unions, required fields */
    JSON_DEFAULT /* a schema default: unions take their first branch */
} json_mode;

/* Sets v from j. path (NUL-terminated, capacity path_cap) is the field
 * path so far; errors name it. */
int codec_json_to_value(const codec_schema *cs, const json_t *j,
                        avro_value_t *v, json_mode mode, int depth, char *path,
                        size_t path_cap, stele_err *err);

/* Field paths in error messages: "owner.name", "items[2]". Each push
 * returns the length to restore with path_pop. */
size_t codec_path_push_field(char *path, size_t cap, const char *name);
size_t codec_path_push_index(char *path, size_t cap, size_t i);
static inline void path_pop(char *path, size_t old)
{
    path[old] = '\0';
}

/* Bytes from an Avro-JSON bytes string: each code point U+0000..U+00FF is
 * one byte. Returns the byte count, or -1 if a code point is above 0xFF.
 * out must hold len bytes. */
long codec_json_latin1_decode(const char *s, size_t len, unsigned char *out);

/* ------------------------------------------------------------------ */
/* Values (value.c)                                                     */

/* Copies src into dst (same schema), reusing dst's buffers. */
int codec_value_copy_into(avro_value_t *dst, const avro_value_t *src);

/* Selects branch 0 of every union below v with no branch selected, so a
 * value a plugin builds is always encodable. */
int codec_value_fill_unset_unions(avro_value_t *v, int depth);

/* ------------------------------------------------------------------ */
/* Resolution (resolve.c)                                               */

typedef struct resolver resolver;

/* A compiled reader of writer-schema binary into reader-schema values
 * (Avro schema resolution, defaults and aliases included; resolve.c).
 * Errors name both schemas and the field that does not resolve. */
int codec_resolver_new(const stele_schema *writer, const stele_schema *reader,
                       resolver **out, stele_err *err);
void codec_resolver_free(resolver *r);
/* Reads the Avro binary data (already checked against the writer's shape)
 * into out, a value of the reader schema. */
int codec_resolver_read(resolver *r, const void *data, size_t len,
                        avro_value_t *out, stele_err *err);

/* ------------------------------------------------------------------ */
/* Upcasters (upcast.c)                                                 */

typedef struct upcast_chain upcast_chain;
void codec_upcast_chain_free(void *chain);

/* ------------------------------------------------------------------ */
/* The codec                                                            */

struct stele_codec {
    stele_registry *reg;
    codec_schema **cat;        /* the catalogue, sorted by name then version */
    const stele_schema **list; /* the same, for stele_codec_catalogue */
    size_t n_cat;
    stele_map *by_name;     /* "name\0version" -> codec_schema */
    stele_map *by_id;       /* int32_t id -> codec_schema */
    codec_schema **fetched; /* writer schemas known only by id (owned) */
    size_t n_fetched, cap_fetched;
    stele_map *resolvers; /* {writer id, reader pointer} -> resolver */
    stele_map *chains;    /* event type -> upcast_chain (upcast.c) */
    bool chains_checked;
    stele_buf upcast_buf; /* re-encoding between upcast steps */
    avro_writer_t writer;
    avro_reader_t reader;
    /* stele_codec_set_registering(false): schemas are looked up, never
     * registered (a process that only reads) */
    bool lookup_only;
    char *schemas_dir; /* where the catalogue was read from, for messages */
};

/* STELE_ENOTFOUND for name vN, naming the file it expected and the folder
 * searched. */
int codec_no_schema(const stele_codec *c, const char *name, int version,
                    stele_err *err);

/* "name vN (schema id I)" for a writer schema, or, for one fetched by id
 * that no file of schemas/ holds, "name (schema id I, in no file of
 * schemas/)": never "v0". */
const char *codec_writer_label(const stele_schema *s, char *buf, size_t size);

/* Copies avro-c's global error text into err, prefixed. */
int codec_avro_err(stele_err *err, int code, const char *what);

/* Bounds every single allocation avro-c makes (installed once). */
void codec_install_allocator(void);

#endif
