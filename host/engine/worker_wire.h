/*
 * worker_wire.h — the messages between the host and its plugin worker
 * (worker.h): frames on the socket, the requests the host writes, what the
 * worker makes of them, and the host's reading of the answers.
 */
#ifndef STELE_ENGINE_WORKER_WIRE_H
#define STELE_ENGINE_WORKER_WIRE_H

#include "decide.h"

/* Writes a frame built by the functions below. 0, or STELE_EIO when the
 * peer is gone. */
int worker_wire_send(int fd, const stele_buf *frame);
/* Reads one frame's payload into in. timeout_ms bounds the wait for its
 * first byte (-1: none): STELE_ETIMEDOUT when nothing came. STELE_EIO
 * when the peer is gone, STELE_EINVAL for a frame over the size limit. */
int worker_wire_read(int fd, stele_buf *in, int timeout_ms, stele_err *err);

/* The worker: answers the request in into out (a frame). */
void worker_wire_serve(stele_engine *e, volatile uint32_t *phase,
                       const stele_buf *in, stele_buf *out);

/* The host: a decide request for c's command into req (see
 * worker_decide), and the reading of its answer ans; new state bytes are
 * copied into state_buf and *state points there when there are some. */
int worker_wire_decide_request(stele_engine *e, aggregate *a,
                               const engine_call *c, typed_values *tv,
                               avro_value_t *cmd, const stele_log_record *rec,
                               const stele_state_entry *cur, stele_buf *req,
                               stele_err *err);
int worker_wire_decide_answer(stele_engine *e, aggregate *a,
                              const engine_call *c, const stele_buf *ans,
                              stele_decision *d, engine_decided *out,
                              stele_buf *state_buf, const stele_buf **state,
                              stele_err *err);

/* The host: an evolve request of stored events into req, and the reading
 * of its answer (the new state into e->buf). */
int worker_wire_evolve_request(stele_engine *e, aggregate *a, const void *state,
                               size_t state_len, const stele_event *evs,
                               size_t n, const engine_call *c, stele_buf *req,
                               stele_err *err);
int worker_wire_evolve_answer(stele_engine *e, const stele_buf *ans,
                              stele_err *err);

#endif
