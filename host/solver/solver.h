/* The solver's private room: the handle, the state of a run, and the functions the files of
 * host/solver/ share. Nothing here is installed. */
#ifndef CLOPT_SOLVER_H
#define CLOPT_SOLVER_H

#include "internal.h"
#include "schedule.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_STATE 3
/* Loss read-backs are looked at a fixed number of iterations after they were queued, so
 * the device always has queued work and the stopping decision (hence theta) does not
 * depend on timing. Small problems get a longer lag because launches dominate there. */
#define LAG_MIN 2
#define LAG_MAX 64
#define LAG_ELEMS ((size_t)1 << 24)
/* The most iterations one launch may fuse. */
#define FUSE_MAX 32
/* The kernel's loss mask is a 32-bit uint, one bit per fused iteration. */
_Static_assert(FUSE_MAX <= 32, "loss masks are 32 bits wide");
/* The most work-items one launch may have: AMD refuses global sizes past 2^32 and NVIDIA's
 * drivers have been reported to wrap ids at 2^31, so every launch whose size grows with n is
 * cut into chunks of at most this many (a multiple of any work-group size up to 2^20). The
 * environment variable CLOPT_MAX_LAUNCH_ITEMS lowers it, as a test hook: results must not
 * change with it. */
#define LAUNCH_ITEMS_MAX ((size_t)1 << 30)
/* The reduction's first stage: each item of a group sums about REDUCE_PAIRS_PER_ITEM pairs,
 * in at most REDUCE_GROUPS_MAX groups (so the second stage, one group, folds at most that
 * many pairs). Fixed numbers, not device figures: the grouping decides the bits. */
#define REDUCE_PAIRS_PER_ITEM 8
#define REDUCE_GROUPS_MAX 1024
/* Private memory a fused work-item may hold (see knobs.c). */
#define FUSE_PRIVATE_BYTES (64 * 1024)
/* The same on GPUs and other devices, whose private memory is registers (NVIDIA: at most
 * 255 of 4 bytes per work-item) and then scratch memory: 2 KiB lets a fused kernel hold a
 * small block and its sums (fuse 8, vw 4: 576 bytes for Adam) and refuses what could only
 * run from scratch memory. */
#define FUSE_PRIVATE_BYTES_GPU (2 * 1024)
/* Losses queued but not looked at: up to a lag's worth, plus one fused block. */
#define RING_SIZE (LAG_MAX + FUSE_MAX + 2)
/* At most THROTTLE_EVERY * THROTTLE_SLOTS iterations are in flight, which bounds the
 * queue's memory when loss read-backs are rare. */
#define THROTTLE_EVERY 32
#define THROTTLE_SLOTS 8
#define CONVERT_CHUNK ((size_t)1 << 20)
/* clopt_transfer()'s `which` for the objective's data vector (0 is theta, 1.. the state). */
#define WHICH_DATA (MAX_STATE + 1)

/* The "loop" section of a checkpoint: where the run is, little-endian.
 *   u64 t, u64 step, u64 n, u32 elem_size, u32 n_state, u32 fresh_state, u32 have_good,
 *   u32 decided, i32 reason, u64 last_good, f64 prev_loss, u64 n_pending,
 *   [format 2 on:] f64 decided_loss, f64 decided_grad_norm, f64 decided_prev_loss (what the
 *   stopping test that decided saw, so that a resumed run decides again under its own
 *   limits),
 *   then per pending loss: u64 iteration, u32 reported, u32 0, f64 loss sum, f64 squared
 *   gradient norm. */
#define LOOP_HEAD_V1 72
#define LOOP_HEAD 96
#define LOOP_ENTRY 32

/* Tiles, ranks and devices (DESIGN.md 4b "Scale"). A tile is knobs.work_group x
 * knobs.elems_per_item elements: tile k holds elements [k tile, (k + 1) tile) and owns the
 * loss partial slots [k slots_per_tile, (k + 1) slots_per_tile), whoever computes it, so the
 * loss and ||g||^2 are folded in tile order however the tiles are spread. Where a tile lives
 * is two separate questions:
 *   1. which tiles this process holds: struct tile_range `local` of the solver, all of them
 *      in one process (an MPI rank would set its own contiguous range there);
 *   2. which device holds which of those: lane d (one per device of the context, in the
 *      order context_options.devices lists them) holds the contiguous range lanes[d].tiles,
 *      the local range cut evenly, lane 0 first.
 * Shards never straddle two lanes: each lane's range is cut into shards of at most the
 * allocation cap, and shards are numbered in tile order across lanes. With one device there
 * is one lane holding everything, and the launches are exactly those of a one-device run. */
struct tile_range {
    size_t first, end; /* tiles [first, end) */
};

/* The solver's `partials` holds the slots of the local tiles, numbered from local.first's, so
 * that a rank can keep only its own; combining the ranks' partials in tile order is the MPI
 * layer's part. (Today local is every tile, and n_partials counts them all.) */

/* One device's part of a run. Lane 0 writes its loss partials straight into the solver's
 * `partials` (which the reduction reads) and uses the solver's `fused_hyper` and `result`;
 * every other lane has its own small buffers, so that no buffer is used by two devices at
 * once, and its partials are copied into place before each reduction (launch.c). */
struct lane {
    cl_command_queue queue;
    struct tile_range tiles;
    size_t first_shard, end_shard; /* its shards, [first, end) */
    size_t first_slot, n_slots;    /* its loss partial slots, numbered from local.first's */
    cl_mem partials;               /* lanes > 0: n_slots pairs per fused iteration */
    cl_mem fused_hyper;            /* lanes > 0, knobs.fuse > 1: its copy of the fused hyper */
    cl_mem result;                 /* lanes > 0: what the step reads as ||g||^2 (unused) */
    /* Events its next launch must wait for: the copy of its partials to lane 0 (which reads
     * what the next launch overwrites) and a halo copy another lane's queue made into its
     * theta. NULL when none. */
    cl_event after_gather, after_halo;
};

/* Stencil objectives keep element 0 of each shard's theta at a buffer position that is a
 * multiple of this many elements (64 bytes in float, the widest vector store; 16 is the largest
 * vector width), so that an aligned vector store of lanes j..j+vw-1 (j a multiple of vw) never
 * faults: kernels/step.cl's CLOPT_LEAD, which must agree. The left halo lies just before it. */
#define CLOPT_LEAD_ALIGN 16

struct shard {
    /* Stencil objectives: theta and theta_next hold halo elements on both sides (element 0 at
     * s->lead, the left halo just before it) and trade places after every update (ping-pong);
     * separable ones update theta in place. */
    cl_mem theta, theta_next;
    cl_mem data; /* the objective's data vector (shifted_sphere's target), or NULL */
    cl_mem state[MAX_STATE];
    size_t offset; /* global index of the first element */
    size_t count;
    size_t global_size;  /* work-items launched */
    size_t partial_base; /* first partial slot */
    size_t lane;         /* the device that holds it */
};

struct pending_loss {
    uint64_t iteration;
    cl_event done;  /* NULL once the values are on the host */
    double host[2]; /* large enough for two acc_t of either width */
    int reported;   /* the progress callback has seen it (in a run that checkpointed it) */
};

/* Losses queued but not yet looked at, oldest first from head. */
struct loss_ring {
    struct pending_loss slot[RING_SIZE];
    size_t head, pending;
};

/* Where a run stopped, as a checkpoint records it: the next run continues from here. */
struct resume_point {
    uint64_t t; /* the iteration to queue next */
    int have_good, decided, reason;
    uint64_t last_good;
    double prev_loss;
    int decision_known; /* the decided_ values were recorded (format 2 on) */
    double decided_loss, decided_grad_norm, decided_prev_loss;
    size_t n_pending; /* losses queued but not yet looked at */
    struct pending_loss pending[RING_SIZE];
};

/* State of one run of the loop, kept together so results can be looked at in order. */
struct run_state {
    int decided; /* a stop reason is known; no more iterations are queued */
    int reason;  /* the stop reason once decided */
    int diverged;
    uint64_t diverged_at;
    int have_good;      /* some loss was seen finite */
    uint64_t last_good; /* its iteration */
    double prev_loss;
    /* What the stopping test that decided saw: the loss, ||g|| and the loss before. */
    double decided_loss, decided_grad_norm, decided_prev_loss;
    double start;
    uint64_t start_step; /* the solver's step count when the run began */
    int start_fresh;     /* and whether its state was fresh */
    uint64_t first_t;    /* the iteration it began at (not 0 when resumed) */
    int cancel_wanted;   /* several ranks: the progress callback asked to stop; the ranks
                            agree on it before the next iteration (ranks.c) */
};

/* A checkpoint being written by a background thread from host copies. */
struct checkpoint_job {
    char *path;
    char *image; /* theta and the state vectors, one after the other */
    unsigned char *loop;
    struct clopt_ckpt_section sections[3 + MAX_STATE]; /* config, loop, theta, the state */
    size_t n_sections;
    size_t n_values; /* theta's values at the start of image, checked finite before writing */
    int is_double;
    uint64_t t;  /* the iteration it records */
    int final;   /* the run's closing checkpoint */
    int written; /* the file was written (not skipped for a non-finite theta) */
    int status;
    char err[512];
    atomic_int done; /* the writer thread has finished */
};

struct clopt_solver {
    struct clopt_context *ctx;
    const struct clopt_objective_type *objective; /* NULL for a user file */
    const struct clopt_optimizer_type *optimizer;
    struct clopt_options opts; /* pointer fields are not kept */
    size_t n;
    size_t elem_size; /* sizeof(real) */
    size_t acc_size;  /* sizeof(acc_t) */
    struct clopt_knobs knobs;
    size_t lag;
    size_t n_shards;
    struct shard *shards;
    struct tile_range local; /* the tiles this process holds (see struct tile_range) */
    size_t n_lanes;          /* devices: 1, or the context's devices */
    struct lane *lanes;
    size_t n_partials;
    cl_mem partials;
    cl_mem result;
    cl_mem reduce_stage; /* the first reduction stage's pairs (knobs.reduce_group > 1) */
    cl_program program;
    cl_kernel k_step, k_step_loss, k_eval, k_reduce, k_init;
    cl_kernel k_zero, k_put_hyper; /* buffer set-up (init.cl) */
    cl_kernel k_fused;             /* knobs.fuse > 1 only */
    cl_mem fused_hyper;            /* the fused launch's per-iteration hyper-parameters */
    int theta_generated;           /* theta holds exactly what the init kernel produced */
    size_t n_state;                /* optimizer state vectors */
    size_t halo;                   /* stencil radius: neighbours kept on each side of a shard */
    size_t lead;                   /* buffer position of a shard's element 0 in theta and
                                      theta_next: 0 without a halo, else the halo rounded up to
                                      CLOPT_LEAD_ALIGN elements (clopt_theta_at) */
    int nt_store;                  /* non-temporal stores of theta in the ping-pong sweeps
                                      (kernels/step.cl's CLOPT_NT_STORE; build.c) */
    size_t grid_radius;            /* grid objectives: R (halo = R planes) */
    size_t launch_items;           /* work-items per launch at most (LAUNCH_ITEMS_MAX) */
    char knob_warning[512];        /* clopt_solver_knob_warning(), "" when none */
    char *data_path;               /* file of the objective's data vector, or NULL */
    struct clopt_hyper_in hyper;   /* resolved hyper-parameters; lr is the base rate */
    struct clopt_schedule schedule;
    uint64_t step;   /* steps applied over all runs */
    int fresh_state; /* optimizer state is all zero, never stepped nor written */
    char *config;    /* the settings a checkpoint must match, "key=value" lines */
    char *config_v1; /* the same as checkpoint format 1 wrote it (inputs as given) */
    char *checkpoint_path;
    struct resume_point *resume; /* from clopt_solver_resume, for the next run */
    struct checkpoint_job *job;  /* the checkpoint being written, if any */
    pthread_t writer;
    struct clopt_checkpoint_report ck_report; /* of the current or last run */
    struct clopt_qn *qn;                      /* lbfgs/cg: their vectors and kernels (host/qn/) */
    /* External gradients (external.c): the caller's callback writes g into shards[0].data. */
    int external;                      /* made by clopt_solver_create_external */
    struct clopt_external_options ext; /* the caller's buffers (not owned) and callback */
    cl_mem ext_loss;                   /* the one-element loss the callback writes */
    cl_kernel k_ext_loss;              /* copies it into the result's loss slot */
    /* This rank's part of theta, [lo, hi), whole tiles (all of it in a single process), and
     * its loss partial slots [slot_lo, slot_hi) of one iteration (host/solver/ranks.c). */
    size_t lo, hi, slot_lo, slot_hi;
    /* Ranks owning whole groups of the fold's first stage (ranks.c): the group count and
     * tiles per group; 0 when the tiles are split evenly (and the partials gathered). */
    size_t rank_blocks, rank_block_tiles;
    /* Host memory for what crosses ranks, kept between iterations (ranks.c): a fresh
     * allocation per loss evaluation would map and fault in the whole partials array. */
    char *rank_scratch;
    size_t rank_scratch_bytes;
    /* The agreement before each collective (ranks.c): a size_t and an int per rank, made
     * once so that a rank out of host memory can still take part; and whether a failure
     * was agreed (the ranks stopped together: no agreement is owed at the end of a run). */
    size_t *rank_meet;
    int rank_failed;
    /* Seconds in the per-iteration collectives of the last run, and whether the clock runs
     * (clopt_ranks_clock). */
    double rank_comm_seconds;
    int rank_clock;
};

/* Byte offsets in a shard's theta (and theta_next) buffer: of its element j, and of the
 * first element of its left halo (element -halo). */
static inline size_t clopt_theta_at(const struct clopt_solver *s, size_t j)
{
    return (s->lead + j) * s->elem_size;
}
static inline size_t clopt_left_halo_at(const struct clopt_solver *s)
{
    return (s->lead - s->halo) * s->elem_size;
}

/* A real-typed kernel argument holds either a float or a double. */
union real_arg {
    float f;
    double d;
};

/* options.c */
int clopt_is_objective_file(const char *name);
int clopt_validate_options(struct clopt_context *ctx, const struct clopt_options *o);
int clopt_resolve_hyper(struct clopt_solver *s);
/* The kernel's hyper-parameters for global step `step` (0-based). */
void clopt_hyper_for_step(const struct clopt_solver *s, uint64_t step, int fresh_state,
                          double h[CLOPT_HYPER_SLOTS]);

/* knobs.c: fills knob defaults for the device type and checks the caller's choices. */
int clopt_resolve_knobs(struct clopt_solver *s, size_t max_group);

/* shards.c */
int clopt_plan_shards(struct clopt_solver *s);
int clopt_allocate(struct clopt_solver *s);
/* Copies between host memory of one precision and a vector, shard by shard. Which vector:
 * 0 is theta, k + 1 is optimizer state k, WHICH_DATA the objective's data. */
int clopt_transfer(struct clopt_solver *s, size_t which, void *host, enum clopt_precision host_prec,
                   size_t offset, size_t count, int to_device);
/* The same within this rank's range [s->lo, s->hi) only, no communication (ranks.c). */
int clopt_transfer_local(struct clopt_solver *s, size_t which, void *host,
                         enum clopt_precision host_prec, size_t offset, size_t count,
                         int to_device);
int clopt_load_data(struct clopt_solver *s);

/* lanes.c: the devices of a run (see struct lane). */
/* Splits s->local over the lanes and cuts each lane's range into shards of at most
 * tiles_per_shard tiles: fills s->lanes, s->shards (offset, count, lane) and s->n_shards. */
int clopt_plan_lanes(struct clopt_solver *s, size_t tile, size_t tiles_per_shard);
/* The buffers of lanes > 0 (after s->partials and s->fused_hyper exist). */
int clopt_allocate_lanes(struct clopt_solver *s);
void clopt_release_lanes(struct clopt_solver *s);
/* Flushes (finish = 0) or finishes every lane's queue. */
int clopt_sync_lanes(struct clopt_solver *s, int finish);
/* A marker on lane 0's queue that completes when every lane's work queued so far has. */
int clopt_lanes_marker(struct clopt_solver *s, cl_event *out);
/* Copies `bytes` of lane d's src (from src_at) into dst at dst_at on lane 0's queue once
 * lane d's work queued so far is done; lane d's next launch waits for the copy (after_gather).
 * The caller flushes lane 0's queue. */
int clopt_lane_copy_home(struct clopt_solver *s, size_t d, cl_mem src, size_t src_at, cl_mem dst,
                         size_t dst_at, size_t bytes);
/* Copies iteration `slot`'s partials of lanes > 0 into s->partials, on lane 0's queue. */
int clopt_gather_partials(struct clopt_solver *s, size_t slot);
/* Copies the reduced loss and ||g||^2 from lane 0 to the other lanes (clip_norm's update
 * reads the norm on each device). */
int clopt_spread_result(struct clopt_solver *s);
/* Exchanges the halos across the boundary between shards i and i + 1 when they lie on
 * different lanes. */
int clopt_exchange_cross_halo(struct clopt_solver *s, size_t i);
/* The events lane's next launch must wait for, moved into wait (at most 2); *n their count. */
void clopt_lane_take_waits(struct lane *lane, cl_event wait[2], cl_uint *n);

/* build.c */
int clopt_resolve_objective(struct clopt_solver *s);
int clopt_build_kernels(struct clopt_solver *s);

/* launch.c */
union real_arg clopt_real_value(const struct clopt_solver *s, double x);
int clopt_set_arg(struct clopt_context *ctx, cl_kernel kernel, cl_uint index, size_t size,
                  const void *value);
/* Queues the zeroing of the first `bytes` (a multiple of 4) of buffer; `what` names it in
 * messages. */
int clopt_enqueue_zero(struct clopt_solver *s, cl_mem buffer, size_t bytes, const char *what);
/* The work-group of a set-up kernel (init.cl): 256 where the kernel allows it, else 1. */
int clopt_set_up_group(struct clopt_solver *s, cl_kernel kernel, size_t *local);
/* The most work-items of one launch in groups of `group`: see LAUNCH_ITEMS_MAX. */
size_t clopt_launch_chunk(const struct clopt_solver *s, size_t group);
/* The most private memory a fused work-item may use on this device (bytes). */
size_t clopt_fused_private_cap(const struct clopt_solver *s);
/* Groups of the reduction's first stage for n_partials pairs; 1: a single stage. */
size_t clopt_reduce_groups(size_t n_partials, size_t reduce_group);
/* Queues clopt_reduce's groups group0 .. group0 + groups - 1 of a fold of `count` pairs from
 * pair `first` of `in` in runs of `span` pairs, into pairs group0 .. of `out`. */
int clopt_reduce_launch(struct clopt_solver *s, cl_mem in, cl_ulong count, cl_mem out,
                        cl_ulong first, cl_ulong span, size_t group0, size_t groups);
int clopt_enqueue_step(struct clopt_solver *s, int with_loss, cl_event *last);
/* f and g at theta, g kept in state 0 (lbfgs/cg's step kernel), with loss partials. */
int clopt_enqueue_eval_store(struct clopt_solver *s);
int clopt_enqueue_fused(struct clopt_solver *s, uint64_t loss_mask, cl_event *last);
int clopt_enqueue_reduce(struct clopt_solver *s, size_t iteration_slot, void *host, cl_event *done);
int clopt_enqueue_read_result(struct clopt_solver *s, void *host, cl_event *done);
void clopt_read_pair(const struct clopt_solver *s, const void *host, double *loss,
                     double *grad_norm);
int clopt_warm_up(struct clopt_solver *s);

/* create.c */
int clopt_init_theta(struct clopt_solver *s);

/* run.c */
double clopt_now_seconds(void);
int clopt_wait_event(struct clopt_context *ctx, cl_event *event);

/* replay.c */
/* A run's start point on the host (replay.c): this process's range of theta and each state
 * vector, one block each. */
struct snapshot {
    char *vec[MAX_STATE + 1];
};
void clopt_snapshot_free(struct snapshot *snap);
int clopt_snapshot(struct clopt_solver *s, struct snapshot **out);
int clopt_replay(struct clopt_solver *s, const struct snapshot *origin, uint64_t start_step,
                 int start_fresh, uint64_t first_t, uint64_t iterations);

/* checkpoint_write.c */
int clopt_write_checkpoint(struct clopt_solver *s, const struct run_state *rs,
                           struct loss_ring *ring, size_t pending, uint64_t t, int final);
int clopt_finish_checkpoint(struct clopt_solver *s);
/* Waits for a checkpoint being written without reporting its failure (the run failed first). */
void clopt_abandon_checkpoint(struct clopt_solver *s);
void clopt_pending_values(const struct clopt_solver *s, const struct pending_loss *p, double *f,
                          double *g2);

/* create.c: clopt_solver_create and clopt_solver_create_external in one; ext may be NULL. */
int clopt_solver_create_with(struct clopt_solver **out, struct clopt_context *ctx,
                             const struct clopt_options *opts,
                             const struct clopt_external_options *ext);

/* external.c */
extern const struct clopt_objective_type clopt_external_objective;
/* The caller's buffers checked against the plan (one shard; size and context). */
int clopt_external_check(struct clopt_solver *s);
/* The external gradient buffer of the single shard, theta's and the state's when the caller
 * gave them (a reference each), else new buffers; and the loss buffer. */
int clopt_external_allocate(struct clopt_solver *s, struct shard *sh);
/* Queues the caller's gradient of the current theta (before a step or an evaluation). */
int clopt_external_gradient(struct clopt_solver *s, int want_loss);
/* After a reduction: the caller's loss into the result's loss slot. */
int clopt_external_fold_loss(struct clopt_solver *s);
/* ranks.c: several processes, each owning a contiguous tile range (ctx->ranks). */
int clopt_ranks_active(const struct clopt_solver *s);
/* Rank r's elements [*lo, *hi) (all of theta in a single process). */
void clopt_ranks_range(const struct clopt_solver *s, size_t r, size_t *lo, size_t *hi);
/* Splits the tiles over the ranks into [s->lo, s->hi); a single process owns all. */
int clopt_ranks_split(struct clopt_solver *s, size_t tile, size_t slots_per_tile);
/* Elements per gather of a collective read (clopt_ranks_read): bounded host memory and
 * message sizes. A read of [0, n) is the reads of its chunks of this size, one by one. */
#define CLOPT_RANK_READ_CHUNK ((size_t)1 << 20)
/* Reads [offset, offset + count) of a vector into host on every rank (each rank reads its
 * part, then all parts are gathered in rank order). */
int clopt_ranks_read(struct clopt_solver *s, size_t which, void *host,
                     enum clopt_precision host_prec, size_t offset, size_t count);
/* Every rank's partials of iteration slot `slot` into every rank's partial buffer. */
int clopt_ranks_gather_partials(struct clopt_solver *s, size_t slot);
/* Under ranks that own whole fold groups (s->rank_blocks): this rank's groups of the fold's
 * first stage over the partials from pair `first`, then every rank's group pairs into every
 * rank's s->reduce_stage, for the second stage. */
int clopt_ranks_fold_groups(struct clopt_solver *s, size_t first);
/* Every rank's records of buf (unit bytes per tile of `tile` elements, tile-major from byte 0)
 * into every rank's buf, in tile order; `tile` divides the step tile (lbfgs/cg's dots). */
int clopt_ranks_gather_tiles(struct clopt_solver *s, cl_mem buf, size_t tile, size_t unit);
/* The halos at the ends of this rank's range from the neighbouring ranks. */
int clopt_ranks_halos(struct clopt_solver *s);
/* Whether flag is set on some rank (the flag itself in a single process). */
int clopt_ranks_any(struct clopt_solver *s, int flag, int *any);
int clopt_ranks_is_root(const struct clopt_solver *s);
/* Before a collective of the caller's own (several ranks): whether every rank got ready for
 * it. `status` is this rank's; all ranks return the first failing rank's status (the others
 * with its message, naming `what`, e.g. "before gathering the lbfgs/cg vectors"). Returns
 * status itself in a single process. */
int clopt_ranks_agree(struct clopt_solver *s, int status, const char *what);
/* At the end of a run, on every rank: a rank that failed on its own meets the others at
 * their next collective's agreement (or this one), and all return the same error. */
int clopt_ranks_settle(struct clopt_solver *s, int status);
/* Untimed clopt_ranks_any, for checkpoints (not the loop's communication). */
int clopt_ranks_flag(struct clopt_solver *s, int flag, int *any);
/* A named fault point of the fault-injection build (host/fault.h), so that tests make one
 * rank fail right before a given collective: a status with a message; CLOPT_OK in other
 * builds. */
#ifdef CLOPT_FAULT_H
#define CLOPT_INJECTED(s, name)                                                                    \
    (clopt_fault_point(name) ? clopt_fail((s)->ctx, CLOPT_ERR_OUT_OF_MEMORY,                       \
                                          "out of host memory (injected at %s)", name)             \
                             : CLOPT_OK)
#else
#define CLOPT_INJECTED(s, name) ((void)(name), CLOPT_OK)
#endif
/* ranks_ckpt.c. The caller's read of this rank's elements [at, at + count) of vector
 * `vector` (all within [s->lo, s->hi)) into dst: no communication. */
typedef int (*clopt_rank_part)(struct clopt_solver *s, void *user, size_t vector, size_t at,
                               size_t count, void *dst);
/* Several ranks, on every rank: writes the checkpoint of `sections` (rank 0 only writes).
 * The sections with data NULL are whole vectors of n elements, section i starting at
 * vector vec_of[i]; they are gathered to every rank a file chunk (CLOPT_CKPT_CHUNK bytes)
 * at a time, and rank 0 writes each chunk as it arrives: no rank holds more than a few
 * chunks. check (a section index, or SIZE_MAX) must be finite, else no file is written.
 * *written (the same on every rank): the file was written; a file rank 0 could not write
 * is no failure (its cause in err on rank 0; err is left empty where the checked section
 * was not finite). Fails, on every rank, where a rank failed. */
int clopt_ranks_write_checkpoint(struct clopt_solver *s, const char *path,
                                 const struct clopt_ckpt_section *sections, size_t n_sections,
                                 const size_t *vec_of, size_t check, clopt_rank_part part,
                                 void *user, int *written, char *err, size_t errlen);
/* Starts (on 1: from zero) or stops the clock of the per-iteration communication. */
void clopt_ranks_clock(struct clopt_solver *s, int on);

/* resume.c */
int clopt_build_config(struct clopt_solver *s, const struct clopt_options *in);

#endif /* CLOPT_SOLVER_H */
