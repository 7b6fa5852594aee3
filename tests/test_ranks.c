/* Several ranks through struct clopt_ranks, without MPI: each rank is a thread with its own
 * context, and the callbacks meet at a barrier. Runs in every build, so the library's rank
 * path (tile split, gathered partials, halos, collective reads) is tested where MPI is not
 * installed; tests/mpi_ranks.sh does the same through mpirun. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANKS 3
#define DIM 5000 /* 10 tiles of 512: 5+5 on 2 ranks, 3+3+4 on 3 */

/* The fold of the loss partials: one chain (the CPU default), or two stages whose groups the
 * ranks own. Small tiles and a partial per tile make several groups of a small theta: 79
 * tiles of 64 (the last one short) in groups of 16 partials (reduce_group 2 x 8 pairs per
 * item): 16+16+16+16+15, owned 2+3 groups by 2 ranks, 1+2+2 by 3. */
struct fold {
    size_t work_group, elems_per_item, group_partials, reduce_group;
    size_t groups; /* of the first stage with reduce_group > 1 */
};
static const struct fold chain_fold = {64, 8, 0, 0, 0};
static const struct fold group_fold = {16, 4, 2, 2, 5};

struct meeting {
    pthread_barrier_t barrier;
    size_t size;
    const void *send[MAX_RANKS];
    const void *to_prev[MAX_RANKS], *to_next[MAX_RANKS];
    int flag[MAX_RANKS];
};

struct rank {
    struct meeting *m;
    size_t rank;
    const char *objective;
    const char *optimizer;
    double lr;
    const struct fold *fold;
    size_t run_gather_max; /* the largest gather during the run, in bytes */
    int in_run;
    struct clopt_context *ctx; /* made before the threads start: the OpenCL loader's
                                  first platform query is not safe from two threads */
    int status;
    int code;        /* the first failing call's own status (status is -1 for any failed run) */
    int save_status; /* clopt_solver_save_theta's, with job.save */
    double loss, grad_norm; /* the run's final ones: folded from every rank's partials */
    char err[512];
    double theta[DIM];
};

static int gather(void *user, const void *send, void *recv, const size_t *bytes)
{
    struct rank *r = user;
    r->m->send[r->rank] = send;
    pthread_barrier_wait(&r->m->barrier);
    size_t at = 0;
    for (size_t k = 0; k < r->m->size; ++k) {
        memcpy((char *)recv + at, r->m->send[k], bytes[k]);
        at += bytes[k];
    }
    if (r->in_run && at > r->run_gather_max)
        r->run_gather_max = at;
    pthread_barrier_wait(&r->m->barrier);
    return 0;
}

static int neighbours(void *user, const void *to_prev, void *from_prev, const void *to_next,
                      void *from_next, size_t bytes)
{
    struct rank *r = user;
    r->m->to_prev[r->rank] = to_prev;
    r->m->to_next[r->rank] = to_next;
    pthread_barrier_wait(&r->m->barrier);
    if (r->rank > 0)
        memcpy(from_prev, r->m->to_next[r->rank - 1], bytes);
    if (r->rank + 1 < r->m->size)
        memcpy(from_next, r->m->to_prev[r->rank + 1], bytes);
    pthread_barrier_wait(&r->m->barrier);
    return 0;
}

static int any(void *user, int flag, int *result)
{
    struct rank *r = user;
    r->m->flag[r->rank] = flag;
    pthread_barrier_wait(&r->m->barrier);
    *result = 0;
    for (size_t k = 0; k < r->m->size; ++k)
        *result |= r->m->flag[k];
    pthread_barrier_wait(&r->m->barrier);
    return 0;
}

/* Checkpoints of the next start_ranks (none when NULL), its iteration limit (0: 25), its
 * dimension (0: DIM; only the first DIM elements are read back) and checkpoint interval (0:
 * 5). */
static struct {
    const char *checkpoint, *resume;
    const char *save; /* after the run, clopt_solver_save_theta there */
    uint64_t iters;
    size_t dim;
    uint64_t every;
} job;

static struct clopt_options options(const struct rank *r)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = job.dim ? job.dim : DIM;
    o.max_iters = job.iters ? job.iters : 25;
    o.checkpoint = job.checkpoint;
    o.checkpoint_every = job.checkpoint ? job.every ? job.every : 5 : 0;
    o.objective = r->objective;
    o.optimizer = r->optimizer;
    o.lr = r->lr;
    o.seed = 3;
    o.knobs.work_group = r->fold->work_group;
    o.knobs.elems_per_item = r->fold->elems_per_item;
    o.knobs.group_partials = r->fold->group_partials;
    o.knobs.reduce_group = r->fold->reduce_group;
    return o;
}

/* One rank's whole life; size 1 is a single process. */
static void *run_rank(void *arg)
{
    struct rank *r = arg;
    struct clopt_context *ctx = r->ctx;
    struct clopt_solver *s = NULL;
    r->status = CLOPT_OK;
    if (r->m->size > 1) {
        const struct clopt_ranks ranks = {.rank = r->rank,
                                          .size = r->m->size,
                                          .user = r,
                                          .allgatherv = gather,
                                          .neighbours = neighbours,
                                          .any = any};
        r->status = clopt_context_set_ranks(ctx, &ranks);
    }
    const struct clopt_options o = options(r);
    if (r->status == CLOPT_OK)
        r->status = clopt_solver_create(&s, ctx, &o);
    if (r->status == CLOPT_OK && job.resume)
        r->status = clopt_solver_resume(s, job.resume);
    struct clopt_result res = {0};
    r->in_run = 1;
    r->code = r->status;
    if (r->status == CLOPT_OK) {
        const int ran = clopt_solver_run(s, &res);
        r->code = ran < 0 ? ran : CLOPT_OK;
        r->status = ran < 0 ? -1 : CLOPT_OK;
    }
    r->in_run = 0;
    r->loss = res.loss;
    r->grad_norm = res.grad_norm;
    if (r->status == CLOPT_OK)
        r->status = r->code = clopt_solver_read_theta(s, r->theta, CLOPT_DOUBLE, 0, DIM);
    if (r->status == CLOPT_OK && job.save)
        r->save_status = clopt_solver_save_theta(s, job.save, CLOPT_DOUBLE);
    if (r->status != CLOPT_OK && ctx)
        snprintf(r->err, sizeof r->err, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    return NULL;
}

/* Runs `size` ranks to their end; each rank's status and theta are in ranks[]. */
static void start_ranks(size_t size, struct rank *ranks, const char *objective,
                        const char *optimizer, double lr, const struct fold *fold)
{
    static struct meeting m;
    memset(&m, 0, sizeof m);
    m.size = size;
    pthread_barrier_init(&m.barrier, NULL, (unsigned)size);
    pthread_t threads[MAX_RANKS];
    for (size_t k = 0; k < size; ++k) {
        memset(&ranks[k], 0, sizeof ranks[k]);
        ranks[k].m = &m;
        ranks[k].rank = k;
        ranks[k].objective = objective;
        ranks[k].optimizer = optimizer;
        ranks[k].lr = lr;
        ranks[k].fold = fold;
        cr_assert_eq(clopt_context_create(&ranks[k].ctx, NULL), CLOPT_OK);
    }
    for (size_t k = 0; k < size; ++k)
        cr_assert_eq(pthread_create(&threads[k], NULL, run_rank, &ranks[k]), 0);
    for (size_t k = 0; k < size; ++k) {
        pthread_join(threads[k], NULL);
        clopt_context_destroy(ranks[k].ctx);
    }
    pthread_barrier_destroy(&m.barrier);
}

/* theta after `size` ranks, each rank's copy (all must agree). */
static void run_ranks(size_t size, struct rank *ranks, const char *objective, const char *optimizer,
                      double lr, const struct fold *fold)
{
    start_ranks(size, ranks, objective, optimizer, lr, fold);
    for (size_t k = 0; k < size; ++k)
        cr_assert_eq(ranks[k].status, CLOPT_OK, "rank %zu of %zu: %s", k, size, ranks[k].err);
}

static void same_as_one_with(const char *objective, const char *optimizer, double lr,
                             const struct fold *fold)
{
    static struct rank one[1], many[MAX_RANKS];
    run_ranks(1, one, objective, optimizer, lr, fold);
    for (size_t size = 2; size <= MAX_RANKS; ++size) {
        run_ranks(size, many, objective, optimizer, lr, fold);
        /* A two-stage fold gathers the first stage's pairs only, never the partials (lbfgs
         * and cg gather their per-tile dot-product partials as well). */
        const size_t pair = 2 * sizeof(double);
        const int first_order = strcmp(optimizer, "lbfgs") != 0 && strcmp(optimizer, "cg") != 0;
        for (size_t k = 0; k < size && fold->groups && first_order; ++k)
            cr_assert(many[k].run_gather_max <= fold->groups * pair,
                      "%s/%s: rank %zu of %zu gathered %zu bytes in one go, more than the %zu "
                      "groups' pairs (%zu bytes)",
                      objective, optimizer, k, size, many[k].run_gather_max, fold->groups,
                      fold->groups * pair);
        for (size_t k = 0; k < size; ++k)
            cr_assert(!memcmp(one[0].theta, many[k].theta, sizeof one[0].theta),
                      "%s/%s: rank %zu of %zu has another theta than one process", objective,
                      optimizer, k, size);
        for (size_t k = 0; k < size; ++k)
            cr_assert(!memcmp(&one[0].loss, &many[k].loss, sizeof(double)) &&
                          !memcmp(&one[0].grad_norm, &many[k].grad_norm, sizeof(double)),
                      "%s/%s: rank %zu of %zu: loss %.17g, |g| %.17g; one process %.17g, %.17g",
                      objective, optimizer, k, size, many[k].loss, many[k].grad_norm, one[0].loss,
                      one[0].grad_norm);
    }
}

static void same_as_one(const char *objective, const char *optimizer, double lr)
{
    same_as_one_with(objective, optimizer, lr, &chain_fold);
}

Test(ranks, adam_on_2_and_3_ranks_is_one_process_bit_for_bit)
{
    same_as_one("sphere", "adam", 1e-2);
}

Test(ranks, a_stencil_on_2_and_3_ranks_is_one_process_bit_for_bit)
{
    same_as_one("laplacian", "gd", 0.1);
}

/* lbfgs/cg: every rank folds every rank's dot-product partials, so all take the same
 * line-search steps as one process. */
Test(ranks, lbfgs_on_2_and_3_ranks_is_one_process_bit_for_bit)
{
    same_as_one("ellipsoid", "lbfgs", 1);
}

Test(ranks, cg_on_a_stencil_on_2_and_3_ranks_is_one_process_bit_for_bit)
{
    same_as_one("laplacian", "cg", 1);
}

/* Ranks folding their own groups of a two-stage fold (uneven groups, 2+3 and 1+2+2 groups
 * per rank) give one process's loss bits; folding in any other order would change them. */
Test(ranks, a_two_stage_fold_by_groups_on_2_and_3_ranks_is_one_process_bit_for_bit)
{
    same_as_one_with("ellipsoid", "adam", 1e-2, &group_fold);
}

Test(ranks, a_stencil_with_a_two_stage_fold_by_groups_is_one_process_bit_for_bit)
{
    same_as_one_with("rosenbrock", "gd", 1e-4, &group_fold);
}

/* lbfgs/cg reduce their loss with the same two-stage fold: by groups under ranks as well. */
Test(ranks, lbfgs_with_a_two_stage_fold_by_groups_is_one_process_bit_for_bit)
{
    same_as_one_with("ellipsoid", "lbfgs", 1, &group_fold);
}

/* lbfgs checkpoints hold x, g, d and the history pairs: 2 ranks gather them in rank order
 * and write the one process's bytes, and 3 ranks or one process resume them to the bits of
 * a run left alone. */
Test(ranks, an_lbfgs_checkpoint_of_2_ranks_is_one_processs_and_resumes_on_1_and_3)
{
    static struct rank full[1], one[1], many[MAX_RANKS];
    char *dir = temp_dir();
    char *ck1 = path_in(dir, "ck1"), *ck2 = path_in(dir, "ck2");
    memset(&job, 0, sizeof job);
    run_ranks(1, full, "laplacian", "lbfgs", 1, &chain_fold);
    job.iters = 12;
    job.checkpoint = ck1;
    run_ranks(1, one, "laplacian", "lbfgs", 1, &chain_fold);
    job.checkpoint = ck2;
    run_ranks(2, many, "laplacian", "lbfgs", 1, &chain_fold);
    size_t s1, s2;
    unsigned char *b1 = read_binary(ck1, &s1), *b2 = read_binary(ck2, &s2);
    cr_expect(s1 == s2 && !memcmp(b1, b2, s1), "the checkpoint of 2 ranks is not one process's");
    free(b1), free(b2);
    job.iters = 0;
    job.checkpoint = NULL;
    job.resume = ck2;
    for (size_t size = 1; size <= MAX_RANKS; size += 2) {
        struct rank *ranks = size == 1 ? one : many;
        run_ranks(size, ranks, "laplacian", "lbfgs", 1, &chain_fold);
        for (size_t k = 0; k < size; ++k)
            cr_expect(!memcmp(full[0].theta, ranks[k].theta, sizeof full[0].theta),
                      "resumed on %zu ranks: rank %zu's theta is not the run left alone's", size,
                      k);
    }
    memset(&job, 0, sizeof job);
    remove_tree(dir);
    free(ck1), free(ck2), free(dir);
}

/* Saving theta under ranks: rank 0 alone opens the file, every rank takes part in the reads.
 * When rank 0 could not open it, it returned at once and the others waited in the first
 * collective read for ever (here: the test's timeout); now every rank returns the error. */
Test(ranks, a_file_rank_0_cannot_write_fails_the_save_on_every_rank, .timeout = 120)
{
    static struct rank ranks[MAX_RANKS];
    memset(&job, 0, sizeof job);
    job.iters = 3;
    job.save = "/nonexistent-clopt-dir/theta.npy";
    start_ranks(3, ranks, "laplacian", "adam", 0.01, &chain_fold);
    for (size_t k = 0; k < 3; ++k) {
        cr_expect_eq(ranks[k].status, CLOPT_OK, "rank %zu: %s", k, ranks[k].err);
        cr_expect_neq(ranks[k].save_status, CLOPT_OK, "rank %zu saved theta", k);
    }
    memset(&job, 0, sizeof job);
}

#ifdef CLOPT_TEST_FAULTS
/* A failure on one rank right before a collective (a named fault point of the
 * fault-injection build: the `at`-th time any rank passes it) ends every rank with the same
 * error; the others' message names the failing rank and repeats its cause. Before the
 * agreement ahead of each collective, the failing rank returned alone and the others waited
 * in the collective for ever (here: the test's timeout). */
static void one_rank_fails_at(const char *point, const char *at, const char *objective,
                              const char *optimizer, double lr, const struct fold *fold)
{
    static struct rank ranks[MAX_RANKS];
    cr_assert_eq(setenv("CLOPT_FAULT_POINT", point, 1), 0);
    cr_assert_eq(setenv("CLOPT_FAULT_POINT_AT", at, 1), 0);
    start_ranks(MAX_RANKS, ranks, objective, optimizer, lr, fold);
    unsetenv("CLOPT_FAULT_POINT");
    size_t failed_alone = 0;
    for (size_t k = 0; k < MAX_RANKS; ++k) {
        cr_assert(ranks[k].code < 0, "%s: rank %zu of %d did not fail (status %d)", point, k,
                  MAX_RANKS, ranks[k].code);
        cr_assert_eq(ranks[k].code, ranks[0].code, "%s: rank %zu returned %d, rank 0 %d", point, k,
                     ranks[k].code, ranks[0].code);
        if (strstr(ranks[k].err, "injected at") && !strstr(ranks[k].err, "failed"))
            ++failed_alone;
        else
            cr_assert(strstr(ranks[k].err, "rank ") && strstr(ranks[k].err, "injected at"),
                      "%s: rank %zu's message does not name the failing rank and its cause: %s",
                      point, k, ranks[k].err);
    }
    cr_assert_eq(failed_alone, 1, "%s: %zu ranks failed on their own, not 1", point, failed_alone);
}

Test(ranks_faults, a_rank_failing_before_the_loss_partials_gather_stops_every_rank, .timeout = 300)
{
    one_rank_fails_at("ranks partials", "4", "sphere", "adam", 1e-2, &chain_fold);
}

Test(ranks_faults, a_rank_failing_before_the_fold_groups_gather_stops_every_rank, .timeout = 300)
{
    one_rank_fails_at("ranks groups", "5", "ellipsoid", "adam", 1e-2, &group_fold);
}

Test(ranks_faults, a_rank_failing_before_the_halo_exchange_stops_every_rank, .timeout = 300)
{
    one_rank_fails_at("ranks halo", "7", "laplacian", "gd", 0.1, &chain_fold);
}

Test(ranks_faults, a_rank_failing_before_the_lbfgs_dot_gather_stops_every_rank, .timeout = 300)
{
    one_rank_fails_at("ranks dots", "8", "ellipsoid", "lbfgs", 1, &chain_fold);
}

Test(ranks_faults, a_rank_failing_before_a_checkpoint_gather_stops_every_rank, .timeout = 300)
{
    char *dir = temp_dir();
    char *ck = path_in(dir, "ck");
    memset(&job, 0, sizeof job);
    job.checkpoint = ck;
    one_rank_fails_at("ranks checkpoint", "2", "sphere", "adam", 1e-2, &chain_fold);
    one_rank_fails_at("ranks checkpoint", "3", "laplacian", "lbfgs", 1, &chain_fold);
    memset(&job, 0, sizeof job);
    remove_tree(dir);
    free(ck), free(dir);
}

Test(ranks_faults, a_rank_failing_before_a_collective_read_stops_every_rank, .timeout = 300)
{
    one_rank_fails_at("ranks read", "1", "sphere", "gd", 0.1, &chain_fold);
}

/* Host memory under ranks: with every single host allocation of the library capped far
 * below the run's image (theta and the state: 4.8 MB for adam, 37 MB for lbfgs's vectors),
 * 3 ranks still write the checkpoint one process writes, byte for byte: rank 0 writes each
 * chunk as it is gathered and no rank holds the image. Before, rank 0 (first-order) or
 * every rank (lbfgs/cg) allocated the whole image and the checkpoint failed. */
#define CAP "1310720"
static void bounded_checkpoint(const char *optimizer, double lr)
{
    /* A partial per tile (782 tiles: 13 KB gathered per loss) rather than per work-item,
     * whose gather alone would pass the cap. */
    static const struct fold tile_partials = {64, 8, 2, 0, 0};
    static struct rank one[1], many[MAX_RANKS];
    char *dir = temp_dir();
    char *ck1 = path_in(dir, "ck1"), *ck3 = path_in(dir, "ck3");
    memset(&job, 0, sizeof job);
    job.dim = 400000;
    job.iters = 4;
    job.every = 2;
    job.checkpoint = ck1;
    run_ranks(1, one, "ellipsoid", optimizer, lr, &tile_partials);
    job.checkpoint = ck3;
    /* A file chunk (1 MiB) fits; the image does not, nor theta alone (1.6 MB). */
    cr_assert_eq(setenv("CLOPT_FAULT_MAX_ALLOC", CAP, 1), 0);
    run_ranks(MAX_RANKS, many, "ellipsoid", optimizer, lr, &tile_partials);
    unsetenv("CLOPT_FAULT_MAX_ALLOC");
    size_t s1 = 0, s3 = 0;
    unsigned char *b1 = read_binary(ck1, &s1), *b3 = read_binary(ck3, &s3);
    cr_assert(b1 && b3, "%s: a checkpoint is missing", optimizer);
    cr_expect(s1 > strtoull(CAP, NULL, 10) && s1 == s3 && !memcmp(b1, b3, s1),
              "%s: the checkpoint of 3 capped ranks is not one process's (%zu and %zu bytes)",
              optimizer, s1, s3);
    free(b1), free(b3);
    memset(&job, 0, sizeof job);
    remove_tree(dir);
    free(ck1), free(ck3), free(dir);
}

Test(ranks_faults, ranks_stream_a_first_order_checkpoint_in_bounded_host_memory, .timeout = 600)
{
    bounded_checkpoint("adam", 1e-2);
}

Test(ranks_faults, ranks_stream_an_lbfgs_checkpoint_in_bounded_host_memory, .timeout = 600)
{
    bounded_checkpoint("lbfgs", 1);
}

/* Resuming under the same cap: 3 ranks read a checkpoint of one process (37 MB of lbfgs
 * vectors, 4.8 MB of adam's theta and state) and go on to the bits of a run left alone
 * (theta's first DIM elements, and the final loss and gradient norm, which every element
 * enters). Each rank streams the file a file chunk (1 MiB) at a time and keeps its own
 * range. Before, every rank read lbfgs's theta and vectors whole into host memory, and
 * first-order runs streamed chunks of 2^20 elements (4 MiB of floats): both resumes failed. */
static void bounded_resume(const char *optimizer, double lr)
{
    static const struct fold tile_partials = {64, 8, 2, 0, 0};
    static struct rank full[1], one[1], many[MAX_RANKS];
    char *dir = temp_dir();
    char *ck = path_in(dir, "ck");
    memset(&job, 0, sizeof job);
    job.dim = 400000;
    job.iters = 6;
    run_ranks(1, full, "ellipsoid", optimizer, lr, &tile_partials);
    job.iters = 3;
    job.every = 3;
    job.checkpoint = ck;
    run_ranks(1, one, "ellipsoid", optimizer, lr, &tile_partials);
    job.iters = 6;
    job.checkpoint = NULL;
    job.resume = ck;
    cr_assert_eq(setenv("CLOPT_FAULT_MAX_ALLOC", CAP, 1), 0);
    start_ranks(MAX_RANKS, many, "ellipsoid", optimizer, lr, &tile_partials);
    unsetenv("CLOPT_FAULT_MAX_ALLOC");
    for (size_t k = 0; k < MAX_RANKS; ++k) {
        cr_expect_eq(many[k].status, CLOPT_OK, "%s: rank %zu of %d: %s", optimizer, k, MAX_RANKS,
                     many[k].err);
        cr_expect(!memcmp(full[0].theta, many[k].theta, sizeof full[0].theta) &&
                      !memcmp(&full[0].loss, &many[k].loss, sizeof(double)) &&
                      !memcmp(&full[0].grad_norm, &many[k].grad_norm, sizeof(double)),
                  "%s: rank %zu of %d resumed under the cap is not the run left alone: loss "
                  "%.17g, |g| %.17g; left alone %.17g, %.17g",
                  optimizer, k, MAX_RANKS, many[k].loss, many[k].grad_norm, full[0].loss,
                  full[0].grad_norm);
    }
    memset(&job, 0, sizeof job);
    remove_tree(dir);
    free(ck), free(dir);
}

Test(ranks_faults, ranks_resume_an_lbfgs_checkpoint_in_bounded_host_memory, .timeout = 600)
{
    bounded_resume("lbfgs", 1);
}

Test(ranks_faults, ranks_resume_a_first_order_checkpoint_in_bounded_host_memory, .timeout = 600)
{
    bounded_resume("adam", 1e-2);
}
#endif
