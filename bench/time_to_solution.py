#!/usr/bin/python3
"""Time to solution: clopt's lbfgs, cg and best first-order method against scipy's L-BFGS-B and
torch.optim.LBFGS, each from the same start to the same target, with a wall limit per run.

    /usr/bin/python3 bench/time_to_solution.py [--clopt build/test/clopt] [--sizes 1e4,1e5,1e6]
        [--problems rosenbrock,laplacian,ellipsoid,poisson] [--limit 60,120,240]
        [--precision auto|float|double] [--markdown FILE.md] [--png FILE.png] [--quick]

Rosenbrock (chained, from zeros) and laplacian need evaluations in proportion to n, so at 1e5
and 1e6 no method reaches the issue's targets within any sitting. Every run therefore has a
wall limit (--limit: one value, or one per size). scipy runs first: when it does not reach
the issue's target within its limit, the row's target becomes the loss scipy reached by then
("scipy's loss at T s"), and every other method is timed to that same loss from the same start.
The ratio scipy seconds / fastest clopt seconds is then still a time to one target; it carries
"≥" because scipy was stopped by its limit (its time to the issue's target is longer).

Counting is the same for all: a run stops at the first evaluation whose loss is at or below the
target, and that evaluation is the last one counted. clopt's seconds are the solver's own (its
JSON; no process start or kernel build, and the limit starts when the solver does); scipy and
torch get float64 and the same numpy objective. clopt runs in float where float reaches the
target, otherwise in double (--precision auto: double is tried when float stopped short of the
target for any reason but the limit). The first-order column is the better of at most two
runs per problem (FIRST_ORDER below).

--quick is a smoke test: n = 1e3, laplacian, 3 s per run (half a minute once the kernels are
in the program cache). --methods picks the columns (python/tests/test_time_to_solution.py runs
--quick --methods scipy,lbfgs).
Needs numpy; scipy, torch and matplotlib are optional (Debian: python3-scipy python3-torch
python3-matplotlib): a missing one drops its column or the PNG, with a line saying so.
"""
import argparse
import collections
import csv
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# clopt's iteration cap: large enough that only the target or the wall limit stops a run.
ITERATION_CAP = 10**9
# The seconds a clopt process may take to start (context, kernel build) before its limit starts.
START_LIMIT = 600
# The seconds a clopt process may take to write its outputs after SIGTERM.
STOP_GRACE = 60


class Reached(Exception):
    """Raised inside an objective at the first evaluation at or below the target."""


class OutOfTime(Exception):
    """Raised inside an objective once the run's wall limit has passed."""


# The objectives, exactly as kernels/obj_*.cl define them, in float64.
def rosenbrock(x):
    valley = x[1:] - x[:-1] ** 2
    off = 1 - x[:-1]
    f = np.sum(100 * valley * valley + off * off)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * valley - 2 * off
    g[1:] += 200 * valley
    return f, g


def laplacian(x, left=0.0, right=1.0):
    d = np.diff(np.concatenate(([left], x, [right])))
    return 0.5 * np.dot(d, d), d[:-1] - d[1:]


def ellipsoid_weights(n, cond=1e6):
    return cond ** (np.arange(n) / max(n - 1, 1))


def poisson_shape(n):
    """The square-ish 2-D grid with about n points (n = 1e5: 316 x 316)."""
    side = max(int(round(math.sqrt(n))), 1)
    return side, max(n // side, 1)


def poisson_apply(u):
    """A u for kernels/obj_poisson.cl's A: the 5-point Laplacian, zero outside the grid."""
    p = np.pad(u, 1)
    return 4 * u - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


def poisson_source(shape):
    """b = A u* for a smooth u* (a bump with a ripple), so the minimum -b.u*/2 is known
    without a solve."""
    y, x = np.meshgrid(np.linspace(0, 1, shape[0] + 2)[1:-1],
                       np.linspace(0, 1, shape[1] + 2)[1:-1], indexing="ij")
    u_star = 16 * x * (1 - x) * y * (1 - y) * (1 + 0.25 * np.sin(6 * np.pi * x * y))
    b = poisson_apply(u_star)
    return b, -0.5 * float(np.dot(b.ravel(), u_star.ravel()))


def poisson(x, shape, b):
    """kernels/obj_poisson.cl: 1/2 sum over grid edges (u_p - u_q)^2 - b.u, the edges of
    each point to its +1 neighbour on each axis and to the zero outside on both faces."""
    u = x.reshape(shape)
    f = -np.dot(b.ravel(), x)
    for axis in range(2):
        d = np.diff(np.pad(u, [(1, 1) if k == axis else (0, 0) for k in range(2)]), axis=axis)
        f += 0.5 * np.sum(d * d)
    return f, (poisson_apply(u) - b).ravel()


PROBLEMS = {
    # name: (start, the target from n, the minimum f* from n: the plot shows loss - f*)
    "rosenbrock": ("zeros", lambda n: 1e-6, lambda n: 0.0),
    "laplacian": ("zeros", lambda n: 1 / (2 * (n + 1)) * (1 + 1e-6), lambda n: 1 / (2 * (n + 1))),
    "ellipsoid": ("normal", lambda n: 1e-6, lambda n: 0.0),
    # 2-D poisson on poisson_shape(n) (n rounded to the grid), b = A u*: f* (negative) +
    # 1e-6 |f*|, the laplacian's relative gap.
    "poisson": ("zeros", lambda n: poisson_source(poisson_shape(n))[1] * (1 - 1e-6),
                lambda n: poisson_source(poisson_shape(n))[1]),
}

CLOPT_METHODS = {
    "clopt lbfgs": ["--optimizer", "lbfgs"],
    "clopt cg": ["--optimizer", "cg"],
}
# At most two first-order runs per problem; the table shows the one that reached the target
# first. The nesterov settings are hand-tuned (issue 15); gd with Barzilai-Borwein steps needs
# no tuning beyond its first step (lr), which is clamped to [lr 1e-6, lr 1e6].
FIRST_ORDER = {
    "rosenbrock": {"adam": ["--optimizer", "adam", "--lr", "0.03"],
                   "gd bb1": ["--optimizer", "gd", "--step", "bb1", "--lr", "1e-3"]},
    "laplacian": {"nesterov": ["--optimizer", "nesterov", "--lr", "0.25", "--momentum", "0.999"],
                  "gd bb1": ["--optimizer", "gd", "--step", "bb1", "--lr", "0.25"]},
    # lr just under 1/L, L = 2e6 the largest curvature.
    "ellipsoid": {"nesterov": ["--optimizer", "nesterov", "--lr", "4e-7", "--momentum", "0.999"],
                  "gd bb1": ["--optimizer", "gd", "--step", "bb1", "--lr", "1e-6"]},
    # lr 1/8: the largest eigenvalue of A is just under 8.
    "poisson": {"nesterov": ["--optimizer", "nesterov", "--lr", "0.125", "--momentum", "0.999"],
                "gd bb1": ["--optimizer", "gd", "--step", "bb1", "--lr", "0.125"]},
}


def start_point(kind, n, seed=0):
    if kind == "zeros":
        return np.zeros(n)
    return np.random.default_rng(seed).standard_normal(n)


def objective_of(problem, n):
    if problem == "ellipsoid":
        c = ellipsoid_weights(n)
        return lambda x: (np.dot(c * x, x), 2 * c * x)
    if problem == "poisson":
        shape = poisson_shape(n)
        b = poisson_source(shape)[0]
        return lambda x: poisson(x, shape, b)
    if problem == "laplacian":
        return laplacian
    return rosenbrock


class Counter:
    """Counts evaluations, keeps (seconds, loss, iterations so far) of each, stops at the
    target and after the limit. The clock starts at the first evaluation."""

    def __init__(self, fdf, target, limit):
        self.fdf, self.target, self.limit = fdf, target, limit
        self.curve = []
        self.iters = 0
        self.t0 = None

    def __call__(self, x):
        if self.t0 is None:
            self.t0 = time.perf_counter()
        elif time.perf_counter() - self.t0 > self.limit:
            raise OutOfTime()
        f, g = self.fdf(x)
        self.curve.append((time.perf_counter() - self.t0, float(f), self.iters))
        if f <= self.target:
            raise Reached()
        return f, g

    def result(self, reached, stop):
        last = self.curve[-1] if self.curve else (math.nan, math.nan, 0)
        return {"reached": reached, "stop": stop, "evals": len(self.curve), "iters": last[2],
                "seconds": last[0], "loss": last[1], "wall": None, "precision": "double",
                "curve": [(t, f) for t, f, _ in self.curve]}


def run_scipy(problem, n, x0, target, limit):
    try:
        from scipy.optimize import minimize
    except ImportError:
        return None
    count = Counter(objective_of(problem, n), target, limit)

    def callback(_xk):
        count.iters += 1

    try:
        res = minimize(count, x0.copy(), jac=True, method="L-BFGS-B", callback=callback,
                       options={"maxcor": 10, "maxiter": 10**9, "maxfun": 10**9, "ftol": 0,
                                "gtol": 0})
        stop = str(res.message)
        reached = False
    except Reached:
        stop, reached = "target", True
    except OutOfTime:
        stop, reached = "time limit", False
    return count.result(reached, stop)


def run_torch(problem, n, x0, target, limit):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    count = Counter(objective_of(problem, n), target, limit)
    x = torch.tensor(x0.copy(), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=10**9, max_eval=10**9, history_size=10,
                            tolerance_grad=0, tolerance_change=0,
                            line_search_fn="strong_wolfe")

    def closure():
        # The gradient comes from the same numpy code as scipy's, so both see the same
        # objective; torch's share is the L-BFGS algorithm and its line search.
        count.iters = opt.state[x].get("n_iter", 0)
        f, g = count(x.detach().numpy())
        x.grad = torch.from_numpy(np.asarray(g, dtype=np.float64))
        return torch.tensor(f, dtype=torch.float64)

    stop, reached = "stopped (no progress)", False
    try:
        opt.step(closure)
    except Reached:
        stop, reached = "target", True
    except OutOfTime:
        stop = "time limit"
    return count.result(reached, stop)


def scipy_target(ref):
    """When scipy did not reach the issue's target: its best loss (the loss at its limit), the
    time and evaluations it took to get there, as scipy's result to that new target."""
    curve = ref["curve"]
    best = min(range(len(curve)), key=lambda i: curve[i][1])
    out = dict(ref)
    out.update(reached=True, seconds=curve[best][0], loss=curve[best][1], evals=best + 1,
               curve=curve[:best + 1], at_limit=ref["stop"] == "time limit")
    return curve[best][1], out


def problem_options(problem, n, tmp):
    """clopt's options for the objective: the grid and its source for poisson."""
    if problem != "poisson":
        return ["--objective", problem, "--dim", str(n)]
    shape = poisson_shape(n)
    source = os.path.join(tmp, "source.npy")
    np.save(source, poisson_source(shape)[0])
    return ["--objective", "poisson", "--shape", f"{shape[0]},{shape[1]}", "--param",
            f"source={source}"]


def is_start_line(line):
    """The line clopt run prints (without --quiet) just before the solver's first iteration:
    'clopt: OBJECTIVE, OPTIMIZER, n = N on DEVICE'."""
    return line.startswith("clopt: ") and ", n = " in line and " on " in line


def run_clopt_once(clopt, problem_opts, init, target, options, precision, limit, tmp):
    json_path = os.path.join(tmp, "result.json")
    trace_path = os.path.join(tmp, "trace.csv")
    for path in (json_path, trace_path):
        if os.path.exists(path):
            os.remove(path)
    base = [clopt, "run"] + problem_opts + ["--init", init, "--precision", precision] + options
    # Warm-up, not timed: a few iterations fill the program cache, so that kernels a method
    # builds on its first iteration (lbfgs and cg build theirs lazily) are not in its seconds.
    subprocess.run(base + ["--iters", "3", "--quiet"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=START_LIMIT, check=False)
    cmd = base + ["--target", repr(target), "--iters", str(ITERATION_CAP), "--json", json_path,
                  "--trace", trace_path]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = threading.Event()
    tail = collections.deque(maxlen=4)

    def drain():
        # Read stderr to its end so progress lines never fill the pipe.
        for line in proc.stderr:
            if is_start_line(line):
                started.set()
            elif not line.startswith("clopt: iteration "):
                tail.append(line.rstrip())
        started.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    # The limit is the solver's: it starts once the context and the kernels are built.
    started.wait(timeout=START_LIMIT)
    timed_out = False
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        # SIGTERM: clopt stops between iterations and writes its JSON and trace.
        timed_out = True
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join()
    wall = time.perf_counter() - t0
    failed = {"reached": False, "stop": "failed", "evals": None, "iters": None,
              "seconds": math.nan, "loss": math.nan, "wall": wall, "precision": precision,
              "curve": []}
    if not os.path.exists(json_path):
        failed["error"] = tail[-1] if tail else f"exit status {proc.returncode}"
        return failed
    with open(json_path) as f:
        result = json.load(f)
    curve = []
    if os.path.exists(trace_path):
        with open(trace_path) as f:
            for row in csv.DictReader(f):
                curve.append((float(row["seconds"]), float(row["loss"])))
    stop = result["stop_reason"]
    if timed_out and stop == "cancelled":
        stop = "time limit"
    return {"reached": stop == "target", "stop": stop,
            "evals": result.get("evaluations", result["iterations"]),
            "iters": result["iterations"], "seconds": result["seconds"], "loss": result["loss"],
            "wall": wall, "precision": precision, "curve": curve,
            "device": result.get("device"), "platform": result.get("platform"),
            "driver": result.get("driver_version")}


def run_clopt(args, problem_opts, init, target, options, limit, tmp):
    """--precision auto: float, then double when float stopped short of the target for a
    reason other than the limit (a line search that could not go on, divergence)."""
    precisions = ["float", "double"] if args.precision == "auto" else [args.precision]
    tried = []
    for precision in precisions:
        result = run_clopt_once(args.clopt, problem_opts, init, target, options, precision,
                                limit, tmp)
        tried.append(f"{precision}: {result['stop']}")
        if result["reached"] or result["stop"] == "time limit":
            break
    result["tried"] = tried
    return result


def fmt(value, spec):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        format(value, spec)


def cell(r):
    """reached · seconds · evaluations, for the summary table."""
    if r is None:
        return "not installed"
    if r.get("error"):
        return "failed"
    head = "yes" if r["reached"] else f"no ({r['stop']})"
    return f"{head} · {fmt(r['seconds'], '.3g')} s · {fmt(r['evals'], ',d')}"


def ratio_cell(row):
    """scipy seconds over the fastest clopt method's, to the row's target."""
    ref = row["methods"].get("scipy L-BFGS-B")
    if ref is None:
        return "– (no scipy)"
    clopt = [(r["seconds"], r["name"].replace("clopt ", "")) for name, r in
             row["methods"].items() if name.startswith("clopt") and r and r["reached"]]
    if not clopt:
        if not ref.get("at_limit"):
            # No clopt method reached it within the limit: clopt took longer than the limit.
            return f"< {ref['seconds'] / row['limit']:.2g} (no clopt method reached it)"
        return "– (no clopt method reached it)"
    seconds, name = min(clopt)
    sign = "≥ " if ref.get("at_limit") else ""
    return f"{sign}{ref['seconds'] / seconds:.3g} ({name})"


# --methods key: the summary column.
METHODS = {"scipy": "scipy L-BFGS-B", "torch": "torch LBFGS", "lbfgs": "clopt lbfgs",
           "cg": "clopt cg", "first-order": "clopt first-order"}


def n_text(problem, n):
    """1e4 for the sizes as given; poisson's n, rounded to its grid, in full with the grid."""
    if problem == "poisson":
        shape = poisson_shape(n)
        return f"{n:,} ({shape[0]}×{shape[1]})"
    return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")


def summary_table(rows, methods):
    columns = [METHODS[m] for m in METHODS if m in methods]
    lines = ["| problem | n | target | " + " | ".join(columns) + " | scipy s / clopt best s |",
             "|---|---|---|" + "---|" * len(columns) + "---|"]
    for row in rows:
        cells = []
        for name in columns:
            r = row["methods"].get(name)
            text = cell(r)
            if name == "clopt first-order" and r is not None:
                text = f"{r['name']}: {text}"
            cells.append(text)
        lines.append(f"| {row['problem']} | {n_text(row['problem'], row['n'])} | "
                     f"{row['target']:.6g} "
                     f"({row['target_kind']}) | " + " | ".join(cells) +
                     f" | {ratio_cell(row)} |")
    return lines


def details_table(rows):
    lines = ["| problem | n | method | precision | stop | evaluations | iterations | seconds |"
             " wall s | loss |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in row["runs"]:
            stop = r["stop"] + (f": {r['error']}" if r.get("error") else "")
            if r.get("tried") and len(r["tried"]) > 1:
                stop += " (" + "; ".join(r["tried"]) + ")"
            lines.append(f"| {row['problem']} | {n_text(row['problem'], row['n'])} | {r['name']} | "
                         f"{r['precision']} | {stop} | {fmt(r['evals'], ',d')} | "
                         f"{fmt(r['iters'], ',d')} | {fmt(r['seconds'], '.3g')} | "
                         f"{fmt(r['wall'], '.3g')} | {fmt(r['loss'], '.6g')} |")
    return lines


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown CPU"


def pocl_version():
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pocl-opencl-icd"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no dpkg record of pocl-opencl-icd)"


def versions():
    out = [f"numpy {np.__version__}"]
    for module in ("scipy", "torch", "matplotlib"):
        try:
            out.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            out.append(f"{module} not installed")
    return ", ".join(out)


def clopt_revision():
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def parse_list(text, convert):
    return [convert(float(s)) for s in text.split(",") if s.strip()]


def limits_for(parser, sizes, limits):
    if not limits or not all(t > 0 for t in limits):
        parser.error("--limit: seconds > 0, one value or one per size")
    if len(limits) == 1:
        return {n: limits[0] for n in sizes}
    if len(limits) != len(sizes):
        parser.error(f"--limit has {len(limits)} values for {len(sizes)} sizes: give one, or "
                     "one per size")
    return dict(zip(sizes, limits))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clopt", default=os.path.join(ROOT, "build", "test", "clopt"),
                        help="the clopt CLI (default build/test/clopt)")
    parser.add_argument("--sizes", help="n per row (default 1e4,1e5,1e6)")
    parser.add_argument("--problems", help="default rosenbrock,laplacian,ellipsoid,poisson")
    parser.add_argument("--limit", help="wall seconds per run: one value, or one per size "
                        "(default 60,120,240)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"the columns (default {','.join(METHODS)})")
    parser.add_argument("--precision", choices=("auto", "float", "double"), default="auto",
                        help="clopt's precision (default auto: float, then double when float "
                        "stopped short of the target)")
    parser.add_argument("--markdown", help="write the tables (and the machine) to this file")
    parser.add_argument("--png", help="plot loss above the minimum against seconds")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: n = 1e3, laplacian, 3 s per run")
    args = parser.parse_args(argv)
    quick = {"sizes": "1e3", "problems": "laplacian", "limit": "3"}
    full = {"sizes": "1e4,1e5,1e6", "problems": "rosenbrock,laplacian,ellipsoid,poisson",
            "limit": "60,120,240"}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = [p for p in args.problems if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem {', '.join(unknown)}; choose from {', '.join(PROBLEMS)}")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    try:
        args.sizes = parse_list(args.sizes, int)
        limits = parse_list(args.limit, float)
    except ValueError as e:
        parser.error(f"--sizes/--limit: {e}")
    if not args.sizes or min(args.sizes) < 2:
        parser.error("--sizes: n >= 2 each")
    args.limits = limits_for(parser, args.sizes, limits)
    if not os.access(args.clopt, os.X_OK):
        parser.error(f"{args.clopt} is not an executable: build clopt "
                     "(cmake -S . -B build/test && cmake --build build/test) or give --clopt")
    return args


def estimate(args):
    """The longest the run can take: every run to its limit."""
    runs = 0
    for name in ("scipy", "torch"):
        try:
            if name in args.methods:
                __import__(name)
                runs += 1
        except ImportError:
            pass
    clopt_runs = {p: sum(m in args.methods for m in ("lbfgs", "cg")) +
                  (len(FIRST_ORDER[p]) if "first-order" in args.methods else 0)
                  for p in args.problems}
    per_problem = {p: runs + clopt_runs[p] * (2 if args.precision == "auto" else 1)
                   for p in args.problems}
    worst = sum(args.limits[n] * per_problem[p] for p in args.problems for n in args.sizes)
    # When scipy runs to its limit, torch usually does too; the clopt runs then stop at
    # scipy's loss, sooner if clopt is faster.
    likely = sum(args.limits[n] * runs for p in args.problems for n in args.sizes)
    return worst, likely


def run_row(args, problem, n, limit, tmp):
    kind = PROBLEMS[problem][0]
    target = PROBLEMS[problem][1](n)
    x0 = start_point(kind, n)
    init = "zeros"
    if kind != "zeros":
        init = os.path.join(tmp, "x0.npy")
        np.save(init, x0)
    row = {"problem": problem, "n": n, "limit": limit, "target_kind": "issue's",
           "methods": {}, "runs": []}

    def keep(name, result, summary_name=None):
        if result is None:
            print(f"# {problem} {n_text(problem, n)}: {name} skipped (not installed for "
                  f"{sys.executable})", flush=True)
            return
        result["name"] = name
        row["runs"].append(result)
        row["methods"][summary_name or name] = result
        print("# " + details_table([{"problem": problem, "n": n, "runs": [result]}])[-1],
              flush=True)

    ref = run_scipy(problem, n, x0, target, limit) if "scipy" in args.methods else None
    if ref is not None and not ref["reached"] and ref["curve"]:
        # The row's target becomes scipy's loss at its limit (or where it stopped).
        stopped = ref["stop"]
        target, ref = scipy_target(ref)
        row["target_kind"] = (f"scipy's loss at {limit:g} s" if stopped == "time limit"
                              else f"scipy's best: {stopped}")
    if "scipy" in args.methods:
        keep("scipy L-BFGS-B", ref)
    if "torch" in args.methods:
        keep("torch LBFGS", run_torch(problem, n, x0, target, limit))
    problem_opts = problem_options(problem, n, tmp)
    for name, options in CLOPT_METHODS.items():
        if name.replace("clopt ", "") in args.methods:
            keep(name, run_clopt(args, problem_opts, init, target, options, limit, tmp))
    row["target"] = target
    if "first-order" not in args.methods:
        return row
    first = []
    for name, options in FIRST_ORDER[problem].items():
        result = run_clopt(args, problem_opts, init, target, options, limit, tmp)
        keep(f"clopt {name}", result, summary_name=f"clopt {name}")
        first.append(result)
    # The better first-order run: the faster of those that reached the target, otherwise the
    # lower loss.
    best = min(first, key=lambda r: (not r["reached"],
                                     r["seconds"] if r["reached"] else r["loss"]))
    for r in first:
        row["methods"].pop(r["name"], None)
    row["methods"]["clopt first-order"] = dict(best, name=best["name"].replace("clopt ", ""))
    return row


def header_lines(args, load_before):
    return [f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs; PoCL {pocl_version()}",
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
            f"clopt {clopt_revision()}; {versions()}",
            f"- command: {' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}",
            "- limit per run (wall seconds): " +
            ", ".join(f"{args.limits[n]:g} at n = {n:.0e}" for n in args.sizes) +
            f"; clopt precision {args.precision}",
            f"- load average (1, 5, 15 min) before: {load_before}"]


NOTES = [
    "Each cell: reached the target? · seconds to it (or until the run stopped) · "
    "function+gradient evaluations, the evaluation at or below the target included.",
    "target: the issue's, or — when scipy did not reach it within its limit — the loss scipy "
    "reached by then, which every other method must reach from the same start.",
    "scipy s / clopt best s: scipy's seconds to the row's target over the fastest clopt "
    "method's. \"≥\": scipy was stopped by its limit, so its time to the issue's target is "
    "longer than the one used here.",
    "clopt seconds are the solver's own (no process start, no kernel build); scipy and torch "
    "run in float64 on the same numpy objective; clopt first-order: the better of the runs "
    "listed per problem in the details.",
]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_before = load_average()
    worst, likely = estimate(args)
    def duration(seconds):
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"

    print(f"# at most {duration(worst)} (every run to its limit); at least about "
          f"{duration(likely)} where scipy and torch run to their limits (the clopt runs "
          "and kernel builds come on top)", flush=True)
    head = header_lines(args, load_before)
    for line in head:
        print("#", line[2:], flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problems:
            for size in args.sizes:
                n = math.prod(poisson_shape(size)) if problem == "poisson" else size
                rows.append(run_row(args, problem, n, args.limits[size], tmp))
    head.append(f"- load average after: {load_average()}")
    device = next((r for row in rows for r in row["runs"] if r.get("device")), None)
    if device:
        head.append(f"- clopt device: {device['device']} ({device['platform']} "
                    f"{device['driver']})")
    text = (head + [""] + summary_table(rows, args.methods) + [""] +
            [f"- {note}" for note in NOTES] + ["", "Every run:", ""] + details_table(rows))
    print("\n".join(text), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(text) + "\n")
        print(f"# tables: {args.markdown}")
    if args.png:
        plot(rows, args.png)
    return 0


def thin(curve, keep=2000):
    """At most about `keep` points of a curve, its last one included."""
    if len(curve) <= keep:
        return curve
    step = len(curve) // keep + 1
    return curve[::step] + [curve[-1]]


def plot(rows, path):
    try:
        import matplotlib
    except ImportError:
        print(f"# no PNG: matplotlib is not installed for {sys.executable} "
              "(apt-get install python3-matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    problems = list(dict.fromkeys(row["problem"] for row in rows))
    ns = {p: [row for row in rows if row["problem"] == p] for p in problems}
    depth = max(len(v) for v in ns.values())
    fig, axes = plt.subplots(depth, len(problems), figsize=(5 * len(problems), 4 * depth),
                             squeeze=False)
    for col, problem in enumerate(problems):
        for line, row in enumerate(ns[problem]):
            ax = axes[line][col]
            # Plotted: the loss above the minimum (poisson's and the laplacian's are not 0).
            shift = PROBLEMS[problem][2](row["n"])
            for r in row["runs"]:
                if not r["curve"]:
                    continue
                t, f = zip(*thin(r["curve"]))
                ax.loglog(np.maximum(t, 1e-4), np.maximum(np.array(f) - shift, 1e-300),
                          label=f"{r['name']} ({r['precision']})")
            ax.axhline(max(row["target"] - shift, 1e-300), color="grey", linestyle=":",
                       label=f"target ({row['target_kind']})")
            ax.set_title(f"{problem}, n = {n_text(problem, row['n'])}")
            ax.set_xlabel("seconds")
            ax.set_ylabel("loss" if shift == 0 else "loss - f*")
            ax.legend(fontsize=7)
        for line in range(len(ns[problem]), depth):
            axes[line][col].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"# plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
