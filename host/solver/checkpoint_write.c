/* Checkpoints of a running loop: the loop section encoded, theta and the state copied to
 * the host, and a background thread that writes the file while the run goes on. */
#include "solver.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void put_bytes(unsigned char *buffer, size_t *at, const void *value, size_t size)
{
    memcpy(buffer + *at, value, size);
    *at += size;
}

void clopt_pending_values(const struct clopt_solver *s, const struct pending_loss *p, double *f,
                          double *g2)
{
    if (s->acc_size == sizeof(double)) {
        *f = p->host[0];
        *g2 = p->host[1];
    } else {
        float pair[2];
        memcpy(pair, p->host, sizeof pair);
        *f = pair[0];
        *g2 = pair[1];
    }
}

static void free_job(struct checkpoint_job *job)
{
    if (!job)
        return;
    free(job->path);
    free(job->image);
    free(job->loop);
    free(job);
}

static int all_finite(const struct checkpoint_job *job)
{
    for (size_t i = 0; i < job->n_values; ++i)
        if (job->is_double ? !isfinite(((const double *)(const void *)job->image)[i])
                           : !isfinite(((const float *)(const void *)job->image)[i]))
            return 0;
    return 1;
}

static void *checkpoint_writer(void *arg)
{
    struct checkpoint_job *job = arg;
    /* A non-finite iterate is no checkpoint: the one on disk stays the last good one. The
     * state vectors are not looked at: +Inf there (an overflowed adagrad sum) is where the
     * run really is, and it goes on from there, with or without checkpoints. */
    if (all_finite(job)) {
        job->status = clopt_ckpt_write(job->path, job->sections, job->n_sections, NULL, NULL,
                                       job->err, sizeof job->err);
        job->written = job->status == CLOPT_OK;
    }
    atomic_store(&job->done, 1);
    return NULL;
}

int clopt_solver_checkpoint_report(const struct clopt_solver *s,
                                   struct clopt_checkpoint_report *report)
{
    if (!s || !report)
        return CLOPT_ERR_INVALID_ARG;
    *report = s->ck_report;
    return CLOPT_OK;
}

static void note_failure(struct clopt_solver *s, const char *why)
{
    struct clopt_checkpoint_report *r = &s->ck_report;
    if (!r->failed++)
        snprintf(r->error, sizeof r->error, "%s", why);
    r->final_written = 0;
}

/* Notes how a finished job went in the solver's report and frees it. A file that could not
 * be written is no reason to stop the run (the caller's outputs matter more); the first
 * cause is kept for the caller to show. */
static void settle_job(struct clopt_solver *s, struct checkpoint_job *job)
{
    struct clopt_checkpoint_report *r = &s->ck_report;
    if (job->written) {
        ++r->written;
        r->last_written = job->t;
        r->final_written = job->final;
    } else if (job->status != CLOPT_OK) {
        note_failure(s, job->err);
    }
    free_job(job);
}

/* Waits for the checkpoint being written, if any, and notes how it went. */
int clopt_finish_checkpoint(struct clopt_solver *s)
{
    if (!s->job)
        return CLOPT_OK;
    pthread_join(s->writer, NULL);
    struct checkpoint_job *job = s->job;
    s->job = NULL;
    settle_job(s, job);
    return CLOPT_OK;
}

void clopt_abandon_checkpoint(struct clopt_solver *s)
{
    if (!s->job)
        return;
    pthread_join(s->writer, NULL);
    free_job(s->job);
    s->job = NULL;
}

/* Section payloads straight from the device, when there is no host memory for a copy. */
static int fetch_from_device(void *user, size_t section, uint64_t offset, void *dst, size_t bytes)
{
    struct clopt_solver *s = user;
    return clopt_transfer(s, section - 2, dst, s->opts.precision, (size_t)(offset / s->elem_size),
                          bytes / s->elem_size, 0);
}

/* Waits for the pending losses' values, which the loop section records. 0 when one of them
 * is not finite: the run has already diverged (it will find out when it looks), and the
 * checkpoint on disk stays the last good one. */
static int settle_pending(struct clopt_solver *s, struct loss_ring *ring, size_t pending,
                          int *all_good)
{
    *all_good = 0;
    for (size_t i = 0; i < pending; ++i) {
        struct pending_loss *p = &ring->slot[(ring->head + i) % RING_SIZE];
        int status = p->done ? clopt_wait_event(s->ctx, &p->done) : CLOPT_OK;
        if (status != CLOPT_OK)
            return status;
        double f, g2;
        clopt_pending_values(s, p, &f, &g2);
        if (!isfinite(f) || !isfinite(g2))
            return CLOPT_OK;
    }
    *all_good = 1;
    return CLOPT_OK;
}

/* Fills job->loop (LOOP_HEAD + pending * LOOP_ENTRY bytes); returns its length. */
static size_t encode_loop(const struct clopt_solver *s, const struct run_state *rs,
                          const struct loss_ring *ring, size_t pending, uint64_t t, int final,
                          unsigned char *loop)
{
    size_t at = 0;
    const uint64_t n = s->n, count = pending;
    const uint32_t elem = (uint32_t)s->elem_size, n_state = (uint32_t)s->n_state,
                   fresh = (uint32_t)s->fresh_state, have_good = (uint32_t)rs->have_good, zero = 0;
    /* A cancelled run is meant to be resumed: its stop is not part of where it is. */
    const uint32_t decided = (uint32_t)(rs->decided && rs->reason != CLOPT_STOP_CANCELLED);
    const int32_t reason = rs->reason;
    put_bytes(loop, &at, &t, 8);
    put_bytes(loop, &at, &s->step, 8);
    put_bytes(loop, &at, &n, 8);
    put_bytes(loop, &at, &elem, 4);
    put_bytes(loop, &at, &n_state, 4);
    put_bytes(loop, &at, &fresh, 4);
    put_bytes(loop, &at, &have_good, 4);
    put_bytes(loop, &at, &decided, 4);
    put_bytes(loop, &at, &reason, 4);
    put_bytes(loop, &at, &rs->last_good, 8);
    put_bytes(loop, &at, &rs->prev_loss, 8);
    put_bytes(loop, &at, &count, 8);
    put_bytes(loop, &at, &rs->decided_loss, 8);
    put_bytes(loop, &at, &rs->decided_grad_norm, 8);
    put_bytes(loop, &at, &rs->decided_prev_loss, 8);
    for (size_t i = 0; i < pending; ++i) {
        const struct pending_loss *p = &ring->slot[(ring->head + i) % RING_SIZE];
        const uint32_t reported = (uint32_t)(p->reported || final);
        double f, g2;
        clopt_pending_values(s, p, &f, &g2);
        put_bytes(loop, &at, &p->iteration, 8);
        put_bytes(loop, &at, &reported, 4);
        put_bytes(loop, &at, &zero, 4);
        put_bytes(loop, &at, &f, 8);
        put_bytes(loop, &at, &g2, 8);
    }
    return at;
}

/* The sections' tags and lengths: config, loop, theta, state0, state1, ... */
static void describe_sections(const struct clopt_solver *s, struct checkpoint_job *job,
                              size_t loop_length)
{
    const size_t bytes = s->n * s->elem_size;
    struct clopt_ckpt_section *sec = job->sections;
    memcpy(sec[0].tag, "config\0\0", 8);
    sec[0].length = strlen(s->config);
    sec[0].data = s->config;
    memcpy(sec[1].tag, "loop\0\0\0\0", 8);
    sec[1].length = loop_length;
    sec[1].data = job->loop;
    for (size_t k = 0; k <= s->n_state; ++k) {
        memcpy(sec[2 + k].tag, k == 0 ? "theta\0\0\0" : "state\0\0\0", 8);
        sec[2 + k].tag[5] = k ? (char)('0' + k - 1) : '\0';
        sec[2 + k].length = bytes;
    }
    job->n_sections = 3 + s->n_state;
}

/* Without host memory for a copy the file is streamed from the device, which waits. A
 * failure of the device (reading theta back) fails the run; one of the file does not. */
static int write_from_device(struct clopt_solver *s, struct checkpoint_job *job)
{
    int status = clopt_ckpt_write(job->path, job->sections, job->n_sections, fetch_from_device, s,
                                  job->err, sizeof job->err);
    /* fetch_from_device leaves its own message on the context: that is a device failure. */
    if (status != CLOPT_OK && status != CLOPT_ERR_IO && status != CLOPT_ERR_OUT_OF_MEMORY &&
        status != CLOPT_ERR_UNSUPPORTED) {
        free_job(job);
        return status;
    }
    job->status = status;
    job->written = status == CLOPT_OK;
    settle_job(s, job);
    return CLOPT_OK;
}

/* Copies theta and the state into job->image and starts the writer thread on it. */
static int copy_and_start_writer(struct clopt_solver *s, struct checkpoint_job *job)
{
    const size_t bytes = s->n * s->elem_size;
    for (size_t k = 0; k <= s->n_state; ++k) {
        int status = clopt_transfer(s, k, job->image + k * bytes, s->opts.precision, 0, s->n, 0);
        if (status != CLOPT_OK) {
            free_job(job);
            return status;
        }
        job->sections[2 + k].data = job->image + k * bytes;
    }
    job->n_values = s->n; /* theta only: see checkpoint_writer */
    job->is_double = s->elem_size == sizeof(double);
    /* Signals meant for the program (a CLI's SIGINT) go to the thread that runs the loop. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    const int created = pthread_create(&s->writer, NULL, checkpoint_writer, job);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (created != 0) {
        checkpoint_writer(job);
        settle_job(s, job);
        return CLOPT_OK;
    }
    s->job = job;
    return CLOPT_OK;
}

/* This rank's elements [at, at + count) of theta (vector 0) or a state vector. */
static int local_part(struct clopt_solver *s, void *user, size_t vector, size_t at, size_t count,
                      void *dst)
{
    (void)user;
    return clopt_transfer_local(s, vector, dst, s->opts.precision, at, count, 0);
}

/* Several ranks: every rank takes part in the gathers of the file's chunks, which rank 0
 * writes as they arrive (ranks_ckpt.c); no rank holds all of theta and the state. The
 * file is written and counted synchronously: a writer thread would gather between ranks
 * while the loop does too. */
static int write_across_ranks(struct clopt_solver *s, struct checkpoint_job *job)
{
    size_t vec_of[2 + MAX_STATE + 1] = {0};
    for (size_t k = 0; k <= s->n_state; ++k)
        vec_of[2 + k] = k;
    int written = 0;
    int status =
        clopt_ranks_write_checkpoint(s, job->path, job->sections, job->n_sections, vec_of, 2,
                                     local_part, NULL, &written, job->err, sizeof job->err);
    if (status != CLOPT_OK) {
        free_job(job);
        return status;
    }
    job->written = written;
    job->status = !written && job->err[0] ? CLOPT_ERR_IO : CLOPT_OK;
    settle_job(s, job);
    return CLOPT_OK;
}

/* Writes a checkpoint of iteration t: theta and the state are copied to host memory (the
 * only time the device waits) and a thread writes the file while the run goes on. The first
 * `pending` losses of the ring are recorded with their values; `final` marks them as
 * reported, because the end of the run reports them right after. */
int clopt_write_checkpoint(struct clopt_solver *s, const struct run_state *rs,
                           struct loss_ring *ring, size_t pending, uint64_t t, int final)
{
    /* A periodic checkpoint never waits for the previous one's disk write: while that is
     * still going on, this one is skipped. */
    int busy = !final && s->job && !atomic_load(&s->job->done);
    /* Several ranks skip together (one process's rule; under ranks there is no writer
     * thread, so nothing is ever busy there). */
    int status = clopt_ranks_flag(s, busy, &busy);
    if (status != CLOPT_OK || busy)
        return status;
    status = clopt_finish_checkpoint(s);
    int all_good = 0;
    if (status == CLOPT_OK)
        status = settle_pending(s, ring, pending, &all_good);
    if (status != CLOPT_OK || !all_good)
        return status;
    struct checkpoint_job *job = calloc(1, sizeof *job);
    if (job) {
        job->path = clopt_format("%s", s->checkpoint_path);
        job->loop = malloc(LOOP_HEAD + pending * LOOP_ENTRY);
    }
    /* Without memory for the small parts there is no checkpoint this time; the run itself
     * needs none of it. Several ranks skip it together (each checkpoint gathers). */
    int short_of_memory = !job || !job->path || !job->loop;
    status = clopt_ranks_flag(s, short_of_memory, &short_of_memory);
    if (status != CLOPT_OK || short_of_memory) {
        free_job(job);
        if (status != CLOPT_OK)
            return status;
        note_failure(s, "out of host memory for a checkpoint");
        return CLOPT_OK;
    }
    job->t = t;
    job->final = final;
    describe_sections(s, job, encode_loop(s, rs, ring, pending, t, final, job->loop));
    if (clopt_ranks_active(s))
        return write_across_ranks(s, job);
    const size_t bytes = s->n * s->elem_size;
    if (s->n_state + 1 <= SIZE_MAX / bytes)
        job->image = malloc(bytes * (s->n_state + 1));
    if (!job->image)
        return write_from_device(s, job);
    return copy_and_start_writer(s, job);
}
