/* A program that embeds clopt the way a user's would: through the installed header and
 * library only. It also uses M_PI (gnu11 has it unless a flag leaked from clopt hides it) and
 * an OpenCL 3.0 type, which clopt.h must not hide by fixing an older target version. */
#define CL_TARGET_OPENCL_VERSION 300
#include <clopt.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    /* Both must come through clopt.h untouched by it. */
    const double half_turn = M_PI;
    const cl_mem_properties no_properties = 0;
    (void)no_properties;
    if (CLOPT_VERSION_MAJOR < 0 || strlen(clopt_version()) == 0) {
        fprintf(stderr, "consumer: no version\n");
        return 1;
    }
    struct clopt_context *ctx = NULL;
    int status = clopt_context_create(&ctx, NULL);
    if (status != CLOPT_OK) {
        fprintf(stderr, "consumer: %s\n", clopt_errmsg(ctx));
        clopt_context_destroy(ctx);
        return 1;
    }
    struct clopt_options opts;
    clopt_options_init(&opts);
    opts.dim = 1000;
    opts.max_iters = 50;
    opts.init = CLOPT_INIT_CONST;
    opts.init_value = half_turn;
    struct clopt_solver *solver = NULL;
    struct clopt_result result;
    status = clopt_solver_create(&solver, ctx, &opts);
    if (status == CLOPT_OK)
        status = clopt_solver_run(solver, &result);
    /* sphere from theta_i = pi with gd at lr 0.1: theta_i = pi 0.8^50 after 50 steps. */
    const double expected = 1000 * pow(M_PI * pow(0.8, 50), 2);
    const int ok = status == CLOPT_STOP_MAX_ITERS && result.iterations == 50 &&
                   fabs(result.loss - expected) <= 1e-4 * expected;
    printf("consumer: clopt %s, loss %.6g (expected %.6g): %s\n", clopt_version(), result.loss,
           expected, ok ? "ok" : "WRONG");
    if (status < 0)
        fprintf(stderr, "consumer: %s\n", clopt_errmsg(ctx));
    clopt_solver_destroy(solver);
    clopt_context_destroy(ctx);
    return ok ? 0 : 1;
}
