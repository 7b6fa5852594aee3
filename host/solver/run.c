/* The iteration loop: queueing steps and loss read-backs, looking at the losses in order a
 * fixed lag later, the stopping tests, the end of a run and its divergence handling. */
#include "solver.h"
#include "qn/qn.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double clopt_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int clopt_wait_event(struct clopt_context *ctx, cl_event *event)
{
    cl_int err = clWaitForEvents(1, event);
    clReleaseEvent(*event);
    *event = NULL;
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(ctx, err, "clWaitForEvents");
}

/* The stopping tests on a finite loss: gtol, target, ftol; 0 when none is met. */
static int stop_reason(const struct clopt_solver *s, const struct run_state *rs, double loss,
                       double grad_norm)
{
    const double scale = fmax(fmax(fabs(rs->prev_loss), fabs(loss)), DBL_MIN);
    if (grad_norm <= s->opts.gtol)
        return CLOPT_STOP_GTOL;
    if (s->opts.maximize ? loss >= s->opts.target : loss <= s->opts.target)
        return CLOPT_STOP_TARGET;
    if (isfinite(rs->prev_loss) && fabs(rs->prev_loss - loss) <= s->opts.ftol * scale)
        return CLOPT_STOP_FTOL;
    return 0;
}

static void look_at(struct clopt_solver *s, struct run_state *rs, const struct pending_loss *p)
{
    double loss, grad_norm;
    clopt_read_pair(s, p->host, &loss, &grad_norm);
    if (rs->diverged)
        return;
    if (!isfinite(loss) || !isfinite(grad_norm)) {
        rs->diverged = 1;
        rs->diverged_at = p->iteration;
        rs->decided = 1;
        return;
    }
    rs->have_good = 1;
    rs->last_good = p->iteration;
    if (s->opts.progress && !p->reported) {
        const struct clopt_progress progress = {
            .iteration = p->iteration,
            .loss = loss,
            .grad_norm = grad_norm,
            .lr = clopt_schedule_lr(&s->schedule, s->hyper.lr,
                                    rs->start_step + (p->iteration - rs->first_t)),
            .seconds = clopt_now_seconds() - rs->start,
        };
        const int cancel = s->opts.progress(s->opts.progress_user, &progress) != 0;
        if (cancel && clopt_ranks_active(s)) {
            rs->cancel_wanted = 1; /* one rank's wish: every rank must stop at once */
        } else if (cancel && !rs->decided) {
            rs->decided = 1;
            rs->reason = CLOPT_STOP_CANCELLED;
        }
    }
    if (!rs->decided) {
        const int reason = stop_reason(s, rs, loss, grad_norm);
        if (reason) {
            rs->decided = 1;
            rs->reason = reason;
            rs->decided_loss = loss;
            rs->decided_grad_norm = grad_norm;
            rs->decided_prev_loss = rs->prev_loss;
        }
    }
    rs->prev_loss = loss;
}

/* A resumed run whose checkpoint had met a stopping test decides again with its own limits
 * on what that test saw: a stricter --target goes on, as an uninterrupted run with it would
 * have. */
static void decide_again(const struct clopt_solver *s, struct run_state *rs,
                         const struct resume_point *r)
{
    struct run_state before = *rs;
    before.prev_loss = r->decided_prev_loss;
    const int reason = stop_reason(s, &before, r->decided_loss, r->decided_grad_norm);
    rs->decided = reason != 0;
    rs->reason = reason ? reason : CLOPT_STOP_MAX_ITERS;
    rs->decided_loss = r->decided_loss;
    rs->decided_grad_norm = r->decided_grad_norm;
    rs->decided_prev_loss = r->decided_prev_loss;
}

/* One run of the loop: its state, the losses in flight and the throttle's markers. */
struct run {
    struct run_state rs;
    struct loss_ring ring;
    cl_event throttle[THROTTLE_SLOTS];
    size_t throttle_next;
    struct snapshot *origin; /* theta and state at the start, when not theta_0 (replay.c) */
    int origin_generated;    /* theta was theta_0 at the start: a replay regenerates it */
    int stepped;             /* some step was queued: theta is no longer theta_0 */
    int resumed;
    uint64_t t0; /* the first iteration (not 0 when resumed) */
    uint64_t t;  /* the next iteration to queue */
};

/* Looks, in order, at the pending loss read-backs due by iteration `now` (queued at least
 * s->lag iterations earlier; UINT64_MAX takes them all), waiting for each. */
static int look_at_due(struct clopt_solver *s, struct run_state *rs, struct loss_ring *ring,
                       uint64_t now)
{
    while (ring->pending &&
           (now == UINT64_MAX || ring->slot[ring->head].iteration + s->lag <= now)) {
        struct pending_loss *p = &ring->slot[ring->head];
        int status = p->done ? clopt_wait_event(s->ctx, &p->done) : CLOPT_OK;
        if (status != CLOPT_OK)
            return status;
        const int was_decided = rs->decided;
        look_at(s, rs, p);
        ring->head = (ring->head + 1) % RING_SIZE;
        --ring->pending;
        /* The losses after the one that decided stay pending, so the closing checkpoint
         * holds them and a resumed run with other limits tests each of them as an
         * uninterrupted run would have. The end of the run looks at them all. */
        if (rs->decided && !was_decided && now != UINT64_MAX)
            break;
    }
    return CLOPT_OK;
}

/* The next free slot of the ring, for a loss of iteration t. */
static struct pending_loss *next_slot(struct loss_ring *ring, uint64_t t)
{
    struct pending_loss *p = &ring->slot[(ring->head + ring->pending) % RING_SIZE];
    p->iteration = t;
    p->reported = 0;
    return p;
}

/* The result's fixed parts, and the run's state, from a resume point when there is one. */
static void begin_run(struct clopt_solver *s, struct clopt_result *res, struct run *run)
{
    memset(res, 0, sizeof *res);
    memset(&s->ck_report, 0, sizeof s->ck_report);
    res->shards = s->n_shards;
    res->knobs = s->knobs;
    /* theta and each state vector are read and written once; a norm pass for global
     * clipping reads theta once more, and an objective's data vector is read once. */
    res->bytes_per_element = (double)s->elem_size *
                             (2.0 * (double)(1 + s->n_state) + (s->opts.clip_norm > 0 ? 1.0 : 0.0) +
                              (s->data_path || s->external ? 1.0 : 0.0));
    res->bytes_per_iter = (double)s->n * res->bytes_per_element;
    res->lr = s->hyper.lr;
    memset(run, 0, sizeof *run);
    run->rs = (struct run_state){.reason = CLOPT_STOP_MAX_ITERS,
                                 .prev_loss = NAN,
                                 .start_step = s->step,
                                 .start_fresh = s->fresh_state};
    /* A resumed run starts where its checkpoint stopped, with the losses it had queued. */
    run->resumed = s->resume != NULL;
    if (s->resume) {
        const struct resume_point *r = s->resume;
        run->t0 = r->t;
        run->rs.have_good = r->have_good;
        run->rs.last_good = r->last_good;
        run->rs.decided = r->decided;
        if (r->decided)
            run->rs.reason = r->reason;
        run->rs.prev_loss = r->prev_loss;
        if (r->decided && r->decision_known)
            decide_again(s, &run->rs, r);
        for (size_t i = 0; i < r->n_pending && i < RING_SIZE; ++i)
            run->ring.slot[run->ring.pending++] = r->pending[i];
        free(s->resume);
        s->resume = NULL;
    }
    run->rs.first_t = run->t0;
    run->t = run->t0;
    run->origin_generated = s->theta_generated;
}

/* Before queueing iteration t: the losses now due, a cancel, a periodic checkpoint. Sets
 * *stop when the loop ends here. */
static int before_iteration(struct clopt_solver *s, struct run *run, int *stop)
{
    const uint64_t t = run->t;
    *stop = 1;
    /* Losses are looked at, and stopping tests act, only at multiples of the fuse count:
     * where a fused run stops then does not depend on where checkpoints or a resume put
     * single steps. */
    if (t % s->knobs.fuse == 0) {
        int status = look_at_due(s, &run->rs, &run->ring, t);
        if (status != CLOPT_OK || run->rs.decided)
            return status;
    }
    /* Several ranks stop together: a signal reaches each at another iteration. */
    int stop_now = (s->opts.stop && *s->opts.stop) || run->rs.cancel_wanted;
    int status = clopt_ranks_active(s) ? clopt_ranks_any(s, stop_now, &stop_now) : CLOPT_OK;
    if (status != CLOPT_OK)
        return status;
    if (stop_now) {
        run->rs.decided = 1;
        run->rs.reason = CLOPT_STOP_CANCELLED;
        return CLOPT_OK;
    }
    *stop = 0;
    if (s->checkpoint_path && s->opts.checkpoint_every && t > run->t0 &&
        t % s->opts.checkpoint_every == 0)
        return clopt_write_checkpoint(s, &run->rs, &run->ring, run->ring.pending, t, 0);
    return CLOPT_OK;
}

/* A fused block starts at a multiple of the fuse count and runs when all its iterations
 * come before the limit and before the next checkpoint; the rest are single steps. */
static uint64_t steps_at(const struct clopt_solver *s, uint64_t t)
{
    const uint64_t fuse = s->knobs.fuse, every = s->opts.checkpoint_every;
    if (fuse > 1 && t % fuse == 0 && s->opts.max_iters - t >= fuse &&
        !(s->checkpoint_path && every && (t + fuse - 1) / every > t / every))
        return fuse;
    return 1;
}

/* Every THROTTLE_EVERY iterations the launch gets a marker event, and the marker of
 * THROTTLE_SLOTS such launches ago is waited for. *marker is NULL between markers. */
static int throttle(struct clopt_solver *s, struct run *run, uint64_t steps, cl_event **marker)
{
    const uint64_t t = run->t;
    *marker = NULL;
    if (!(t % THROTTLE_EVERY == 0 || (t + steps - 1) / THROTTLE_EVERY > t / THROTTLE_EVERY))
        return CLOPT_OK;
    cl_event *slot = &run->throttle[run->throttle_next];
    if (*slot) {
        int status = clopt_wait_event(s->ctx, slot);
        if (status != CLOPT_OK)
            return status;
    }
    *marker = slot;
    run->throttle_next = (run->throttle_next + 1) % THROTTLE_SLOTS;
    return CLOPT_OK;
}

/* Queues a fused block of `steps` iterations and the reductions of those that want a loss. */
static int queue_fused(struct clopt_solver *s, struct run *run, uint64_t steps, cl_event *marker)
{
    uint64_t loss_mask = 0;
    for (uint64_t j = 0; j < steps; ++j)
        if ((run->t + j) % s->opts.loss_every == 0)
            loss_mask |= (uint64_t)1 << j;
    int status = clopt_enqueue_fused(s, loss_mask, marker);
    for (uint64_t j = 0; j < steps && status == CLOPT_OK; ++j) {
        if (!((loss_mask >> j) & 1))
            continue;
        struct pending_loss *p = next_slot(&run->ring, run->t + j);
        status = clopt_enqueue_reduce(s, (size_t)j, p->host, &p->done);
        if (status == CLOPT_OK)
            ++run->ring.pending;
    }
    return status;
}

/* Queues one step and, when iteration t wants it, its loss read-back. */
static int queue_single(struct clopt_solver *s, struct run *run, cl_event *marker)
{
    const int with_loss = run->t % s->opts.loss_every == 0;
    int status = clopt_enqueue_step(s, with_loss, marker);
    if (status != CLOPT_OK || !with_loss)
        return status;
    struct pending_loss *p = next_slot(&run->ring, run->t);
    /* With clip-norm the step's norm pass already reduced L(theta_t) into the result buffer,
     * and the update pass did not overwrite it. */
    status = s->opts.clip_norm > 0 ? clopt_enqueue_read_result(s, p->host, &p->done)
                                   : clopt_enqueue_reduce(s, 0, p->host, &p->done);
    if (status == CLOPT_OK)
        ++run->ring.pending;
    return status;
}

/* Queues iteration t (or a fused block from it) and moves t on. */
static int queue_iteration(struct clopt_solver *s, struct run *run)
{
    const uint64_t steps = steps_at(s, run->t);
    cl_event *marker;
    int status = throttle(s, run, steps, &marker);
    if (status != CLOPT_OK)
        return status;
    run->stepped = 1;
    status = steps > 1 ? queue_fused(s, run, steps, marker) : queue_single(s, run, marker);
    if (status == CLOPT_OK && marker) {
        status = clopt_sync_lanes(s, 0);
    }
    run->t += steps;
    return status;
}

/* After the loop: the last checkpoint, the losses still pending, and the final loss. */
static int end_loop(struct clopt_solver *s, struct clopt_result *res, struct run *run)
{
    struct run_state *rs = &run->rs;
    res->iterations = run->t;
    res->evaluations = run->t; /* one f and g per update */
    /* The run's last checkpoint holds the losses still pending, as they were before the
     * look below, so that a resumed run decides exactly as this one would have gone on. */
    int status = CLOPT_OK;
    if (s->checkpoint_path && !rs->diverged && !(run->resumed && run->t == run->t0))
        status = clopt_write_checkpoint(s, rs, &run->ring, run->ring.pending, run->t, 1);
    if (status == CLOPT_OK)
        status = look_at_due(s, rs, &run->ring, UINT64_MAX);
    if (status != CLOPT_OK)
        return status;
    status = clopt_sync_lanes(s, 1);
    if (status != CLOPT_OK)
        return status;
    res->seconds = clopt_now_seconds() - rs->start;
    clopt_ranks_clock(s, 0); /* the final evaluation is outside the loop's seconds */
    if (res->seconds > 0)
        res->gbytes_per_second = res->bytes_per_iter * (double)res->iterations / res->seconds / 1e9;
    /* The final loss is also the last look at theta: a run can blow up after its last loss
     * evaluation (loss_every larger than the remaining iterations). */
    if (rs->diverged)
        return CLOPT_OK;
    status = clopt_solver_evaluate(s, &res->loss, &res->grad_norm);
    if (status == CLOPT_OK && (!isfinite(res->loss) || !isfinite(res->grad_norm))) {
        rs->diverged = 1;
        rs->diverged_at = res->iterations;
    }
    return status;
}

/* A diverged run goes back to the last iterate seen finite (not before this run's start),
 * which the checkpoint then holds too; the status says what happened. */
static int keep_last_good(struct clopt_solver *s, struct clopt_result *res, struct run *run)
{
    const struct run_state *rs = &run->rs;
    struct clopt_context *ctx = s->ctx;
    res->diverged_at = rs->diverged_at;
    if (!run->origin_generated && !run->origin)
        return clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                          "loss became NaN/Inf at iteration %llu; there was no host memory to "
                          "keep the start point, so theta is the diverged one",
                          (unsigned long long)rs->diverged_at);
    const uint64_t t0 = run->t0;
    const uint64_t keep = rs->have_good && rs->last_good > t0 ? rs->last_good : t0;
    int status = clopt_replay(s, run->origin, rs->start_step, rs->start_fresh, t0, keep - t0);
    if (status != CLOPT_OK)
        return status;
    res->iterations = keep;
    res->evaluations = keep;
    status = clopt_solver_evaluate(s, &res->loss, &res->grad_norm);
    if (status == CLOPT_OK && s->checkpoint_path) {
        /* The checkpoint holds the kept iterate, not the poisoned one. */
        struct run_state kept = {.prev_loss = NAN,
                                 .have_good = rs->have_good,
                                 .last_good = keep,
                                 .reason = CLOPT_STOP_MAX_ITERS};
        status = clopt_write_checkpoint(s, &kept, &run->ring, 0, keep, 1);
        if (status == CLOPT_OK)
            status = clopt_finish_checkpoint(s);
    }
    if (status != CLOPT_OK)
        return status;
    if (rs->have_good)
        return clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                          "loss became NaN/Inf by iteration %llu (lower options.lr?); theta is the "
                          "last iterate seen finite, iteration %llu",
                          (unsigned long long)rs->diverged_at, (unsigned long long)res->iterations);
    return clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                      "the loss is NaN/Inf at the start point already (by iteration %llu): check "
                      "the initial theta and the objective; theta is the start point",
                      (unsigned long long)rs->diverged_at);
}

/* Releases what the run holds; after a failure, waits for the device and the writer. */
static void end_run(struct clopt_solver *s, struct clopt_result *res, struct run *run, int status)
{
    if (status < 0) {
        clopt_sync_lanes(s, 1); /* no read may still target ring memory after we return */
        /* The checkpoint thread must not outlive the run either; the first error is the one
         * reported. */
        clopt_abandon_checkpoint(s);
    }
    res->final_lr = clopt_schedule_lr(&s->schedule, s->hyper.lr, s->step);
    /* After a replay from the generator, theta is generated again only if no step stuck. */
    s->theta_generated = run->origin_generated && !run->stepped;
    for (size_t i = 0; i < run->ring.pending; ++i) {
        struct pending_loss *p = &run->ring.slot[(run->ring.head + i) % RING_SIZE];
        if (p->done)
            clReleaseEvent(p->done);
    }
    for (size_t i = 0; i < THROTTLE_SLOTS; ++i)
        if (run->throttle[i])
            clReleaseEvent(run->throttle[i]);
    clopt_snapshot_free(run->origin);
}

static int run_first_order(struct clopt_solver *s, struct clopt_result *res)
{
    struct run run;
    begin_run(s, res, &run);
    int status = CLOPT_OK;
    /* theta (and state) from the caller or an earlier run are kept, in case the run
     * diverges and must be replayed. */
    if (!run.origin_generated)
        status = clopt_snapshot(s, &run.origin);
    run.rs.start = clopt_now_seconds();
    clopt_ranks_clock(s, 1);
    while (status == CLOPT_OK && run.t < s->opts.max_iters) {
        int stop;
        status = before_iteration(s, &run, &stop);
        if (status != CLOPT_OK || stop)
            break;
        status = queue_iteration(s, &run);
    }
    if (status == CLOPT_OK)
        status = end_loop(s, res, &run);
    if (status == CLOPT_OK && run.rs.diverged)
        status = keep_last_good(s, res, &run);
    else if (status == CLOPT_OK)
        status = clopt_finish_checkpoint(s);
    if (status == CLOPT_OK)
        status = run.rs.reason;
    end_run(s, res, &run, status);
    return status;
}

int clopt_solver_run(struct clopt_solver *s, struct clopt_result *res)
{
    s->rank_failed = 0;
    s->rank_comm_seconds = 0;
    const int status = s->optimizer->qn ? clopt_qn_run(s, res) : run_first_order(s, res);
    clopt_ranks_clock(s, 0);
    /* Several ranks end a run together, whatever failed where (ranks.c). */
    return clopt_ranks_settle(s, status);
}
