/*
 * resolve.h — private to resolve.c and resolve_read.c: the compiled plan
 * that reads a writer's Avro binary straight into a reader's value, per
 * the Avro specification's schema resolution.
 */
#ifndef STELE_CODEC_RESOLVE_H
#define STELE_CODEC_RESOLVE_H

#include "internal.h"

typedef enum rop {
    R_NULL,
    R_BOOL,
    R_NUMBER, /* int, long, float, double: read as wt, set as rt */
    R_TEXT,   /* string or bytes: read as either, set as rt */
    R_FIXED,
    R_ENUM,
    R_ARRAY,
    R_MAP,
    R_RECORD,
    R_WUNION,  /* the writer is a union: one plan per writer branch */
    R_RBRANCH, /* the reader is a union, the writer not: one branch */
    R_FAIL     /* no resolution: reading such a value is an error */
} rop;

typedef struct rnode rnode;

struct rnode {
    rop op;
    avro_type_t wt, rt;
    size_t n;            /* fixed size; writer fields, symbols or branches */
    int *map;            /* record: writer field -> reader field (-1: skip);
                            enum: writer symbol -> reader symbol (-1: none) */
    rnode **kids;        /* record: per writer field; union: per writer branch;
                            array, map, branch: kids[0] */
    avro_schema_t *skip; /* record: writer schema of each skipped field */
    size_t n_defs;       /* record: reader fields filled from defaults */
    size_t *def_idx;
    avro_value_t *def_val;
    int branch;            /* R_RBRANCH: the reader branch */
    avro_schema_t wschema; /* R_ENUM: for the symbol's name in errors */
    char *reason;          /* R_FAIL, R_ENUM: what and where */
};

struct resolver {
    rnode *root;
    rnode **all; /* every node, for freeing */
    size_t n_all, cap_all;
    avro_value_iface_t **ifaces; /* of the default values */
    size_t n_ifaces, cap_ifaces;
    char what[300]; /* "writer X v1 (schema id 3) into reader X v2" */
    char *scratch;  /* NUL-terminated copies of strings and map keys */
    size_t scratch_cap;
};

#endif
