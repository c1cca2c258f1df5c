/*
 * The messages of the plugin worker (worker_wire.h). A frame is a 4-byte
 * length (host order: both ends are one program on one machine) and a
 * payload: an op or answer byte, then fields. Integers are fixed width;
 * bytes and strings are a 4-byte length and the bytes, strings with their
 * NUL, so the reader points into the frame.
 */
#include "worker_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/value.h"
#include "common/err.h"

/* Bounds what a frame length can make either side allocate. */
#define MAX_FRAME (256u * 1024 * 1024)

enum { OP_DECIDE = 1, OP_EVOLVE = 2 };
enum {
    ANS_ACCEPTED = 1, /* events and the new state */
    ANS_REJECTED,     /* the plugin's rejection: code, message */
    ANS_PLUGIN_ERROR, /* decide or evolve failed: message */
    ANS_BAD_STATE,    /* the stored state did not decode: message */
    ANS_STATE,        /* a rebuild's new state */
    ANS_ERROR,        /* the worker's own failure: status, message */
};

/* --- frames ---------------------------------------------------------- */

typedef struct writer {
    stele_buf *b;
    bool bad;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    stele_buf *b = w->b;
    if (w->bad || n == 0)
        return;
    if (b->len + n > MAX_FRAME) {
        w->bad = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            w->bad = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u32(writer *w, uint32_t v)
{
    put(w, &v, sizeof v);
}
static void put_i64(writer *w, int64_t v)
{
    put(w, &v, sizeof v);
}

static void put_bytes(writer *w, const void *p, size_t n)
{
    put_u32(w, (uint32_t)n);
    put(w, p, n);
}

static void put_str(writer *w, const char *s)
{
    put_bytes(w, s ? s : "", (s ? strlen(s) : 0) + 1);
}

static writer begin(stele_buf *b, uint8_t op)
{
    writer w = {b, false};
    b->len = 0;
    put_u32(&w, 0);
    put(&w, &op, 1);
    return w;
}

static int finish(writer *w, stele_err *err)
{
    if (w->bad)
        return stele_err_set(err, STELE_ENOMEM,
                             "plugin worker: a message "
                             "over %u bytes, or out of memory",
                             MAX_FRAME);
    uint32_t n = (uint32_t)(w->b->len - 4);
    memcpy(w->b->data, &n, sizeof n);
    return 0;
}

typedef struct cursor {
    const char *p;
    size_t left;
    bool bad;
} cursor;

static const void *take(cursor *c, size_t n)
{
    if (c->bad || n > c->left) {
        c->bad = true;
        return NULL;
    }
    const void *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint32_t get_u32(cursor *c)
{
    uint32_t v = 0;
    const void *p = take(c, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

static int64_t get_i64(cursor *c)
{
    int64_t v = 0;
    const void *p = take(c, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

static const char *get_bytes(cursor *c, size_t *n)
{
    *n = get_u32(c);
    const char *p = take(c, *n);
    if (!p)
        *n = 0;
    return p;
}

static const char *get_str(cursor *c)
{
    size_t n;
    const char *s = get_bytes(c, &n);
    if (!s || n == 0 || s[n - 1] != '\0') {
        c->bad = true;
        return "";
    }
    return s;
}

static cursor open_frame(const stele_buf *in, uint8_t *op)
{
    cursor c = {in->data, in->len, false};
    const uint8_t *p = take(&c, 1);
    *op = p ? *p : 0;
    return c;
}

int worker_wire_send(int fd, const stele_buf *frame)
{
    for (size_t at = 0; at < frame->len;) {
        ssize_t n = send(fd, frame->data + at, frame->len - at, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return STELE_EIO;
        at += (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    for (size_t at = 0; at < n;) {
        ssize_t r = read(fd, (char *)p + at, n - at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return STELE_EIO;
        at += (size_t)r;
    }
    return 0;
}

int worker_wire_read(int fd, stele_buf *in, int timeout_ms, stele_err *err)
{
    if (timeout_ms >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        if (n == 0 || (n < 0 && errno == EINTR))
            return STELE_ETIMEDOUT;
        if (n < 0)
            return STELE_EIO;
    }
    /* Once a frame begins, the rest follows: the worker writes it whole
     * after the plugin's calls. */
    uint32_t len;
    if (read_all(fd, &len, sizeof len) != 0)
        return STELE_EIO;
    if (len > MAX_FRAME)
        return stele_err_set(err, STELE_EINVAL,
                             "plugin worker: a frame of "
                             "%u bytes",
                             len);
    if (len > in->cap) {
        char *d = realloc(in->data, len);
        if (!d)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        in->data = d;
        in->cap = len;
    }
    in->len = len;
    return read_all(fd, in->data, len);
}

/* --- the worker ------------------------------------------------------ */

static typed_values *named(typed_values *tvs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tvs[i].name, name) == 0)
            return &tvs[i];
    return NULL;
}

static void answer_error(stele_buf *out, int code, const char *msg)
{
    writer w = begin(out, ANS_ERROR);
    put_u32(&w, (uint32_t)code);
    put_str(&w, msg);
    finish(&w, NULL);
}

/* Decodes a value of tv's schema into one of tv's pool. */
static int decode_into(stele_engine *e, typed_values *tv, const char *data,
                       size_t len, avro_value_t **v, stele_err *err)
{
    int rc = engine_values_take(tv, v, err);
    return rc ? rc
              : stele_codec_decode(e->codec, data, len, tv->schema, *v, err);
}

static void serve_decide(stele_engine *e, aggregate *a,
                         volatile uint32_t *phase, cursor *in, stele_buf *out)
{
    engine_call c = {.phase = phase};
    const char *type = get_str(in);
    c.command_id = get_str(in);
    c.aggregate_id = get_str(in);
    c.correlation_id = get_str(in);
    c.user = get_str(in);
    c.now_ms = get_i64(in);
    c.version = get_i64(in);
    c.topic = get_str(in);
    c.partition = (int32_t)get_u32(in);
    c.offset = get_i64(in);
    size_t cmd_len, state_len;
    const char *cmd = get_bytes(in, &cmd_len);
    const char *state = get_bytes(in, &state_len);
    typed_values *tv = named(a->commands, a->def->n_commands, type);
    c.command_type = type;
    if (in->bad || !tv)
        return answer_error(out, STELE_EINVAL, "a malformed request");
    stele_err err = {0};
    int rc = state_len
                 ? stele_codec_decode(e->codec, state, state_len,
                                      a->state_schema, &a->state, &err)
                 : stele_codec_value_reset(a->state_schema, &a->state, &err);
    if (rc) {
        writer w = begin(out, ANS_BAD_STATE);
        put_str(&w, err.msg);
        finish(&w, NULL);
        return;
    }
    avro_value_t *value;
    engine_values_release_all(tv);
    if ((rc = decode_into(e, tv, cmd, cmd_len, &value, &err)))
        return answer_error(out, rc, err.msg);
    stele_decision d;
    static engine_decided done; /* 30 KB: not on the stack */
    engine_decide(e, a, &c, value, &d, &done);
    if (done.error[0]) {
        writer w = begin(out, ANS_PLUGIN_ERROR);
        put_str(&w, done.error);
        finish(&w, NULL);
        return;
    }
    if (d.rejected) {
        writer w = begin(out, ANS_REJECTED);
        put_str(&w, d.code);
        put_str(&w, d.message);
        finish(&w, NULL);
        return;
    }
    writer w = begin(out, ANS_ACCEPTED);
    put_u32(&w, (uint32_t)d.n);
    for (size_t i = 0; i < d.n && rc == 0; i++) {
        put_u32(&w, (uint32_t)(d.ev[i].tv - a->events));
        put_str(&w, done.ids[i]);
        rc = stele_codec_encode(e->codec, d.ev[i].tv->schema, d.ev[i].value,
                                &e->buf, &err);
        put_bytes(&w, e->buf.data, e->buf.len);
    }
    if (rc == 0 && d.n > 0 &&
        (rc = stele_codec_encode(e->codec, a->state_schema, &a->state, &e->buf,
                                 &err)) == 0)
        put_bytes(&w, e->buf.data, e->buf.len);
    if (rc == 0 && (rc = finish(&w, &err)) == 0)
        return;
    answer_error(out, rc, err.msg);
}

static void serve_evolve(stele_engine *e, aggregate *a,
                         volatile uint32_t *phase, cursor *in, stele_buf *out)
{
    engine_call c = {.phase = phase};
    c.topic = get_str(in);
    c.partition = (int32_t)get_u32(in);
    c.offset = get_i64(in);
    stele_event_meta m;
    m.event_id = get_str(in);
    m.aggregate_type = get_str(in);
    m.aggregate_id = get_str(in);
    m.causation_id = get_str(in);
    m.correlation_id = get_str(in);
    m.version = get_i64(in);
    m.timestamp_ms = get_i64(in);
    m.topic = c.topic;
    m.partition = c.partition;
    m.offset = c.offset;
    size_t state_len;
    const char *state = get_bytes(in, &state_len);
    size_t n = get_u32(in);
    if (in->bad || n > in->left)
        return answer_error(out, STELE_EINVAL, "a malformed request");
    stele_event *evs = calloc(n + 1, sizeof *evs);
    stele_value *vals = calloc(n + 1, sizeof *vals);
    stele_err err = {0};
    int rc = evs && vals ? 0
                         : stele_err_set(&err, STELE_ENOMEM,
                                         "out of "
                                         "memory");
    for (size_t i = 0; i < a->def->n_events; i++)
        engine_values_release_all(&a->events[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *type = get_str(in);
        size_t len;
        const char *data = get_bytes(in, &len);
        typed_values *tv = named(a->events, a->def->n_events, type);
        avro_value_t *v;
        if (in->bad || !tv)
            rc = stele_err_set(&err, STELE_EINVAL, "a malformed request");
        else if ((rc = decode_into(e, tv, data, len, &v, &err)) == 0) {
            vals[i] = stele_value_wrap(v);
            evs[i] = (stele_event){tv->name, tv->schema->version, &vals[i], &m};
        }
    }
    if (rc == 0)
        rc = engine_evolve_stored(e, a, state_len ? state : NULL, state_len,
                                  evs, n, &c, &err);
    free(evs);
    free(vals);
    if (rc)
        return answer_error(out, rc, err.msg);
    writer w = begin(out, ANS_STATE);
    put_bytes(&w, e->buf.data, e->buf.len);
    if (finish(&w, &err) != 0)
        answer_error(out, err.code, err.msg);
}

void worker_wire_serve(stele_engine *e, volatile uint32_t *phase,
                       const stele_buf *in, stele_buf *out)
{
    uint8_t op;
    cursor c = open_frame(in, &op);
    uint32_t agg = get_u32(&c);
    if (c.bad || agg >= e->n_aggs)
        return answer_error(out, STELE_EINVAL, "a malformed request");
    if (op == OP_DECIDE)
        serve_decide(e, &e->aggs[agg], phase, &c, out);
    else if (op == OP_EVOLVE)
        serve_evolve(e, &e->aggs[agg], phase, &c, out);
    else
        answer_error(out, STELE_EINVAL, "an unknown request");
}

/* --- the host -------------------------------------------------------- */

int worker_wire_decide_request(stele_engine *e, aggregate *a,
                               const engine_call *c, typed_values *tv,
                               avro_value_t *cmd, const stele_log_record *rec,
                               const stele_state_entry *cur, stele_buf *req,
                               stele_err *err)
{
    /* The command as it came when it is in the declared schema already
     * (the usual case), else re-encoded into it. */
    const void *cmd_data = rec->value;
    size_t cmd_len = rec->value_len;
    int32_t id;
    stele_err ignored;
    if (stele_codec_wire_id(rec->value, rec->value_len, &id, &ignored) != 0 ||
        id != tv->schema->id) {
        int rc = stele_codec_encode(e->codec, tv->schema, cmd, &e->buf, err);
        if (rc)
            return rc;
        cmd_data = e->buf.data;
        cmd_len = e->buf.len;
    }
    writer w = begin(req, OP_DECIDE);
    put_u32(&w, (uint32_t)(a - e->aggs));
    put_str(&w, c->command_type);
    put_str(&w, c->command_id);
    put_str(&w, c->aggregate_id);
    put_str(&w, c->correlation_id);
    put_str(&w, c->user);
    put_i64(&w, c->now_ms);
    put_i64(&w, c->version);
    put_str(&w, c->topic);
    put_u32(&w, (uint32_t)c->partition);
    put_i64(&w, c->offset);
    put_bytes(&w, cmd_data, cmd_len);
    put_bytes(&w, cur ? cur->data : NULL, cur ? cur->len : 0);
    return finish(&w, err);
}

static int malformed(stele_err *err)
{
    return stele_err_set(err, STELE_EIO, "plugin worker: a malformed answer");
}

/* A worker's ANS_ERROR: its status and message. */
static int worker_error(cursor *in, stele_err *err)
{
    int code = (int)get_u32(in);
    const char *msg = get_str(in);
    if (in->bad || code >= 0)
        return malformed(err);
    return stele_err_set(err, code, "%s", msg);
}

int worker_wire_decide_answer(stele_engine *e, aggregate *a,
                              const engine_call *c, const stele_buf *ans,
                              stele_decision *d, engine_decided *out,
                              stele_buf *state_buf, const stele_buf **state,
                              stele_err *err)
{
    uint8_t kind;
    cursor in = open_frame(ans, &kind);
    *d = (stele_decision){.e = e, .agg = a};
    out->error[0] = '\0';
    *state = NULL;
    if (kind == ANS_REJECTED) {
        d->rejected = true;
        snprintf(d->code, sizeof d->code, "%s", get_str(&in));
        snprintf(d->message, sizeof d->message, "%s", get_str(&in));
        return in.bad ? malformed(err) : 0;
    }
    if (kind == ANS_PLUGIN_ERROR) {
        snprintf(out->error, sizeof out->error, "%s", get_str(&in));
        return in.bad ? malformed(err) : 0;
    }
    if (kind == ANS_BAD_STATE)
        return stele_err_set(err, STELE_EINVAL, "%s", get_str(&in));
    if (kind == ANS_ERROR) {
        /* STELE_EINVAL says the stored state is bad (worker_decide) */
        int rc = worker_error(&in, err);
        return rc == STELE_EINVAL ? (err->code = STELE_EIO) : rc;
    }
    if (kind != ANS_ACCEPTED)
        return malformed(err);
    size_t n = get_u32(&in);
    if (n > MAX_EMITTED)
        return malformed(err);
    for (size_t i = 0; i < a->def->n_events; i++)
        engine_values_release_all(&a->events[i]);
    for (size_t i = 0; i < n; i++) {
        uint32_t ev = get_u32(&in);
        const char *id = get_str(&in);
        size_t len;
        const char *data = get_bytes(&in, &len);
        if (in.bad || ev >= a->def->n_events || strlen(id) != STELE_ULID_LEN)
            return malformed(err);
        typed_values *tv = &a->events[ev];
        avro_value_t *v;
        int rc = decode_into(e, tv, data, len, &v, err);
        if (rc)
            return rc;
        d->ev[i].tv = tv;
        d->ev[i].value = v;
        memcpy(out->ids[i], id, STELE_ULID_LEN + 1);
        out->metas[i] = engine_event_meta(a, c, i, out->ids[i]);
    }
    d->n = n;
    if (n == 0)
        return 0;
    size_t len;
    const char *data = get_bytes(&in, &len);
    if (in.bad)
        return malformed(err);
    writer w = {state_buf, false};
    state_buf->len = 0;
    put(&w, data, len);
    if (w.bad)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    *state = state_buf;
    return 0;
}

int worker_wire_evolve_request(stele_engine *e, aggregate *a, const void *state,
                               size_t state_len, const stele_event *evs,
                               size_t n, const engine_call *c, stele_buf *req,
                               stele_err *err)
{
    const stele_event_meta *m = n ? evs[0].meta : NULL;
    writer w = begin(req, OP_EVOLVE);
    put_u32(&w, (uint32_t)(a - e->aggs));
    put_str(&w, c->topic);
    put_u32(&w, (uint32_t)c->partition);
    put_i64(&w, c->offset);
    put_str(&w, m ? m->event_id : "");
    put_str(&w, m ? m->aggregate_type : "");
    put_str(&w, m ? m->aggregate_id : "");
    put_str(&w, m ? m->causation_id : "");
    put_str(&w, m ? m->correlation_id : "");
    put_i64(&w, m ? m->version : 0);
    put_i64(&w, m ? m->timestamp_ms : 0);
    put_bytes(&w, state, state ? state_len : 0);
    put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const stele_schema *s = engine_aggregate_wants(a, evs[i].type);
        if (!s)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s is not an event of "
                                 "%s",
                                 evs[i].type, a->def->type);
        avro_value_t v = stele_value_unwrap(evs[i].value);
        int rc = stele_codec_encode(e->codec, s, &v, &e->buf, err);
        if (rc)
            return rc;
        put_str(&w, evs[i].type);
        put_bytes(&w, e->buf.data, e->buf.len);
    }
    return finish(&w, err);
}

int worker_wire_evolve_answer(stele_engine *e, const stele_buf *ans,
                              stele_err *err)
{
    uint8_t kind;
    cursor in = open_frame(ans, &kind);
    if (kind == ANS_ERROR)
        return worker_error(&in, err);
    size_t len;
    const char *data = get_bytes(&in, &len);
    if (kind != ANS_STATE || in.bad)
        return malformed(err);
    writer w = {&e->buf, false};
    e->buf.len = 0;
    put(&w, data, len);
    return w.bad ? stele_err_set(err, STELE_ENOMEM, "out of memory") : 0;
}
