/*
 * codec.h — Avro records on the log, every concern of the codec:
 *
 *   schema.h  the schema catalogue read from schemas/ (one .avsc file per
 *             record type and version, named <full.name>.v<N>.avsc, in
 *             any folder below it), its ids in the schema registry
 *             (host/registry/), values and their defaults;
 *   wire.h    the Confluent wire format, decoding with resolution;
 *   events.h  reading stored events through upcasters;
 *   json.h    JSON <-> Avro;
 *   compat.h  compatibility checks and the schema gate.
 *
 * A file that uses one concern includes that header; this one is for the
 * files that use most of them.
 */
#ifndef STELE_CODEC_H
#define STELE_CODEC_H

#include "codec/compat.h"
#include "codec/events.h"
#include "codec/json.h"
#include "codec/schema.h"
#include "codec/wire.h"

#endif
