/* The help texts: clopt --help (the summary and the command list) and each command's own
 * (clopt COMMAND --help, clopt help COMMAND). The run options are shared by run, bench and
 * tune. */
#include "report.h"

#include <stdio.h>
#include <string.h>

static const char summary_text[] =
    "usage: clopt COMMAND [OPTIONS]\n"
    "\n"
    "Gradient-based minimisation on OpenCL devices (GPUs, or PoCL on the CPU).\n"
    "\n"
    "commands:\n"
    "  devices              list every OpenCL platform and device (--json FILE|-)\n"
    "  objectives           list the built-in objectives: formula, parameters, minimum,\n"
    "                       a learning rate that converges with gd\n"
    "  run [OPTIONS]        minimise an objective (default: sphere on the default device)\n"
    "  check [OPTIONS]      compare an objective's gradient with finite differences\n"
    "  tune [RUN OPTIONS]   try kernel knobs, check each against the defaults, time them,\n"
    "                       store the best in the tuning database (run and bench use it)\n"
    "  bench [RUN OPTIONS]  the device's STREAM-style bandwidth, then the step's, and the\n"
    "                       ratio\n"
    "  checkpoint info|export FILE   what a checkpoint holds; its theta and state as .npy\n"
    "  help [COMMAND]       this text, or a command's options (also clopt COMMAND --help);\n"
    "                       --version prints the version\n"
    "\n"
    "Common run options: --objective NAME|FILE.cl, --dim N, --optimizer NAME, --lr X,\n"
    "--iters N, --out FILE.npy, --trace FILE.csv|-, --json FILE|-, --device INDEX|NAME,\n"
    "--program-cache DIR|off (compiled kernels; also CLOPT_PROGRAM_CACHE), --tuning-db FILE\n"
    "(clopt help run lists them all).\n";

static const char run_head[] = "usage: clopt run [OPTIONS]\n"
                               "\n"
                               "Minimises an objective from an initial theta.\n";

static const char run_options_text[] =
    "\n"
    "run options:\n"
    "  --objective NAME|FILE.cl  sphere (default), another built-in (clopt objectives) or\n"
    "                            an objective file (see README)\n"
    "  --param KEY=VALUE         objective parameter, repeatable (ellipsoid: cond=1e6,\n"
    "                            shifted_sphere: target=FILE.npy, poisson:\n"
    "                            source=FILE.npy, tv_denoise: image=FILE.npy)\n"
    "  --dim N                   number of parameters (1000000, 1e6, 2^20); default 1e6,\n"
    "                            or the length of an --init or --param FILE.npy\n"
    "  --shape S0,S1[,S2]        theta as a grid, C order (last axis fastest): n is the\n"
    "                            product; grid objectives (poisson, tv_denoise) use it,\n"
    "                            .npy inputs have it (or are flat), --out writes it\n"
    "  --init SPEC               random (= normal), normal[:SIGMA], uniform[:A] (U[-A,A)),\n"
    "                            zeros, const:V, or FILE.npy (float32/float64, any C-order\n"
    "                            shape; --out keeps that shape)\n"
    "  --seed S                  seed of the random initialisation (default 0)\n"
    "  --optimizer NAME          gd (default), momentum, nesterov, adam, adamw, rmsprop,\n"
    "                            adagrad (the torch.optim definitions), lbfgs, cg\n"
    "  --lr X                    learning rate (default 0.1; adam/adamw 1e-3;\n"
    "                            rmsprop/adagrad 1e-2)\n"
    "  --momentum X              momentum/nesterov (default 0.9), rmsprop (default 0), [0,1)\n"
    "  --dampening X             momentum dampening, [0,1] (default 0)\n"
    "  --beta1 X  --beta2 X      adam/adamw moment decay rates, [0,1) (0.9, 0.999)\n"
    "  --eps X                   adam/adamw/rmsprop/adagrad denominator term, > 0\n"
    "                            (default 1e-8; adagrad 1e-10)\n"
    "  --weight-decay X          L2 added to g (adamw: decoupled), >= 0 (default 0;\n"
    "                            adamw 1e-2)\n"
    "  --alpha X                 rmsprop smoothing, [0,1) (default 0.99)\n"
    "  --amsgrad                 adam/adamw: use the maximum second moment\n"
    "  --history M               lbfgs: correction pairs kept, 1..64 (default 10)\n"
    "  --line-search armijo|wolfe  lbfgs/cg line search (default wolfe), with\n"
    "  --c1 X  --c2 X            sufficient decrease and curvature constants (1e-4;\n"
    "                            0.9 lbfgs, 0.1 cg) and --max-ls N trials each (20)\n"
    "  --cg-beta fr|pr|hs        cg: Fletcher-Reeves, Polak-Ribiere+ (default) or\n"
    "                            Hestenes-Stiefel+\n"
    "  --max-evals N             lbfgs/cg: evaluation limit (default 0: none)\n"
    "  --step fixed|bb1|bb2      gd: the fixed step lr (default) or Barzilai-Borwein\n"
    "                            steps s.s/s.y (bb1) or s.y/y.y (bb2), first step lr,\n"
    "                            clamped to [lr 1e-6, lr 1e6]; one host wait per\n"
    "                            iteration\n"
    "  --maximize                ascend the objective instead\n"
    "  --schedule SPEC           constant, step:EVERY:GAMMA, exp:GAMMA,\n"
    "                            cosine:T_MAX[:ETA_MIN], warmup:STEPS[+OTHER]\n"
    "  --clip-value X            clamp each gradient element to [-X, X] (fused)\n"
    "  --clip-norm X             scale g so that ||g|| <= X (torch clip_grad_norm_); adds\n"
    "                            a norm pass: one more read of theta per iteration\n"
    "  --iters N                 iteration limit (default 1000)\n"
    "  --gtol X                  stop when ||g|| <= X\n"
    "  --ftol X                  stop when the relative loss change between two loss\n"
    "                            evaluations is <= X\n"
    "  --target X                stop when the loss is <= X\n"
    "  --loss-every K            evaluate loss and ||g|| every K iterations (default 1)\n"
    "  --precision float|double  arithmetic precision (default float)\n"
    "  --out FILE.npy            write the final theta\n"
    "  --trace FILE.csv|-        write iteration,loss,grad_norm,lr,seconds per evaluation\n"
    "                            ('-': stdout; the summary then goes to stderr)\n"
    "  --json FILE|-             write a machine-readable summary ('-': stdout; not with\n"
    "                            --trace -)\n"
    "  --device INDEX|NAME       device index or name substring (also CLOPT_DEVICE)\n"
    "  --devices LIST|all        several devices of one model at once, e.g. 0,1 (indexes from\n"
    "                            'clopt devices'); theta's tiles are split evenly between them\n"
    "                            and results are bit-identical to one of them\n"
    "  --tune KEY=VAL,...        kernel knobs: wg (work-group size), epw (elements per\n"
    "                            work-item), vw (lanes), fblock (loss terms per lane\n"
    "                            summed before widening), layout=contig|strided,\n"
    "                            partials=item|group, rwg (reduction group size),\n"
    "                            acc=double|kahan (loss accumulators), gpcu (0: a group\n"
    "                            per tile; G: G groups per compute unit loop over the\n"
    "                            tiles), fuse (1..32 iterations per launch; separable\n"
    "                            objectives; stopping tests act every fuse iterations),\n"
    "                            pf=off|N (software prefetch N elements ahead; CPUs),\n"
    "                            simd=256|512 (512-bit registers on AVX-512 CPUs)\n"
    "  --tuning-db FILE          the tuning database to read (also CLOPT_TUNING_DB)\n"
    "  --max-shard-bytes B       cap each buffer of theta at B bytes (default or 0: the\n"
    "                            device's largest allocation)\n"
    "  --kernel-dir DIR          load kernels from DIR (also CLOPT_KERNEL_DIR)\n"
    "  --program-cache DIR|off   keep compiled kernels in DIR, so that later runs skip the\n"
    "                            build (also CLOPT_PROGRAM_CACHE; default\n"
    "                            $XDG_CACHE_HOME/clopt/programs or ~/.cache/clopt/programs;\n"
    "                            off: no cache)\n"
    "  --checkpoint FILE         save theta, optimizer state and position to FILE (atomic;\n"
    "                            the previous one is kept as FILE.prev) at the end of the\n"
    "                            run, on SIGINT/SIGTERM, and every --checkpoint-every N\n"
    "  --checkpoint-every N      iterations between checkpoints\n"
    "  --resume FILE             continue the run saved in FILE, with its options: those given\n"
    "                            again must agree, except --lr, --schedule, --iters (counted\n"
    "                            from the original start), --gtol/--ftol/--target, --tune,\n"
    "                            --device and the outputs; a --trace file is continued\n"
    "  --quiet                   print no progress and no summary (progress: a line on\n"
    "                            stderr every 2 s, or every CLOPT_PROGRESS_SECONDS)\n"
    "  -h, --help                show this text\n";

static const char tune_head[] =
    "usage: clopt tune [--space SPACE] [--budget S] [RUN OPTIONS]\n"
    "\n"
    "Tries kernel knobs on the problem of the run options, checks each candidate against\n"
    "the defaults, times them and stores the best in the tuning database, which run and\n"
    "bench use unless --tune is given. The choice is stored before anything is printed.\n"
    "\n"
    "tune options:\n"
    "  --space KNOB=V/V/...,...  the candidates: any knob of --tune, each with a list of\n"
    "                            values separated by '/' (no shell quoting needed; '|'\n"
    "                            works too, quoted), e.g. --space wg=64/128,epw=1/4\n"
    "  --budget S                stop trying candidates after S seconds (default: all)\n"
    "  --reps R                  timed repetitions per candidate (default 3)\n"
    "  --iters N                 iterations per repetition (default 20)\n"
    "  --tuning-db FILE          the database to store in (also CLOPT_TUNING_DB; default\n"
    "                            $XDG_CACHE_HOME/clopt/tuning.json)\n"
    "  --json FILE|-             write the choice as JSON\n"
    "(--out, --trace, --init FILE, --resume, --checkpoint, --tune and --csv do not apply)\n";

static const char bench_head[] =
    "usage: clopt bench [--reps R] [--csv FILE|-] [--json FILE|-] [RUN OPTIONS]\n"
    "\n"
    "Measures the device's STREAM-style bandwidth (copy, in-place scale), then the fused\n"
    "step of the problem of the run options, and the ratio of the two. When the working set\n"
    "fits in the last-level cache the ratio is marked as not a memory-bandwidth figure.\n"
    "\n"
    "bench options:\n"
    "  --reps R                  repetitions, the median is reported (default 5)\n"
    "  --iters N                 iterations per repetition (default 20)\n"
    "  --csv FILE|-              write the result as CSV ('-': stdout)\n"
    "  --json FILE|-             write the result as JSON ('-': stdout)\n"
    "(--out, --trace, --init FILE, --resume and --checkpoint do not apply)\n";

static const char check_text[] =
    "usage: clopt check [OPTIONS]\n"
    "\n"
    "Compares an objective's gradient with central finite differences of its loss.\n"
    "\n"
    "check options:\n"
    "  --objective NAME|FILE.cl  the objective (default sphere)\n"
    "  --param KEY=VALUE         objective parameter, repeatable\n"
    "  --dim N                   n (default 1000)\n"
    "  --samples M               elements checked, both ends included (default 1000)\n"
    "  --shape S0,S1[,S2]        a grid objective's grid (n = the product); the samples\n"
    "                            include its corners, edges and faces\n"
    "  --init normal[:S]|uniform[:A]|const:V   the random point (default normal:1)\n"
    "  --seed S                  seed of the point\n"
    "  --tol X                   largest relative error that passes (default 1e-6 in double,\n"
    "                            1e-2 on devices without fp64)\n"
    "  --json FILE|-             write the result as JSON\n"
    "  --device INDEX|NAME       device index or name substring (also CLOPT_DEVICE)\n"
    "  --kernel-dir DIR          load kernels from DIR (also CLOPT_KERNEL_DIR)\n"
    "  --program-cache DIR|off   the compiled-kernel cache (see clopt help run)\n"
    "  -h, --help                show this text\n";

static const char devices_text[] =
    "usage: clopt devices [--json FILE|-]\n"
    "\n"
    "Lists every OpenCL platform and device: index, type, name, platform, memory, largest\n"
    "allocation, fp64. The index (or a name substring) is what --device takes.\n"
    "\n"
    "devices options:\n"
    "  --json [FILE|-]           write the list as a JSON array instead (no FILE or '-':\n"
    "                            stdout): index, platform, name, driver_version, kind,\n"
    "                            global_mem_bytes, max_alloc_bytes, compute_units, has_fp64\n"
    "  -h, --help                show this text\n";

static const char objectives_text[] =
    "usage: clopt objectives\n"
    "\n"
    "Lists the built-in objectives: formula, minimum, parameters, and a learning rate\n"
    "with which gd converges at the default --init (gd lr: X).\n"
    "\n"
    "  -h, --help                show this text\n";

static const char checkpoint_text[] =
    "usage: clopt checkpoint info FILE [--json FILE|-]\n"
    "       clopt checkpoint export FILE --out THETA.npy [--state PREFIX]\n"
    "\n"
    "Reads a checkpoint written by clopt run --checkpoint, without a device.\n"
    "\n"
    "  info                      the run it holds: objective, optimizer, n, precision,\n"
    "                            iteration, steps, configuration and state vectors\n"
    "  export                    writes theta to --out, and with --state PREFIX each\n"
    "                            optimizer state vector to PREFIX0.npy, PREFIX1.npy, ...\n"
    "  --json FILE|-             info: the same as JSON\n"
    "  -h, --help                show this text\n";

static const char exit_text[] =
    "\n"
    "exit status: 0 converged or iteration limit (check: passed), 2 bad usage or input,\n"
    "3 diverged (theta is the last finite iterate), 4 gradient check failed, 130/143\n"
    "stopped by SIGINT/SIGTERM (after a checkpoint, if one is set), 1 any other failure.\n";

void print_usage(FILE *f)
{
    fputs(summary_text, f);
    fputs(exit_text, f);
}

/* The help of each command: its own part, whether the run options follow. */
static const struct {
    const char *command, *text;
    int run_options;
} command_help[] = {
    {"run", run_head, 1},
    {"tune", tune_head, 1},
    {"bench", bench_head, 1},
    {"check", check_text, 0},
    {"devices", devices_text, 0},
    {"objectives", objectives_text, 0},
    {"checkpoint", checkpoint_text, 0},
};

int print_command_usage(FILE *f, const char *command)
{
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; ++i) {
        if (strcmp(command, command_help[i].command) != 0)
            continue;
        fputs(command_help[i].text, f);
        if (command_help[i].run_options)
            fputs(run_options_text, f);
        fputs(exit_text, f);
        return 0;
    }
    return -1;
}
